"""The attempt-data protocol between the attempt page and the server (websocket or HTTP).

A batch, as the browser sends it:
    {"type": "batch", "batch": "<client id>", "token": "<writer token>",
     "changes": [{"seq": 17, "key": "cmi.location", "value": "3", "t": 1732540000123}, ...],
     "terminate": false}
`parse_batch` turns untrusted JSON into a `ParsedBatch` or raises `ProtocolError`.

Values from the exam that become numbers in the database are checked here, so that a batch is
either storable as a whole or refused as a whole: `seq` (a bigint), `t` (a timestamp), and the
values of NUMBER_KEY — the attempt's score (attempts.services copies it onto the attempt row as
double precision) and the questions' and parts' scores (grading.scoring reads them into the
grade and the per-question scores).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.utils.translation import gettext as _

BATCH_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")  # used with fullmatch: "$" would also match before "\n"
KEY = re.compile(r"(cmi|adl|numbas)\.[A-Za-z0-9_.{}=:-]{1,240}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_SEQUENCE = 2**53
NUMBER_KEY = re.compile(
    r"cmi\.(?:objectives\.[0-9]+\.)?score\.(?:raw|min|max|scaled)|cmi\.interactions\.[0-9]+\.(?:weighting|result)"
)
# Numbers in those elements: SCORM's are real(10,7) (the attempt page's API takes at most 10
# digits before the point); anything up to 10^15 is exact in double precision, and sums of
# thousands of them stay far from overflowing. PostgreSQL refuses to read text beyond its range
# (1e309) or too small to tell from 0 (1e-400) as double precision; NaN and Infinity are no scores.
NUMBER_MAX = Decimal("1e15")
NUMBER_MIN = Decimal("1e-300")  # in size, when not 0


class ProtocolError(ValueError):
    def __init__(self, code: str, message: str, batch_id: str | None = None):
        super().__init__(message)
        self.code, self.message, self.batch_id = code, message, batch_id


@dataclass(frozen=True)
class Change:
    sequence: int
    key: str
    value: str
    client_ms: int | float | None  # the browser's clock, milliseconds since 1970

    @property
    def client_time(self) -> datetime | None:
        return None if self.client_ms is None else datetime.fromtimestamp(self.client_ms / 1000, tz=timezone.utc)


@dataclass(frozen=True)
class ParsedBatch:
    batch_id: str
    token: str
    changes: tuple[Change, ...]
    terminate: bool
    content_hash: str


def _client_ms(raw) -> int | float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or not (0 <= raw < 10**14):
        raise ValueError(_("t must be milliseconds since 1970"))
    return raw


def _check_number(key: str, value: str) -> None:
    """A value of a NUMBER_KEY element that reads as a number must be one the database can
    store and arithmetic can use. Other text (a result of "correct") is stored as it is."""
    try:
        float(value)
    except ValueError:
        return  # not a number: kept as text, never read as one
    try:
        number = Decimal(value.strip())  # exact: float() turns 1e-400 into 0 and 1e309 into inf
    except InvalidOperation:
        number = Decimal("NaN")  # a spelling only float() reads
    if not number.is_finite() or abs(number) > NUMBER_MAX or (number and abs(number) < NUMBER_MIN):
        shown = value[:40] + ("…" if len(value) > 40 else "")
        raise ValueError(_("%(key)s must be a number from -10^15 to 10^15 (0, or at least 10^-300 in size), "
                           "not “%(value)s”") % {"key": key, "value": shown})


def parse_batch(message) -> ParsedBatch:
    if not isinstance(message, dict):
        raise ProtocolError("invalid", _("A batch must be a JSON object."))
    if message.get("type", "batch") != "batch":
        raise ProtocolError("invalid", _('Only messages of type "batch" are accepted.'))
    batch_id = message.get("batch")
    if not isinstance(batch_id, str) or not BATCH_ID.fullmatch(batch_id):
        raise ProtocolError("invalid", _("The batch id must be 8 to 64 letters, digits, - or _."))
    token = message.get("token")
    if not isinstance(token, str) or not TOKEN.fullmatch(token):
        raise ProtocolError("invalid", _("The batch has no valid writer token."), batch_id)
    changes = message.get("changes")
    if not isinstance(changes, list):
        raise ProtocolError("invalid", _("changes must be a list."), batch_id)
    if len(changes) > settings.ATTEMPT_MAX_BATCH_CHANGES:
        raise ProtocolError(
            "too_large",
            _("A batch may hold at most %(count)d changes.") % {"count": settings.ATTEMPT_MAX_BATCH_CHANGES},
            batch_id,
        )
    terminate = message.get("terminate", False)
    if not isinstance(terminate, bool):
        raise ProtocolError("invalid", _("terminate must be true or false."), batch_id)
    parsed, total = [], 0
    for index, change in enumerate(changes):
        try:
            if not isinstance(change, dict):
                raise ValueError(_("each change must be an object"))
            sequence, key, value = change.get("seq"), change.get("key"), change.get("value")
            if isinstance(sequence, bool) or not isinstance(sequence, int) or not (0 <= sequence < MAX_SEQUENCE):
                raise ValueError(_("seq must be a whole number"))
            if not isinstance(key, str) or not KEY.fullmatch(key):
                raise ValueError(_("key must be a SCORM data model element name"))
            if not isinstance(value, str):
                raise ValueError(_("value must be a string"))
            if "\x00" in value:
                raise ValueError(_("value must not contain NUL characters"))
            if not value.isascii():
                try:
                    value.encode("utf-8")
                except UnicodeEncodeError:  # a lone surrogate: not text any database can store
                    raise ValueError(_("value must be valid Unicode text")) from None
            if len(value) > settings.ATTEMPT_MAX_VALUE_CHARS:
                raise ValueError(_("value is longer than %(count)d characters") % {"count": settings.ATTEMPT_MAX_VALUE_CHARS})
            if NUMBER_KEY.fullmatch(key):
                _check_number(key, value)
            total += len(value)
            parsed.append(Change(sequence, key, value, _client_ms(change.get("t"))))
        except ValueError as error:
            raise ProtocolError("invalid", _("Change %(index)d: %(error)s.") % {"index": index, "error": error}, batch_id) from None
    if total > settings.ATTEMPT_MAX_BATCH_CHARS:
        raise ProtocolError("too_large", _("The batch is too large; send it in smaller pieces."), batch_id)
    content = json.dumps([[c.sequence, c.key, c.value] for c in parsed] + [terminate], separators=(",", ":"))
    return ParsedBatch(
        batch_id=batch_id,
        token=token,
        changes=tuple(parsed),
        terminate=terminate,
        content_hash=hashlib.sha256(content.encode()).hexdigest(),
    )
