"""The bad-input catalogue: malformed LTI launches, malformed attempt-data messages and hostile
exam packages, as data. tests/test_bad_input_catalogue.py sends every case and checks that it
is refused with a 4xx (or a websocket error reply / close code) and a message for a person,
never a 5xx, and that nothing is written.

Each case says what the answer must be. A case whose `bug` (or `http_bug` / `ws_bug`) is set
describes a defect of the application as it is: the test marks it xfail(strict=True), so the
suite stays green while the defect is there and goes red (XPASS) once it is fixed — then delete
the `bug` text.

Cases are built lazily (functions), because signatures carry timestamps and batches fresh ids.
"""

from __future__ import annotations

import io
import json
import os
import random
import warnings
import zipfile
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import urlencode

from attempts.tests.factories import batch_message
from tests.support import lms as test_lms
from tests.support.packages import MANIFEST, good_package, make_zip

ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith("postgres")
FORM = "application/x-www-form-urlencoded"
MB = 1024 * 1024


# --- LTI launches (POST /lti/launch/) ------------------------------------------------------


def launch_rows() -> dict[str, list[dict]]:
    """Every row a launch may write (consumers, contexts, resources, identities, memberships,
    the launch log, used nonces, users, sessions): equal before and after = nothing written."""
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    from lms.models import Consumer, Context, LaunchLog, LtiIdentity, Resource, ResourceMembership, UsedNonce

    models = (Consumer, Context, Resource, LtiIdentity, ResourceMembership, LaunchLog, UsedNonce, get_user_model(),
              Session)
    return {model.__name__: list(model.objects.order_by("pk").values()) for model in models}


@dataclass(frozen=True)
class LaunchKeys:
    """The consumers a launch case may use: an active one and a switched-off one."""

    key: str
    secret: str
    inactive_key: str
    inactive_secret: str


@dataclass(frozen=True)
class LaunchRequest:
    data: dict | str | bytes = field(default_factory=dict)
    method: str = "POST"
    content_type: str | None = None  # None: a dict posted as a form (multipart), like a browser
    headers: dict = field(default_factory=dict)
    before: tuple[dict, ...] = ()  # launches that must succeed first (e.g. to use up a nonce)


@dataclass(frozen=True)
class LaunchCase:
    name: str
    build: Callable[[LaunchKeys], LaunchRequest]
    status: int
    code: str | None  # the data-error-code of the launch error page (None: any, for cases that are bugs today)
    bug: str | None = None


def _signed(k: LaunchKeys, *, key=None, secret=None, url="http://testserver/lti/launch/", timestamp=None, nonce=None,
            **overrides) -> dict[str, str]:
    return test_lms.sign(test_lms.launch_params(**overrides), key=key or k.key, secret=secret or k.secret, url=url,
                         timestamp=timestamp, nonce=nonce)


def _without(name: str) -> Callable[[LaunchKeys], LaunchRequest]:
    def build(k):
        params = _signed(k)
        del params[name]
        return LaunchRequest(params)

    return build


def _with(**replacements) -> Callable[[LaunchKeys], LaunchRequest]:
    """A correctly signed launch, then some parameters replaced (after signing)."""
    return lambda k: LaunchRequest({**_signed(k), **replacements})


def _form(k: LaunchKeys, extra: str | bytes = b"", **sign) -> LaunchRequest:
    """A signed launch as an urlencoded body, with raw bytes appended (duplicates, bad encoding)."""
    body = urlencode(_signed(k, **sign)).encode()
    return LaunchRequest(body + (extra if isinstance(extra, bytes) else extra.encode()), content_type=FORM)


def _replayed(k: LaunchKeys) -> LaunchRequest:
    nonce = test_lms.fresh_nonce()
    first = _signed(k, nonce=nonce)
    # Someone captured the nonce and signs a launch of their own with it (or re-posts the form).
    return LaunchRequest(_signed(k, nonce=nonce, user_id="replayer"), before=(first,))


