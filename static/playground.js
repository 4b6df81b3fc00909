/* Playground: posts the prompt as JSON and shows the answer, its cost and the runs left. */
(function () {
  "use strict";
  var form = document.getElementById("play-form");
  if (!form) return;
  var out = document.getElementById("play-out"), meta = document.getElementById("play-meta");
  var notice = document.getElementById("play-notice"), runs = document.getElementById("runs");
  var button = document.getElementById("play-run");

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, function (_, k) { return values[k] !== undefined ? values[k] : ""; });
  }
  function showRuns(left) {
    if (left === null || left === undefined) return;
    runs.firstElementChild.textContent = fill(runs.dataset.template, { n: left });
    button.disabled = left <= 0;
    // After the last run, say why the button went grey.
    if (left <= 0 && !notice.textContent) notice.textContent = notice.dataset.usedUp;
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var prompt = form.elements.prompt.value;
    button.disabled = true;
    notice.textContent = "";
    out.textContent = out.dataset.wait;
    meta.textContent = "";
    fetch(form.action, {
      method: "POST",
      headers: { "content-type": "application/json", "accept": "application/json" },
      body: JSON.stringify({ prompt: prompt })
    }).then(function (r) {
      return r.json().then(function (body) { return { ok: r.ok, body: body }; });
    }).then(function (res) {
      var b = res.body;
      if (!res.ok) {
        out.textContent = "";
        notice.textContent = b.error || "Error";
        showRuns(b.runs_left);
        if (b.runs_left !== 0) button.disabled = false;
        return;
      }
      out.textContent = b.text;
      meta.textContent = fill(meta.dataset.template, {
        model: b.model, "in": b.usage.input_tokens, out: b.usage.output_tokens,
        credits: b.cost_credits, usd: b.cost_usd
      });
      showRuns(b.runs_left);
    }).catch(function () {
      out.textContent = "";
      button.disabled = false;
    });
  });
})();
