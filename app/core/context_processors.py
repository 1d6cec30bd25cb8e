from django.conf import settings


def site(request):
    return {"instance_name": settings.INSTANCE_NAME}
