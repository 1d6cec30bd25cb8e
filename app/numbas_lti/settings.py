"""Django settings, read from the environment (django-environ).

Every setting an operator may change is an environment variable; README.md lists them.
Without any variables set and with DEBUG=1 the project runs on the embedded default:
SQLite under var/, in-memory channel layer, local-memory cache and a SQLite Huey queue.
"""

import ipaddress
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

APP_DIR = Path(__file__).resolve().parent.parent  # app/
REPO_DIR = APP_DIR.parent
env = environ.Env()
environ.Env.read_env(REPO_DIR / ".env")  # optional, never committed
VAR_DIR = Path(env.str("VAR_DIR", default=str(REPO_DIR / "var")))

DEBUG = env.bool("DEBUG", default=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string "
            "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
            "or set DEBUG=1 for local development."
        )
    SECRET_KEY = "dev-only-insecure-secret-key-do-not-use-in-production"

# In DEBUG the application answers on 127.0.0.1 and [::1]; "localhost" is the exam-content host.
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "huey.contrib.djhuey",
    "axes",
    "core",
    "content",
    "lms",
    "lti13",
    "portal",
    "exams",
    "attempts",
    "grading",
    "reports",
    "dashboard",
    "insights",
    "remarking",
    "staff",
    "backups",
    "testlaunch",
    "reference_import",
    "compat",  # the addresses of numbas-lti-provider (after moving from it)
    "people",
]

MIDDLEWARE = [
    "core.middleware.FrameAncestorsMiddleware",  # first: it sees every response (see its docstring)
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the cookie, Accept-Language; then the session's choice or launch (core.languages).
    "django.middleware.locale.LocaleMiddleware",
    "core.languages.SessionLanguageMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "people.middleware.ViewerTimeZoneMiddleware",  # times in the viewer's zone (after sessions and auth)
    "django.contrib.messages.middleware.MessageMiddleware",
    "core.middleware.BrandedMethodNotAllowedMiddleware",  # a form's address opened or reloaded: the 405 page
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into the lockout page
]

ROOT_URLCONF = "numbas_lti.urls"
ASGI_APPLICATION = "numbas_lti.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",  # LANGUAGE_CODE (<html lang>), LANGUAGES
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context_processors.site",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
SQLITE_OPTIONS = {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default (scripts/dev) has two writers, daphne and the Huey worker. A
    # transaction that reads and then writes while the other one writes gets "database is
    # locked" at once, whatever the timeout (SQLite will not upgrade its read lock then): an
    # IMMEDIATE transaction takes the write lock first and waits for it instead. WAL lets
    # readers go on while someone writes.
    DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    if env.bool("DB_POOL", default=True):
        # Under ASGI every request runs its sync code in a fresh thread, so Django's own
        # persistent connections are never reused: each request would open a new PostgreSQL
        # connection (~4 ms here). A process-wide pool (SQLAlchemy's QueuePool) reuses them.
        DATABASES["default"]["ENGINE"] = "dj_db_conn_pool.backends.postgresql"
        DATABASES["default"]["POOL_OPTIONS"] = {
            "POOL_SIZE": env.int("DB_POOL_SIZE", default=10),
            "MAX_OVERFLOW": env.int("DB_POOL_MAX_OVERFLOW", default=20),
            "RECYCLE": 3600,
            "PRE_PING": True,
        }
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"].startswith("dj_db_conn_pool") and DATABASES["default"]["CONN_MAX_AGE"]:
    # Django must hand each connection back to the pool at the end of a request; with
    # CONN_MAX_AGE it keeps them in threads that ASGI throws away, and the pool runs dry.
    raise ImproperlyConfigured("DB_CONN_MAX_AGE must be 0 while DB_POOL is on (the pool keeps connections).")
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, channel layer, task queue -------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nlti",
        }
    }
    # What every process must see (the worker's heartbeat, staff.services): Redis is shared already.
    CACHES["shared"] = dict(CACHES["default"])
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "core.channel_layers.ResilientRedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": "nlti:channels"},
        }
    }
    HUEY = {
        "huey_class": "huey.RedisHuey",
        "name": "numbas_lti",
        "url": REDIS_URL,
        "immediate": False,
        "consumer": {"workers": env.int("HUEY_WORKERS", default=2), "worker_type": "thread"},
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        # What every process must see (the worker's heartbeat, staff.services): daphne and the
        # Huey worker of scripts/dev are two processes, so a file cache under VAR_DIR.
        "shared": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                   "LOCATION": str(VAR_DIR / "shared-cache")},
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    HUEY = {
        "huey_class": "huey.SqliteHuey",
        "name": "numbas_lti",
        "filename": str(VAR_DIR / "huey.sqlite3"),
        # HUEY_IMMEDIATE=1 runs tasks in-process at once (tests); otherwise scripts/dev runs
        # a consumer (manage.py run_huey) beside daphne.
        "immediate": env.bool("HUEY_IMMEDIATE", default=False),
        "consumer": {"workers": 1, "worker_type": "thread"},
    }

