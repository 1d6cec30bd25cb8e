// The attempt page, on the application's origin: it gets every change the exam makes into the
// server's database.
//
// The exam itself never runs here. It runs on the exam-content origin (config.examOrigin), in
// the exam runtime (content/static/content/runtime/frame.js) that this page frames: the runtime
// holds the SCORM 2004 API the exam calls and reports each change to this page by postMessage.
// This page accepts messages only from that frame at that exact origin, and posts only to it.
//
// - Changes are grouped into batches, each with a client-made id. A batch is kept in
//   localStorage until the server acknowledges it, which it does only after committing.
// - Batches go over the websocket; whenever it is down they go over HTTP instead, and
//   unacknowledged batches are re-sent (the server stores a re-sent batch once).
// - This window writes only with the attempt's writer token, which it asks for with a
//   CSRF-protected POST ("take over"). That happens at once when the page was opened from this
//   site (or typed, or reloaded); opened from anywhere else, the page asks the student first.
// - On load, batches left over from before a reload are sent first, then the state is read.
// - Opening the attempt in another window takes over: this one is told, stops writing, and
//   offers to continue here: until then the exam is covered and inert, so nothing typed there
//   can look saved.
// - An exam whose scripts fail never calls Initialize: if it has not within a few seconds of its
//   page loading, the page says the exam did not start (and never that everything is saved).
(function () {
  "use strict";
  // Translations come from Django's JavaScript catalogue (/jsi18n/); without it, English.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const config = JSON.parse(document.getElementById("attempt-config").textContent);
  const statusEl = document.getElementById("save-status");
  const frame = document.getElementById("exam-frame");
  const takeoverPanel = document.getElementById("take-over");
  const takeoverCover = document.getElementById("take-over-cover"); // over the exam
  const notStartedPanel = document.getElementById("exam-not-started");
  // How long an exam may take to call Initialize once its page has loaded; tests shorten it
  // with ?exam_start_seconds=N.
  const START_SECONDS = (() => {
    const asked = Number(new URLSearchParams(location.search).get("exam_start_seconds"));
    const given = Number(frame.dataset.startSeconds) || 20;
    return asked >= 1 && asked <= 600 ? asked : given;
  })();
  // Each window keeps its own unacknowledged batches; a window that takes over adopts all.
  // Batches are kept per exam version: those an exam wrote before the attempt was moved to
  // another version are never sent into it (see movedByServer).
  const storePrefix = `nlti:pending:${config.attemptId}:${config.examPath}:`;
  const review = config.mode === "review";
  const RETRY_MS = 3000;
  const FLUSH_DELAY_MS = 800;
  const MAX_BATCH = 50;
  const FROM_PAGE = "numbas-lti-attempt";
  const FROM_RUNTIME = "numbas-lti-runtime";

  let token = "";
  let nextSequence = 1;
  let buffer = [];
  let stopped = true; // until this window holds the writer token (always, in review)
  let socket = null;
  let socketReady = false;
  let lastError = "";
  let ended = false;
  let closedText = ""; // why the server ended this attempt (its closing time or time limit passed)
  let examStarted = false; // the exam has called Initialize since the runtime last started it
  let examFailed = false;  // ... and it did not within START_SECONDS of its page loading
  let startTimer = null;
  const inFlight = new Map(); // batch id -> time sent

  // --- pending batches, shared with reloads through localStorage -------------------------
  const storeKey = () => storePrefix + token;
  function adoptPending() {
    // Everything any window of this attempt left unacknowledged, oldest window first.
    const batches = [];
    try {
      const attemptPrefix = `nlti:pending:${config.attemptId}:`;
      for (const key of Object.keys(localStorage)) {  // another version's, from before a move
        if (key.startsWith(attemptPrefix) && !key.startsWith(storePrefix)) localStorage.removeItem(key);
      }
      const keys = Object.keys(localStorage).filter((k) => k.startsWith(storePrefix)).sort();
      for (const key of keys) {
        try { batches.push(...JSON.parse(localStorage.getItem(key) || "[]")); } catch (e) { /* unreadable */ }
        localStorage.removeItem(key);
      }
    } catch (e) { /* storage unavailable */ }
    return batches.map((b) => Object.assign(b, { token }));
  }
  function savePending(list) {
    try {
      if (list.length) localStorage.setItem(storeKey(), JSON.stringify(list));
      else localStorage.removeItem(storeKey());
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
    if (closedText) { text = closedText; state = "closed"; }
    else if (examFailed) { text = gettext("Not saving: the exam did not start"); state = "error"; }
    else if (!token) { text = gettext("Not saving: this window does not hold the attempt"); state = "error"; }
    else if (stopped && !ended) { text = gettext("Not saving: this attempt is open in another window"); state = "error"; }
    else if (waiting === 0 && !examStarted && !ended) { text = gettext("Starting the exam…"); state = "starting"; }
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
    if (error.code === "closed") return closedByServer(error.message);
    if (error.code === "ended") { ended = true; stopped = true; pending = []; savePending(pending); showStatus(); return; }
    // A batch the server will never accept: drop it rather than retry forever, and say so.
    pending = pending.filter((b) => b.batch !== batchId);
    savePending(pending);
    lastError = error.message || "A change was refused.";
    console.error("Batch refused", batchId, error);
    showStatus();
  }

  function csrfToken() {
    return config.csrfToken || (document.cookie.match(/(?:^|; )(?:__Host-)?csrftoken=([^;]+)/) || [])[1] || "";
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
      const batch = { type: "batch", batch: newId(), token, changes, terminate: Boolean(terminate && !buffer.length) };
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
    recorded[key] = value;
    buffer.push({ seq: nextSequence++, key, value, t: Date.now() });
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
    const ws = new WebSocket(`${scheme}://${location.host}${config.socketPath}?token=${encodeURIComponent(token)}`);
    socket = ws;
    ws.addEventListener("message", (event) => {
      if (socket !== ws) return;
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "ready") { socketReady = true; reconnectDelay = 500; inFlight.clear(); retryPending(); }
      else if (message.type === "ack") acknowledged(message.batch, message);
      else if (message.type === "taken_over") takenOver();
      else if (message.type === "moved") movedByServer(message.message);
      else if (message.type === "access") toRuntime({ type: "access", numbas: message.numbas || {} });
      else if (message.type === "error" && message.batch) refused(message.batch, message);
      else if (message.type === "error" && message.code === "closed") closedByServer(message.message);
      else if (message.type === "error" && message.code === "ended") { ended = true; stopped = true; showStatus(); }
    });
    ws.addEventListener("close", (event) => {
      if (socket !== ws) return;
      socketReady = false;
      inFlight.clear();
      if (event.code === 4409) return takenOver();
      if (stopped || event.code === 4410 || event.code === 4403 || event.code === 4412) return;
      setTimeout(connect, reconnectDelay);
      reconnectDelay = Math.min(reconnectDelay * 2, 15000);
      retryPending(); // over HTTP while the socket is down
    });
  }

  // --- holding the attempt: take over, taken over, continue here --------------------------------
  async function takeOver() {
    try {
      const response = await fetch(config.takeOverUrl, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRFToken": csrfToken() },
      });
      const body = await response.json().catch(() => ({}));
      if (response.ok && body.token) {
        if (body.examPath && body.examPath !== config.examPath) {
          // The attempt was moved to another exam version while this page was open: load it.
          movedByServer("");
          return false;
        }
        token = body.token;
        stopped = false;
        return true;
      }
      lastError = (body.error && body.error.message) || `HTTP ${response.status}`;
    } catch (e) {
      lastError = String(e.message || e);
    }
    statusEl.textContent = interpolate(gettext("This attempt could not be opened here: %(reason)s. Reload the page to try again."),
                                       { reason: lastError }, true);
    statusEl.dataset.state = "error";
    return false;
  }

  function showTakeOver(reason) {
    takeoverPanel.dataset.reason = reason;
    for (const part of takeoverPanel.querySelectorAll("[data-reason]")) part.hidden = part.dataset.reason !== reason;
    takeoverPanel.setAttribute("aria-labelledby", reason === "elsewhere" ? "take-over-elsewhere-title" : "take-over-title");
    takeoverCover.hidden = false;
    // Nothing typed in a window that does not save may look saved: the exam is covered, inert
    // (no focus, no typing, no clicks) and invisible — not display:none: Chromium does not lay out
    // frames loaded inside a frame that was not displayed.
    blockExam(true);
    takeoverPanel.querySelector("button").focus();
    showStatus();
  }

  function blockExam(blocked) {
    if (blocked && document.activeElement === frame) frame.blur();
    frame.inert = blocked;
    frame.toggleAttribute("inert", blocked);
    if (blocked) frame.tabIndex = -1;
    else frame.removeAttribute("tabindex");
    frame.style.visibility = blocked ? "hidden" : "";
  }

  function closedByServer(message) {
    // The server ended the attempt at its deadline: what it acknowledged is kept; what it had
    // not is refused, and the student is told how much, never left thinking it was saved.
    const unsaved = pending.reduce((n, b) => n + b.changes.length, 0) + buffer.length;
    ended = true;
    stopped = true;
    pending = [];
    savePending(pending);
    buffer = [];
    closedText = (message || gettext("This attempt has ended.")) + (unsaved ? " " + interpolate(
      ngettext("%(n)s change was not saved.", "%(n)s changes were not saved.", unsaved), { n: unsaved }, true) : "");
    if (socket) { const old = socket; socket = null; socketReady = false; old.close(); }
    showStatus();
  }

  function movedByServer(message) {
    // An instructor moved the attempt to another exam version. What this page had not saved was
    // written for the old version: it is dropped, never sent into the moved attempt. The page
    // reloads and the new version resumes from what the server has.
    stopped = true;
    pending = [];
    savePending(pending);
    buffer = [];
    if (socket) { const old = socket; socket = null; socketReady = false; old.close(); }
    closedText = message || gettext("This attempt was moved to another version of the exam. Reloading…");
    showStatus();
    setTimeout(() => window.location.reload(), 1500);
  }

  function takenOver() {
    stopped = true;
    pending = [];
    savePending(pending);
    buffer = [];
    if (socket) { const old = socket; socket = null; socketReady = false; old.close(); }
    showTakeOver("taken-over");
  }

  async function continueHere() {
    const button = takeoverPanel.querySelector("button");
    button.disabled = true;
    const held = await takeOver();
    button.disabled = false;
    if (!held) return;
    takeoverCover.hidden = true;
    blockExam(false);
    ended = false;
    lastError = "";
    await openAttempt({ reloadRuntime: true });
  }
  takeoverPanel.querySelector("button").addEventListener("click", continueHere);

  // --- the exam runtime on the content origin ---------------------------------------------------
  let state = null;           // the server's state, for the runtime's next start
  let runtimeReady = false;   // the runtime document in the frame has said "ready"
  let runtimeStarted = false; // ... and has been started with `state`
  let runtimeLoads = 0;

  function loadRuntime() {
    runtimeReady = runtimeStarted = false;
    examWaiting(false);
    runtimeLoads += 1;
    // The runtime learns this page's origin from its address and talks to nothing else; the page's
    // language and the exam frame's name come along for its own page (frame-common.js).
    const shown = new URLSearchParams({ app: location.origin, lang: document.documentElement.lang, title: gettext("Exam") });
    frame.src = `${config.examOrigin}${config.runtimePath}?load=${runtimeLoads}#${shown}`;
  }

  function toRuntime(message) {
    if (frame.contentWindow) frame.contentWindow.postMessage(Object.assign({ source: FROM_PAGE }, message), config.examOrigin);
  }

  function startRuntime() {
    if (!runtimeReady || runtimeStarted || !state) return;
    runtimeStarted = true;
    examWaiting(false);
    toRuntime({ type: "start", state, exam: config.examPath, record: !review });
    // Should the runtime never say the exam's page loaded, it is given three times as long.
    armStartTimer(3 * START_SECONDS);
  }

  // --- did the exam start? ---------------------------------------------------------------------
  function examWaiting(failed) {
    clearTimeout(startTimer);
    startTimer = null;
    examStarted = false;
    examFailed = failed;
    notStartedPanel.hidden = !failed;
    showStatus();
  }

  function armStartTimer(seconds) {
    if (examStarted) return;
    clearTimeout(startTimer);
    startTimer = setTimeout(() => { if (!examStarted) examWaiting(true); }, seconds * 1000);
  }

  function examInitialized() {
    clearTimeout(startTimer);
    startTimer = null;
    examStarted = true;
    examFailed = false;
    notStartedPanel.hidden = true;
    showStatus();
  }
  notStartedPanel.querySelector("button").addEventListener("click", () => window.location.reload());

  window.addEventListener("message", (event) => {
    // Only the runtime this page framed, at the exam-content origin, is listened to.
    if (event.origin !== config.examOrigin || event.source !== frame.contentWindow) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.source !== FROM_RUNTIME) return;
    if (data.type === "ready") {
      runtimeReady = true;
      if (runtimeStarted) { runtimeStarted = false; refreshState(); } // it reloaded: start again from the server's state
      else startRuntime();
    } else if (data.type === "set") {
      if (typeof data.key === "string" && typeof data.value === "string") record(data.key, data.value);
    } else if (data.type === "initialized") {
      examInitialized();
    } else if (data.type === "exam-loaded") {
      armStartTimer(START_SECONDS);
    } else if (data.type === "commit") {
      flush(false);
    } else if (data.type === "terminate") {
      flush(true);
    }
  });

  async function sendPendingOverHttp() {
    for (const batch of [...pending]) await sendHttp(batch);
  }

  async function refreshState() {
    state = null;
    if (!review) {
      flush(false);
      await sendPendingOverHttp();
    }
    const response = await fetch(config.stateUrl, { credentials: "same-origin" });
    if (!response.ok) {
      statusEl.textContent = gettext("This attempt could not be loaded. Reload the page to try again.");
      statusEl.dataset.state = "error";
      return false;
    }
    state = await response.json();
    nextSequence = state.next_sequence;
    startRuntime();
    return true;
  }

  async function openAttempt(options) {
    if (!review) {
      // Batches left from before a reload (or from a window this one took over) go first,
      // now under this window's writer token.
      pending = adoptPending();
      savePending(pending);
    }
    if (options.reloadRuntime) loadRuntime();
    if (!(await refreshState())) return;
    connect();
    showStatus();
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

  window.numbasLtiAttempt = {
    flush,
    recorded,
    status: () => ({ pending: pending.length, buffer: buffer.length, stopped, ended, examStarted, examFailed }),
  };

  async function begin() {
    setInterval(retryPending, RETRY_MS);
    if (review) return openAttempt({ reloadRuntime: true });
    // Opened from another site (a link, an image, a frame elsewhere): ask before taking over.
    if (!config.takeOverAtOnce) return showTakeOver("elsewhere");
    if (await takeOver()) await openAttempt({ reloadRuntime: true });
  }
  begin();
})();
