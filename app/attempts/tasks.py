from huey.contrib.djhuey import db_task

from attempts import receipts


@db_task(retries=5, retry_delay=60)
def attempt_receipt_send(attempt_id: int):
    return receipts.attempt_receipt_send(attempt_id=attempt_id)