# --- Sessions and cookies inside an LMS iframe ----------------------------------------
# Production is served over HTTPS, and the LMS embeds us cross-site: cookies must be
# SameSite=None; Secure or the browser drops them in the iframe. Plain-HTTP development
# cannot use Secure cookies, so it falls back to Lax (launches there are top-level).
COOKIES_SECURE = env.bool("COOKIES_SECURE", default=not DEBUG)
SESSION_COOKIE_SECURE = COOKIES_SECURE
CSRF_COOKIE_SECURE = COOKIES_SECURE
SESSION_COOKIE_SAMESITE = "None" if COOKIES_SECURE else "Lax"
CSRF_COOKIE_SAMESITE = "None" if COOKIES_SECURE else "Lax"
# The __Host- prefix (Secure, Path=/, no Domain) stops a sibling host name — such as the
# exam-content origin, where uploaded exams run — from planting cookies of these names for us.
SESSION_COOKIE_NAME = "__Host-sessionid" if COOKIES_SECURE else "sessionid"
CSRF_COOKIE_NAME = "__Host-csrftoken" if COOKIES_SECURE else "csrftoken"
SESSION_ENGINE = "core.sessions"
SESSION_COOKIE_HTTPONLY = True
# The language a person chose with the switch, for the rest of the browser session (core.languages);
# inside an LMS's iframe the session carries it too, where a browser drops this cookie.
LANGUAGE_COOKIE_NAME = "__Host-language" if COOKIES_SECURE else "language"
LANGUAGE_COOKIE_SECURE = COOKIES_SECURE
LANGUAGE_COOKIE_SAMESITE = SESSION_COOKIE_SAMESITE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_AGE = None
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 3600)

# Behind nginx (or any TLS-terminating proxy) that sets X-Forwarded-Proto. Only enable
# when the proxy overwrites the header, otherwise clients could claim HTTPS.
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)

# Which sites may embed our pages (CSP frame-ancestors). LMS hosts vary per customer;
# the default allows any HTTPS site. Set e.g. "https://moodle.example.ac.uk".
FRAME_ANCESTORS = env.str("FRAME_ANCESTORS", default="'self' https:")
X_FRAME_OPTIONS = "SAMEORIGIN"  # used only by the admin's own framing decorators

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# --- LTI ------------------------------------------------------------------------------
# A launch whose oauth_timestamp is further than this from our clock is refused.
LTI_TIMESTAMP_TOLERANCE_SECONDS = env.int("LTI_TIMESTAMP_TOLERANCE_SECONDS", default=300)
# How long a "continue in a new window" link from a launch stays valid.
LTI_HANDOFF_MAX_AGE_SECONDS = env.int("LTI_HANDOFF_MAX_AGE_SECONDS", default=15 * 60)
INSTANCE_NAME = env.str("INSTANCE_NAME", default="Numbas LTI Provider")
# The local test-launch page (a demo LMS) signs launches into any resource: on with DEBUG (for
# everyone), otherwise off (404) unless an operator turns it on (then for staff only).
TEST_LAUNCH_ENABLED = env.bool("TEST_LAUNCH_ENABLED", default=DEBUG)
DEMO_CONSUMER_KEY = env.str("DEMO_CONSUMER_KEY", default="demo")

