// The attempt page: a SCORM 2004 API (scorm-again) for the exam in the iframe, and a
// transport that gets every change the exam makes into the server's database.
//
// - Changes are grouped into batches, each with a client-made id. A batch is kept in
//   localStorage until the server acknowledges it, which it does only after committing.
// - Batches go over the websocket; whenever it is down they go over HTTP instead, and
//   unacknowledged batches are re-sent (the server stores a re-sent batch once).
// - On load, batches left over from before a reload are sent first, then the state is read.
// - Opening the attempt in another window takes over: this one is told and stops writing.
(function () {
  "use strict";
  // Translations come from Django's JavaScript catalogue (/jsi18n/); without it, English.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const config = JSON.parse(document.getElementById("attempt-config").textContent);
  const statusEl = document.getElementById("save-status");
  // Each window keeps its own unacknowledged batches; a window that takes over adopts all.
  const storePrefix = `nlti:pending:${config.attemptId}:`;
  const storeKey = storePrefix + config.token;
  const review = config.mode === "review";
  const RETRY_MS = 3000;
  const FLUSH_DELAY_MS = 800;
  const MAX_BATCH = 50;

  let nextSequence = 1;
  let buffer = [];
  let stopped = review;
  let socket = null;
  let socketReady = false;
  let lastError = "";
  let ended = false;
  const inFlight = new Map(); // batch id -> time sent

  // --- pending batches, shared with reloads through localStorage -------------------------
  function adoptPending() {
    // Everything any window of this attempt left unacknowledged, oldest window first.
    const batches = [];
    try {
      const keys = Object.keys(localStorage).filter((k) => k.startsWith(storePrefix)).sort();
      for (const key of keys) {
        try { batches.push(...JSON.parse(localStorage.getItem(key) || "[]")); } catch (e) { /* unreadable */ }
        localStorage.removeItem(key);
      }
    } catch (e) { /* storage unavailable */ }
    return batches.map((b) => Object.assign(b, { token: config.token }));
  }
  function savePending(list) {
    try {
      if (list.length) localStorage.setItem(storeKey, JSON.stringify(list));
      else localStorage.removeItem(storeKey);
    } catch (e) { lastError = gettext("Your browser's storage is full; keep this page open until it says saved."); }
  }
  let pending = [];

  function newId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function showStatus() {
    if (review) return;
    let text, state;
    const waiting = pending.reduce((n, b) => n + b.changes.length, 0) + buffer.length;
    if (stopped && !ended) { text = gettext("Not saving: this attempt is open in another window"); state = "error"; }
    else if (waiting === 0) { text = ended ? gettext("Finished — everything is saved") : gettext("All changes saved"); state = "saved"; }
    else if (lastError) { text = interpolate(ngettext("Not saved yet (%(n)s change waiting) — retrying",
                                                   "Not saved yet (%(n)s changes waiting) — retrying", waiting),
                                          { n: waiting }, true); state = "unsaved"; }
    else { text = gettext("Saving…"); state = "saving"; }
    statusEl.textContent = text;
    statusEl.dataset.state = state;
    statusEl.dataset.pending = String(waiting);
  }

  // --- sending ----------------------------------------------------------------------------
  function acknowledged(batchId, result) {
    inFlight.delete(batchId);
    pending = pending.filter((b) => b.batch !== batchId);
    savePending(pending);
    if (result && result.ended) ended = true;
    lastError = "";
    showStatus();
  }

  function refused(batchId, error) {
    inFlight.delete(batchId);
    if (error.code === "unavailable") {  // nothing stored yet: keep it; retryPending sends it again
      lastError = error.message || "unavailable";
      showStatus();
      return;
    }
    if (error.code === "taken_over") return takenOver();
    if (error.code === "ended") { ended = true; stopped = true; pending = []; savePending(pending); showStatus(); return; }
    // A batch the server will never accept: drop it rather than retry forever, and say so.
    pending = pending.filter((b) => b.batch !== batchId);
    savePending(pending);
    lastError = error.message || "A change was refused.";
    console.error("Batch refused", batchId, error);
    showStatus();
  }

  function takenOver() {
    stopped = true;
    pending = [];
    savePending(pending);
    buffer = [];
    document.getElementById("taken-over").hidden = false;
    if (socket) socket.close();
    showStatus();
  }

  function csrfToken() {
    return config.csrfToken || (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  }

  async function sendHttp(batch, options) {
    inFlight.set(batch.batch, Date.now());
    try {
      const response = await fetch(config.batchUrl, {
        method: "POST",
        credentials: "same-origin",
        keepalive: Boolean(options && options.keepalive),
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(batch),
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok) return acknowledged(batch.batch, body);
      if (body.error && response.status < 500 && response.status !== 401 && response.status !== 403) {
        return refused(batch.batch, body.error);
      }
      throw new Error(body.error ? body.error.message : `HTTP ${response.status}`);
    } catch (e) {
      inFlight.delete(batch.batch);
      lastError = String(e.message || e);
      showStatus();
    }
  }

  function send(batch) {
    if (stopped && !batch.terminate) return;
    if (socketReady && socket.readyState === WebSocket.OPEN) {
      inFlight.set(batch.batch, Date.now());
      socket.send(JSON.stringify(batch));
    } else {
      sendHttp(batch);
    }
  }

  function flush(terminate) {
    if (review || (stopped && !terminate)) return;
    if (!buffer.length && !terminate) return;
    while (buffer.length || terminate) {
      const changes = buffer.splice(0, MAX_BATCH);
      const batch = { type: "batch", batch: newId(), token: config.token, changes, terminate: Boolean(terminate && !buffer.length) };
      pending.push(batch);
      savePending(pending);
      send(batch);
      if (batch.terminate || !buffer.length) break;
    }
    showStatus();
  }

  let flushTimer = null;
  const recorded = {}; // key -> last value the exam set (for diagnostics and tests)
  function record(key, value) {
    if (review || stopped) return;
    recorded[key] = String(value);
    buffer.push({ seq: nextSequence++, key, value: String(value), t: Date.now() });
    if (buffer.length >= MAX_BATCH) flush(false);
    clearTimeout(flushTimer);
    flushTimer = setTimeout(() => flush(false), FLUSH_DELAY_MS);
    showStatus();
  }

  function retryPending() {
    if (stopped && !ended) return;
    const now = Date.now();
    for (const batch of pending) {
      const sent = inFlight.get(batch.batch);
      if (!sent || now - sent > 10000) send(batch);
    }
  }

  // --- websocket with reconnection ----------------------------------------------------------
  let reconnectDelay = 500;
  function connect() {
    if (review || stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${config.socketPath}?token=${encodeURIComponent(config.token)}`);
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "ready") { socketReady = true; reconnectDelay = 500; inFlight.clear(); retryPending(); }
      else if (message.type === "ack") acknowledged(message.batch, message);
      else if (message.type === "taken_over") takenOver();
      else if (message.type === "access") accessChanged(message.numbas || {});
      else if (message.type === "error" && message.batch) refused(message.batch, message);
      else if (message.type === "error" && message.code === "ended") { ended = true; stopped = true; showStatus(); }
    });
    socket.addEventListener("close", (event) => {
      socketReady = false;
      inFlight.clear();
      if (event.code === 4409) return takenOver();
      if (stopped || event.code === 4410 || event.code === 4403) return;
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 15000);
      retryPending(); // over HTTP while the socket is down
    });
  }

  // An instructor changed this student's access (e.g. extra time) while the exam is open: the
  // new numbas.* values replace the old, and the exam is told to read them again — the window
  // message a Numbas exam listens for ("numbas change": "exam duration extension").
  let extraValues = null;
  function accessChanged(numbas) {
    if (!extraValues) return;
    for (const [key, value] of Object.entries(numbas)) extraValues[`numbas.${key}`] = String(value);
    const frame = document.getElementById("exam-frame");
    if (frame && frame.contentWindow) {
      frame.contentWindow.postMessage({ "numbas change": "exam duration extension" }, location.origin);
    }
  }

  // --- the SCORM API ---------------------------------------------------------------------------
  const WRITE_ONLY = new Set(["cmi.exit", "cmi.session_time"]);
  const EXTRA = /^(numbas\.|cmi\.interactions\.\d+\.staged_answer$)/;

  function buildApi(state, options) {
    const keep = !options || options.record !== false;
    const save = (key, value) => { if (keep) record(key, value); };
    const api = new window.Scorm2004API({ autocommit: false, lmsCommitUrl: false, logLevel: 5 });
    const flat = {};
    const extra = {};
    for (const [key, value] of Object.entries(state.values)) {
      if (EXTRA.test(key)) extra[key] = value;
      else if (!WRITE_ONLY.has(key)) flat[key] = value;
    }
    for (const [key, value] of Object.entries(state.numbas || {})) extra[`numbas.${key}`] = value;
    if (keep) extraValues = extra;
    if (Object.keys(flat).length) api.loadFromFlattenedJSON(flat, "");
    api.cmi.learner_id = state.learner_id;
    api.cmi.learner_name = state.learner_name;
    api.cmi.entry = state.entry;
    api.cmi.mode = state.mode;
    if (state.mode === "review") api.cmi.credit = "no-credit";

    // Numbas also uses keys outside the SCORM data model; keep and save them too.
    const getValue = api.GetValue.bind(api);
    const setValue = api.SetValue.bind(api);
    api.GetValue = function (element) {
      if (EXTRA.test(String(element)) && api.isInitialized() && !api.isTerminated()) {
        api.lastErrorCode = "0";
        return extra[element] !== undefined ? String(extra[element]) : "";
      }
      return getValue(element);
    };
    api.SetValue = function (element, value) {
      if (EXTRA.test(String(element)) && api.isInitialized() && !api.isTerminated()) {
        api.lastErrorCode = "0";
        extra[element] = String(value);
        save(element, value);
        return "true";
      }
      const result = setValue(element, value);
      if (result === "true") save(element, value);
      return result;
    };
    if (keep) {
      api.on("Commit", () => flush(false));
      api.on("Terminate", () => flush(true));
    }
    return api;
  }

  window.addEventListener("beforeunload", (event) => {
    if (!review && (buffer.length || pending.length) && !stopped) {
      flush(false);
      event.preventDefault();
      event.returnValue = gettext("Some answers are not saved yet.");
    }
  });
  window.addEventListener("pagehide", () => {
    if (review || stopped) return;
    flush(false);
    for (const batch of pending) sendHttp(batch, { keepalive: true });
  });

  async function start() {
    if (!review) {
      // Batches left from before a reload (or from a window this one took over) go first,
      // now under this window's writer token.
      pending = adoptPending();
      savePending(pending);
      for (const batch of [...pending]) await sendHttp(batch);
    }
    const response = await fetch(config.stateUrl, { credentials: "same-origin" });
    if (!response.ok) {
      statusEl.textContent = gettext("This attempt could not be loaded. Reload the page to try again.");
      statusEl.dataset.state = "error";
      return;
    }
    const state = await response.json();
    nextSequence = state.next_sequence;
    window.API_1484_11 = buildApi(state);
    setInterval(retryPending, RETRY_MS);
    connect();
    showStatus();
    document.getElementById("exam-frame").src = config.examUrl;
  }

  window.numbasLtiAttempt = {
    flush,
    // A fresh API built the same way as the page's, that saves nothing (conformance checks).
    newApi: (state) => buildApi(Object.assign({ values: {}, learner_id: "0", learner_name: "", entry: "ab-initio", mode: "normal" }, state), { record: false }),
    recorded,
    status: () => ({ pending: pending.length, buffer: buffer.length, stopped, ended }),
  };
  start();
})();
