from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from lms.models import Consumer


def run(*args) -> str:
    out = StringIO()
    call_command("create_lti_consumer", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_with_secret_then_same_key_updates_the_secret():
    out = run("--key", "moodle", "--secret", "s1", "--name", "University Moodle")
    assert "Created" in out and "s1" not in out
    out = run("--key", "moodle", "--secret", "s2")
    assert "Updated" in out
    consumer = Consumer.objects.get()
    assert (consumer.key, consumer.secret, consumer.name) == ("moodle", "s2", "University Moodle")


@pytest.mark.django_db
def test_without_secret_generates_one_and_prints_it_once():
    out = run("--key", "canvas")
    consumer = Consumer.objects.get(key="canvas")
    assert len(consumer.secret) >= 32
    assert out.count(consumer.secret) == 1
    assert consumer.name == "canvas"
    # running again rotates the secret, still one consumer
    out2 = run("--key", "canvas")
    assert Consumer.objects.count() == 1
    rotated = Consumer.objects.get(key="canvas").secret
    assert rotated != consumer.secret and rotated in out2


@pytest.mark.django_db
def test_empty_key_is_refused():
    with pytest.raises(CommandError, match="must not be empty"):
        run("--key", "  ")
    assert Consumer.objects.count() == 0
