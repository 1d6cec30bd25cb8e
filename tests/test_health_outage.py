"""/health/ on a running daphne when PostgreSQL goes away and comes back."""

import json
import os
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.support.live import start_live_server
from tests.support.tcpproxy import TcpProxy

pytestmark = pytest.mark.slow


def get_health(url):
    try:
        with urllib.request.urlopen(url + "/health/", timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_health_is_503_while_the_database_is_unreachable_and_200_after(tmp_path):
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        pytest.skip("needs PostgreSQL (scripts/test starts one)")
    proxy = TcpProxy(urlsplit(database_url).port)
    server = start_live_server(tmp_path, database_port=proxy.port)
    try:
        assert get_health(server.url)[0] == 200

        proxy.cut()
        status, body = get_health(server.url)
        assert status == 503
        assert body["status"] == "error" and body["checks"]["database"] == "error"

        proxy.restore()
        status, body = get_health(server.url)
        assert status == 200 and body["checks"]["database"] == "ok"
    finally:
        server.stop()
        proxy.close()
