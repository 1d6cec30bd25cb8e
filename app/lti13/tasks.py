"""Huey tasks for LTI 1.3: thin wrappers over services."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from lms.models import Context
from lti13 import services


@db_task()
def roster_sync(context_id: int):
    """Read a course's members from its LMS, unless someone did lately (launches queue this)."""
    context = Context.objects.filter(pk=context_id).first()
    if context is None:
        return None
    result = services.roster_sync(context=context, max_age=services.ROSTER_MAX_AGE)
    return result.code or "read"


@db_periodic_task(crontab(minute="7,37"))
def purge_expired_lti13_requests():
    """OIDC login states and deep linking requests long past their use."""
    return {"login_states": services.login_states_purge(), "deep_linking": services.deep_linking_requests_purge()}
