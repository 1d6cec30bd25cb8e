"""The attempt's websocket speaks the person's language, as their pages do."""

from datetime import timedelta

import pytest

from attempts.tests.test_deadlines import CLOSES, _converse, _cookie, attempt, clock, student  # noqa: F401
from core import languages


def _language(client, code):
    session = client.session
    session[languages.CHOSEN_KEY] = code
    session.save()


@pytest.mark.django_db(transaction=True)
def test_a_refusal_on_the_socket_is_in_the_language_the_person_chose(student, attempt, clock):  # noqa: F811
    _language(student, "de")
    clock.move_to(CLOSES + timedelta(seconds=1))
    messages, _ = _converse(_cookie(student), attempt.pk, attempt.writer_token)
    assert messages[0]["code"] == "closed"
    assert messages[0]["message"].startswith("Diese Prüfung wurde am "), messages[0]["message"]


@pytest.mark.django_db(transaction=True)
def test_without_a_choice_the_socket_speaks_the_sites_language(student, attempt, clock):  # noqa: F811
    clock.move_to(CLOSES + timedelta(seconds=1))
    messages, _ = _converse(_cookie(student), attempt.pk, attempt.writer_token)
    assert messages[0]["message"].startswith("This exam closed at ")
