// The live view: numbers and who is taking the exam now, pushed by the server over a websocket
// (insights/consumers.py); the page reconnects by itself if the connection drops. Times are on
// a 24-hour clock in the page's language.
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((format, values) =>
    format.replace(/%\((\w+)\)s/g, (_, name) => String(values[name])));
  const root = document.getElementById("live");
  const status = document.getElementById("live-connection");
  const problems = document.getElementById("live-problems");
  const takingTable = document.getElementById("taking");
  const takingRows = document.getElementById("taking-rows");
  const takingEmpty = document.getElementById("taking-empty");
  const identifierLabel = takingRows.dataset.identifier;
  const lang = document.documentElement.lang || undefined;
  const clock = new Intl.DateTimeFormat(lang, { hour: "2-digit", minute: "2-digit", hour12: false });
  const dayAndClock = new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", hour: "2-digit",
                                                      minute: "2-digit", hour12: false });
  const number = new Intl.NumberFormat(lang, { maximumFractionDigits: 2 });
  let delay = 1000;
  let previous = new Map(); // attempt id -> its row's data, to mark rows that changed

  function when(iso) {
    const date = new Date(iso);
    const today = new Date();
    return (date.toDateString() === today.toDateString() ? clock : dayAndClock).format(date);
  }

  function timeElement(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = when(iso);
    time.title = new Date(iso).toLocaleString(lang, { hour12: false });
    return time;
  }

  function cell(row, label, className) {
    const td = document.createElement("td");
    td.dataset.label = label;
    if (className) td.className = className;
    row.append(td);
    return td;
  }

  function showTaking(list) {
    takingTable.hidden = !list.length;
    takingEmpty.hidden = Boolean(list.length);
    const seen = new Map();
    takingRows.replaceChildren();
    for (const t of list) {
      const tr = document.createElement("tr");
      tr.setAttribute("data-testid", `taking-${t.attempt}`);
      const key = JSON.stringify(t);
      seen.set(t.attempt, key);
      if (previous.size && previous.get(t.attempt) !== key) tr.className = "updated";

      const name = cell(tr, gettext("Student"), "name");
      name.textContent = t.name;
      if (identifierLabel) cell(tr, identifierLabel, "identifier").textContent = t.identifier;
      cell(tr, gettext("Attempt"), "number").textContent = String(t.number);
      cell(tr, gettext("Started"), "started").append(timeElement(t.started_at));

      const progressCell = cell(tr, gettext("Progress"), "progress");
      const progress = document.createElement("span"); // one item beside its label on a phone
      progress.setAttribute("data-testid", "progress");
      progressCell.append(progress);
      if (t.questions) {
        const bar = document.createElement("span");
        bar.className = "progress-bar";
        bar.setAttribute("aria-hidden", "true");
        const fill = document.createElement("span");
        fill.style.width = `${Math.min(100, Math.round((100 * t.answered) / t.questions))}%`;
        bar.append(fill);
        progress.append(bar);
        progress.append(interpolate(gettext("%(answered)s of %(total)s questions"),
                                    { answered: t.answered, total: t.questions }, true));
      } else {
        progress.append(interpolate(gettext("%(answered)s questions answered"), { answered: t.answered }, true));
      }

      const score = cell(tr, gettext("Score"), "number score");
      score.setAttribute("data-testid", "score");
      if (t.score === null) score.textContent = "—";
      else score.textContent = t.max ? `${number.format(t.score)} / ${number.format(t.max)}` : number.format(t.score);

      const saved = cell(tr, gettext("Last saved"), "saved");
      saved.setAttribute("data-testid", "last-saved");
      if (t.last_saved_at) saved.append(timeElement(t.last_saved_at));
      else saved.textContent = gettext("Nothing yet");

      const connected = cell(tr, gettext("Connected"), t.connected ? "connected-yes" : "connected-no");
      connected.setAttribute("data-testid", "connected");
      connected.textContent = t.connected ? gettext("Connected now") : gettext("Not connected");
      takingRows.append(tr);
    }
    previous = seen;
  }

  function show(summary) {
    for (const el of root.querySelectorAll("[data-field]")) {
      const value = summary[el.dataset.field];
      if (value !== undefined) el.textContent = String(value);
    }
    problems.replaceChildren();
    const list = summary.problems || [];
    if (!list.length) {
      const li = document.createElement("li");
      li.textContent = problems.dataset.empty;
      problems.append(li);
    }
    for (const p of list) {
      const li = document.createElement("li");
      li.textContent = `${p.name} (#${p.number}), ${problems.dataset.late} ${when(p.late_at)}`;
      problems.append(li);
    }
    if (summary.taking) showTaking(summary.taking);
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${root.dataset.socket}`);
    socket.addEventListener("open", () => { delay = 1000; });
    socket.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      if (message.type === "summary") {
        show(message);
        status.dataset.state = "live";
        status.textContent = `${status.dataset.live} ${clock.format(new Date(message.at))}`;
      }
    });
    socket.addEventListener("close", (event) => {
      status.dataset.state = "offline";
      if (event.code === 4401 || event.code === 4403) {
        status.textContent = status.dataset.forbidden;
        return;
      }
      status.textContent = status.dataset.offline;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 30000);
    });
  }
  const initial = document.getElementById("live-initial");
  if (initial) showTaking(JSON.parse(initial.textContent).taking || []);
  connect();
})();