_UNHELPFUL_400 = (
    "Django refuses the body while the launch view reads request.POST ({}); that is not a LaunchRejected, so the "
    "answer is Django's bare 'Bad Request (400)' page: no explanation, no error code, not the launch error page."
)

LAUNCHES: list[LaunchCase] = [
    # the wrong kind of request
    LaunchCase("get_instead_of_post", lambda k: LaunchRequest(_signed(k), method="GET"), 405, "method_not_allowed"),
    LaunchCase("put_instead_of_post", lambda k: LaunchRequest(urlencode(_signed(k)), method="PUT", content_type=FORM),
               405, "method_not_allowed"),
    LaunchCase("delete_instead_of_post", lambda k: LaunchRequest("", method="DELETE", content_type=FORM), 405,
               "method_not_allowed"),
    LaunchCase("empty_body", lambda k: LaunchRequest({}), 400, "not_signed"),
    LaunchCase("json_instead_of_form", lambda k: LaunchRequest(json.dumps(_signed(k)), content_type="application/json"),
               400, "not_signed"),
    LaunchCase("oauth_in_authorization_header_only",
               lambda k: LaunchRequest(test_lms.launch_params(), headers={
                   "Authorization": f'OAuth oauth_consumer_key="{k.key}", oauth_signature="c2lnbmF0dXJl"'}),
               400, "not_signed"),
    # the signature's own parameters
    *[LaunchCase(f"missing_{name}", _without(name), 400, "not_signed")
      for name in ("oauth_consumer_key", "oauth_signature", "oauth_signature_method", "oauth_timestamp", "oauth_nonce")],
    LaunchCase("blank_oauth_signature", _with(oauth_signature="   "), 400, "not_signed"),
    LaunchCase("plaintext_signature_method", _with(oauth_signature_method="PLAINTEXT"), 400,
               "unsupported_signature_method"),
    LaunchCase("rsa_sha1_signature_method", _with(oauth_signature_method="RSA-SHA1"), 400,
               "unsupported_signature_method"),
    LaunchCase("hmac_sha256_signature_method", _with(oauth_signature_method="HMAC-SHA256"), 400,
               "unsupported_signature_method"),
    # who signed it, and how
    LaunchCase("wrong_secret", lambda k: LaunchRequest(_signed(k, secret="not-the-secret")), 403, "bad_signature"),
    LaunchCase("tampered_user_id", lambda k: LaunchRequest({**_signed(k, user_id="student"), "user_id": "teacher"}),
               403, "bad_signature"),
    LaunchCase("duplicate_user_id_appended", lambda k: _form(k, "&user_id=someone-else"), 403, "bad_signature"),
    LaunchCase("duplicate_oauth_signature_appended", lambda k: _form(k, "&oauth_signature=AAAA"), 403,
               "bad_signature"),
    LaunchCase("invalid_utf8_in_body", lambda k: _form(k, b"&lis_person_name_full=%FF%FE%FD"), 403, "bad_signature"),
    LaunchCase("signature_not_base64", _with(oauth_signature="!!! not base64 !!!"), 403, "bad_signature"),
    LaunchCase("signed_for_https_posted_over_http",
               lambda k: LaunchRequest(_signed(k, url="https://testserver/lti/launch/")), 403, "bad_signature"),
    LaunchCase("unknown_consumer_key", lambda k: LaunchRequest(_signed(k, key="nobody-knows-me")), 403,
               "unknown_consumer"),
    LaunchCase("consumer_key_in_other_case", lambda k: LaunchRequest(_signed(k, key=k.key.upper())), 403,
               "unknown_consumer"),
    LaunchCase("consumer_key_with_leading_space", lambda k: LaunchRequest(_signed(k, key=" " + k.key)), 403,
               "unknown_consumer"),
    LaunchCase("inactive_consumer",
               lambda k: LaunchRequest(_signed(k, key=k.inactive_key, secret=k.inactive_secret)), 403,
               "inactive_consumer"),
    # when
    LaunchCase("timestamp_an_hour_old", lambda k: LaunchRequest(_signed(k, timestamp=test_lms.now() - 3600)), 403,
               "stale_timestamp"),
    LaunchCase("timestamp_an_hour_ahead", lambda k: LaunchRequest(_signed(k, timestamp=test_lms.now() + 3600)), 403,
               "stale_timestamp"),
    LaunchCase("timestamp_not_a_number", lambda k: LaunchRequest(_signed(k, timestamp="yesterday")), 403,
               "stale_timestamp"),
    LaunchCase("timestamp_with_fraction", lambda k: LaunchRequest(_signed(k, timestamp=f"{test_lms.now()}.5")), 403,
               "stale_timestamp"),
    LaunchCase("timestamp_of_5000_digits", lambda k: LaunchRequest(_signed(k, timestamp="9" * 5000)), 403,
               "stale_timestamp"),
    LaunchCase("replayed_nonce", _replayed, 403, "replayed"),
    # the LTI message
    LaunchCase("message_type_tool_proxy_registration",
               lambda k: LaunchRequest(_signed(k, lti_message_type="ToolProxyRegistrationRequest")), 400,
               "unsupported_message_type"),
    LaunchCase("message_type_blank", lambda k: LaunchRequest(_signed(k, lti_message_type=" ")), 400,
               "missing_parameter"),
    LaunchCase("lti_version_1p3", lambda k: LaunchRequest(_signed(k, lti_version="1.3.0")), 400,
               "unsupported_version"),
    LaunchCase("resource_link_id_blank", lambda k: LaunchRequest(_signed(k, resource_link_id="  ")), 400,
               "missing_parameter"),
    LaunchCase("user_id_blank", lambda k: LaunchRequest(_signed(k, user_id="   ")), 400, "missing_user_id"),
    LaunchCase("resource_link_id_of_256_chars", lambda k: LaunchRequest(_signed(k, resource_link_id="r" * 256)), 400,
               "invalid_parameter"),
    LaunchCase("context_id_of_256_chars", lambda k: LaunchRequest(_signed(k, context_id="c" * 256)), 400,
               "invalid_parameter"),
    LaunchCase("nonce_of_300_chars", lambda k: LaunchRequest(_signed(k, nonce="n" * 300)), 400, "invalid_parameter"),
    LaunchCase("nul_in_user_id", lambda k: LaunchRequest(_signed(k, user_id="stu\x00dent")), 400, "invalid_parameter"),
    LaunchCase("nul_in_parameter_name", lambda k: LaunchRequest({**_signed(k), "custom_\x00": "1"}), 400,
               "invalid_parameter"),
    # the body itself
    LaunchCase("body_over_upload_limit",
               lambda k: LaunchRequest(urlencode({**_signed(k), "custom_pad": "x" * (11 * MB)}), content_type=FORM),
               413, "too_large"),
    LaunchCase("over_a_thousand_parameters",
               lambda k: LaunchRequest(urlencode({**_signed(k), **{f"custom_{i}": "1" for i in range(1200)}}),
                                       content_type=FORM),
               413, "too_large"),
]


