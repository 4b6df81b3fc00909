/* Pricing page: live filtering, a currency toggle and the cost calculator.
   Money is exact: prices are integer micro-dollars per 1M tokens and all sums use BigInt. */
(function () {
  "use strict";
  var form = document.getElementById("rate-filters");
  var table = document.getElementById("rates");
  var count = document.getElementById("rate-count");

  if (form && table) {
    var rows = Array.prototype.slice.call(table.tBodies[0].rows).filter(function (r) { return r.dataset.id; });
    var q = form.elements.q, vendor = form.elements.vendor, kind = form.elements.kind;
    var rateNote = count ? count.textContent.split(" · ")[1] : "";
    var haystack = function (r) {
      if (!r._hay) {
        r._hay = [r.dataset.id, r.cells[0].textContent, r.dataset.v, r.dataset.a || ""].join(" ").toLowerCase();
      }
      return r._hay;
    };
    var apply = function () {
      var needle = q.value.trim().toLowerCase(), shown = 0;
      rows.forEach(function (r) {
        var ok = (!vendor.value || r.dataset.v === vendor.value) &&
                 (!kind.value || r.dataset.k === kind.value) &&
                 (!needle || haystack(r).indexOf(needle) >= 0);
        r.hidden = !ok;
        if (ok) shown++;
      });
      if (count) {
        count.textContent = count.dataset.template.replace("{n}", shown).replace("{total}", rows.length) +
          (rateNote ? " · " + rateNote : "");
      }
      var url = new URL(window.location.href);
      [["q", q.value.trim()], ["vendor", vendor.value], ["kind", kind.value]].forEach(function (kv) {
        if (kv[1]) url.searchParams.set(kv[0], kv[1]); else url.searchParams.delete(kv[0]);
      });
      window.history.replaceState(null, "", url);
      // The language links keep the filters, like the address bar.
      Array.prototype.forEach.call(document.querySelectorAll("a.lang-switch, .lang-footer a"), function (a) {
        a.search = url.search;
      });
    };
    // A page the server already filtered lacks the other rows: keep filtering through the server.
    var partial = count && rows.length < Number(count.dataset.total);
    if (!partial) {
      form.addEventListener("submit", function (ev) { ev.preventDefault(); apply(); });
      q.addEventListener("input", apply);
      vendor.addEventListener("change", apply);
      kind.addEventListener("change", apply);
      var submit = form.querySelector("button[type=submit]");
      if (submit) submit.hidden = true;
    }

    var seg = document.getElementById("currency");
    if (seg) {
      seg.hidden = false;
      seg.addEventListener("click", function (ev) {
        var cur = ev.target.getAttribute("data-cur");
        if (!cur) return;
        document.body.classList.remove("show-usd", "show-cny");
        if (cur !== "both") document.body.classList.add("show-" + cur);
        Array.prototype.forEach.call(seg.querySelectorAll("button"), function (b) {
          b.setAttribute("aria-pressed", String(b === ev.target));
        });
      });
    }
  }

  // --- calculator -------------------------------------------------------------
  var out = document.getElementById("calc-result");
  if (!out) return;
  var MILLION = BigInt(1000000);
  var select = document.getElementById("calc-model");
  // The options come from the table rows: the same prices, written once in the page.
  Array.prototype.forEach.call(document.querySelectorAll("#rates tr[data-m]"), function (r) {
    var p = r.dataset.m.split(" ");
    var opt = new Option(r.dataset.id, r.dataset.id);
    opt.dataset["in"] = p[0]; opt.dataset.out = p[1]; opt.dataset.cr = p[2];
    opt.selected = r.dataset.id === select.dataset["default"];
    select.appendChild(opt);
  });

  function intOf(id) {
    var v = document.getElementById(id).value.trim();
    return /^\d+$/.test(v) ? BigInt(v) : BigInt(0);
  }
  function ceilDiv(a, b) { return (a + b - BigInt(1)) / b; }
  function group(s) { return s.replace(/\B(?=(\d{3})+(?!\d))/g, ","); }
  function fixed(n, scale, places) {
    // n / 10^scale rounded half-up to `places` decimals, as a string.
    var drop = BigInt(10) ** BigInt(scale - places);
    var q = (n + drop / BigInt(2)) / drop;
    var s = q.toString().padStart(places + 1, "0");
    return group(s.slice(0, s.length - places)) + "." + s.slice(s.length - places);
  }
  function money(s) {
    // The site's one money rule: at least two decimals, trailing zeros past the second dropped.
    return s.replace(/(\.\d{2}\d*?)0+$/, "$1");
  }
  function rateScaled() {
    // "7.20" -> [720n, 2]
    var parts = (out.dataset.rate || "0").split(".");
    var frac = parts[1] || "";
    return [BigInt(parts[0] + frac), frac.length];
  }

  function compute() {
    var opt = document.getElementById("calc-model").selectedOptions[0];
    if (!opt) return;
    var pin = BigInt(opt.dataset.in), pout = BigInt(opt.dataset.out), pcr = BigInt(opt.dataset.cr);
    var calls = intOf("calc-n") || BigInt(1);
    // tokens x (micro-USD per 1M tokens) / 1M = micro-USD x ... : tokens x USD-per-1M = credits, exactly.
    var microSum = intOf("calc-in") * pin + intOf("calc-out") * pout + intOf("calc-cr") * pcr;
    var perCall = ceilDiv(microSum, MILLION);  // credits per call, rounded up like the ledger
    var credits = perCall * calls;
    var rs = rateScaled();
    document.getElementById("calc-credits").textContent = group(credits.toString());
    document.getElementById("calc-usd").textContent = "$" + money(fixed(credits, 6, 6));
    document.getElementById("calc-cny").textContent = "¥" + money(fixed(credits * rs[0], 6 + rs[1], 4));
  }
  ["calc-model", "calc-in", "calc-out", "calc-cr", "calc-n"].forEach(function (id) {
    document.getElementById(id).addEventListener("input", compute);
  });
  compute();
})();
