"""Database sessions (they survive a Redis outage), written in fewer round trips.

Django's db backend checks each new key with a SELECT before inserting it, and on login
(cycle_key) inserts an empty session at once that the middleware then updates. Here a new
session is inserted once, by the middleware, with its data; the primary key's uniqueness still
catches a key collision (save(must_create=True) raises CreateError and create() draws again).
"""

from django.contrib.sessions.backends.base import VALID_KEY_CHARS
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.utils.crypto import get_random_string


class SessionStore(DatabaseSessionStore):
    def _get_new_session_key(self):
        return get_random_string(32, VALID_KEY_CHARS)

    def cycle_key(self):
        data = self._session
        old_key = self.session_key
        self._session_key = None  # save() creates the new key, with the data, in one INSERT
        self._session_cache = data
        self.modified = True
        if old_key:
            self.delete(old_key)
