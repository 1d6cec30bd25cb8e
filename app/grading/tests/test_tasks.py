from datetime import datetime

from huey.contrib.djhuey import HUEY

from grading import tasks


def test_the_sweeper_runs_every_minute_from_the_workers_own_clock():
    sweep = tasks.passback_sweep.task_class()
    assert all(sweep.validate_datetime(datetime(2026, 11, 25, 10, m)) for m in range(60))
    assert tasks.passback_sweep.task_class in HUEY._registry._periodic_tasks


def test_only_one_delivery_run_is_queued_at_a_time(monkeypatch):
    runs = []
    monkeypatch.setattr(HUEY, "immediate", False)
    monkeypatch.setattr(tasks, "passback_deliver", lambda: runs.append(1))
    HUEY.get(tasks.KICK_KEY)
    tasks.passback_deliver_kick()
    tasks.passback_deliver_kick()
    assert runs == [1]
    HUEY.get(tasks.KICK_KEY)  # a run starts: the next change queues another
    tasks.passback_deliver_kick()
    assert runs == [1, 1]


def test_an_unreachable_queue_never_fails_the_save(monkeypatch):
    from grading import services

    def redis_down():
        raise ConnectionError("Error 111 connecting to redis")

    monkeypatch.setattr(tasks, "passback_deliver_kick", redis_down)
    services.passback_kick()  # logged; the sweeper delivers once the queue is back
