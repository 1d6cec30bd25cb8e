"""The tool's keys: published at the JWKS URL, one signs, rotation publishes before signing
and keeps the old key until it retires."""

from datetime import timedelta

import jwt
import pytest
from django.core.management import call_command
from django.utils import timezone
from jwcrypto.jwk import JWK

from lti13 import keys
from lti13.models import ToolKey

pytestmark = pytest.mark.django_db


def _verifies(token: str, jwks: dict) -> bool:
    kid = jwt.get_unverified_header(token)["kid"]
    for jwk in jwks["keys"]:
        if jwk["kid"] == kid:
            public = JWK(**jwk).export_to_pem()
            jwt.decode(token, public, algorithms=["RS256"])
            return True
    return False


def test_first_use_makes_one_key_that_the_jwks_publishes(client):
    assert client.get("/lti13/jwks/").json() == {"keys": []}
    key = keys.signing_key()
    assert keys.signing_key() == key and ToolKey.objects.count() == 1
    published = client.get("/lti13/jwks/")
    assert published["Content-Type"] == "application/json"
    [jwk] = published.json()["keys"]
    assert jwk["kid"] == key.kid and jwk["alg"] == "RS256" and jwk["use"] == "sig" and jwk["kty"] == "RSA"
    assert "d" not in jwk and "p" not in jwk  # public parts only
    token = jwt.encode({"hello": "platform"}, key.private_key_pem, algorithm="RS256", headers={"kid": key.kid})
    assert _verifies(token, published.json())


def test_rotation_publishes_the_new_key_before_it_signs_and_keeps_the_old_one_until_it_retires():
    now = timezone.now()
    old = keys.signing_key(now=now)
    new, replaced = keys.key_rotate(publish_ahead=timedelta(hours=24), keep_after=timedelta(hours=48), now=now)
    assert replaced == [old]
    # published at once, but the old key still signs: platforms caching our keyset catch up first
    assert {k["kid"] for k in keys.jwks(now=now)["keys"]} == {old.kid, new.kid}
    assert keys.signing_key(now=now + timedelta(hours=23)).kid == old.kid
    # from its time on the new key signs, and what the old one signed still verifies
    later = now + timedelta(hours=25)
    assert keys.signing_key(now=later).kid == new.kid
    assert {k["kid"] for k in keys.jwks(now=later)["keys"]} == {old.kid, new.kid}
    # until the old key retires
    gone = now + timedelta(hours=24 + 48, minutes=1)
    assert [k["kid"] for k in keys.jwks(now=gone)["keys"]] == [new.kid]
    assert keys.signing_key(now=gone).kid == new.kid


def test_the_rotate_command_says_when_each_key_changes(capsys):
    old = keys.signing_key()
    call_command("lti13_rotate_key", "--publish-ahead", "1", "--keep-after", "2")
    out = capsys.readouterr().out
    new = ToolKey.objects.exclude(pk=old.pk).get()
    assert f"New key {new.kid}" in out and f"Key {old.kid} retires at" in out
    old.refresh_from_db()
    assert timedelta(hours=2.9) < old.retires_at - timezone.now() < timedelta(hours=3.1)
    assert keys.signing_key().kid == old.kid  # not yet: published an hour ahead