# --- attempt-data messages (POST /attempt/<id>/batches/ and ws /ws/attempt/<id>/) -----------


@dataclass(frozen=True)
class Tokens:
    """Writer tokens of the attempts a case may address."""

    own: str  # the owner's open attempt, as its current window holds it
    other: str  # another student's open attempt
    ended: str  # the owner's earlier, ended attempt (review mode)


@dataclass(frozen=True)
class BatchProbe:
    body: object  # dict/list: sent as JSON; str/bytes: sent as they are
    attempt: str = "own"  # own | other | ended | unknown | beyond_bigint | beyond_64_bits
    who: str = "owner"  # owner | other_student | instructor | anonymous
    before: tuple[dict, ...] = ()  # good batches stored (and acknowledged) first
    socket_token: str | None = None  # websocket only: the ?token= of the connection (default: the attempt's)


@dataclass(frozen=True)
class WsExpect:
    code: str | None  # the "code" of the error reply (None: no reply is sent)
    close: int | tuple[int, ...] | None = None  # the close code(s) (None: the connection stays open)


@dataclass(frozen=True)
class BatchCase:
    name: str
    build: Callable[[Tokens], BatchProbe]
    http: tuple[int, str | None] | None  # status and error code over HTTP (None: not JSON); None: websocket only
    ws: WsExpect | None  # None: HTTP only
    http_bug: str | None = None
    ws_bug: str | None = None


