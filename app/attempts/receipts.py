"""Completion receipts: an e-mail to the student when they complete an attempt, if the
resource asks for it. Sent by Huey through Django's e-mail backend (console in development)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
import struct
from dataclasses import dataclass
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils.translation import gettext

from attempts.models import Attempt
from attempts.selectors import resource_settings, score_visible
from lms.models import LtiIdentity

logger = logging.getLogger(__name__)


# --- receipt codes ------------------------------------------------------------------------------
#
# A receipt code proves an attempt and the score it had when the code was made. It is 30 bytes
# written as 48 base32 characters in groups of four ("R1AB-CDEF-…"):
#
#   version (1) | attempt id (6) | ended at, Unix seconds (5) | score and maximum (4 + 4, in
#   thousandths, masked) | HMAC-SHA256 of all that, first 10 bytes
#
# The HMAC key is derived from SECRET_KEY (and SECRET_KEY_FALLBACKS when checking, so codes
# survive a key rotation); 80 bits of MAC make forging or guessing hopeless, and a mistyped
# character fails it. The score is masked with a keystream derived from the key, the attempt and
# its end, so that a student whose activity hides marks cannot read them from their own code.
#
# Codes made before this (12 hexadecimal characters, receipt_code_v0) carry no attempt id and no
# score: they are checked by recomputing the old code of every ended attempt the person may ask
# about, which proves the attempt (not a score).

RECEIPT_VERSION = 1
_SALT = "attempts.receipts.v1"
_MAC_BYTES = 10
_LAYOUT = struct.Struct(">B6s5sii")  # version, attempt id, ended at, masked raw, masked max
CODE_LENGTH = 48
_SCALE = 1000
_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ReceiptClaim:
    """What a genuine code says."""

    attempt_id: int
    ended_at: datetime | None
    raw: float | None
    max: float | None


class ReceiptInvalid(ValueError):
    """Not a receipt code made here; the message says so in words a person understands."""


def _keys() -> list[bytes]:
    secrets_ = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [hmac.new(secret.encode(), _SALT.encode(), hashlib.sha256).digest() for secret in secrets_]


def _mask(key: bytes, attempt_id: int, ended: int) -> tuple[int, int]:
    stream = hmac.new(key, b"mask" + attempt_id.to_bytes(6, "big") + ended.to_bytes(5, "big"), hashlib.sha256).digest()
    return int.from_bytes(stream[:4], "big", signed=True), int.from_bytes(stream[4:8], "big", signed=True)


def _fixed(value: float | None) -> int:
    """A score in thousandths; -2**31 means none."""
    if value is None:
        return -(2**31)
    return max(-_LIMIT, min(_LIMIT, round(value * _SCALE)))


def _xor(a: int, b: int) -> int:
    return int.from_bytes(bytes(x ^ y for x, y in zip(a.to_bytes(4, "big", signed=True), b.to_bytes(4, "big", signed=True))),
                          "big", signed=True)


def receipt_score(attempt: Attempt) -> tuple[float | None, float | None]:
    """The attempt's score as it counts now (discounts and instructors' marks applied, out of
    the exam's whole total): what a receipt proves."""
    from grading import selectors as grading_selectors

    marks = grading_selectors.attempt_scores(
        attempt_ids=[attempt.pk], discounts=grading_selectors.discounts_for(resource_id=attempt.resource_id),
    ).get(attempt.pk)
    return (marks.raw, marks.max) if marks is not None else (None, None)


def receipt_code(attempt: Attempt, *, score: tuple[float | None, float | None] | None = None) -> str:
    """The code the student can quote: it proves the attempt and its score now."""
    raw, max_ = score if score is not None else receipt_score(attempt)
    ended = int(attempt.ended_at.timestamp()) if attempt.ended_at else 0
    key = _keys()[0]
    mask_raw, mask_max = _mask(key, attempt.pk, ended)
    body = _LAYOUT.pack(RECEIPT_VERSION, attempt.pk.to_bytes(6, "big"), ended.to_bytes(5, "big"),
                        _xor(_fixed(raw), mask_raw), _xor(_fixed(max_), mask_max))
    mac = hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]
    text = base64.b32encode(body + mac).decode()
    return "-".join(text[i:i + 4] for i in range(0, len(text), 4))


def receipt_code_v0(attempt: Attempt) -> str:
    """The 12-character code of receipts e-mailed before codes were provable (still checkable)."""
    text = f"{attempt.pk}:{attempt.ended_at.isoformat() if attempt.ended_at else ''}:{settings.SECRET_KEY}"
    return hashlib.sha256(text.encode()).hexdigest()[:12].upper()


_NOT_A_CODE = re.compile(r"[^A-Z2-7]")
_V0 = re.compile(r"^[0-9A-F]{12}$")


def normalise(code: str) -> str:
    """What was pasted, without spaces, dashes and case."""
    return re.sub(r"[\s\-]", "", code or "").upper()


_LOOKALIKES = str.maketrans("018", "OIB")  # not in the code's alphabet: read as the letters they resemble


def is_v0(code: str) -> bool:
    return bool(_V0.match(normalise(code)))


