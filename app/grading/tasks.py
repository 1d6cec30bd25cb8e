"""Huey tasks for grading: thin wrappers over services.

Delivery is driven by the outbox table, not by the queue: `passback_deliver` sends whatever
is due; `passback_sweep` runs every minute from the consumer's own clock, so grades are
delivered even if Redis lost every queued task.
"""

from datetime import timedelta

from huey import crontab
from huey.contrib.djhuey import HUEY, db_periodic_task, db_task

from grading import services

KICK_KEY = "grading:passback-kick"
MAX_SCHEDULE_AHEAD = timedelta(minutes=1)  # later retries are the sweeper's


def passback_deliver_kick() -> None:
    """Queue one delivery run unless one is already queued and not yet started."""
    if HUEY.immediate or HUEY.put_if_empty(KICK_KEY, "1"):
        passback_deliver()


def _deliver() -> None:
    HUEY.get(KICK_KEY)  # a run has started: the next change must queue another
    stats = services.passback_deliver_due(wait_for_retries=not HUEY.immediate)
    wait = services.passback_next_due_in()
    if wait is not None and not HUEY.immediate and (stats.sent or wait < MAX_SCHEDULE_AHEAD.total_seconds()):
        if wait == 0:
            passback_deliver_kick()  # the budget ran out with grades still due
        elif wait < MAX_SCHEDULE_AHEAD.total_seconds():
            passback_deliver.schedule(delay=wait)


@HUEY.on_startup()
def passback_sweep_on_startup():
    """A worker that (re)starts looks for owed grades at once, not at the next minute."""
    passback_deliver_kick()


@db_task()
def passback_deliver():
    _deliver()


@db_periodic_task(crontab(minute="*"))
def passback_sweep():
    _deliver()


@db_task(retries=3, retry_delay=30)
def grades_recompute(resource_id: int):
    return services.grades_refresh_resource(resource_id=resource_id, trigger=services.Trigger.RECOMPUTE)
