// The instructor's "Re-mark all attempts" page, on the application's origin: it asks the server
// for one attempt at a time, has a marking frame (on the exam-content origin, config.examOrigin)
// mark it with the exam's own code, and sends what the exam reported back at once, so the
// server keeps every result as soon as it exists. Closing the page loses at most the attempts in
// flight; opening it again carries on with the attempts not marked yet.
//
// It runs config.lanes marking frames side by side; the server gives each lane its own
// attempts (?lane=k&lanes=K). A marking frame is only ever posted to at its exact origin, and
// only its own messages are read.
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const config = JSON.parse(document.getElementById("remark-config").textContent);
  const firstFrame = document.getElementById("marking-frame");
  const progressEl = document.getElementById("remark-progress");
  const countEl = document.getElementById("remark-count");
  const statusEl = document.getElementById("remark-status");
  const FROM_PAGE = "numbas-lti-remark";
  const FROM_FRAME = "numbas-lti-marker";
  const MARK_TIMEOUT_MS = 90000;
  const MAX_ATTEMPTS = 200000;
  const lanes = Math.max(1, Math.min(4, Number(config.lanes) || 1));

  function say(text, state) {
    statusEl.textContent = text;
    statusEl.dataset.state = state;
  }

  let shown = -1;
  function show(progress) {
    if (progress.done < shown) return; // an older answer of another lane
    shown = progress.done;
    progressEl.max = progress.total;
    progressEl.value = progress.done;
    progressEl.textContent = `${progress.done} / ${progress.total}`;
    countEl.textContent = interpolate(gettext("%(done)s of %(total)s"), progress, true);
    if (progress.pending) {
      say(interpolate(gettext("Marking attempt %(n)s…"), { n: Math.min(progress.done + 1, progress.total) }, true),
          "marking");
    }
  }

  async function post(url, body) {
    for (let tries = 1; ; tries++) {
      let response;
      try {
        response = await fetch(url, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": config.csrfToken },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (e) {
        if (tries >= 5) throw new Error(gettext("The server cannot be reached."));
        await new Promise((resolve) => setTimeout(resolve, 1000 * tries));
        continue;
      }
      const answer = await response.json().catch(() => ({}));
      if (response.ok) return answer;
      if (response.status >= 500 && tries < 5) {
        await new Promise((resolve) => setTimeout(resolve, 1000 * tries));
        continue;
      }
      throw new Error((answer.error && answer.error.message) || `HTTP ${response.status}`);
    }
  }

  // One marking frame and the attempts of its lane.
  function Lane(index, frame) {
    let frameReady;
    const ready = new Promise((resolve) => { frameReady = resolve; });
    let waiting = null; // {attempt, resolve}

    window.addEventListener("message", (event) => {
      if (event.origin !== config.examOrigin || event.source !== frame.contentWindow) return;
      const data = event.data;
      if (!data || typeof data !== "object" || data.source !== FROM_FRAME) return;
      if (data.type === "ready") frameReady();
      else if (data.type === "marked" && waiting && data.attempt === waiting.attempt) {
        const done = waiting;
        waiting = null;
        done.resolve(data);
      }
    });

    function mark(job) {
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          if (waiting && waiting.attempt === job.attempt) waiting = null;
          resolve({ error: gettext("The exam took too long to mark this attempt.") });
        }, MARK_TIMEOUT_MS);
        waiting = { attempt: job.attempt, resolve: (data) => { clearTimeout(timer); resolve(data); } };
        frame.contentWindow.postMessage({ source: FROM_PAGE, type: "mark", attempt: job.attempt, exam: job.exam,
                                          state: job.state }, config.examOrigin);
      });
    }

    async function run() {
      frame.src = `${config.examOrigin}${config.markingPath}#app=${encodeURIComponent(location.origin)}`;
      await ready;
      let answer = await post(`${config.nextUrl}?after=0&lane=${index}&lanes=${lanes}`);
      show(answer.progress);
      let count = 0;
      while (answer.next && count++ < MAX_ATTEMPTS) {
        const job = answer.next;
        const outcome = await mark(job);
        // `exam`: the totals the exam object itself holds (Numbas), for diagnostics; the server
        // keeps only `values`, what the exam wrote through the SCORM API.
        answer = await post(job.recordUrl, outcome.values ? { values: outcome.values, exam: outcome.exam || null }
          : { error: outcome.error || gettext("The exam could not mark it.") });
        show(answer.progress);
      }
    }
    return { run };
  }

  async function runAll() {
    show(config.progress);
    if (config.progress.pending === 0) return; // the preview is on the page
    say(gettext("Starting…"), "marking");
    const frames = [firstFrame];
    for (let i = 1; i < lanes; i++) {
      const frame = firstFrame.cloneNode(false);
      frame.id = `marking-frame-${i}`;
      frame.title = `${firstFrame.title} (${i + 1})`;
      firstFrame.after(frame);
      frames.push(frame);
    }
    await Promise.all(frames.map((frame, index) => Lane(index, frame).run()));
    say(gettext("Every attempt has been marked. Loading the preview…"), "done");
    location.reload();
  }

  runAll().catch((error) => {
    say(interpolate(gettext("Re-marking stopped: %(reason)s. Reload the page to carry on."),
                    { reason: error.message || String(error) }, true), "error");
  });
})();
