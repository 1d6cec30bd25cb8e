// A small SCORM 2004 exam that uses the run-time the way a Numbas exam does: it finds
// API_1484_11 through window.parent, reads entry/mode/suspend_data/location, writes
// objectives, interactions, scores and suspend_data as answers change, passes numbas.* keys,
// and ends with Terminate without Commit.
(function () {
  "use strict";
  const QUESTIONS = [
    { id: "q0", name: "Arithmetic", parts: [
      { id: "q0p0", prompt: "What is 2 + 2?", answer: "4", marks: 1 },
      { id: "q0p1", prompt: "What is 6 × 7?", answer: "42", marks: 1 },
    ] },
    { id: "q1", name: "Primes", parts: [
      { id: "q1p0", prompt: "What is the smallest prime greater than 10?", answer: "11", marks: 2 },
    ] },
  ];
  const parts = QUESTIONS.flatMap((q, qi) => q.parts.map((p) => Object.assign({ question: qi }, p)));
  const maxScore = parts.reduce((n, p) => n + p.marks, 0);

  function findAPI(win) {
    for (let depth = 0; win && depth < 10; depth++) {
      if (win.API_1484_11) return win.API_1484_11;
      if (win.parent === win) break;
      win = win.parent;
    }
    return null;
  }
  const api = findAPI(window.parent) || (window.top.opener && findAPI(window.top.opener));
  const fail = (message) => { const e = document.getElementById("error"); e.textContent = message; e.hidden = false; };
  if (!api) return fail("No SCORM API found.");
  api.Initialize("");
  if (api.GetLastError() !== "0") return fail("The SCORM API did not initialise.");

  const get = (k) => api.GetValue(k);
  const set = (k, v) => api.SetValue(k, String(v));
  const review = get("cmi.mode") === "review";
  const resume = get("cmi.entry") === "resume";
  let state = { answers: {}, started: Date.now() };
  if (resume || review) {
    try { state = Object.assign(state, JSON.parse(get("cmi.suspend_data") || "{}")); } catch (e) { /* fresh */ }
  }
  get("numbas.user_role");
  // Time allowed, with any extension the instructor gave, read again when the page says it
  // changed — as Numbas does (Exam.updateDurationExtension on "numbas change" messages).
  const DURATION_MINUTES = 30;
  function showDuration() {
    // As Numbas's Exam.updateDurationExtension: numbas.disable_duration "true" removes the limit.
    const unlimited = get("numbas.disable_duration") === "true";
    const amount = parseFloat(get("numbas.duration_extension.amount")) || 0;
    const units = get("numbas.duration_extension.units");
    const extra = units === "minutes" ? amount : units === "percent" ? amount / 100 * DURATION_MINUTES : 0;
    document.getElementById("duration").textContent = unlimited ? "no limit" : String(DURATION_MINUTES + extra);
    document.getElementById("duration-units").hidden = unlimited;
  }
  showDuration();
  window.addEventListener("message", (event) => {
    if (event.source === window.parent && event.data && event.data["numbas change"] === "exam duration extension") {
      showDuration();
    }
  });
  document.getElementById("welcome").textContent = `Hello, ${get("cmi.learner_name")}.`;
  document.getElementById("max").textContent = String(maxScore);
  document.getElementById("mode-note").hidden = !review;

  if (!resume && !review) {
    set("cmi.completion_status", "incomplete");
    set("cmi.score.min", 0);
    set("cmi.score.max", maxScore);
    QUESTIONS.forEach((q, qi) => {
      set(`cmi.objectives.${qi}.id`, q.id);
      set(`cmi.objectives.${qi}.description`, q.name);
    });
    parts.forEach((p, pi) => {
      set(`cmi.interactions.${pi}.id`, p.id);
      set(`cmi.interactions.${pi}.type`, "numeric");
      set(`cmi.interactions.${pi}.objectives.0.id`, QUESTIONS[p.question].id);
      set(`cmi.interactions.${pi}.weighting`, p.marks);
      set(`cmi.interactions.${pi}.correct_responses.0.pattern`, p.answer);
      set(`cmi.interactions.${pi}.description`, p.prompt);
    });
  }

  function score() {
    return parts.reduce((n, p) => n + (state.answers[p.id] === p.answer ? p.marks : 0), 0);
  }

  function answer(pi, value) {
    const p = parts[pi];
    state.answers[p.id] = value;
    set(`cmi.interactions.${pi}.learner_response`, value || "0");
    set(`cmi.interactions.${pi}.staged_answer`, value);
    markPart(pi);
    set("cmi.location", String(p.question));
    set("cmi.suspend_data", JSON.stringify(state));
    render();
  }

  // The part's, its question's and the exam's scores, from this version's marking.
  function markPart(pi) {
    const p = parts[pi];
    const correct = state.answers[p.id] === p.answer;
    set(`cmi.interactions.${pi}.result`, correct ? p.marks : 0);  // like Numbas: the part's score
    const q = QUESTIONS[p.question];
    const qScore = q.parts.reduce((n, qp) => n + (state.answers[qp.id] === qp.answer ? qp.marks : 0), 0);
    const qMax = q.parts.reduce((n, qp) => n + qp.marks, 0);
    set(`cmi.objectives.${p.question}.score.raw`, qScore);
    set(`cmi.objectives.${p.question}.score.max`, qMax);
    set(`cmi.objectives.${p.question}.score.min`, 0);
    set(`cmi.objectives.${p.question}.score.scaled`, (qScore / qMax).toFixed(4));
    set(`cmi.objectives.${p.question}.completion_status`, "completed");
    set(`cmi.objectives.${p.question}.success_status`, qScore === qMax ? "passed" : "failed");
    set("cmi.score.raw", score());
    set("cmi.score.scaled", (score() / maxScore).toFixed(4));
    set("cmi.progress_measure", (Object.keys(state.answers).length / parts.length).toFixed(2));
  }

  // Like Numbas, a resumed attempt's answers are submitted again, so they are marked by this
  // version's marking; scores are written only where they differ from what is stored.
  if (resume && !review) {
    parts.forEach((p, pi) => {
      const stored = get(`cmi.interactions.${pi}.result`);
      const now = state.answers[p.id] === p.answer ? p.marks : 0;
      if (state.answers[p.id] !== undefined && String(now) !== stored) markPart(pi);
    });
  }

  function render() {
    const container = document.getElementById("questions");
    container.textContent = "";
    QUESTIONS.forEach((q) => {
      const section = document.createElement("section");
      section.className = "question";
      section.innerHTML = `<h2></h2>`;
      section.querySelector("h2").textContent = q.name;
      q.parts.forEach((p) => {
        const pi = parts.indexOf(parts.find((x) => x.id === p.id));
        const label = document.createElement("label");
        label.htmlFor = `answer-${p.id}`;
        label.textContent = p.prompt;
        const input = document.createElement("input");
        input.id = `answer-${p.id}`;
        input.name = p.id;
        input.inputMode = "numeric";
        input.value = state.answers[p.id] || "";
        input.disabled = review || ended;
        input.addEventListener("change", () => answer(pi, input.value.trim()));
        const feedback = document.createElement("span");
        feedback.className = "feedback";
        if (state.answers[p.id] !== undefined) {
          const ok = state.answers[p.id] === p.answer;
          feedback.textContent = ok ? "✓" : "✗";
          feedback.classList.add(ok ? "correct" : "incorrect");
        }
        section.append(label, input, feedback);
      });
      container.append(section);
    });
    document.getElementById("score").textContent = String(score());
    document.getElementById("end-exam").hidden = review || ended;
  }

  let ended = false;
  document.getElementById("end-exam").addEventListener("click", () => {
    ended = true;
    set("cmi.completion_status", "completed");
    set("cmi.success_status", score() >= maxScore / 2 ? "passed" : "failed");
    set("cmi.score.raw", score());
    set("cmi.score.scaled", (score() / maxScore).toFixed(4));
    set("cmi.exit", "normal");
    set("cmi.session_time", "PT1M0S");
    api.Terminate("");  // like Numbas: no Commit before Terminate
    document.getElementById("final-score").textContent = `${score()} / ${maxScore}`;
    document.getElementById("ended").hidden = false;
    render();
  });
  window.addEventListener("pagehide", () => {
    if (ended || review) return;
    set("cmi.exit", "suspend");
    api.Terminate("");
  });
  render();
})();
