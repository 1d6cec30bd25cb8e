from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils.translation import gettext as _

# Close codes in the 4000 range are ours; 4401 mirrors HTTP 401, 4404 HTTP 404.
CLOSE_NOT_AUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


class WhoAmIConsumer(AsyncJsonWebsocketConsumer):
    """Tells an authenticated browser who it is; refuses anyone else. A connectivity check
    for pages, and the pattern every consumer follows: check the user before accepting."""

    async def connect(self):
        user = self.scope.get("user")
        await self.accept()  # accept first so that the browser sees our close code, not a bare 403
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_NOT_AUTHENTICATED)
            return
        await self.send_json({"user": user.get_username(), "name": user.get_full_name()})


class NotFoundConsumer(AsyncJsonWebsocketConsumer):
    """Every websocket address no route matches (an unknown path, an id beyond a bigint): a
    clear refusal instead of Channels' "No route found" error, which fails the handshake with
    a 500 and a traceback in the log."""

    async def connect(self):
        await self.accept()
        await self.send_json({"type": "error", "code": "not_found", "message": _("There is nothing at this address.")})
        await self.close(code=CLOSE_NOT_FOUND)
