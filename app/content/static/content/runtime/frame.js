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

  const appOrigin = (() => {
    const value = new URLSearchParams(location.hash.slice(1)).get("app") || "";
    try {
      const url = new URL(value);
      return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value ? value : null;
    } catch (e) {
      return null;
    }
  })();

  function toPage(message) {
    if (appOrigin && window.parent !== window) {
      window.parent.postMessage(Object.assign({ source: FROM_RUNTIME }, message), appOrigin);
    }
  }

  // --- the SCORM API ---------------------------------------------------------------------------
  const WRITE_ONLY = new Set(["cmi.exit", "cmi.session_time"]);
  // Numbas also reads and writes keys outside the SCORM data model; they are kept and saved too.
  const EXTRA = /^(numbas\.|cmi\.interactions\.\d+\.staged_answer$)/;
  let extraValues = null; // the live API's numbas.* values, updated by access changes

  function buildApi(state, options) {
    const record = Boolean(options && options.record);
    const save = (key, value) => { if (record) toPage({ type: "set", key, value: String(value) }); };
    const api = new window.Scorm2004API({ autocommit: false, lmsCommitUrl: false, logLevel: 5 });
    const flat = {};
    const extra = {};
    for (const [key, value] of Object.entries(state.values || {})) {
      if (EXTRA.test(key)) extra[key] = value;
      else if (!WRITE_ONLY.has(key)) flat[key] = value;
    }
    for (const [key, value] of Object.entries(state.numbas || {})) extra[`numbas.${key}`] = value;
    if (Object.keys(flat).length) api.loadFromFlattenedJSON(flat, "");
    api.cmi.learner_id = state.learner_id;
    api.cmi.learner_name = state.learner_name;
    api.cmi.entry = state.entry;
    api.cmi.mode = state.mode;
    if (state.mode === "review") api.cmi.credit = "no-credit";

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
