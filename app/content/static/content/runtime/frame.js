// The exam runtime, on the exam-content origin: the SCORM 2004 API (scorm-again) that a
// Numbas exam finds by walking window.parent, and the exam's own iframe beside it.
//
// It holds no secret and sends no request of its own. The attempt page (on the application's
// origin, this frame's parent) gives it the exam's starting state and receives every change the
// exam makes; the attempt page alone talks to the server. Messages go by postMessage with exact
// checks in both directions: this frame accepts only its parent window at the origin named in
// its address (#app=<origin>), and posts only to that origin.
(function () {
  "use strict";
  const FROM_PAGE = "numbas-lti-attempt";
  const FROM_RUNTIME = "numbas-lti-runtime";

  const { appOrigin, poster, loadedApi } = window.NumbasLtiFrame;
  const toPage = poster(FROM_RUNTIME);

  // --- the SCORM API ---------------------------------------------------------------------------
  let extraValues = null; // the live API's numbas.* values, updated by access changes

  function buildApi(state, options) {
    const record = Boolean(options && options.record);
    const { api, extra } = loadedApi(state, (key, value) => {
      if (record) toPage({ type: "set", key, value: String(value) });
    });
    // The page notices an exam that never starts (its scripts failed): it waits for this.
    api.on("Initialize", () => toPage({ type: "initialized" }));
    if (record) {
      api.on("Commit", () => toPage({ type: "commit" }));
      api.on("Terminate", () => toPage({ type: "terminate" }));
    }
    return { api, extra };
  }

  // --- messages from the attempt page -----------------------------------------------------------
  const examFrame = () => document.getElementById("exam");
  let started = false;

  function examAddress(path) {
    // Only an exam of this origin's /exams/ folder is ever loaded here.
    try {
      const url = new URL(path, location.origin);
      return url.origin === location.origin && url.pathname.startsWith("/exams/") ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function start(message) {
    const address = examAddress(message.exam);
    if (started || !address || !message.state) return;
    started = true;
    const built = buildApi(message.state, { record: message.record === true });
    extraValues = built.extra;
    window.API_1484_11 = built.api;
    examFrame().addEventListener("load", () => toPage({ type: "exam-loaded" }), { once: true });
    examFrame().src = address;
  }

  // An instructor changed the student's access (e.g. extra time) while the exam is open: the new
  // numbas.* values replace the old ones, and the exam is told to read them again with the window
  // message a Numbas exam listens for ("numbas change": "exam duration extension").
  function accessChanged(numbas) {
    if (!extraValues || !numbas || typeof numbas !== "object") return;
    for (const [key, value] of Object.entries(numbas)) extraValues[`numbas.${key}`] = String(value);
    const frame = examFrame();
    if (frame && frame.contentWindow) {
      frame.contentWindow.postMessage({ "numbas change": "exam duration extension" }, location.origin);
    }
  }

  window.addEventListener("message", (event) => {
    if (!appOrigin || event.source !== window.parent || event.origin !== appOrigin) return;
    const data = event.data;
    if (!data || typeof data !== "object" || data.source !== FROM_PAGE) return;
    if (data.type === "start") start(data);
    else if (data.type === "access") accessChanged(data.numbas);
  });

  window.numbasLtiRuntime = {
    // A fresh API built the same way as the exam's, which reports nothing (conformance checks).
    newApi: (state) => buildApi(Object.assign({ values: {}, learner_id: "0", learner_name: "", entry: "ab-initio",
                                                mode: "normal" }, state), { record: false }).api,
  };
  toPage({ type: "ready" });
})();
