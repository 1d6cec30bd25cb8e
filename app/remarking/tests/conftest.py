import pytest


@pytest.fixture
def teacher_of(consumer):
    """An instructor of the resource (launched, so with a membership there)."""
    from attempts.tests.factories import launch

    def make(resource, user_id="teacher"):
        client = launch(consumer, user_id=user_id, resource_link_id=resource.resource_link_id, roles="Instructor",
                        context_id=resource.context.context_id)
        return client.membership.user

    return make