ABSENT = object()  # in _message/_one_change: leave the field out


def _batch(token: str, changes=(("cmi.location", "1"),)) -> dict:
    return batch_message(token, list(changes))


def _change(**fields) -> dict:
    return {"seq": 1, "key": "cmi.location", "value": "1", "t": 1764000000000, **fields}


def _message(**overrides) -> Callable[[Tokens], BatchProbe]:
    """A good batch with some top-level fields replaced (ABSENT removes one)."""

    def build(t):
        message = {**_batch(t.own), **overrides}
        return BatchProbe({k: v for k, v in message.items() if v is not ABSENT})

    return build


def _one_change(**fields) -> Callable[[Tokens], BatchProbe]:
    """A batch of one change whose fields are replaced (ABSENT removes one)."""

    def build(t):
        change = {k: v for k, v in _change(**fields).items() if v is not ABSENT}
        return BatchProbe({**_batch(t.own), "changes": [change]})

    return build


def _raw(text: str | bytes) -> Callable[[Tokens], BatchProbe]:
    return lambda t: BatchProbe(text)


def _reused(t: Tokens) -> BatchProbe:
    first = _batch(t.own, [("cmi.location", "1")])
    again = {**_batch(t.own, [("cmi.location", "2")]), "batch": first["batch"]}
    return BatchProbe(again, before=(first,))


def _duplicate_keys(t: Tokens) -> BatchProbe:
    # JSON with "changes" twice: the parser keeps the last, which is not a list.
    good = json.dumps(_batch(t.own))
    return BatchProbe(good[:-1] + ', "changes": "all of them"}')


def _numbers(bad: tuple[str, str], terminate: bool = False) -> Callable[[Tokens], BatchProbe]:
    """A batch of good changes (a completed attempt's score among them) and one bad number."""

    def build(t):
        good = [("cmi.location", "3"), ("cmi.score.raw", "2"), ("cmi.score.max", "4"), ("cmi.objectives.0.id", "q0"),
                ("cmi.objectives.0.score.raw", "2"), ("cmi.completion_status", "completed")]
        return BatchProbe(batch_message(t.own, [*good, bad], terminate=terminate))

    return build


def _values(t: Tokens, sizes: list[int]) -> BatchProbe:
    return BatchProbe(_batch(t.own, [(f"cmi.interactions.{i}.learner_response", "x" * n) for i, n in enumerate(sizes)]))


INVALID, FORBIDDEN, NOT_FOUND = WsExpect("invalid"), WsExpect("forbidden", 4403), WsExpect("not_found", 4404)
_RECURSION = ("json.loads raises RecursionError (not a ValueError) on deeply nested input; the view catches only "
              "ValueError")
_SURROGATE = ("a lone UTF-16 surrogate (JSON \\ud800) passes parse_batch but cannot be encoded for the database "
              "(UnicodeEncodeError in batch_store)")
_NO_TEXT = ("Channels' AsyncJsonWebsocketConsumer.receive raises ValueError('No text section for incoming WebSocket "
            "frame!') for an empty text frame, and AttemptConsumer does not override receive")
_DOLLAR = ("protocol.py's regular expressions end in '$', which also matches before a trailing newline, so "
           "re.match accepts {} (use re.fullmatch or \\Z)")

