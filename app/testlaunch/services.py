import io
import secrets

from django.conf import settings
from django.db import transaction

from attempts.models import ResourceSettings
from exams.demo import demo_exam_zip
from exams.models import ExamPackage
from exams.services import exam_package_upload
from lms.models import Consumer, Context, Resource

DEMO_CONTEXT_ID = "demo-course"
DEMO_RESOURCE_LINK_ID = "demo-exam"


@transaction.atomic
def demo_data_ensure(*, secret: str | None = None) -> Resource:
    """The demo consumer (key settings.DEMO_CONSUMER_KEY), a demo course and a demo resource
    with the project's own test exam and unlimited attempts."""
    consumer, created = Consumer.objects.get_or_create(
        key=settings.DEMO_CONSUMER_KEY,
        defaults={"name": "Demo LMS (test launches)", "secret": secret or secrets.token_urlsafe(32)},
    )
    if secret and not created and consumer.secret != secret:
        consumer.secret = secret
        consumer.save(update_fields=["secret", "updated_at"])
    context, _ = Context.objects.get_or_create(
        consumer=consumer, context_id=DEMO_CONTEXT_ID, defaults={"title": "Demo course", "label": "DEMO101"}
    )
    resource, _ = Resource.objects.get_or_create(
        consumer=consumer,
        resource_link_id=DEMO_RESOURCE_LINK_ID,
        defaults={"title": "Demo exam", "context": context},
    )
    if not ExamPackage.objects.filter(resource=resource).exists():
        data = demo_exam_zip()
        exam_package_upload(resource=resource, upload=io.BytesIO(data), size=len(data), filename="demo-exam.zip")
    ResourceSettings.objects.get_or_create(resource=resource, defaults={"max_attempts": 0})
    return resource
