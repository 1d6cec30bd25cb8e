"""Which of our objects an imported reference row became.

The import (`manage.py import_reference`, the reference_import app) keeps, for every object it
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
ACCESS_CHANGE = "access_change"


@dataclass(frozen=True)
class Found:
    """Our object for a reference row: its id, and the activity (resource) it belongs to."""

    pk: object
    resource_id: int | None = None


def _link_model():
    for label, name in (("reference_import", "ReferenceLink"), ("reference_import", "ImportLink"),
                        ("reference_import", "Link")):
        try:
            return apps.get_model(label, name)
        except LookupError:
            continue
    return None


def find(kind: str, reference_pk: int) -> Found | None:
    """Our object imported from the reference's `kind` row `reference_pk`, or None."""
    model = _link_model()
    if model is None:
        return None
    fields = {f.name for f in model._meta.get_fields()}
    kind_field = next((n for n in ("kind", "reference_kind", "model") if n in fields), None)
    pk_field = next((n for n in ("reference_pk", "reference_id", "ref_pk") if n in fields), None)
    local_field = next((n for n in ("local_pk", "local_id", "object_id", "our_pk") if n in fields), None)
    if not (kind_field and pk_field and local_field):
        return None
    link = model.objects.filter(**{kind_field: kind, pk_field: reference_pk}).first()
    if link is None:
        return None
    local = getattr(link, local_field)
    return Found(pk=local, resource_id=_resource_of(kind, local))


def _resource_of(kind: str, local) -> int | None:
    """The activity our object belongs to (for addresses of pages inside an activity)."""
    from attempts.models import AccessChange, Attempt
    from lms.models import Resource

    if kind == RESOURCE:
        return Resource.objects.filter(pk=local).values_list("pk", flat=True).first()
    if kind == ATTEMPT:
        return Attempt._base_manager.filter(pk=local).values_list("resource_id", flat=True).first()
    if kind == ACCESS_CHANGE:
        return AccessChange.objects.filter(pk=local).values_list("resource_id", flat=True).first()
    if kind == EXAM:
        from exams.models import ExamPackage

        return ExamPackage.objects.filter(pk=local).values_list("resource_id", flat=True).first()
    return None