BATCHES: list[BatchCase] = [
    # not a batch at all
    BatchCase("invalid_json", _raw('{"batch": "abcdefgh", '), (400, "invalid"), INVALID),
    BatchCase("empty_body", _raw(""), (400, "invalid"), INVALID),
    BatchCase("json_null", _raw("null"), (400, "invalid"), INVALID),
    BatchCase("json_array", lambda t: BatchProbe([_batch(t.own)]), (400, "invalid"), INVALID),
    BatchCase("json_string", _raw('"batch"'), (400, "invalid"), INVALID),
    BatchCase("json_number", _raw("42"), (400, "invalid"), INVALID),
    BatchCase("invalid_utf8", _raw(b'{"batch": "\xff\xfe\xfd"}'), (400, "invalid"), None),  # ws text is UTF-8
    BatchCase("binary_frame", _raw(json.dumps({"type": "batch"}).encode()), None, INVALID),
    BatchCase("deeply_nested_json", _raw("[" * 100_000), (400, "invalid"), INVALID),
    BatchCase("duplicate_json_keys", _duplicate_keys, (400, "invalid"), INVALID),
    BatchCase("type_is_not_batch", _message(type="delete-everything"), (400, "invalid"), INVALID),
    # the batch's own fields
    BatchCase("batch_id_missing", _message(batch=ABSENT), (400, "invalid"), INVALID),
    BatchCase("batch_id_too_short", _message(batch="abc"), (400, "invalid"), INVALID),
    BatchCase("batch_id_with_path_characters", _message(batch="../../etc/passwd"), (400, "invalid"), INVALID),
    BatchCase("batch_id_not_a_string", _message(batch=12345678), (400, "invalid"), INVALID),
    BatchCase("batch_id_with_trailing_newline", _message(batch="abcdefgh\n"), (400, "invalid"), INVALID),
    BatchCase("token_missing", _message(token=ABSENT), (400, "invalid"), INVALID),
    BatchCase("token_not_a_string", _message(token=123456), (400, "invalid"), INVALID),
    BatchCase("token_too_long", _message(token="t" * 65), (400, "invalid"), INVALID),
    BatchCase("token_of_another_window", _message(token="not-the-writer-token"), (409, "taken_over"), INVALID),
    BatchCase("token_with_nul", _message(token="tok\x00en"), (400, "invalid"), INVALID),
    BatchCase("token_with_lone_surrogate", _message(token="tok\ud800"), (400, "invalid"), INVALID),
    BatchCase("changes_missing", _message(changes=ABSENT), (400, "invalid"), INVALID),
    BatchCase("changes_not_a_list", _message(changes={"cmi.location": "1"}), (400, "invalid"), INVALID),
    BatchCase("too_many_changes",
              lambda t: BatchProbe(_batch(t.own, [(f"cmi.interactions.{i}.id", "q") for i in range(1001)])),
              (413, "too_large"), WsExpect("too_large")),
    BatchCase("terminate_not_a_boolean", _message(terminate="yes"), (400, "invalid"), INVALID),
    # one change
    BatchCase("change_not_an_object", _message(changes=["cmi.location"]), (400, "invalid"), INVALID),
    BatchCase("seq_missing", _one_change(seq=ABSENT), (400, "invalid"), INVALID),
    BatchCase("seq_negative", _one_change(seq=-1), (400, "invalid"), INVALID),
    BatchCase("seq_fraction", _one_change(seq=1.5), (400, "invalid"), INVALID),
    BatchCase("seq_string", _one_change(seq="7"), (400, "invalid"), INVALID),
    BatchCase("seq_boolean", _one_change(seq=True), (400, "invalid"), INVALID),
    BatchCase("seq_2_to_the_53", _one_change(seq=2**53), (400, "invalid"), INVALID),
    BatchCase("seq_of_400_digits", _one_change(seq=10**400), (400, "invalid"), INVALID),
    BatchCase("seq_nan", _one_change(seq=float("nan")), (400, "invalid"), INVALID),
    BatchCase("key_not_a_string", _one_change(key=7), (400, "invalid"), INVALID),
    BatchCase("key_unknown_namespace", _one_change(key="window.location"), (400, "invalid"), INVALID),
    BatchCase("key_with_sql", _one_change(key="cmi.x'); DROP TABLE attempts_batch; --"), (400, "invalid"), INVALID),
    BatchCase("key_too_long", _one_change(key="cmi." + "a" * 241), (400, "invalid"), INVALID),
    BatchCase("key_with_trailing_newline", _one_change(key="cmi.location\n"), (400, "invalid"), INVALID),
    BatchCase("value_a_number", _one_change(value=3), (400, "invalid"), INVALID),
    BatchCase("value_null", _one_change(value=None), (400, "invalid"), INVALID),
    BatchCase("value_an_object", _one_change(value={"answer": "1"}), (400, "invalid"), INVALID),
    BatchCase("value_with_nul", _one_change(value="a\x00b"), (400, "invalid"), INVALID),
    BatchCase("value_with_lone_surrogate", _one_change(value="\ud800"), (400, "invalid"), INVALID),
    BatchCase("t_negative", _one_change(t=-1), (400, "invalid"), INVALID),
    BatchCase("t_a_string", _one_change(t="2025-11-25T10:00:00Z"), (400, "invalid"), INVALID),
    BatchCase("t_infinite", _one_change(t=float("inf")), (400, "invalid"), INVALID),
    # values that become numbers in the database (protocol.NUMBER_KEY): beyond double precision,
    # too small to tell from 0, not numbers at all, or beyond 10^15 — refused whole, even with good changes
    *[BatchCase(f"{name}_{label}", _numbers((key, value)), (400, "invalid"), INVALID)
      for name, key in (("score_raw", "cmi.score.raw"), ("score_scaled", "cmi.score.scaled"),
                        ("score_max", "cmi.score.max"))
      for label, value in (("1e309", "1e309"), ("minus_1e400", "-1e400"), ("nan", "NaN"), ("infinity", "Infinity"),
                           ("minus_infinity", "-Infinity"), ("400_digits", "9" * 400), ("1e-400", "1e-400"),
                           ("over_10_to_the_15", "1000000000000001"))],
    BatchCase("score_min_inf", _numbers(("cmi.score.min", "inf")), (400, "invalid"), INVALID),
    BatchCase("objective_score_raw_1e309", _numbers(("cmi.objectives.0.score.raw", "1e309")), (400, "invalid"),
              INVALID),
    BatchCase("objective_score_max_nan", _numbers(("cmi.objectives.3.score.max", "nan")), (400, "invalid"), INVALID),
    BatchCase("interaction_result_1e309", _numbers(("cmi.interactions.0.result", "1e309")), (400, "invalid"), INVALID),
    BatchCase("interaction_weighting_infinity", _numbers(("cmi.interactions.2.weighting", "Infinity")),
              (400, "invalid"), INVALID),
    BatchCase("score_1e309_in_a_terminating_batch", _numbers(("cmi.score.raw", "1e309"), terminate=True),
              (400, "invalid"), INVALID),
    # sizes: the app answers up to daphne's message limit (infra spec.WEBSOCKET_MAX_MESSAGE_BYTES, twice
    # the batch limit, as for HTTP bodies); beyond it daphne closes the connection with 1009
    BatchCase("value_over_4_mb", lambda t: _values(t, [4 * MB + 1]), (400, "invalid"), INVALID),
    BatchCase("batch_over_8_mb", lambda t: _values(t, [3 * MB, 3 * MB, 2 * MB + 1]), (413, "too_large"),
              WsExpect("too_large")),
    BatchCase("body_over_10_mb", lambda t: _values(t, [4 * MB, 4 * MB, 3 * MB]), (413, "too_large"),
              WsExpect("too_large")),
    BatchCase("message_over_the_websocket_limit", lambda t: _values(t, [4 * MB] * 4 + [MB + 1]), (413, "too_large"),
              # 1009 "too big"; or 1006 when the server's TCP reset overtakes its close frame while
              # the client is still sending the rest of the message
              WsExpect(None, (1009, 1006))),
    # whose attempt, and in which state
    BatchCase("not_authenticated", lambda t: BatchProbe(_batch(t.own), who="anonymous"), (401, "not_authenticated"),
              WsExpect(None, 4401)),
    BatchCase("attempt_of_another_student", lambda t: BatchProbe(_batch(t.other), attempt="other"),
              (403, "forbidden"), FORBIDDEN),
    BatchCase("instructor_writes_to_student_attempt", lambda t: BatchProbe(_batch(t.own), who="instructor"),
              (403, "forbidden"), FORBIDDEN),
    BatchCase("unknown_attempt_id", lambda t: BatchProbe(_batch(t.own), attempt="unknown"), (403, "forbidden"),
              FORBIDDEN),
    # no route matches an id beyond a bigint, on SQLite as on PostgreSQL (core.converters)
    BatchCase("attempt_id_beyond_bigint", lambda t: BatchProbe(_batch(t.own), attempt="beyond_bigint"),
              (404, None), NOT_FOUND),
    BatchCase("attempt_id_beyond_64_bits", lambda t: BatchProbe(_batch(t.own), attempt="beyond_64_bits"),
              (404, None), NOT_FOUND),
    BatchCase("ended_attempt_review_mode", lambda t: BatchProbe(_batch(t.ended), attempt="ended"), (409, "ended"),
              WsExpect("ended", 4410)),
    BatchCase("reused_batch_id_other_content", _reused, (409, "batch_reused"), WsExpect("batch_reused")),
    # websocket only: the connection's token
    BatchCase("socket_token_of_another_window", lambda t: BatchProbe(_batch(t.own), socket_token="stale-token"), None,
              WsExpect("taken_over", 4409)),
    BatchCase("socket_token_missing", lambda t: BatchProbe(_batch(t.own), socket_token=""), None,
              WsExpect("taken_over", 4409)),
]


