/* Docs search: loads the page's language index once, then matches every typed term (works for CJK too). */
(function () {
  "use strict";
  var form = document.querySelector("form.search");
  if (!form) return;
  var input = form.querySelector("input");
  var list = form.querySelector(".search-results");
  var pages = null, loading = null;

  function load() {
    if (!loading) {
      loading = fetch(form.getAttribute("data-index"))
        .then(function (r) { return r.json(); })
        .then(function (data) {
          pages = data.pages.map(function (p) {
            return { p: p, title: p.title.toLowerCase(), heads: p.headings.join(" ").toLowerCase(),
                     summary: p.summary.toLowerCase(), text: p.text.toLowerCase() };
          });
        });
    }
    return loading;
  }

  function score(entry, terms) {
    var total = 0;
    for (var i = 0; i < terms.length; i++) {
      var t = terms[i], s = 0;
      if (entry.title.indexOf(t) >= 0) s += 10;
      if (entry.heads.indexOf(t) >= 0) s += 5;
      if (entry.summary.indexOf(t) >= 0) s += 3;
      if (entry.text.indexOf(t) >= 0) s += 1;
      if (!s) return 0;
      total += s;
    }
    return total;
  }

  function render(q) {
    list.textContent = "";
    var terms = q.toLowerCase().split(/\s+/).filter(Boolean);
    if (!terms.length || !pages) return;
    var hits = pages.map(function (e) { return { e: e, s: score(e, terms) }; })
      .filter(function (h) { return h.s > 0; })
      .sort(function (a, b) { return b.s - a.s; })
      .slice(0, 8);
    if (!hits.length) {
      var li = document.createElement("li");
      li.className = "muted small";
      li.style.padding = "8px 10px";
      li.textContent = list.getAttribute("data-empty");
      list.appendChild(li);
      return;
    }
    hits.forEach(function (h) {
      var li = document.createElement("li"), a = document.createElement("a"), small = document.createElement("small");
      a.href = h.e.p.url;
      a.textContent = h.e.p.title;
      small.textContent = h.e.p.section + " · " + h.e.p.summary;
      a.appendChild(small);
      li.appendChild(a);
      list.appendChild(li);
    });
  }

  input.addEventListener("focus", load);
  input.addEventListener("input", function () { load().then(function () { render(input.value); }); });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter") {
      var first = list.querySelector("a");
      if (first) window.location.href = first.href;
    } else if (ev.key === "Escape") {
      input.value = ""; list.textContent = "";
    }
  });
})();
