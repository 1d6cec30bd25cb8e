"""Completion receipts: an e-mail to the student when they complete an attempt, if the
resource asks for it. Sent by Huey through Django's e-mail backend (console in development)."""

from __future__ import annotations

import hashlib
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string

from attempts.models import Attempt
from attempts.selectors import resource_settings, score_visible
from lms.models import LtiIdentity

logger = logging.getLogger(__name__)


def receipt_code(attempt: Attempt) -> str:
    """A short code the student can quote; it identifies the attempt and when it ended."""
    text = f"{attempt.pk}:{attempt.ended_at.isoformat() if attempt.ended_at else ''}:{settings.SECRET_KEY}"
    return hashlib.sha256(text.encode()).hexdigest()[:12].upper()


def _address(attempt: Attempt) -> str:
    if attempt.user.email:
        return attempt.user.email
    identity = LtiIdentity.objects.filter(user_id=attempt.user_id).exclude(email="").first()
    return identity.email if identity else ""


def attempt_receipt_send(*, attempt_id: int) -> bool:
    """Send the receipt for a completed attempt. Returns whether an e-mail was sent."""
    attempt = Attempt.objects.select_related("user", "resource", "exam").filter(pk=attempt_id).first()
    if attempt is None or not attempt.is_ended:
        return False
    settings_ = resource_settings(resource_id=attempt.resource_id)
    if not settings_.email_receipt:
        return False
    address = _address(attempt)
    if not address:
        logger.info("No e-mail address for the receipt of attempt %s", attempt_id)
        return False
    context = {
        "attempt": attempt,
        "name": attempt.user.get_full_name() or "student",
        "title": attempt.resource.title or attempt.exam.title,
        "show_score": score_visible(settings=settings_, attempt=attempt),
        "code": receipt_code(attempt),
        "instance_name": settings.INSTANCE_NAME,
    }
    message = EmailMessage(
        subject=f"Receipt: you completed {context['title']}",
        body=render_to_string("attempts/email/receipt.txt", context),
        to=[address],
    )
    message.send()
    return True