# --- exam packages (POST /resource/<id>/instructor/exam/) -----------------------------------


@dataclass(frozen=True)
class ZipCase:
    name: str
    build: Callable[[], bytes]
    message: str | None  # a phrase the JSON "error" must contain (None: any, for cases that are bugs today)
    settings: dict = field(default_factory=dict)
    bug: str | None = None


def _package(href="index.html", **extra) -> bytes:
    return make_zip({"imsmanifest.xml": MANIFEST.format(title="t", href=href), "index.html": "<!doctype html>", **extra})


def _patched(data: bytes, name: str, *, local: int, central: int, value: int, mask=False) -> bytes:
    """Set (or OR in) a 2-byte field of one entry's local header and central directory record."""
    info = zipfile.ZipFile(io.BytesIO(data)).getinfo(name)
    record = data.find(b"PK\x01\x02")
    while data[record + 46:record + 46 + len(name.encode())] != name.encode():
        record = data.find(b"PK\x01\x02", record + 4)
    out = bytearray(data)
    for offset in (info.header_offset + local, record + central):
        old = int.from_bytes(out[offset:offset + 2], "little")
        out[offset:offset + 2] = ((old | value) if mask else value).to_bytes(2, "little")
    return bytes(out)


def _encrypted() -> bytes:
    # zipfile cannot encrypt; set the "encrypted" flag bit (general purpose bit 0) as a tool would.
    return _patched(_package(), "index.html", local=6, central=8, value=0x1, mask=True)


