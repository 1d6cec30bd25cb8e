from datetime import timedelta

import pytest
from django.utils import timezone

from lms.models import UsedNonce
from lms.services import nonces_purge_expired
from lms.tasks import purge_expired_nonces
from tests.support import lms as test_lms


@pytest.mark.django_db
def test_used_nonce_is_kept_until_its_timestamp_cannot_be_accepted_then_purged(client, consumer, settings):
    data = test_lms.sign(test_lms.launch_params(), key=consumer.key, secret=consumer.secret)
    client.post("/lti/launch/", data)
    nonce = UsedNonce.objects.get()
    tolerance = timedelta(seconds=settings.LTI_TIMESTAMP_TOLERANCE_SECONDS)
    assert nonce.expires_at > timezone.now() + tolerance

    assert nonces_purge_expired() == 0
    assert nonces_purge_expired(now=nonce.expires_at + timedelta(seconds=1)) == 1
    assert UsedNonce.objects.count() == 0


@pytest.mark.django_db
def test_periodic_task_purges(consumer):
    UsedNonce.objects.create(consumer=consumer, nonce="old", expires_at=timezone.now() - timedelta(minutes=1))
    UsedNonce.objects.create(consumer=consumer, nonce="new", expires_at=timezone.now() + timedelta(minutes=5))
    purge_expired_nonces.call_local()
    assert list(UsedNonce.objects.values_list("nonce", flat=True)) == ["new"]