def receipt_read(code: str) -> ReceiptClaim:
    """What a receipt code proves, or ReceiptInvalid when it is not one made here."""
    text = normalise(code).translate(_LOOKALIKES)
    if not text:
        raise ReceiptInvalid(gettext("Paste the receipt code from the e-mail."))
    if len(text) > 200:
        raise ReceiptInvalid(gettext("That is far longer than a receipt code (48 letters and digits)."))
    if len(text) != CODE_LENGTH:
        raise ReceiptInvalid(gettext("A receipt code has 48 letters and digits (in groups of four); this one has "
                                     "%(count)d. Check that it was copied whole.") % {"count": len(text)})
    if _NOT_A_CODE.search(text):
        raise ReceiptInvalid(gettext("A receipt code uses only the letters A–Z and the digits 2–7; this one has "
                                     "other characters. Check it against the e-mail."))
    data = base64.b32decode(text)
    body, mac = data[:-_MAC_BYTES], data[-_MAC_BYTES:]
    for key in _keys():
        if hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES], mac):
            break
    else:
        raise ReceiptInvalid(gettext("This receipt code does not check out: it was mistyped, changed, or not made "
                                     "by this site."))
    version, attempt_bytes, ended_bytes, raw, max_ = _LAYOUT.unpack(body)
    if version != RECEIPT_VERSION:
        raise ReceiptInvalid(gettext("This receipt code is of a kind this site does not know."))
    attempt_id, ended = int.from_bytes(attempt_bytes, "big"), int.from_bytes(ended_bytes, "big")
    mask_raw, mask_max = _mask(key, attempt_id, ended)
    raw, max_ = _xor(raw, mask_raw), _xor(max_, mask_max)
    return ReceiptClaim(
        attempt_id=attempt_id,
        ended_at=datetime.fromtimestamp(ended, tz=dt_timezone.utc) if ended else None,
        raw=None if raw == -(2**31) else raw / _SCALE,
        max=None if max_ == -(2**31) else max_ / _SCALE,
    )


# --- checking a receipt -------------------------------------------------------------------------

CHECKS_PER_WINDOW = 30
CHECK_WINDOW_SECONDS = 600


@dataclass(frozen=True)
class ReceiptCheck:
    attempt: Attempt
    legacy: bool  # an old 12-character code: it proves the attempt, not a score
    raw: float | None  # the score the code proves
    max: float | None
    current_raw: float | None  # the attempt's score as it counts now
    current_max: float | None
    score_changed: bool
    ended_changed: bool  # re-opened (and perhaps ended again) since the code was made
    deleted: bool


def receipt_check_allowed(*, user_id: int) -> bool:
    """At most CHECKS_PER_WINDOW checks per person per CHECK_WINDOW_SECONDS (a fixed window in
    the cache): a bound on guessing on top of the codes' 80-bit MAC."""
    key = f"receipt-checks:{user_id}"
    cache.add(key, 0, timeout=CHECK_WINDOW_SECONDS)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=CHECK_WINDOW_SECONDS)
        count = 1
    return count <= CHECKS_PER_WINDOW


def receipt_check(*, code: str, resource_id: int, user_id: int, instructor: bool) -> ReceiptCheck:
    """Which attempt a pasted code proves, and its score then and now. An instructor may check
    any student's attempt of the activity, a student only their own. Reads only."""
    students_attempts = Attempt.all_objects.filter(resource_id=resource_id, is_test_run=False)
    if not instructor:
        students_attempts = students_attempts.filter(user_id=user_id)
    not_here = (gettext("This receipt is genuine but not for an attempt in this activity.") if instructor
                else gettext("This receipt is not for one of your attempts in this activity."))
    if is_v0(code):
        wanted = normalise(code)
        for attempt in students_attempts.filter(ended_at__isnull=False).only("pk", "ended_at").iterator(chunk_size=2000):
            if hmac.compare_digest(receipt_code_v0(attempt), wanted):
                attempt = Attempt.all_objects.select_related("user", "user__lti_identity").get(pk=attempt.pk)
                raw, max_ = receipt_score(attempt)
                return ReceiptCheck(attempt, True, None, None, raw, max_, False, False, attempt.deleted_at is not None)
        raise ReceiptInvalid(gettext("This old-style receipt code matches no finished attempt as it ended: it was "
                                     "mistyped, or the attempt was re-opened since.") if instructor else not_here)
    claim = receipt_read(code)
    attempt = students_attempts.select_related("user", "user__lti_identity").filter(pk=claim.attempt_id).first()
    if attempt is None:
        raise ReceiptInvalid(not_here)
    raw, max_ = receipt_score(attempt)
    same = _fixed(raw) == _fixed(claim.raw) and _fixed(max_) == _fixed(claim.max)
    ended = int(attempt.ended_at.timestamp()) if attempt.ended_at else 0
    claimed_end = int(claim.ended_at.timestamp()) if claim.ended_at else 0
    return ReceiptCheck(attempt, False, claim.raw, claim.max, raw, max_, not same, ended != claimed_end,
                        attempt.deleted_at is not None)


def _address(attempt: Attempt) -> str:
    if attempt.user.email:
        return attempt.user.email
    identity = LtiIdentity.objects.filter(user_id=attempt.user_id).exclude(email="").first()
    return identity.email if identity else ""


def attempt_receipt_send(*, attempt_id: int) -> bool:
    """Send the receipt for a completed attempt. Returns whether an e-mail was sent."""
    attempt = Attempt.objects.select_related("user", "resource", "exam").filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_ended:
        return False
    settings_ = resource_settings(resource_id=attempt.resource_id)
    if not settings_.email_receipt:
        return False
    address = _address(attempt)
    if not address:
        logger.info("No e-mail address for the receipt of attempt %s", attempt_id)
        return False
    context = {
        "attempt": attempt,
        "name": attempt.user.get_full_name() or "student",
        "title": attempt.resource.title or attempt.exam.title,
        "show_score": score_visible(settings=settings_, attempt=attempt),
        "code": receipt_code(attempt),
        "instance_name": settings.INSTANCE_NAME,
    }
    message = EmailMessage(
        subject=f"Receipt: you completed {context['title']}",
        body=render_to_string("attempts/email/receipt.txt", context),
        to=[address],
    )
    message.send()
    return True