def _compression_method(name: str, method: int) -> bytes:
    return _patched(_package(), name, local=8, central=10, value=method)


def _corrupt_data(name: str, *, compression: int) -> bytes:
    """Flip bytes inside one entry's compressed data."""
    manifest = MANIFEST.format(title="t", href="index.html")
    data = bytearray(make_zip({"imsmanifest.xml": manifest, "index.html": "<!doctype html>" + "abc" * 300},
                              compression=compression))
    info = zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(name)
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 2, start + 12):
        data[i] ^= 0xFF
    return bytes(data)


def _duplicate_names() -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        archive.writestr("imsmanifest.xml", MANIFEST.format(title="t", href="index.html"))
        archive.writestr("index.html", "<!doctype html><title>checked</title>")
        archive.writestr("index.html", "<!doctype html><title>stored</title>")
    return buffer.getvalue()


def _zip_in_zip() -> bytes:
    return make_zip({"exam.zip": good_package()})


_NOT_PACKAGE_REJECTED = ("HTTP 500: {} is not turned into PackageRejected (exam_package_upload converts only "
                         "zipfile.BadZipFile, and only from extraction; inspect_package runs before its try)")

ZIPS: list[ZipCase] = [
    ZipCase("truncated_zip", lambda: good_package()[:-40], "not a zip file"),
    ZipCase("zip_inside_the_zip", _zip_in_zip, "no imsmanifest.xml"),
    ZipCase("empty_zip", lambda: make_zip({}), "no imsmanifest.xml"),
    ZipCase("manifest_in_a_folder", lambda: make_zip({"exam/imsmanifest.xml": MANIFEST.format(title="t", href="a.html"),
                                                      "exam/a.html": "x"}), "no imsmanifest.xml"),
    ZipCase("manifest_is_a_folder", lambda: make_zip({"imsmanifest.xml/": "", "index.html": "x"}), "no imsmanifest.xml"),
    ZipCase("launch_href_leaves_the_package", lambda: _package(href="../../outside.html"), "leaves its folder"),
    ZipCase("launch_href_absolute", lambda: _package(href="/etc/passwd"), "absolute path"),
    ZipCase("launch_href_is_a_web_address", lambda: _package(href="http://evil.example/x.html"), "is not in the zip"),
    ZipCase("windows_drive_path", lambda: _package(**{"C:/Windows/evil.dll": "x"}), "absolute path"),
    ZipCase("path_traversal_after_a_folder", lambda: _package(**{"scripts/./../../../evil.js": "x"}),
            "leaves its folder"),
    ZipCase("symlink_to_a_folder_outside", lambda: make_zip({"imsmanifest.xml": MANIFEST.format(title="t", href="index.html"),
                                                             "index.html": "x"}, symlinks={"up": "../.."}),
            "symbolic link"),
    ZipCase("zip_bomb_by_ratio", lambda: _package(**{"zeros.bin": b"\0" * (2 * MB)}), "zip bomb"),
    ZipCase("too_many_files", lambda: _package(**{f"f{i}.txt": "x" for i in range(25)}), "at most 20 are allowed",
            settings={"EXAM_MAX_FILES": 20}),
    ZipCase("expands_beyond_the_limit", lambda: _package(**{"noise.bin": random.Random(6).randbytes(2 * MB)}),
            "expands to 2 MB; at most 1 MB", settings={"EXAM_MAX_EXPANDED_BYTES": MB}),
    ZipCase("xml_external_entity", lambda: make_zip({
        "imsmanifest.xml": '<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><manifest>&x;'
                           "</manifest>", "index.html": "x"}), "not valid XML"),
    ZipCase("encrypted_entry", _encrypted, "encrypted"),
    ZipCase("corrupt_data_in_launch_file", lambda: _corrupt_data("index.html", compression=zipfile.ZIP_STORED),
            "damaged"),
    ZipCase("corrupt_manifest_crc", lambda: _corrupt_data("imsmanifest.xml", compression=zipfile.ZIP_STORED),
            "damaged"),
    ZipCase("corrupt_manifest_deflate_stream",
            lambda: _corrupt_data("imsmanifest.xml", compression=zipfile.ZIP_DEFLATED), "damaged"),
    ZipCase("unsupported_compression_method", lambda: _compression_method("index.html", 99), "cannot read"),
    ZipCase("file_and_folder_of_the_same_name", lambda: _package(**{"scripts": "x", "scripts/exam.js": "y"}),
            "both as a file and as a folder"),
    ZipCase("folder_and_file_of_the_same_name", lambda: _package(**{"scripts/exam.js": "y", "scripts": "x"}),
            "both as a file and as a folder"),
    ZipCase("entry_name_too_long_for_the_filesystem", lambda: _package(**{"a" * 300 + ".js": "x"}),
            "longer than 255 bytes"),
    ZipCase("duplicate_entry_names", _duplicate_names, "twice"),
]
