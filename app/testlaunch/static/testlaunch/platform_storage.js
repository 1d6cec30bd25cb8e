// The demo LMS's side of LTI platform storage (1EdTech "Client Side postMessages"): the tool,
// shown in this page's frame, asks it to keep a value (lti.put_data) and to give it back
// (lti.get_data). Only messages from the tool's origin are answered, and only to that origin;
// values live in this page for as long as it is open.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("platform-storage").textContent);
  var stored = {};
  var SUBJECTS = ["lti.capabilities", "lti.put_data", "lti.get_data"];

  function reply(event, message) {
    if (event.source) event.source.postMessage(message, event.origin);
  }

  window.addEventListener("message", function (event) {
    var data = event.data;
    if (event.origin !== config.toolOrigin || !data || typeof data !== "object" || typeof data.subject !== "string"
        || /\.response$/.test(data.subject)) return;
    var answer = {subject: data.subject + ".response", message_id: data.message_id};
    if (data.message_id === undefined || data.message_id === null || data.message_id === "") {
      answer.error = {code: "bad_request", message: "message_id is required"};
    } else if (SUBJECTS.indexOf(data.subject) < 0) {
      answer.error = {code: "unsupported_subject", message: "unsupported subject " + data.subject};
    } else if (data.subject === "lti.capabilities") {
      answer.supported_messages = SUBJECTS.map(function (subject) { return {subject: subject}; });
    } else if (typeof data.key !== "string" || !data.key) {
      answer.error = {code: "bad_request", message: "key is required"};
    } else if (data.subject === "lti.put_data") {
      if (typeof data.value !== "string") {
        answer.error = {code: "bad_request", message: "value must be a string"};
      } else {
        stored[data.key] = data.value;
        answer.key = data.key;
        answer.value = data.value;
      }
    } else {
      answer.key = data.key;
      answer.value = Object.prototype.hasOwnProperty.call(stored, data.key) ? stored[data.key] : null;
    }
    reply(event, answer);
  });
})();
