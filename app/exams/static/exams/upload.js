// Upload an exam package with a progress bar; the server answers JSON.
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
        status.textContent = interpolate(
          gettext("Uploaded “%(title)s” as version %(version)s (%(questions)s questions)."), body, true);
        status.dataset.state = "ok";
        setTimeout(() => window.location.reload(), 800);
      } else {
        status.textContent = body.error || interpolate(gettext("The upload failed (HTTP %(status)s)."),
                                                      { status: request.status }, true);
        status.dataset.state = "error";
        progress.hidden = true;
      }
    });
    request.addEventListener("error", () => {
      status.textContent = gettext("The upload was interrupted. Check your connection and try again.");
      status.dataset.state = "error";
      progress.hidden = true;
    });
    progress.hidden = false;
    progress.value = 0;
    status.textContent = gettext("Uploading…");
    status.dataset.state = "busy";
    request.send(new FormData(form));
  });
});
