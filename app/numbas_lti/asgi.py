"""ASGI entry point for daphne: HTTP goes to Django, websockets to Channels consumers."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "numbas_lti.settings")
django_http = get_asgi_application()  # sets Django up before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from content.server import content_application  # noqa: E402
from core.access_log import AccessLogMiddleware  # noqa: E402

from numbas_lti.routing import websocket_urlpatterns  # noqa: E402

if settings.SERVE_FILES:
    # In production nginx serves /static/; in development and tests daphne does.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_http = ASGIStaticFilesHandler(django_http)

# Long-lived processes holding thousands of websockets: keep the objects created at start-up
# out of every collection, and collect the young generation less often (fewer pauses).
gc.freeze()
gc.set_threshold(*settings.GC_THRESHOLDS)

# daphne's own access log is off (it shows tokens): ours is outermost. Requests addressed to the
# exam-content host never reach Django or Channels (content/server.py).
application = AccessLogMiddleware(content_application(ProtocolTypeRouter(
    {
        "http": django_http,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)))
