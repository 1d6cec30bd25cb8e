"""Who may open, read and write an attempt over HTTP."""

import json

import pytest

from attempts import services
from attempts.models import ElementChange
from attempts.tests.factories import batch_message, launch, with_exam


@pytest.fixture
def people(consumer):
    student = launch(consumer, user_id="s1")
    with_exam(student.membership.resource, max_attempts=0)
    return {
        "student": student,
        "other_student": launch(consumer, user_id="s2"),
        "instructor": launch(consumer, user_id="t1", roles="Instructor"),
        "other_instructor": launch(consumer, user_id="t2", roles="Instructor", resource_link_id="res-2",
                                   context_id="course-2"),
    }


@pytest.fixture
def attempt(people):
    return services.attempt_start(membership=people["student"].membership)


def post_batch(client, attempt, message):
    return client.post(f"/attempt/{attempt.pk}/batches/", json.dumps(message), content_type="application/json")


@pytest.mark.django_db
def test_attempt_page_modes(people, attempt, client):
    owner = people["student"].get(f"/attempt/{attempt.pk}/")
    assert owner.status_code == 200
    assert owner.context["config"]["mode"] == "normal" and "token" not in owner.context["config"]
    instructor = people["instructor"].get(f"/attempt/{attempt.pk}/")
    assert instructor.status_code == 200 and instructor.context["config"]["mode"] == "review"
    assert people["other_student"].get(f"/attempt/{attempt.pk}/").status_code == 403
    assert people["other_instructor"].get(f"/attempt/{attempt.pk}/").status_code == 403
    assert client.get(f"/attempt/{attempt.pk}/").status_code == 401


@pytest.mark.django_db
def test_state_is_readable_by_owner_and_instructor_only(people, attempt, client):
    expected = {"student": 200, "instructor": 200, "other_student": 403, "other_instructor": 403}
    got = {who: people[who].get(f"/attempt/{attempt.pk}/state/").status_code for who in expected}
    assert got == expected
    assert client.get(f"/attempt/{attempt.pk}/state/").status_code == 401
    state = people["student"].get(f"/attempt/{attempt.pk}/state/").json()
    assert state["entry"] == "ab-initio" and state["mode"] == "normal" and state["next_sequence"] == 1


@pytest.mark.django_db
def test_only_the_owner_writes_over_http(people, attempt, client):
    token = services.attempt_take_over(attempt=attempt)
    message = batch_message(token, [("cmi.location", "1")])
    for who in ("other_student", "instructor", "other_instructor"):
        response = post_batch(people[who], attempt, message)
        assert response.status_code == 403, who
        assert response.json()["error"]["code"] == "forbidden"
    assert post_batch(client, attempt, message).status_code == 401
    assert ElementChange.objects.count() == 0

    response = post_batch(people["student"], attempt, message)
    assert response.status_code == 200 and response.json() == {"ack": message["batch"], "stored": True, "ended": False}
    again = post_batch(people["student"], attempt, message)
    assert again.json()["stored"] is False and ElementChange.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "body, status, code",
    [
        (b"not json", 400, "invalid"),
        (b"[]", 400, "invalid"),
        (json.dumps({"batch": "short", "token": "t", "changes": []}).encode(), 400, "invalid"),
        (json.dumps({"batch": "b" * 20, "token": "t", "changes": [{"seq": 1, "key": "evil", "value": "x"}]}).encode(), 400, "invalid"),
        (json.dumps({"batch": "b" * 20, "token": "t", "changes": [{"seq": "1", "key": "cmi.location", "value": "x"}]}).encode(), 400, "invalid"),
        (json.dumps({"batch": "b" * 20, "token": "t", "changes": [{"seq": 1, "key": "cmi.location", "value": 5}]}).encode(), 400, "invalid"),
        (json.dumps({"batch": "b" * 20, "token": "t", "changes": [{"seq": 1, "key": "cmi.location", "value": "a\u0000"}]}).encode(), 400, "invalid"),
        (json.dumps({"batch": "b" * 20, "token": "t", "changes": [{"seq": i, "key": "cmi.location", "value": ""} for i in range(1001)]}).encode(), 413, "too_large"),
    ],
)
def test_malformed_batches_are_refused_and_write_nothing(people, attempt, body, status, code):
    response = people["student"].post(f"/attempt/{attempt.pk}/batches/", body, content_type="application/json")
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert ElementChange.objects.count() == 0


@pytest.mark.django_db
def test_second_window_takes_over(people, attempt):
    first = people["student"].post(f"/attempt/{attempt.pk}/take-over/").json()["token"]
    second = people["student"].post(f"/attempt/{attempt.pk}/take-over/").json()["token"]
    assert first != second
    refused = post_batch(people["student"], attempt, batch_message(first, [("cmi.location", "1")]))
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "taken_over"
    assert post_batch(people["student"], attempt, batch_message(second, [("cmi.location", "1")])).status_code == 200
