from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from lti13 import services


@db_periodic_task(crontab(minute="7,37"))
def purge_expired_lti13_requests():
    """OIDC login states and deep linking requests long past their use."""
    return {"login_states": services.login_states_purge(), "deep_linking": services.deep_linking_requests_purge()}
