"""Receipt codes prove an attempt and its score: the "Check a receipt" page says which attempt
(student, number, when it ended) and score a code proves and whether the score has changed since;
forged or mistyped codes are refused with a clear message and nothing written; old codes still
check; guessing is bounded."""

import base64

import pytest
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from attempts import receipts
from attempts.models import Attempt, AttemptEvent
from attempts.tests.factories import launch
from grading import services as grading_services
from grading.tests.helpers import answer, start, student_with_exam

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def finished(membership, raw=3):
    attempt = start(membership)
    answer(attempt, raw, complete=True, questions=[("q0", raw, 4)])
    attempt.refresh_from_db()
    return attempt


def world(consumer, **settings):
    student = student_with_exam(consumer, user_id="s1", **{"email_receipt": True, "show_score": "always", **settings})
    other = launch(consumer, user_id="s2").membership
    instructor = launch(consumer, user_id="i1", roles="Instructor")
    return student, other, instructor


def test_a_code_proves_its_attempt_and_score_and_tells_when_the_score_changed(consumer):
    student, other, instructor = world(consumer)
    attempt = finished(student)
    code = receipts.receipt_code(attempt)
    assert code in mail.outbox[0].body  # the e-mailed code is the provable one
    claim = receipts.receipt_read(code)
    raw, max_ = receipts.receipt_score(attempt)
    assert (claim.attempt_id, claim.raw, claim.max) == (attempt.pk, raw, max_) and raw == 3
    assert claim.ended_at == attempt.ended_at.replace(microsecond=0)
    check = receipts.receipt_check(code=code.lower().replace("-", " "), resource_id=attempt.resource_id,
                                   user_id=instructor.membership.user_id, instructor=True)
    assert check.attempt.pk == attempt.pk and not check.score_changed and not check.legacy
    # The instructor re-marks a part: the same code still proves 3, and says the score changed.
    grading_services.part_remark(attempt=attempt, part_id="q0p0", score=0, by=instructor.membership.user,
                                 reason="wrong key")
    check = receipts.receipt_check(code=code, resource_id=attempt.resource_id,
                                   user_id=instructor.membership.user_id, instructor=True)
    assert check.score_changed and (check.raw, check.max) == (3, 4)
    assert (check.current_raw, check.current_max) != (check.raw, check.max)


def test_forged_mistyped_and_foreign_codes_are_refused(consumer, settings):
    student, other, instructor = world(consumer)
    attempt = finished(student)
    code = receipts.receipt_code(attempt)
    flipped = code[:10] + ("A" if code[10] != "A" else "B") + code[11:]
    for bad, message in ((flipped, "does not check out"), (code.replace("-", "")[:-1], "this one has 47"), ("", "Paste"),
                         (code.replace(code[5], "9", 1), "only the letters"), ("x" * 400, "far longer")):
        with pytest.raises(receipts.ReceiptInvalid, match=message):
            receipts.receipt_read(bad)
    # Re-encoded with another attempt id but the old MAC: refused.
    data = bytearray(base64.b32decode(code.replace("-", "")))
    data[6] ^= 1
    with pytest.raises(receipts.ReceiptInvalid, match="does not check out"):
        receipts.receipt_read(base64.b32encode(bytes(data)).decode())
    # Made with a key this site does not have: refused; after a key rotation (the old key kept
    # in SECRET_KEY_FALLBACKS) still genuine.
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "another-site-" + "k" * 40
    foreign = receipts.receipt_code(attempt)
    settings.SECRET_KEY = old_key
    with pytest.raises(receipts.ReceiptInvalid, match="does not check out"):
        receipts.receipt_read(foreign)
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "rotated-" + "r" * 40, [old_key]
    assert receipts.receipt_read(code).attempt_id == attempt.pk
    # A student may check only their own; the other student is told it is not theirs.
    with pytest.raises(receipts.ReceiptInvalid, match="not for one of your attempts"):
        receipts.receipt_check(code=code, resource_id=attempt.resource_id, user_id=other.user_id, instructor=False)
    assert receipts.receipt_check(code=code, resource_id=attempt.resource_id, user_id=student.user_id,
                                  instructor=False).attempt.pk == attempt.pk


def test_the_code_does_not_show_a_hidden_score(consumer):
    """Two attempts with the same score have different score bytes: the score is masked."""
    student, other, instructor = world(consumer)
    first = finished(student)
    student_two = launch(consumer, user_id="s3").membership
    second = finished(student_two)
    one, two = (base64.b32decode(receipts.receipt_code(a).replace("-", "")) for a in (first, second))
    assert one[12:20] != two[12:20]
    assert (3000).to_bytes(4, "big") not in one[12:20]


def test_old_codes_still_prove_their_attempt(consumer):
    student, other, instructor = world(consumer)
    attempt = finished(student)
    old = receipts.receipt_code_v0(attempt)
    assert len(old) == 12
    for user_id, is_instructor in ((instructor.membership.user_id, True), (student.user_id, False)):
        check = receipts.receipt_check(code=old.lower(), resource_id=attempt.resource_id, user_id=user_id,
                                       instructor=is_instructor)
        assert check.legacy and check.attempt.pk == attempt.pk and check.raw is None
    with pytest.raises(receipts.ReceiptInvalid):
        receipts.receipt_check(code=old, resource_id=attempt.resource_id, user_id=other.user_id, instructor=False)
    with pytest.raises(receipts.ReceiptInvalid, match="matches no finished attempt"):
        receipts.receipt_check(code="0123456789AB", resource_id=attempt.resource_id,
                               user_id=instructor.membership.user_id, instructor=True)


def _rows():
    return (Attempt.all_objects.count(), AttemptEvent.objects.count())


def test_the_check_page(consumer):
    student_membership, other, instructor = world(consumer, show_score="never")
    attempt = finished(student_membership)
    code = receipts.receipt_code(attempt)
    url = reverse("attempts:receipt_check", args=[attempt.resource_id])
    student = launch(consumer, user_id="s1")
    assert student.get(url).status_code == 200
    before = _rows()
    page = instructor.post(url, {"code": code})
    html = page.content.decode()
    assert page.status_code == 200 and "This receipt is genuine" in html and "not changed" in html
    assert 'data-testid="receipt-score"' in html and 'data-testid="receipt-student"' in html
    mine = student.post(url, {"code": code}).content.decode()
    assert "This receipt is genuine" in mine and 'data-testid="receipt-score"' not in mine  # marks hidden
    bad = instructor.post(url, {"code": code[:-1] + ("A" if code[-1] != "A" else "B")})
    assert bad.status_code == 400 and "does not check out" in bad.content.decode()
    assert instructor.post(url, {}).status_code == 400
    assert _rows() == before
    # Guessing is bounded per person.
    statuses = [instructor.post(url, {"code": "A" * 48}).status_code for _ in range(receipts.CHECKS_PER_WINDOW)]
    assert statuses[-1] == 429 and "Wait ten minutes" in instructor.post(url, {"code": code}).content.decode()
    assert student.post(url, {"code": code}).status_code == 200  # others are not held up
    assert _rows() == before
    anonymous = type(instructor)().post(url, {"code": code})
    assert anonymous.status_code == 401
