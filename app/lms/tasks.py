from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from lms import services


@db_periodic_task(crontab(minute="*/15"))
def purge_expired_nonces():
    return services.nonces_purge_expired()
