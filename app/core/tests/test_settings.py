"""The settings module read in a fresh process with a given environment."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[2]

PROBE = """
import json
from django.conf import settings
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "cache": settings.CACHES["default"]["BACKEND"],
    "channels": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "huey": settings.HUEY["huey_class"],
    "huey_immediate": settings.HUEY["immediate"],
    "secure_cookies": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_SAMESITE, settings.CSRF_COOKIE_SAMESITE],
    "proxy": settings.SECURE_PROXY_SSL_HEADER,
}))
"""


def settings_with(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if k not in (
        "DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "HUEY_IMMEDIATE", "DJANGO_SETTINGS_MODULE",
        "BEHIND_TLS_PROXY", "COOKIES_SECURE", "DB_POOL", "DB_CONN_MAX_AGE", "OUTBOUND_ALLOWED_NETWORKS",
        "PASSBACK_MAX_NON_LTI_ANSWERS")}
    clean.update({"DJANGO_SETTINGS_MODULE": "numbas_lti.settings", "VAR_DIR": str(tmp_path), **env})
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup();" + PROBE],
        cwd=APP, env=clean, capture_output=True, text=True, timeout=60,
    )
    return result


def test_embedded_default_without_redis(tmp_path):
    result = settings_with(tmp_path, DEBUG="1")
    got = json.loads(result.stdout)
    assert got["engine"] == "django.db.backends.sqlite3"
    assert got["cache"].endswith("LocMemCache")
    assert got["channels"] == "channels.layers.InMemoryChannelLayer"
    assert got["huey"] == "huey.SqliteHuey" and got["huey_immediate"] is False
    assert got["secure_cookies"] == [False, "Lax", "Lax"]


def test_production_with_redis_postgres_and_proxy(tmp_path):
    result = settings_with(
        tmp_path,
        SECRET_KEY="x" * 50,
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/db",
        REDIS_URL="redis://127.0.0.1:6379/0",
        BEHIND_TLS_PROXY="1",
    )
    got = json.loads(result.stdout)
    assert got["engine"] == "dj_db_conn_pool.backends.postgresql"
    assert got["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert got["channels"] == "core.channel_layers.ResilientRedisChannelLayer"
    assert got["huey"] == "huey.RedisHuey"
    assert got["secure_cookies"] == [True, "None", "None"]
    assert got["proxy"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_production_without_secret_key_refuses_to_start(tmp_path):
    result = settings_with(tmp_path)
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_pool_with_persistent_connections_is_refused(tmp_path):
    result = settings_with(
        tmp_path, SECRET_KEY="x" * 50, DATABASE_URL="postgres://u:p@127.0.0.1:5432/db", DB_CONN_MAX_AGE="60"
    )
    assert result.returncode != 0
    assert "DB_CONN_MAX_AGE must be 0 while DB_POOL is on" in result.stderr


def test_outbound_requests_allow_no_special_network_unless_told(tmp_path):
    probe = "import django; django.setup(); from django.conf import settings; print(settings.OUTBOUND_ALLOWED_NETWORKS)"
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "OUTBOUND_ALLOWED_NETWORKS")}
    env.update(DJANGO_SETTINGS_MODULE="numbas_lti.settings", VAR_DIR=str(tmp_path), DEBUG="1")

    def run(**extra):
        return subprocess.run([sys.executable, "-c", probe], cwd=APP, env={**env, **extra}, capture_output=True,
                              text=True, timeout=60).stdout.strip()

    assert run() == "[]"
    assert run(OUTBOUND_ALLOWED_NETWORKS="10.20.0.0/16, fd00:1::/64") == "['10.20.0.0/16', 'fd00:1::/64']"


@pytest.mark.parametrize("value", ["10.0.0.1/8", "intranet", "10.0.0.0/40"])
def test_an_allowed_network_that_is_not_a_cidr_stops_the_server(tmp_path, value):
    result = settings_with(tmp_path, DEBUG="1", OUTBOUND_ALLOWED_NETWORKS=value)
    assert result.returncode != 0
    assert "OUTBOUND_ALLOWED_NETWORKS" in result.stderr and value in result.stderr


def test_the_limit_of_non_lti_answers_must_be_positive(tmp_path):
    result = settings_with(tmp_path, DEBUG="1", PASSBACK_MAX_NON_LTI_ANSWERS="0")
    assert result.returncode != 0 and "PASSBACK_MAX_NON_LTI_ANSWERS must be 1 or more" in result.stderr


MODES_PROBE = """
import json
from django.conf import settings
print(json.dumps([settings.PRIVATE_FILE_MODE, settings.PRIVATE_DIR_MODE, settings.MEDIA_FILE_MODE, settings.MEDIA_DIR_MODE]))
"""


def modes_with(tmp_path, **env):
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_MODE") and k != "DJANGO_SETTINGS_MODULE"}
    clean.update({"DJANGO_SETTINGS_MODULE": "numbas_lti.settings", "VAR_DIR": str(tmp_path), "DEBUG": "1", **env})
    return subprocess.run([sys.executable, "-c", "import django; django.setup();" + MODES_PROBE],
                          cwd=APP, env=clean, capture_output=True, text=True, timeout=60)


def test_file_modes_default_to_group_read_and_nothing_private_for_others(tmp_path):
    result = modes_with(tmp_path)
    assert json.loads(result.stdout) == [0o640, 0o2750, 0o644, 0o2755], result.stderr
    result = modes_with(tmp_path, PRIVATE_FILE_MODE="600", PRIVATE_DIR_MODE="0700", MEDIA_FILE_MODE="0640",
                        MEDIA_DIR_MODE="2750")
    assert json.loads(result.stdout) == [0o600, 0o700, 0o640, 0o2750], result.stderr


@pytest.mark.parametrize("name, value", [
    ("PRIVATE_FILE_MODE", "0644"),  # others could read a report
    ("PRIVATE_FILE_MODE", "0400"),  # the app could not write it
    ("PRIVATE_FILE_MODE", "rw-r-----"),
    ("PRIVATE_FILE_MODE", "4640"),
    ("PRIVATE_DIR_MODE", "2751"),
    ("PRIVATE_DIR_MODE", "0640"),  # the app could not enter it
    ("MEDIA_FILE_MODE", "0666"),  # anyone could change an exam
    ("MEDIA_DIR_MODE", "0777"),
])
def test_file_modes_that_would_open_private_files_or_lock_the_app_out_are_refused(tmp_path, name, value):
    result = modes_with(tmp_path, **{name: value})
    assert result.returncode != 0 and "ImproperlyConfigured" in result.stderr and name in result.stderr
