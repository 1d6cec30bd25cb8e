"""Attempt work on the consumer's database threads survives a connection that died while kept."""

import pytest
from django.db import OperationalError, connections

from attempts.consumers import _in_worker


class FailsOnce:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return "stored"


@pytest.mark.django_db(transaction=True)
def test_a_kept_connection_that_broke_is_replaced_and_the_work_tried_once_more():
    connections["default"].ensure_connection()  # kept from an earlier batch
    work = FailsOnce()
    assert _in_worker(work) == "stored"
    assert work.calls == 2


@pytest.mark.django_db(transaction=True)
def test_a_new_connection_that_fails_means_the_database_is_away_and_the_page_sends_again():
    connections["default"].close()
    work = FailsOnce()
    with pytest.raises(OperationalError):
        _in_worker(work)
    assert work.calls == 1
    assert connections["default"].connection is None


@pytest.mark.django_db(transaction=True)
def test_a_second_failure_goes_to_the_page_and_leaves_no_dead_connection():
    connections["default"].ensure_connection()

    def always():
        raise OperationalError("could not connect")

    with pytest.raises(OperationalError):
        _in_worker(always)
    assert connections["default"].connection is None
