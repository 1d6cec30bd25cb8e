"""Which of our objects an imported reference row became.

The import (`manage.py import_reference`, the reference_import app's ImportLink) keeps, for every object it
brings over, a link from the reference's (kind, id) to ours. The old addresses that name a
reference id (`/resource/3/stats`, `/run_attempt/10`) are looked up here. Without the import
app, or for an id that was never imported, the answer is None and the page says so (404).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.apps import apps

# The reference's kinds of rows that old addresses name.
RESOURCE = "resource"
ATTEMPT = "attempt"
CONSUMER = "consumer"
CONTEXT = "context"
USER = "user"
EXAM = "exam"


@dataclass(frozen=True)
class Found:
    """Our object for a reference row: its id, and the activity (resource) it belongs to."""

    pk: object
    resource_id: int | None = None


def _link_model():
    try:
        return apps.get_model("reference_import", "ImportLink")
    except LookupError:  # the import app is not installed
        return None


def find(kind: str, reference_pk: int) -> Found | None:
    """Our object imported from the reference's `kind` row `reference_pk`, or None."""
    model = _link_model()
    if model is None or reference_pk is None:
        return None
    local = model.objects.filter(kind=kind, reference_pk=reference_pk).values_list("local_pk", flat=True).first()
    if local is None:
        return None
    return Found(pk=local, resource_id=_resource_of(kind, local))


def _resource_of(kind: str, local) -> int | None:
    """The activity our object belongs to (for addresses of pages inside an activity)."""
    from attempts.models import Attempt
    from lms.models import Resource

    if kind == RESOURCE:
        return Resource.objects.filter(pk=local).values_list("pk", flat=True).first()
    if kind == ATTEMPT:
        return Attempt._base_manager.filter(pk=local).values_list("resource_id", flat=True).first()
    if kind == EXAM:
        from exams.models import ExamPackage

        return ExamPackage.objects.filter(pk=local).values_list("resource_id", flat=True).first()
    return None
