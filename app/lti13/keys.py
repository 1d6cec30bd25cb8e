"""The tool's own RSA keys: made, published, chosen for signing, rotated.

Platforms check what we sign (AGS/NRPS token requests, deep-linking responses) against the
keyset we publish at `lti13:jwks`. A key's `kid` is its RFC 7638 thumbprint.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from jwcrypto.jwk import JWK

from lti13.models import ToolKey

KEY_BITS = 2048
#: How long a rotated-in key is published before it signs (platforms cache keysets for hours).
DEFAULT_PUBLISH_AHEAD = timedelta(hours=24)
#: How long a replaced key stays published after its successor signs (what it signed lives minutes).
DEFAULT_KEEP_AFTER = timedelta(days=2)


def _new_key_material() -> tuple[str, dict]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = JWK.from_pem(pem.encode())
    public = json.loads(jwk.export_public())
    public.update(kid=jwk.thumbprint(), alg="RS256", use="sig")
    return pem, public


def published(*, now: datetime | None = None):
    now = now or timezone.now()
    return ToolKey.objects.filter(Q(retires_at__isnull=True) | Q(retires_at__gt=now))


def jwks(*, now: datetime | None = None) -> dict:
    """The keyset platforms fetch: every key not retired, including one that will sign soon."""
    keys = list(published(now=now).order_by("signs_from", "id").values_list("public_jwk", flat=True))
    return {"keys": keys}


def signing_key(*, now: datetime | None = None) -> ToolKey:
    """The key that signs now: the newest published key whose time has come. The first use
    makes one (nobody can have cached a keyset without it yet)."""
    now = now or timezone.now()
    key = published(now=now).filter(signs_from__lte=now).order_by("-signs_from", "-id").first()
    if key is not None:
        return key
    with transaction.atomic():
        # One first key even when two requests get here at once.
        ToolKey.objects.select_for_update().filter(pk__in=ToolKey.objects.values("pk")[:1]).first()
        key = published(now=now).filter(signs_from__lte=now).order_by("-signs_from", "-id").first()
        return key or _create(now=now, signs_from=now)


def _create(*, now: datetime, signs_from: datetime) -> ToolKey:
    pem, public = _new_key_material()
    return ToolKey.objects.create(kid=public["kid"], private_key_pem=pem, public_jwk=public, created_at=now,
                                  signs_from=signs_from)


@transaction.atomic
def key_rotate(*, publish_ahead: timedelta = DEFAULT_PUBLISH_AHEAD, keep_after: timedelta = DEFAULT_KEEP_AFTER,
               now: datetime | None = None) -> tuple[ToolKey, list[ToolKey]]:
    """Make a new key, published now and signing after `publish_ahead`; the keys it replaces
    stay published until `keep_after` past that. Returns (new key, keys that will retire)."""
    now = now or timezone.now()
    signs_from = now + publish_ahead
    replaced = list(published(now=now).select_for_update().filter(signs_from__lt=signs_from))
    new = _create(now=now, signs_from=signs_from)
    retire_at = signs_from + keep_after
    for key in replaced:
        if key.retires_at is None or key.retires_at > retire_at:
            key.retires_at = retire_at
            key.save(update_fields=["retires_at"])
    return new, replaced
