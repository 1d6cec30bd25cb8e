// LTI platform storage (1EdTech "Client Side postMessages": lti.put_data / lti.get_data).
// The login page puts a secret for this browser into the platform's storage, then goes on to
// the platform's authorization endpoint; the launch page, when our cookie did not come back,
// gets the secret from there and posts the launch again with it. Without an answer in time the
// login goes on anyway (the cookie may work) and the launch shows the tool's error page.
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("lti-storage").textContent);
  var TIMEOUT_MS = 5000;

  function targetWindow() {
    var parent = window.parent;
    if (config.target === "_parent" || !parent || parent === window) return parent || window.opener;
    try { return parent.frames[config.target] || parent; } catch (e) { return parent; }
  }

  function send(subject, fields, done) {
    var messageId = subject + "-" + Math.random().toString(36).slice(2);
    var timer = setTimeout(function () { finish(null); }, TIMEOUT_MS);
    function finish(message) {
      clearTimeout(timer);
      window.removeEventListener("message", listener);
      done(message);
    }
    function listener(event) {
      var data = event.data || {};
      if (event.origin !== config.origin || data.subject !== subject + ".response" || data.message_id !== messageId) return;
      finish(data);
    }
    window.addEventListener("message", listener);
    var message = {subject: subject, message_id: messageId};
    Object.keys(fields).forEach(function (k) { message[k] = fields[k]; });
    var target = targetWindow();
    if (!target) { finish(null); return; }
    target.postMessage(message, config.origin);
  }

  if (config.action === "put") {
    send("lti.put_data", {key: config.key, value: config.value}, function () { window.location.href = config.next; });
  } else {
    send("lti.get_data", {key: config.key}, function (answer) {
      var form = document.getElementById("lti-storage-continue");
      form.action = config.next;
      var fields = Object.assign({}, config.fields, {lti_storage_value: (answer && !answer.error && answer.value) || "-"});
      Object.keys(fields).forEach(function (name) {
        var input = document.createElement("input");
        input.type = "hidden"; input.name = name; input.value = fields[name];
        form.appendChild(input);
      });
      form.submit();
    });
  }
})();
