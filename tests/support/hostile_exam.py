"""An exam package whose pages attack whoever opens them, as an instructor could upload one.

Its script tries what a takeover of the site needs — read the admin, fetch a CSRF token and post
forms with it, read cookies, reach the attempt page or the LMS page above it, call instructor
URLs, read or take over another student's attempt — and writes what happened, attack by attack,
into `#attack-results` as JSON: "blocked: ..." or "LEAKED: ...". The test then checks the
database too: a request the browser sent without letting the script read the answer must
still have changed nothing.
"""

from __future__ import annotations

import json

from exams.demo import DEMO_EXAM_DIR
from tests.support.packages import make_zip

ATTACKS = r"""
(async function () {
  const { app, victimAttempt, otherResource } = window.HOSTILE;
  const results = {};
  const note = (name, outcome) => { results[name] = outcome; };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function read(name, url, init) {
    try {
      const response = await fetch(url, Object.assign({ credentials: "include" }, init || {}));
      const text = await response.text();
      note(name, `LEAKED: ${response.status} ${text.slice(0, 120)}`);
      return text;
    } catch (e) { note(name, `blocked: ${e.name}`); return null; }
  }
  function xhr(name, url) {
    return new Promise((resolve) => {
      try {
        const request = new XMLHttpRequest();
        request.open("GET", url);
        request.withCredentials = true;
        request.onload = () => resolve(note(name, `LEAKED: ${request.status} ${request.responseText.slice(0, 120)}`));
        request.onerror = () => resolve(note(name, "blocked: error"));
        request.send();
      } catch (e) { resolve(note(name, `blocked: ${e.name}`)); }
    });
  }
  function post(name, url, fields) {
    // A form posted into a hidden frame: the answer cannot be read, the server must refuse it.
    return new Promise((resolve) => {
      const sink = document.createElement("iframe");
      sink.name = `sink-${Math.random().toString(36).slice(2)}`;
      sink.style.display = "none";
      document.body.appendChild(sink);
      const form = document.createElement("form");
      form.method = "post"; form.action = url; form.target = sink.name;
      for (const [key, value] of Object.entries(fields)) {
        const input = document.createElement("input");
        input.type = "hidden"; input.name = key; input.value = value;
        form.appendChild(input);
      }
      document.body.appendChild(form);
      let outcome = "sent (the server must have refused it)";
      document.addEventListener("securitypolicyviolation", (e) => {
        if (e.violatedDirective.startsWith("form-action")) outcome = "blocked: form-action";
      }, { once: true });
      try { form.submit(); } catch (e) { outcome = `blocked: ${e.name}`; }
      setTimeout(() => resolve(note(name, outcome)), 1500);
    });
  }

  // The admin: every LMS consumer's secret, and a CSRF token to post with.
  const admin = await read("read the admin's consumers", `${app}/admin/lms/consumer/`);
  await xhr("read the admin with XMLHttpRequest", `${app}/admin/lms/consumer/`);
  const addForm = await read("fetch a CSRF token from the admin", `${app}/admin/lms/consumer/add/`);
  const token = ((addForm || "").match(/name="csrfmiddlewaretoken" value="([^"]+)"/) || [])[1] || "none-found";
  await post("create an LMS consumer", `${app}/admin/lms/consumer/add/`,
             { csrfmiddlewaretoken: token, key: "hostile-consumer", name: "Hostile", secret: "hostile-secret" });
  await read("create an LMS consumer with fetch", `${app}/admin/lms/consumer/add/`,
             { method: "POST", mode: "no-cors", body: new URLSearchParams({ csrfmiddlewaretoken: token, key: "hostile-2" }) });
  // Another course's instructor pages and settings.
  await read("read another course's instructor page", `${app}/resource/${otherResource}/instructor/`);
  await post("change another course's settings", `${app}/resource/${otherResource}/instructor/settings/`,
             { csrfmiddlewaretoken: token, max_attempts: "99", allow_review: "on" });
  // Another student's attempt: read it, take it over, write it.
  await read("read another attempt", `${app}/attempt/${victimAttempt}/state/`);
  await new Promise((resolve) => {
    const image = new Image();
    image.onload = image.onerror = () => resolve(note("take another attempt over with an <img>", "sent (must change nothing)"));
    image.src = `${app}/attempt/${victimAttempt}/`;
  });
  await new Promise((resolve) => {
    try {
      const socket = new WebSocket(`${app.replace(/^http/, "ws")}/ws/attempt/${victimAttempt}/?token=guess`);
      socket.onopen = () => { note("open another attempt's websocket", "LEAKED: open"); socket.close(); resolve(); };
      socket.onerror = () => resolve(note("open another attempt's websocket", "blocked: error"));
    } catch (e) { resolve(note("open another attempt's websocket", `blocked: ${e.name}`)); }
    setTimeout(resolve, 3000);
  });
  // Cookies and storage of the application.
  note("read the application's cookies", /sessionid|csrftoken/.test(document.cookie) ? `LEAKED: ${document.cookie}` : "blocked: none here");
  let pendingKeys = [];
  try { pendingKeys = Object.keys(localStorage).filter((k) => k.startsWith("nlti:")); } catch (e) { /* none */ }
  note("read the attempt page's storage", pendingKeys.length ? `LEAKED: ${pendingKeys}` : "blocked: none here");
  // The windows above: the attempt page and the LMS.
  for (const [name, get] of [["read the top window", () => window.top.document.title],
                             ["read the attempt page", () => window.parent.parent.document.cookie],
                             ["call the attempt page's script", () => JSON.stringify(window.top.numbasLtiAttempt.recorded)]]) {
    try {
      if (window.top === window) { note(name, "blocked: not framed"); continue; }
      note(name, `LEAKED: ${get()}`);
    } catch (e) { note(name, `blocked: ${e.name}`); }
  }
  // Pretend to be the exam runtime towards the attempt page (it listens to its own frame only).
  if (window.top !== window) {
    window.top.postMessage({ source: "numbas-lti-runtime", type: "set", key: "cmi.location", value: "HACKED-BY-MESSAGE" }, "*");
  }
  // A new window of the application: open, but not readable.
  const popup = window.open(`${app}/admin/lms/consumer/`, "_blank");
  await sleep(1500);
  try { note("read a popup of the admin", popup ? `LEAKED: ${popup.document.body.innerText.slice(0, 120)}` : "blocked: no popup"); }
  catch (e) { note("read a popup of the admin", `blocked: ${e.name}`); }
  try { if (popup) popup.close(); } catch (e) { /* gone */ }

  // Last: take the whole window (the test also checks that its page is still there).
  try {
    if (window.top !== window) {
      window.top.location.href = `${app}/admin/`;
      note("navigate the top window", "LEAKED: navigated");
    } else note("navigate the top window", "blocked: not framed");
  } catch (e) { note("navigate the top window", `blocked: ${e.name}`); }

  const out = document.getElementById("attack-results");
  out.textContent = JSON.stringify(results);
  document.body.dataset.attacksDone = "1";
})();
"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Quiz</title>
<script>window.HOSTILE = {config};</script>
<script src="attacks.js" defer></script></head>
<body><h1>A perfectly ordinary quiz</h1><pre id="attack-results"></pre></body></html>
"""


def hostile_package(*, app: str, victim_attempt: int, other_resource: int) -> bytes:
    """The demo exam's manifest and source, with a launch page (and a second page, for opening
    directly) that run the attacks against the application at `app`."""
    config = json.dumps({"app": app, "victimAttempt": victim_attempt, "otherResource": other_resource})
    entries = {path.relative_to(DEMO_EXAM_DIR).as_posix(): path.read_bytes()
               for path in DEMO_EXAM_DIR.rglob("*") if path.is_file()}
    entries["index.html"] = PAGE.format(config=config)
    entries["hostile.html"] = PAGE.format(config=config)
    entries["attacks.js"] = ATTACKS
    return make_zip(entries)
