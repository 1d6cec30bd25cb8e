"""Property-based tests (hypothesis) for the two front doors that take untrusted input: the
LTI launch handler and the attempt-data parser.

The launch handler never answers with a 5xx; a launch without a valid signature writes nothing;
a validly signed launch whose optional parameters are arbitrary text is accepted (302) or refused
with a 4xx. `parse_batch` returns a ParsedBatch or raises ProtocolError for anything at all, and
keeps what a valid batch says."""

import json
import math
import re
from decimal import Decimal
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings
from hypothesis import HealthCheck, assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from attempts.protocol import BATCH_ID, KEY, MAX_SEQUENCE, NUMBER_KEY, ParsedBatch, ProtocolError, parse_batch
from tests.support import lms as test_lms
from tests.support.bad_input import FORM, launch_rows

LAUNCH = "/lti/launch/"
# Examples are not saved between runs, and Hypothesis's caches go to /tmp, not into the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "numbas-lti-hypothesis")
# Each run draws new examples (nothing is saved): over the suite's runs the search goes on.
DB_EXAMPLES = settings(max_examples=40, deadline=None, database=None,
                       suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
PURE_EXAMPLES = settings(max_examples=100, deadline=None, database=None)

# --- the launch handler --------------------------------------------------------------------

text = st.text(max_size=40)  # any Unicode but lone surrogates, which a form body cannot carry
LTI_NAMES = [
    "oauth_consumer_key", "oauth_signature", "oauth_signature_method", "oauth_timestamp", "oauth_nonce",
    "oauth_version", "oauth_callback", "lti_message_type", "lti_version", "resource_link_id", "user_id", "roles",
    "context_id", "lis_outcome_service_url", "launch_presentation_return_url",
]


def now_text() -> str:
    return str(test_lms.now())


# Random parameters, biased towards getting past the early checks (a known consumer key, the
# right signature method, a fresh timestamp), so that the signature check itself is exercised.
unsigned_params = st.builds(
    lambda fields, dropped, extra: {**extra, **{k: v for k, v in fields.items() if k not in dropped}},
    st.fixed_dictionaries({
        "oauth_consumer_key": st.sampled_from(["moodle-key"]) | text,
        "oauth_signature_method": st.sampled_from(["HMAC-SHA1"]) | text,
        "oauth_timestamp": st.builds(now_text) | text,
        "oauth_nonce": st.uuids().map(str) | text,
        "oauth_signature": text,
        "oauth_version": st.just("1.0"),
        "lti_message_type": st.sampled_from(["basic-lti-launch-request"]) | text,
        "lti_version": st.sampled_from(["LTI-1p0"]) | text,
        "resource_link_id": text,
        "user_id": text,
    }),
    st.sets(st.sampled_from(LTI_NAMES), max_size=4),
    st.dictionaries(st.sampled_from(LTI_NAMES) | st.text(min_size=1, max_size=20), text, max_size=8),
)


def post_form(client, params):
    return client.post(LAUNCH, urlencode(params), content_type=FORM)


@pytest.mark.django_db
@DB_EXAMPLES
@given(params=unsigned_params)
def test_a_launch_without_a_valid_signature_is_a_4xx_and_writes_nothing(consumer, params):
    client = Client(raise_request_exception=False)
    before = launch_rows()
    response = post_form(client, params)
    event(f"HTTP {response.status_code}")
    assert 400 <= response.status_code < 500, (params, response.status_code, response.content[:300])
    assert b"data-error-code=" in response.content
    assert launch_rows() == before


@pytest.mark.django_db
@DB_EXAMPLES
@given(name=st.sampled_from([*LTI_NAMES, "realm", "lis_person_name_full", "custom_grade"]) | st.text(min_size=1,
                                                                                                      max_size=20),
       value=text)
def test_a_signed_launch_with_one_parameter_changed_or_added_is_a_4xx_and_writes_nothing(consumer, name, value):
    params = test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret)
    assume(params.get(name) != value)
    client = Client(raise_request_exception=False)
    before = launch_rows()
    response = post_form(client, {**params, name: value})
    event(f"HTTP {response.status_code}")
    assert 400 <= response.status_code < 500, (name, value, response.status_code, response.content[:300])
    assert launch_rows() == before


roles = st.sampled_from(["Learner", "Instructor", "urn:lti:role:ims/lis/TeachingAssistant", ""]) | text
urlish = st.sampled_from(["https://lms.example.ac.uk/x", "javascript:alert(1)", "ftp://x", "http://[::1", ""]) | text
optional_params = st.fixed_dictionaries({}, optional={
    name: text for name in (
        "resource_link_title", "resource_link_description", "context_title", "context_label", "lis_person_name_full",
        "lis_person_name_given", "lis_person_name_family", "lis_result_sourcedid", "launch_presentation_locale",
        "tool_consumer_instance_guid", "tool_consumer_info_product_family_code",
    )
} | {
    "roles": roles,
    "lis_person_contact_email_primary": st.emails() | text,
    "lis_outcome_service_url": urlish,
    "launch_presentation_return_url": urlish,
    "context_id": st.none() | text.filter(lambda value: value.strip()),
})
custom_params = st.dictionaries(st.from_regex(r"(custom|ext)_[a-z0-9_]{1,20}", fullmatch=True), text, max_size=4)


