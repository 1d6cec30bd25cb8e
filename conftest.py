import pytest

from lms.services import consumer_create_or_update


@pytest.fixture
def consumer(db):
    consumer, _, _ = consumer_create_or_update(key="moodle-key", secret="moodle-secret", name="University Moodle")
    return consumer
