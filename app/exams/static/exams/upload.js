// Upload an exam package with a progress bar; the server answers JSON.
// The outcome stays on the page: a failure until the next upload, a success across the reload that
// shows the new version (kept in sessionStorage for that one reload), until the next action.
document.addEventListener("DOMContentLoaded", () => {
  // Translations come from Django's JavaScript catalogue (/jsi18n/); without it, English.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const form = document.getElementById("exam-upload");
  if (!form) return;
  const progress = document.getElementById("exam-upload-progress");
  const status = document.getElementById("exam-upload-status");
  const KEPT = "numbas-lti-upload-message";

  function show(text, state) {
    status.textContent = text;
    status.dataset.state = state;
    status.className = "notice" + (state === "ok" ? " ok" : state === "error" ? " error" : "");
    status.setAttribute("role", state === "error" ? "alert" : "status");
  }

  try {
    const kept = window.sessionStorage.getItem(KEPT);
    if (kept) {
      window.sessionStorage.removeItem(KEPT);
      show(kept, "ok");
    }
  } catch (e) { /* storage refused (a sandboxed frame): the page shows the new version anyway */ }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) progress.value = Math.round((100 * e.loaded) / e.total);
    });
    request.addEventListener("load", () => {
      let body = {};
      try { body = JSON.parse(request.responseText); } catch (e) { /* not JSON */ }
      if (request.status === 201) {
        const questions = Number(body.questions) || 0;
        const text = interpolate(
          ngettext("Uploaded “%(title)s” as version %(version)s (%(questions)s question).",
                   "Uploaded “%(title)s” as version %(version)s (%(questions)s questions).", questions),
          { title: body.title, version: body.version, questions: questions }, true);
        show(text, "ok");
        progress.hidden = true;
        let kept = false;
        try { window.sessionStorage.setItem(KEPT, text); kept = true; } catch (e) { /* see above */ }
        // The page reloads to show the new version; the message comes back with it. Without
        // storage it stays here instead, with a link to the updated page.
        if (kept) {
          window.location.reload();
        } else {
          const link = document.createElement("a");
          link.href = window.location.pathname;
          link.textContent = gettext("Show the new version");
          status.append(" ", link);
        }
      } else {
        show(body.error || interpolate(gettext("The upload failed (HTTP %(status)s)."),
                                       { status: request.status }, true), "error");
        progress.hidden = true;
      }
    });
    request.addEventListener("error", () => {
      show(gettext("The upload was interrupted. Check your connection and try again."), "error");
      progress.hidden = true;
    });
    progress.hidden = false;
    progress.value = 0;
    show(gettext("Uploading…"), "busy");
    request.send(new FormData(form));
  });
});