# --- E-mail ---------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="consolemail://" if DEBUG else "smtp://localhost:25"
)
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="numbas-lti@localhost")
SERVER_EMAIL = env.str("SERVER_EMAIL", default=DEFAULT_FROM_EMAIL)
ADMINS = [("Admin", a) for a in env.list("ADMIN_EMAILS", default=[])]

# --- Static and media -----------------------------------------------------------------
STATIC_URL = "/static/"
# content/ holds what the exam-content origin serves besides exams: the exam runtime, scorm-again
# and MathJax (npm packages, see package.json and content/assets.py).
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "content.assets.ContentAssetsFinder",
]
STATIC_ROOT = env.str("STATIC_ROOT", default=str(VAR_DIR / "static"))
# STATIC_MANIFEST=1 (production, after collectstatic): file names carry a hash of their
# contents, so nginx can cache them for a year and a deploy still reaches every browser.
if env.bool("STATIC_MANIFEST", default=False):
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "content.storage.AppManifestStaticFilesStorage"},
    }
MEDIA_URL = "/media/"
# Serve /static/ and the exam-content origin from daphne (development, tests). In production nginx does.
SERVE_FILES = env.bool("SERVE_FILES", default=DEBUG)
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))

# --- The exam-content origin --------------------------------------------------------------
# Uploaded exams (any HTML and JavaScript) run only there: another host name than the
# application's, which never receives its cookies and answers no application URL (content/).
EXAM_ORIGIN = env.str("EXAM_ORIGIN", default="http://localhost:8000" if DEBUG else "")
if not EXAM_ORIGIN:
    raise ImproperlyConfigured(
        "EXAM_ORIGIN is not set. Set it to the origin that serves exam files, a host name of its own "
        "(e.g. https://exams.numbas.example.ac.uk; see README.md, 'Where exams run')."
    )
from content.origin import check_exam_origin  # noqa: E402 (plain Python, no models)

EXAM_ORIGIN = check_exam_origin(EXAM_ORIGIN, allowed_hosts=ALLOWED_HOSTS)
# "local": MathJax from the content origin (exam halls without internet; no third party sees
# students). "cdn": the content origin redirects to MathJax's public CDNs.
EXAM_MATHJAX = env.str("EXAM_MATHJAX", default="local")
if EXAM_MATHJAX not in ("local", "cdn"):
    raise ImproperlyConfigured(f"EXAM_MATHJAX must be local or cdn, not {EXAM_MATHJAX!r}.")
# Other origins exams may load from (e.g. an applet's site), space- or comma-separated.
EXAM_CONTENT_SOURCES = [check_exam_origin(source, allowed_hosts=ALLOWED_HOSTS)
                        for source in env.str("EXAM_CONTENT_SOURCES", default="").replace(",", " ").split()]
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=10 * 1024 * 1024)

# --- Exam packages (limits checked before anything is stored) -------------------------
EXAM_MAX_UPLOAD_BYTES = env.int("EXAM_MAX_UPLOAD_BYTES", default=100 * 1024 * 1024)  # nginx client_max_body_size too
EXAM_MAX_FILES = env.int("EXAM_MAX_FILES", default=5000)
EXAM_MAX_EXPANDED_BYTES = env.int("EXAM_MAX_EXPANDED_BYTES", default=500 * 1024 * 1024)
EXAM_MAX_COMPRESSION_RATIO = env.int("EXAM_MAX_COMPRESSION_RATIO", default=100)

