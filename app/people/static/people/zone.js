// Tells the server the browser's time zone, once per session (when it does not know it yet or it
// changed), so that pages show times in the viewer's zone. When that changes the zone in use and
// the page shows times, the page is loaded again (a GET) to show them in it.
// Also offers window.numbasWhen.format(date): a time in the page's language and the viewer's
// zone, on a 24-hour clock, for scripts that show times.
(function () {
  "use strict";
  var me = document.getElementById("viewer-zone");
  if (!me) return;
  var lang = document.documentElement.lang || undefined;

  window.numbasWhen = {
    zone: me.dataset.zone,
    format: function (date, withSeconds) {
      var options = {day: "numeric", month: "short", hour: "2-digit", minute: "2-digit",
                     hourCycle: "h23", timeZone: me.dataset.zone, timeZoneName: "short"};
      if (withSeconds) options.second = "2-digit";
      try {
        return new Intl.DateTimeFormat(lang, options).format(date);
      } catch (e) {
        delete options.timeZone;
        return new Intl.DateTimeFormat(lang, options).format(date);
      }
    },
  };

  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone || zone === me.dataset.known || !window.fetch) return;
  var body = new URLSearchParams();
  body.set("zone", zone);
  fetch(me.dataset.url, {
    method: "POST", credentials: "same-origin", body: body,
    headers: {"X-CSRFToken": me.dataset.csrf, "Accept": "application/json"},
  }).then(function (response) {
    return response.ok ? response.json() : null;
  }).then(function (answer) {
    if (!answer || !answer.changed) return;
    if (document.querySelector("time[datetime], [data-when]")) {
      window.location.replace(window.location.href);
      return;
    }
    me.dataset.known = zone;
    me.dataset.zone = window.numbasWhen.zone = answer.zone;
    document.querySelectorAll("[data-zone-name]").forEach(function (name) { name.textContent = answer.zone; });
  }).catch(function () { /* times stay in the site's zone */ });
})();
