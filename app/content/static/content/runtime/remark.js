// The marking frame, on the exam-content origin: it marks attempts again with an exam's own
// code, for the instructor's "Re-mark all attempts" page (remarking/static/remarking/remark.js),
// which frames it.
//
// For each attempt the page sends ("mark": the exam's address and the attempt's stored values),
// a fresh exam frame is loaded with a SCORM 2004 API (scorm-again) that serves those values as a
// resumed attempt. A Numbas exam then restores every answer and submits it again, so its
// current marking code marks it; once the exam says it is ready, each question is asked to
// update its score, which the exam writes through the API (objectives, interactions, total).
// The API keeps what the exam writes here, in this frame, and sends nothing anywhere: the
// attempt's own store is never written while marking. Only the scores are then posted to the
// page ("marked"), which sends them to the server as a preview.
//
// An exam that is not Numbas (such as the project's demo exam) is done when it has initialised
// and written nothing more for a short while after loading.
//
// Messages: only from the parent window at the origin named in this frame's address
// (#app=<origin>), and only to it.
(function () {
  "use strict";
  const FROM_PAGE = "numbas-lti-remark";
  const FROM_FRAME = "numbas-lti-marker";
  const MARK_TIMEOUT_MS = 60000;
  const QUIET_MS = 60;
  const POLL_MS = 25;
  const SCORE_KEY = /^cmi\.(score\.(raw|scaled|min|max)|objectives\.\d+\.(score\.(raw|scaled|min|max)|success_status)|interactions\.\d+\.result)$/;
  const { appOrigin, poster, loadedApi } = window.NumbasLtiFrame;
  const toPage = poster(FROM_FRAME);

  // A SCORM API serving one attempt's values; what the exam writes is kept in `written` only.
  function buildApi(state, written, activity) {
    const { api } = loadedApi(state, (key, value, extra) => {
      if (!extra) written[key] = String(value);
    });
    const initialize = api.Initialize.bind(api);
    const setValue = api.SetValue;
    api.Initialize = function (parameter) {
      const result = initialize(parameter);
      activity.initialised = true;
      activity.lastAt = Date.now();
      return result;
    };
    api.SetValue = function (element, value) {
      if (activity.detached) return "true"; // after marking (e.g. the exam's unload handlers): ignored
      activity.lastAt = Date.now();
      return setValue(element, value);
    };
    return api;
  }

  function examAddress(path) {
    try {
      const url = new URL(path, location.origin);
      return url.origin === location.origin && url.pathname.startsWith("/exams/") ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  // The Numbas exam object in the exam's window: Numbas.exam (Numbas up to 9), or the
  // <numbas-exam> element's exam (Numbas 10).
  function numbasExam(win) {
    try {
      if (!win || !win.Numbas) return null;
      if (win.Numbas.exam && win.Numbas.exam.signals) return win.Numbas.exam;
      const element = win.document.querySelector("numbas-exam");
      return element && element.exam && element.exam.signals ? element.exam : null;
    } catch (e) {
      return null;
    }
  }

  const delay = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function examReport(exam) {
    const questions = (exam.questionList || []).map((q) => ({
      number: q.number, score: q.score, marks: q.marks,
      parts: (q.parts || []).map((p) => ({
        path: p.path, score: p.score, marks: p.marks,
        gaps: (p.gaps || []).map((g) => ({ path: g.path, score: g.score, marks: g.marks })),
      })),
    }));
    return { score: exam.score, marks: exam.mark, questions };
  }

  let current = null; // {attempt, frame, activity}

  async function mark(job) {
    const address = examAddress(job.exam);
    if (!address || !job.state || typeof job.state !== "object") throw new Error("Not an exam of this site.");
    if (current) { current.activity.detached = true; current.frame.remove(); }
    const written = {};
    const activity = { initialised: false, lastAt: 0, detached: false, loaded: false };
    window.API_1484_11 = buildApi(job.state, written, activity);
    const frame = document.createElement("iframe");
    frame.id = "exam";
    frame.title = "Exam";
    frame.addEventListener("load", () => { activity.loaded = true; activity.lastAt = Math.max(activity.lastAt, Date.now()); });
    current = { attempt: job.attempt, frame, activity };
    document.getElementById("exam-holder").append(frame);
    frame.src = address;

    const until = Date.now() + MARK_TIMEOUT_MS;
    let report = null;
    while (Date.now() < until) {
      await delay(POLL_MS);
      const win = frame.contentWindow;
      const exam = numbasExam(win);
      if (exam) {
        // Ready: every answered part has been submitted again with this version's marking.
        await Promise.race([new Promise((resolve) => exam.signals.on("ready", resolve)), delay(until - Date.now())]);
        if (exam.loading) throw new Error("The exam did not finish loading the attempt.");
        for (const question of exam.questionList || []) question.updateScore();
        report = examReport(exam);
        break;
      }
      let numbasPresent = false;
      try { numbasPresent = Boolean(win && win.Numbas); } catch (e) { /* not readable */ }
      if (!numbasPresent && activity.loaded && activity.initialised && Date.now() - activity.lastAt >= QUIET_MS) break;
    }
    if (Date.now() >= until) throw new Error("The exam took too long to mark this attempt.");
    activity.detached = true;
    const values = {};
    for (const [key, value] of Object.entries(written)) if (SCORE_KEY.test(key)) values[key] = value;
    results[job.attempt] = { values, exam: report, written: Object.assign({}, written) };
    return { values, exam: report };
  }

  const results = {};
  let queue = Promise.resolve();

  window.addEventListener("message", (event) => {
    if (!appOrigin || event.source !== window.parent || event.origin !== appOrigin) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.source !== FROM_PAGE || data.type !== "mark") return;
    const job = { attempt: data.attempt, exam: data.exam, state: data.state };
    queue = queue.then(() => mark(job).then(
      (result) => toPage({ type: "marked", attempt: job.attempt, values: result.values, exam: result.exam }),
      (error) => toPage({ type: "marked", attempt: job.attempt, error: String((error && error.message) || error) }),
    ));
  });

  // For tests and diagnostics: what each attempt's exam wrote while it was marked here.
  window.numbasLtiMarker = { results };
  toPage({ type: "ready" });
})();
