from channels.generic.websocket import AsyncJsonWebsocketConsumer

# Close codes in the 4000 range are ours; 4401 mirrors HTTP 401.
CLOSE_NOT_AUTHENTICATED = 4401


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
