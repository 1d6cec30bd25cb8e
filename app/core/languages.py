"""Which language a page is shown in.

In order, the first that names one of settings.LANGUAGES wins:

1. the person's own choice, made with the language switch (kept in their session, and in a
   cookie for the rest of the browser session);
2. the language of their latest LTI launch (1.1 `launch_presentation_locale`; 1.3 the
   launch_presentation claim's `locale`, else the top-level `locale` claim), kept in the session.
   A new launch with another locale switches to it — unless the person chose a language
   themselves in this session: their choice stays until they choose again;
3. the browser's Accept-Language header;
4. settings.LANGUAGE_CODE (British English).

LMSs send locales in many spellings ("de-DE", "de_DE", "DE", "es-419", "en-US"): each is
matched to the closest language we have, or ignored.

Inside an LMS's iframe a browser may drop our cookies; the session (which a launch in a new
window carries, see lms.views.handoff) holds the language then. Django 4+ no longer reads the
language from the session itself, so `SessionLanguageMiddleware` (after LocaleMiddleware)
activates it for every request.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import translation

#: The language a person chose with the switch (session).
CHOSEN_KEY = "numbas_language_chosen"
#: The language their latest launch asked for (session).
LAUNCH_KEY = "numbas_language_launch"


def supported(value: str | None) -> str | None:
    """The code in settings.LANGUAGES closest to a locale as LMSs and browsers write it, or None."""
    value = (value or "").strip().replace("_", "-").lower()
    if not value or len(value) > 35:
        return None
    try:
        return translation.get_supported_language_variant(value)
    except LookupError:
        return None


def choices() -> list[tuple[str, str]]:
    """(code, name) of each language, named in itself (settings.LANGUAGES)."""
    return [(code, str(name)) for code, name in settings.LANGUAGES]


def request_language(request) -> str:
    """The language for this request (the order in the module's docstring)."""
    chosen = _session_choice(getattr(request, "session", None))
    if chosen:
        return chosen
    # The language cookie (a choice made in an earlier session of this browser), then
    # Accept-Language, then LANGUAGE_CODE: what LocaleMiddleware decided.
    return supported(translation.get_language_from_request(request)) or settings.LANGUAGE_CODE


def session_language(session) -> str:
    """The language for a websocket or task that has the person's session but no request: their
    choice, else their latest launch's, else settings.LANGUAGE_CODE. Reads the session (may
    query the database: call it from a thread in async code)."""
    return _session_choice(session) or settings.LANGUAGE_CODE


def _session_choice(session) -> str | None:
    """The person's own choice, else their latest launch's language, from their session."""
    if session is not None:
        for key in (CHOSEN_KEY, LAUNCH_KEY):
            code = supported(session.get(key))
            if code:
                return code
    return None


def launch_language_remember(request, locale: str | None) -> None:
    """After a launch has signed the person in: the LMS's locale becomes the session's language
    (unless they chose one themselves, or the LMS sent none we have)."""
    code = supported(locale)
    if code is None:
        return
    request.session[LAUNCH_KEY] = code
    if not request.session.get(CHOSEN_KEY):
        translation.activate(code)
        request.LANGUAGE_CODE = code


def launch_language_activate(request, locale: str | None) -> None:
    """For the answer to a launch itself (a refused launch's page, the deep linking picker): the
    LMS's locale, unless the person chose a language in this session. Nothing is stored."""
    code = supported(locale)
    session = getattr(request, "session", None)
    if code is None or (session is not None and session.get(CHOSEN_KEY)):
        return
    translation.activate(code)
    request.LANGUAGE_CODE = code


def launch_locale_of(user) -> str:
    """The locale the LMS last sent for a person (kept on their LTI identity), or ""."""
    identity = getattr(user, "lti_identity", None)
    return getattr(identity, "locale", "") or ""


def language_choose(request, code: str) -> str | None:
    """The person chose a language with the switch: keep it in their session. None when the
    code is not one of ours."""
    if code not in dict(settings.LANGUAGES):
        return None
    request.session[CHOSEN_KEY] = code
    translation.activate(code)
    request.LANGUAGE_CODE = code
    return code


class SessionLanguageMiddleware:
    """After django.middleware.locale.LocaleMiddleware: activate `request_language` (which
    adds the session's choice and launch language to what LocaleMiddleware read from the cookie
    and Accept-Language)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        code = request_language(request)
        translation.activate(code)
        request.LANGUAGE_CODE = code
        return self.get_response(request)
