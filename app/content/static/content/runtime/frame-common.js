// What the exam runtime frame (frame.js) and the marking frame (remark.js) share, on the
// exam-content origin: the application's origin they answer to, posting to it, and a SCORM 2004
// API (scorm-again) loaded with an attempt's state.
window.NumbasLtiFrame = (function () {
  "use strict";
  // Written by the exam, never read back from a stored attempt.
  const WRITE_ONLY = new Set(["cmi.exit", "cmi.session_time"]);
  // Numbas also reads and writes keys outside the SCORM data model; they are kept beside the API.
  const EXTRA = /^(numbas\.|cmi\.interactions\.\d+\.staged_answer$)/;

  // The parent's origin, named in this frame's address (#app=<origin>), or null.
  const appOrigin = (() => {
    const value = new URLSearchParams(location.hash.slice(1)).get("app") || "";
    try {
      const url = new URL(value);
      return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value ? value : null;
    } catch (e) {
      return null;
    }
  })();

  // The attempt page's language and the exam frame's name in it (#lang=de&title=Prüfung), for
  // screen readers: this page has no other text. Plain text only; anything else is ignored.
  (function followPageLanguage() {
    const hash = new URLSearchParams(location.hash.slice(1));
    const lang = hash.get("lang") || "";
    const title = (hash.get("title") || "").slice(0, 100);
    if (/^[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*$/.test(lang)) document.documentElement.lang = lang;
    if (title) {
      document.title = title;
      const name = () => document.querySelectorAll("iframe[title]").forEach((el) => { el.title = title; });
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", name);
      else name();
    }
  })();

  // A function posting messages tagged `source` to the parent window at appOrigin only.
  function poster(source) {
    return function toPage(message) {
      if (appOrigin && window.parent !== window) {
        window.parent.postMessage(Object.assign({ source }, message), appOrigin);
      }
    };
  }

  // An API serving `state` (values, numbas keys, learner, entry, mode). `onWrite(key, value, extra)`
  // hears every value the exam sets successfully (`extra`: a key outside the data model).
  function loadedApi(state, onWrite) {
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
    const isExtra = (element) => EXTRA.test(String(element)) && api.isInitialized() && !api.isTerminated();
    api.GetValue = function (element) {
      if (isExtra(element)) {
        api.lastErrorCode = "0";
        return extra[element] !== undefined ? String(extra[element]) : "";
      }
      return getValue(element);
    };
    api.SetValue = function (element, value) {
      if (isExtra(element)) {
        api.lastErrorCode = "0";
        extra[element] = String(value);
        onWrite(element, value, true);
        return "true";
      }
      const result = setValue(element, value);
      if (result === "true") onWrite(element, value, false);
      return result;
    };
    return { api, extra };
  }

  return { appOrigin, poster, loadedApi };
})();
