// The live view: numbers pushed by the server over a websocket (insights/consumers.py); the
// page reconnects by itself if the connection drops.
(function () {
  "use strict";
  const root = document.getElementById("live");
  const status = document.getElementById("live-connection");
  const problems = document.getElementById("live-problems");
  let delay = 1000;

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
      li.textContent = `${p.name} (#${p.number}), ${problems.dataset.late} ${new Date(p.late_at).toLocaleTimeString()}`;
      problems.append(li);
    }
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
        status.textContent = `${status.dataset.live} ${new Date(message.at).toLocaleTimeString()}`;
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
  connect();
})();