# --- Attempt data (batches from the attempt page) ---------------------------------------
GC_THRESHOLDS = tuple(env.list("GC_THRESHOLDS", cast=int, default=[50000, 20, 100]))
ATTEMPT_DB_THREADS = env.int("ATTEMPT_DB_THREADS", default=6)  # per daphne process
LIVE_INTERVAL_SECONDS = env.float("LIVE_INTERVAL_SECONDS", default=5.0)  # the live view's recount
ATTEMPT_MAX_BATCH_CHANGES = env.int("ATTEMPT_MAX_BATCH_CHANGES", default=1000)
ATTEMPT_MAX_VALUE_CHARS = env.int("ATTEMPT_MAX_VALUE_CHARS", default=4 * 1024 * 1024)
ATTEMPT_MAX_BATCH_CHARS = env.int("ATTEMPT_MAX_BATCH_CHARS", default=8 * 1024 * 1024)
# After the exam's time limit (plus any extra minutes), answers are still stored for this long,
# so that the exam can save what it has when it ends itself.
ATTEMPT_TIME_LIMIT_GRACE_SECONDS = env.int("ATTEMPT_TIME_LIMIT_GRACE_SECONDS", default=60)

# --- Backups (made off the server by the backup container; README.md, "Backups") --------
# Whether this installation is expected to have backups: the staff dashboard then reports
# missing or old ones as problems. Off by default (development); the Pulumi deploy sets it.
BACKUPS_EXPECTED = env.bool("BACKUPS_EXPECTED", default=False)
BACKUP_DB_MAX_AGE_HOURS = env.float("BACKUP_DB_MAX_AGE_HOURS", default=26)  # full or differential: daily
BACKUP_FULL_MAX_AGE_DAYS = env.float("BACKUP_FULL_MAX_AGE_DAYS", default=8)  # full: weekly
BACKUP_WAL_MAX_AGE_MINUTES = env.float("BACKUP_WAL_MAX_AGE_MINUTES", default=15)  # while data changes
BACKUP_FILES_MAX_AGE_HOURS = env.float("BACKUP_FILES_MAX_AGE_HOURS", default=26)  # hourly
BACKUP_VERIFY_MAX_AGE_DAYS = env.float("BACKUP_VERIFY_MAX_AGE_DAYS", default=8)  # weekly

# --- Auth -----------------------------------------------------------------------------
LOGIN_URL = "admin:login"
# Password logins (the admin's) are throttled by django-axes: after LOGIN_FAILURE_LIMIT failures
# for one user name from one address, that pair is locked out for LOGIN_COOLOFF_MINUTES (every
# further try starts the wait again). The address is REMOTE_ADDR (core.login_throttle.client_ip).
# LTI launches sign users in without a password and are not affected.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "core.login_throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "core.login_throttle.lockout_response"
AXES_HANDLER = "core.login_throttle.PasswordLoginHandler"
AXES_DISABLE_ACCESS_LOG = True  # successful logins are not recorded: only failures count
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
# Each language named in itself (the language switch). How a page's language is chosen: core.languages;
# adding one: README.md, "Languages".
LANGUAGES = [("en-gb", "English"), ("de", "Deutsch"), ("es", "Español")]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
LOCALE_PATHS = [APP_DIR / "locale"]  # makemessages writes here; compilemessages builds the .mo files
USE_TZ = True
# One date-time format per language, 24-hour clock (numbas_lti/formats/<lang>/formats.py).
FORMAT_MODULE_PATH = ["numbas_lti.formats"]