@pytest.mark.django_db
@DB_EXAMPLES
@given(optional=optional_params, custom=custom_params)
def test_a_signed_launch_with_arbitrary_optional_parameters_is_a_302_or_a_4xx(consumer, optional, custom):
    params = test_lms.sign(test_lms.launch_params(**optional, **custom), key=consumer.key, secret=consumer.secret)
    client = Client(raise_request_exception=False)
    before = launch_rows()
    response = post_form(client, params)
    event(f"HTTP {response.status_code}")
    assert response.status_code == 302 or 400 <= response.status_code < 500, (
        params, response.status_code, response.content[:300])
    if response.status_code != 302:
        assert b"data-error-code=" in response.content
        assert launch_rows() == before


# --- the attempt-data parser ---------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
batch_ids = st.from_regex(BATCH_ID, fullmatch=True)
# the values of score elements are checked as numbers (test_a_score_is_accepted_only_if_…, below)
keys = st.from_regex(KEY, fullmatch=True).filter(lambda key: not NUMBER_KEY.fullmatch(key))
values = st.text(max_size=30).filter(lambda value: "\x00" not in value)
sequences = st.integers(0, MAX_SEQUENCE - 1)
client_ms = st.none() | st.integers(0, 10**14 - 1) | st.floats(0, 10**14, exclude_max=True)
valid_changes = st.fixed_dictionaries({"seq": sequences, "key": keys, "value": values}, optional={"t": client_ms})


def valid_batches(min_changes=0):
    return st.fixed_dictionaries(
        {"batch": batch_ids, "token": st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True),
         "changes": st.lists(valid_changes, min_size=min_changes, max_size=8)},
        optional={"type": st.just("batch"), "terminate": st.booleans()},
    )


def good_or_any(good):
    return st.one_of(good, json_values)


# Batch-shaped messages whose every field may be right or anything at all.
mixed_changes = st.fixed_dictionaries({}, optional={
    "seq": good_or_any(sequences | st.integers()), "key": good_or_any(keys), "value": good_or_any(values),
    "t": good_or_any(client_ms),
})
mixed_batches = st.fixed_dictionaries({}, optional={
    "type": good_or_any(st.just("batch")), "batch": good_or_any(batch_ids), "token": good_or_any(st.text(max_size=70)),
    "changes": good_or_any(st.lists(st.one_of(mixed_changes, json_values), max_size=6)),
    "terminate": good_or_any(st.booleans()),
})


def parse_or_refuse(message):
    """parse_batch's contract: a ParsedBatch, or ProtocolError with a code and a message."""
    try:
        parsed = parse_batch(message)
    except ProtocolError as error:
        assert error.code in ("invalid", "too_large")
        assert isinstance(error.message, str) and len(error.message) > 10
        assert error.batch_id is None or isinstance(error.batch_id, str)
        return None
    assert isinstance(parsed, ParsedBatch)
    return parsed


@PURE_EXAMPLES
@given(message=json_values)
def test_parse_batch_of_any_json_value_parses_or_raises_protocol_error(message):
    parse_or_refuse(message)


@PURE_EXAMPLES
@given(message=mixed_batches)
def test_parse_batch_of_any_batch_shaped_object_parses_or_raises_protocol_error(message):
    parsed = parse_or_refuse(message)
    event("parsed" if parsed else "refused")


@PURE_EXAMPLES
@given(raw=st.text() | st.text(alphabet="[]{}\",:0123456789.eE+-truefalsnul \\", max_size=60))
def test_parse_batch_of_any_string_raises_protocol_error_and_so_does_its_json(raw):
    with pytest.raises(ProtocolError):
        parse_batch(raw)
    # what the HTTP view does with a body: json.loads, whose ValueError it answers as invalid JSON
    try:
        message = json.loads(raw)
    except ValueError:
        return
    parse_or_refuse(message)


def as_tuples(parsed: ParsedBatch):
    return [(c.sequence, c.key, c.value, c.client_ms) for c in parsed.changes]


@PURE_EXAMPLES
@given(message=valid_batches())
def test_a_valid_batch_round_trips_its_ids_keys_values_and_sequences(message):
    parsed = parse_batch(message)
    assert (parsed.batch_id, parsed.token, parsed.terminate) == (
        message["batch"], message["token"], message.get("terminate", False))
    assert as_tuples(parsed) == [(c["seq"], c["key"], c["value"], c.get("t")) for c in message["changes"]]
    for change in parsed.changes:
        if change.client_ms is not None:
            assert change.client_time.timestamp() == pytest.approx(change.client_ms / 1000, abs=1e-3)
    # the same batch as JSON text (what the browser sends) parses the same, with the same hash
    assert parse_batch(json.loads(json.dumps(message))) == parsed


