// LTI Dynamic Registration 1.0: when the registration is done, the tool tells the platform's page
// that framed or opened it with {subject: "org.imsglobal.lti.close"}, and the platform closes its
// dialog. A registration confirmed in a window of its own (a signed-in administrator, never inside
// another site's frame) tells the page that opened it: our page in the platform's frame, which
// passes the message on to the platform.
(function () {
  "use strict";
  var CLOSE = {subject: "org.imsglobal.lti.close"};

  function close() {
    if (window.parent && window.parent !== window) window.parent.postMessage(CLOSE, "*");
    if (window.opener && window.opener !== window) window.opener.postMessage(CLOSE, "*");
  }

  Array.prototype.forEach.call(document.querySelectorAll("[data-lti-close]"), function (button) {
    button.addEventListener("click", close);
  });
  if (document.querySelector("[data-lti-close-now]")) close();
  if (document.querySelector("[data-lti-relay]")) {
    window.addEventListener("message", function (event) {
      var data = event.data || {};
      if (event.origin === window.location.origin && data.subject === CLOSE.subject && window.parent !== window) {
        window.parent.postMessage(CLOSE, "*");
      }
    });
  }
})();
