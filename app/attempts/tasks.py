from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from attempts import receipts, services


@db_task(retries=5, retry_delay=60)
def attempt_receipt_send(attempt_id: int):
    return receipts.attempt_receipt_send(attempt_id=attempt_id)


@db_periodic_task(crontab(minute="*"))
def attempts_end_past_deadline():
    """Every minute: end the open attempts whose closing time or time limit has passed (found
    in the database, so none is missed if the queue lost a task; answers after the deadline
    are refused by batch_store at once, whenever this runs)."""
    return services.attempts_end_past_deadline()