# --- Logging: to stderr, never request bodies or secrets ------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    # Hand-off and writer tokens never reach the log, whoever logs a URL (core.access_log).
    "filters": {"redact_secrets": {"()": "core.access_log.RedactSecrets"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secrets"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # pylti logs the consumers' secrets and every launch parameter at DEBUG.
        "pylti": {"level": "WARNING"},
        "oauthlib": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
        "daphne": {"level": "WARNING"},
        "axes": {"level": "WARNING"},  # failures and lockouts; not every step of every login
        # run_huey adds its own handler to "huey": without propagate=False every line is logged twice.
        "huey": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
}

# --- Grade passback (LTI 1.1 Basic Outcomes) and reports --------------------------------
# Retries never stop while the LMS fails temporarily: the wait doubles from the base up to
# the cap, with full jitter, so a recovered LMS is not hit by every grade at once.
PASSBACK_RETRY_BASE_SECONDS = env.float("PASSBACK_RETRY_BASE_SECONDS", default=0.5)
PASSBACK_RETRY_MAX_SECONDS = env.float("PASSBACK_RETRY_MAX_SECONDS", default=600)
PASSBACK_TIMEOUT_SECONDS = env.float("PASSBACK_TIMEOUT_SECONDS", default=20)
PASSBACK_CONCURRENCY = env.int("PASSBACK_CONCURRENCY", default=16)  # requests in flight per delivery task
# An address that keeps answering with something that is not an LTI outcomes answer (a login
# page with 200, say) is not an outage but the wrong address: after this many such answers in a
# row (about an hour of retries at the defaults) the grade is marked failed for a person to see.
PASSBACK_MAX_NON_LTI_ANSWERS = env.int("PASSBACK_MAX_NON_LTI_ANSWERS", default=20)
if PASSBACK_MAX_NON_LTI_ANSWERS < 1:
    raise ImproperlyConfigured("PASSBACK_MAX_NON_LTI_ANSWERS must be 1 or more.")
# Private files (report downloads): never under MEDIA_ROOT, served only through a view that
# checks who is asking (nginx: X-Accel-Redirect to an internal location when set).
PRIVATE_ROOT = env.str("PRIVATE_ROOT", default=str(VAR_DIR / "private"))
PRIVATE_X_ACCEL_PREFIX = env.str("PRIVATE_X_ACCEL_PREFIX", default="")
REPORT_RETENTION_DAYS = env.int("REPORT_RETENTION_DAYS", default=7)


# Modes of the files and folders the app writes for nginx (core/files.py), in octal. nginx's
# workers, another user in production, read them through the group that cloud-init gives
# MEDIA_ROOT and PRIVATE_ROOT (setgid: folders below inherit it; the app cannot set that bit
# itself, so only the permission bits are used). Private files never give others anything.
def _mode(name: str, default: int, *, folder: bool, private: bool) -> int:
    raw = env.str(name, default=f"{default:04o}")
    try:
        value = int(raw, 8)
    except ValueError:
        value = -1
    owner = 0o700 if folder else 0o600
    allowed = (0o2777 if folder else 0o777) & ~(0o007 if private else 0o002)
    if value < 0 or value & ~allowed or value & owner != owner:
        others = "nothing" if private else "no writing"
        raise ImproperlyConfigured(f"{name} must be an octal mode such as {default:04o} (the owner: everything it "
                                   f"needs; others: {others}), not {raw!r}.")
    return value


PRIVATE_FILE_MODE = _mode("PRIVATE_FILE_MODE", 0o640, folder=False, private=True)
PRIVATE_DIR_MODE = _mode("PRIVATE_DIR_MODE", 0o2750, folder=True, private=True)
MEDIA_FILE_MODE = _mode("MEDIA_FILE_MODE", 0o644, folder=False, private=False)
MEDIA_DIR_MODE = _mode("MEDIA_DIR_MODE", 0o2755, folder=True, private=False)

# --- Requests to addresses an LMS gave us (core/outbound.py) ------------------------------
# They never go to loopback, private, link-local or other special-purpose addresses, except in
# the networks listed here (comma-separated CIDRs), e.g. an LMS on the same private network:
# OUTBOUND_ALLOWED_NETWORKS=10.20.0.0/16. scripts/dev and the tests allow loopback.
OUTBOUND_ALLOWED_NETWORKS = [n.strip() for n in env.list("OUTBOUND_ALLOWED_NETWORKS", default=[]) if n.strip()]
for _network in OUTBOUND_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network)  # strict: host bits set is a typo that would allow more
    except ValueError as error:
        raise ImproperlyConfigured(
            f"OUTBOUND_ALLOWED_NETWORKS: {error}. Give networks as CIDRs separated by commas, "
            "e.g. 10.20.0.0/16,fd00:1::/64."
        ) from None
