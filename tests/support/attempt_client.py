"""A student without a browser: launches, starts an attempt and speaks the attempt-data
protocol (websocket or HTTP) the way the attempt page does. Used by tests and bench/."""

from __future__ import annotations

import json
import re
import uuid

import requests

from tests.support import lms as test_lms


class Student:
    def __init__(self, base_url: str, *, key: str, secret: str, user_id: str,
                 resource_link_id: str = "demo-exam", context_id: str = "demo-course", roles: str = "Learner",
                 launch_overrides: dict | None = None):
        self.base_url, self.key, self.secret = base_url, key, secret
        self.launch_overrides = launch_overrides or {}
        self.user_id, self.resource_link_id, self.context_id, self.roles = user_id, resource_link_id, context_id, roles
        self.http = requests.Session()
        self.resource_page = ""

    def launch(self) -> "Student":
        params = test_lms.sign(
            test_lms.launch_params(user_id=self.user_id, resource_link_id=self.resource_link_id,
                                   context_id=self.context_id, roles=self.roles, **self.launch_overrides),
            key=self.key, secret=self.secret, url=f"{self.base_url}/lti/launch/",
        )
        response = self.http.post(f"{self.base_url}/lti/launch/", data=params, allow_redirects=False)
        assert response.status_code == 302, response.text[:500]
        self.resource_page = response.headers["Location"].split("?")[0]
        return self

    def start_attempt(self) -> int:
        page = self.http.get(self.base_url + self.resource_page)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        action = re.search(r'action="(/resource/\d+/attempts/start/)"', page.text).group(1)
        response = self.http.post(self.base_url + action, data={"csrfmiddlewaretoken": token},
                                  headers={"Referer": self.base_url + self.resource_page}, allow_redirects=False)
        assert response.status_code == 302 and "/attempt/" in response.headers["Location"], response.text[:300]
        return int(response.headers["Location"].strip("/").rsplit("/", 1)[1])

    def open_attempt(self, attempt_id: int) -> dict:
        """Open the attempt page and, as its script does, take the attempt over (a POST); return the
        page's config with the writer token added ("" in review)."""
        url = f"{self.base_url}/attempt/{attempt_id}/"
        page = self.http.get(url)
        match = re.search(r'<script id="attempt-config" type="application/json">(.*?)</script>', page.text, re.S)
        if not match:
            return {"status": page.status_code}
        config = json.loads(match.group(1))
        config["token"] = ""
        if config["mode"] == "normal":
            response = self.http.post(self.base_url + config["takeOverUrl"],
                                      headers={"X-CSRFToken": self.csrf_token, "Origin": self.base_url, "Referer": url})
            config["token"] = response.json().get("token", "")
        return config

    @property
    def csrf_token(self) -> str:
        """The CSRF cookie's value (named __Host-csrftoken where cookies are Secure)."""
        return self.http.cookies.get("csrftoken") or self.http.cookies.get("__Host-csrftoken") or ""

    @property
    def cookie_header(self) -> str:
        return "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)

    def websocket_url(self, config: dict) -> str:
        return self.base_url.replace("http", "ws", 1) + f"{config['socketPath']}?token={config['token']}"

    def post_batch(self, attempt_id: int, message: dict) -> requests.Response:
        # As the attempt page's fetch does: same-origin, so Origin and Referer (Django's CSRF
        # check over HTTPS needs them) name this site.
        return self.http.post(f"{self.base_url}/attempt/{attempt_id}/batches/", data=json.dumps(message),
                              headers={"Content-Type": "application/json", "X-CSRFToken": self.csrf_token,
                                       "Origin": self.base_url, "Referer": f"{self.base_url}/attempt/{attempt_id}/"})


def batch(token: str, changes: list[tuple[str, str]], first_sequence: int, *, terminate=False) -> dict:
    return {
        "type": "batch",
        "batch": uuid.uuid4().hex,
        "token": token,
        "changes": [{"seq": first_sequence + i, "key": k, "value": v, "t": 1764000000000} for i, (k, v) in enumerate(changes)],
        "terminate": terminate,
    }
