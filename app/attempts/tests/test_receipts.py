"""Completion receipts are e-mailed when the resource asks for them, and not otherwise."""

import pytest
from django.core import mail

from attempts import receipts
from lms.models import LtiIdentity
from grading.tests.helpers import answer, start, student_with_exam


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("switched_on", [True, False])
def test_a_receipt_is_sent_on_completion_only_when_switched_on(consumer, switched_on):
    membership = student_with_exam(consumer, email_receipt=switched_on, show_score="always")
    attempt = start(membership)
    answer(attempt, 1)  # progress: never a receipt
    assert mail.outbox == []
    answer(attempt, 3, complete=True)
    if not switched_on:
        assert mail.outbox == []
        return
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    attempt.refresh_from_db()
    identity = LtiIdentity.objects.get(user=membership.user)
    assert message.to == [identity.email] and identity.email.endswith("@example.ac.uk")
    assert "completed attempt 1" in message.body and "3 out of 4" in message.body
    assert receipts.receipt_code(attempt) in message.body


@pytest.mark.django_db(transaction=True)
def test_the_receipt_hides_the_score_when_students_may_not_see_it(consumer):
    membership = student_with_exam(consumer, email_receipt=True, show_score="never")
    answer(start(membership), 3, complete=True)
    assert len(mail.outbox) == 1 and "score" not in mail.outbox[0].body.lower()


@pytest.mark.django_db
def test_no_receipt_for_an_attempt_still_in_progress(consumer):
    membership = student_with_exam(consumer, email_receipt=True)
    attempt = start(membership)
    assert receipts.attempt_receipt_send(attempt_id=attempt.pk) is False
    assert mail.outbox == []
