// Behaviour the pages declare with data attributes, so that no inline script is needed
// (the Content-Security-Policy allows scripts from this site only).
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.hasAttribute("data-no-submit")) { ev.preventDefault(); return; }
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); }
  });
  document.addEventListener("change", function (ev) {
    var el = ev.target;
    if (el.hasAttribute && el.hasAttribute("data-autosubmit") && el.form) { el.form.submit(); }
  });
  // An order page waits for the payment provider: reload once the order leaves "pending".
  var order = document.querySelector("[data-poll-order]");
  if (order) {
    var url = order.getAttribute("data-poll-order");
    var poll = function () {
      fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (o) {
        if (o.status && o.status !== "pending") { window.location.reload(); } else { setTimeout(poll, 2500); }
      }).catch(function () { setTimeout(poll, 5000); });
    };
    setTimeout(poll, 2500);
  }
})();
