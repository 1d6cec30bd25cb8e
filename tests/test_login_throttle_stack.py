"""Login throttling behind nginx, on the production-shaped stack: the address a lockout counts is
the client's own (nginx → X-Forwarded-For → daphne --proxy-headers → REMOTE_ADDR), not nginx's,
and not one the client claims."""

import re
import uuid

import pytest
import requests
from requests.adapters import HTTPAdapter

from tests.support.stack import DOMAIN

pytestmark = [pytest.mark.slow, pytest.mark.stack, pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")]
CLIENT_ADDRESS = "127.0.0.2"  # nginx and daphne listen on 127.0.0.1


class _FromAnotherAddress(HTTPAdapter):
    """Connect from CLIENT_ADDRESS, naming the site in the TLS handshake as a browser would."""

    def init_poolmanager(self, *args, **kwargs):
        kwargs.update(source_address=(CLIENT_ADDRESS, 0), server_hostname=DOMAIN)
        super().init_poolmanager(*args, **kwargs)


def test_a_lockout_counts_the_clients_own_address_whatever_it_claims(prod_stack):
    site = f"https://{DOMAIN}:{prod_stack.https_port}"
    base = f"https://127.0.0.1:{prod_stack.https_port}"
    http = requests.Session()
    http.trust_env, http.verify = False, False  # the stack's throwaway certificate
    http.mount("https://", _FromAnotherAddress())
    http.headers.update({"Host": f"{DOMAIN}:{prod_stack.https_port}", "Origin": site,
                         "Referer": f"{site}/admin/login/"})
    form = http.get(f"{base}/admin/login/", timeout=20)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    username = f"stack-{uuid.uuid4().hex[:8]}"

    answers = [http.post(f"{base}/admin/login/", data={"csrfmiddlewaretoken": csrf, "username": username,
                                                      "password": "guess", "next": "/admin/"},
                         headers={"X-Forwarded-For": f"198.51.100.{n}"}, timeout=20)
               for n in range(6)]

    assert [a.status_code for a in answers] == [200, 200, 200, 200, 429, 429]
    assert "Signing in is paused" in answers[-1].text
    rows = prod_stack.query("SELECT ip_address FROM axes_accessattempt WHERE username = %s", [username])
    assert rows == [(CLIENT_ADDRESS,)]