@PURE_EXAMPLES
@given(message=valid_batches(min_changes=1), other_value=values)
def test_the_content_hash_changes_with_the_content_and_only_with_it(message, other_value):
    parsed = parse_batch(message)
    same = parse_batch({**message, "batch": "another-id-" + message["batch"][:40], "token": "another-window",
                        "changes": [{**c, "t": None} for c in message["changes"]]})
    assert same.content_hash == parsed.content_hash  # ids, tokens and client clocks are not content
    changed = [dict(message["changes"][0], value=other_value), *message["changes"][1:]]
    reparsed = parse_batch({**message, "changes": changed})
    assert (reparsed.content_hash == parsed.content_hash) == (other_value == message["changes"][0]["value"])


LIMITS = {"ATTEMPT_MAX_BATCH_CHANGES": 5, "ATTEMPT_MAX_VALUE_CHARS": 20, "ATTEMPT_MAX_BATCH_CHARS": 50}


@PURE_EXAMPLES
@given(message=st.fixed_dictionaries({
    "batch": batch_ids, "token": st.just("t"),
    "changes": st.lists(valid_changes.map(lambda c: {**c, "value": c["value"] * 3}), max_size=8),
}))
def test_the_size_limits_are_exactly_the_documented_ones(message):
    with override_settings(**LIMITS):
        try:
            parse_batch(message)
            outcome = "parsed"
        except ProtocolError as error:
            outcome = error.code
    changes = message["changes"]
    if len(changes) > LIMITS["ATTEMPT_MAX_BATCH_CHANGES"]:
        assert outcome == "too_large"
    elif any(len(c["value"]) > LIMITS["ATTEMPT_MAX_VALUE_CHARS"] for c in changes):
        assert outcome == "invalid"
    elif sum(len(c["value"]) for c in changes) > LIMITS["ATTEMPT_MAX_BATCH_CHARS"]:
        assert outcome == "too_large"
    else:
        assert outcome == "parsed"


@PURE_EXAMPLES
@example(message={"batch": "abcdefgh\n", "token": "tok", "changes": []})
@example(message={"batch": "abcdefgh", "token": "tok\n", "changes": []})
@example(message={"batch": "abcdefgh", "token": "tok", "changes": [{"seq": 1, "key": "cmi.location\n", "value": ""}]})
@given(message=mixed_batches)
def test_parse_batch_accepts_only_the_documented_alphabets(message):
    parsed = parse_or_refuse(message)
    if parsed is not None:
        assert re.fullmatch(r"[A-Za-z0-9_-]{8,64}", parsed.batch_id), parsed.batch_id
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", parsed.token), parsed.token
        for change in parsed.changes:
            assert re.fullmatch(r"(cmi|adl|numbas)\.[A-Za-z0-9_.{}=:-]{1,240}", change.key), change.key
            assert "\x00" not in change.value
            assert 0 <= change.sequence < MAX_SEQUENCE
            assert change.client_ms is None or (0 <= change.client_ms < 10**14 and not math.isnan(change.client_ms))


number_keys = st.sampled_from(["cmi.score.raw", "cmi.score.scaled", "cmi.score.min", "cmi.objectives.12.score.max",
                               "cmi.interactions.3.result", "cmi.interactions.0.weighting"])
number_texts = (st.floats().map(repr) | st.decimals().map(str) | st.integers().map(str) | values
                | st.from_regex(r"\s?[-+]?[0-9]{0,40}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,4})?\s?", fullmatch=True))


@PURE_EXAMPLES
@example(key="cmi.score.raw", value="1e-400")
@example(key="cmi.score.raw", value="0e-400")
@given(key=number_keys, value=number_texts)
def test_a_score_is_accepted_only_if_postgresql_and_arithmetic_can_use_it(key, value):
    message = {"batch": "abcdefgh", "token": "t", "changes": [{"seq": 1, "key": key, "value": value}]}
    try:
        parse_batch(message)
        accepted = True
    except ProtocolError as error:
        assert error.code == "invalid" and key in error.message
        accepted = False
    try:
        number = float(value)
    except ValueError:
        assert accepted, "text that is no number is kept as text"
        return
    event("accepted" if accepted else "refused")
    if accepted:
        assert math.isfinite(number) and abs(number) <= 1e15
        assert number != 0 or Decimal(value.strip()) == 0, "a number PostgreSQL would refuse as too small"
    else:
        assert not math.isfinite(number) or abs(number) >= 1e15 or abs(number) <= 1e-300, value
