// Follow reports that are being written: poll each one's status every second, move its
// progress bar, and swap in the download link (or the error) when it finishes.
document.addEventListener("DOMContentLoaded", () => {
  // Translations come from Django's JavaScript catalogue (/jsi18n/); without it, English.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const INTERVAL_MS = 1000;
  const MAX_POLLS = 3600; // an hour; the page says to reload after that
  const MAX_FAILURES = 10;

  function follow(row) {
    const stateLabel = row.querySelector("[data-role=state-label]");
    const stateCell = row.querySelector("[data-role=state]");
    const rowsCell = row.querySelector("[data-role=rows]");
    const action = row.querySelector("[data-role=action]");
    let progress = row.querySelector("progress");
    let polls = 0;
    let failures = 0;

    function finish(message) {
      if (progress) progress.remove();
      if (message) {
        const note = document.createElement("span");
        note.dataset.role = "error";
        note.style.color = "var(--bad)";
        note.textContent = " " + message;
        stateCell.appendChild(note);
      }
    }

    function poll() {
      polls += 1;
      if (polls > MAX_POLLS) {
        finish(gettext("Still not finished: reload the page to check again."));
        return;
      }
      fetch(row.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then((response) => {
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          return response.json();
        })
        .then((status) => {
          failures = 0;
          row.dataset.state = status.state;
          stateLabel.textContent = status.state_label;
          rowsCell.textContent = status.rows;
          if (progress) {
            progress.value = status.progress;
            progress.textContent = `${status.progress}%`;
          }
          if (status.state === "done") {
            finish("");
            const link = document.createElement("a");
            link.className = "button secondary";
            link.href = status.download_url;
            link.dataset.testid = "report-download";
            link.setAttribute("download", "");
            link.textContent = gettext("Download");
            action.replaceChildren(link);
          } else if (status.state === "failed") {
            finish(status.error || gettext("The report failed."));
          } else {
            setTimeout(poll, INTERVAL_MS);
          }
        })
        .catch(() => {
          failures += 1;
          if (failures >= MAX_FAILURES) finish(gettext("Lost contact with the server: reload the page."));
          else setTimeout(poll, INTERVAL_MS * failures);
        });
    }

    setTimeout(poll, INTERVAL_MS);
  }

  document.querySelectorAll("tr[data-report]").forEach((row) => {
    if (row.dataset.state === "queued" || row.dataset.state === "running") follow(row);
  });
});
