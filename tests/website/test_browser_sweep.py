"""Every sitemap page and every console page in headless Chromium, both languages, at 390 and 1366 px.

One browser for the module; each page is loaded once and measured at both widths. On each page:
no sideways scroll, no box whose content spills out of it, and on /zh/ no English UI string left
over. On the pricing pages the status badges stay visible in every currency mode.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import free_port, make_app

# About half a minute on an idle 2-core machine; the margin is for a machine shared with other jobs.
pytestmark = pytest.mark.timeout(480)

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "screenshots" / "sweep"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
         "--hide-scrollbars")
WIDTHS = (390, 1366)
PASSWORD = "correct-horse-42!"
EMAIL = "sweep.customer.with.a.long.address@enterprise-example.com"
CONSOLE_PAGES = ("dashboard", "usage", "keys", "members", "billing", "billing/transactions", "webhooks", "audit",
                 "status/", "settings")
# Pages worth a screenshot (name -> path template); the rest are only measured.
SHOT_PAGES = {"home": "/{l}/", "pricing": "/{l}/pricing/", "model": "/{l}/models/claude-sonnet-4-6/",
              "docs": "/{l}/docs/errors/", "dashboard": "/{l}/console/dashboard", "keys": "/{l}/console/keys",
              "billing": "/{l}/console/billing", "transactions": "/{l}/console/billing/transactions"}

# Measures one window (a page, or a frame holding one): sideways scroll, spilling boxes, visible text.
PROBE_FN = r"""
function probe(win, withText) {
  const doc = win.document, de = doc.documentElement, W = win.innerWidth;
  const spills = [], spilled = [];
  {
    // The deepest boxes whose content is wider than they are (size first: styles only for those).
    for (const el of [...doc.body.querySelectorAll('*')].reverse()) {
      if (el.scrollWidth <= el.clientWidth + 2 || el.clientWidth === 0) continue;
      if (el.closest('pre, code, .visually-hidden, .skip, svg, [hidden]')) continue;
      if (['TABLE', 'TBODY', 'THEAD', 'TR', 'SELECT', 'INPUT', 'TEXTAREA'].includes(el.tagName)) continue;
      const cs = win.getComputedStyle(el);
      if (cs.overflowX !== 'visible' || cs.display.startsWith('inline') || cs.display === 'contents') continue;
      if (spilled.some(s => el.contains(s))) continue;
      spilled.push(el);
      spills.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                  (typeof el.className === 'string' && el.className ? '.' + el.className.trim().split(/\s+/).join('.') : '') +
                  ' ' + el.scrollWidth + '>' + el.clientWidth + ' ' + (el.textContent || '').trim().slice(0, 40));
    }
  }
  if (!withText) return {scroll: de.scrollWidth, width: W, spills: spills.slice(0, 5), text: '', nodes: []};
  const parts = [];
  const walker = doc.createTreeWalker(doc.body, 4);
  while (walker.nextNode()) {
    const n = walker.currentNode, p = n.parentElement;
    if (!p || p.closest('pre, code, kbd, samp, script, style, .mono, [translate=no]')) continue;
    if (p.offsetParent === null && win.getComputedStyle(p).position !== 'fixed') continue;
    parts.push(n.nodeValue);
  }
  const nodes = [...new Set(parts.map(t => t.trim()).filter(t => /^[A-Za-z][A-Za-z ()-]*$/.test(t)))];
  return {scroll: de.scrollWidth, width: W, spills: spills.slice(0, 5), text: parts.join(' '), nodes};
}
"""
PROBE = PROBE_FN + "return probe(window, location.pathname.startsWith('/zh/') && innerWidth > 1000);"


# Raw stored values that must never reach a Chinese page as they are.
RAW_VALUES = {"alipay", "wechatpay", "sandbox", "paid", "pending", "topup", "bonus", "settle", "master", "images"}


def _english_words() -> set[str]:
    """Short msgids (lower case) that the catalogs translate: a text node equal to one is untranslated."""
    found = set(RAW_VALUES)
    for po in (ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po",
               ROOT / "translations" / "console" / "zh" / "LC_MESSAGES" / "messages.po"):
        with po.open("rb") as fh:
            for m in read_po(fh, locale="zh"):
                if m.id and isinstance(m.id, str) and m.string and m.string != m.id and len(m.id.split()) < 3:
                    found.add(m.id.lower())
    return found


def _english_ui_strings() -> list[str]:
    """UI msgids of both catalogs long enough to be unmistakable when left in English on a Chinese page."""
    found: set[str] = set()
    for po in (ROOT / "translations" / "zh" / "LC_MESSAGES" / "messages.po",
               ROOT / "translations" / "console" / "zh" / "LC_MESSAGES" / "messages.po"):
        with po.open("rb") as fh:
            for m in read_po(fh, locale="zh"):
                if m.id and isinstance(m.id, str) and m.string and m.string != m.id and "%" not in m.id \
                        and len(m.id.split()) >= 3 and "<" not in m.id:
                    found.add(m.id)
    return sorted(found, key=len, reverse=True)


def _seed(app, base: str) -> None:
    """A customer with a key, a call, a paid sandbox order (ledger lines with memos) and an invite."""
    from tests.website.console.conftest import csrf_of

    c = app.test_client()
    token = csrf_of(c.get("/zh/console/signup").text)
    assert c.post("/zh/console/signup", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD}).status_code == 302
    r = c.post("/en/console/keys", data={"csrf_token": token, "name": "laptop"})
    key = re.search(r'id="new-key"[^>]*>([^<]+)<', r.text).group(1).strip()
    call = c.post("/v1/chat/completions", headers={"Authorization": f"Bearer {key}"},
                  json={"model": "bytespike-echo", "messages": [{"role": "user", "content": "hi"}]})
    assert call.status_code == 200, call.text
    r = c.post("/en/console/billing/topup", data={"csrf_token": token, "amount_cny": "720", "method": "sandbox"})
    order_id = r.headers["Location"].rstrip("/").rsplit("/", 1)[1]
    c.post(f"/en/console/billing/orders/{order_id}/simulate", data={"csrf_token": token})
    c.post("/en/console/members/invite", data={"csrf_token": token, "role": "member"})
    app.config["_sweep_order"] = order_id


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    app = make_app(f"sqlite:///{tmp / 'site.db'}", BYTESPIKE_PUBLIC_URL=base, BYTESPIKE_PAYMENTS_SANDBOX="1")
    app.instance_path = str(tmp / "instance")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _seed(app, base)
    yield base, app
    server.shutdown()
    app.extensions["bytespike_db"].dispose()


@pytest.fixture(scope="module")
def browser(live):
    base, _ = live
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(120)
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.get(f"{base}/en/console/login")
    driver.find_element(By.NAME, "email").send_keys(EMAIL)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(driver, 60).until(EC.presence_of_element_located((By.ID, "balance-credits")))
    yield driver
    driver.quit()


def _paths(app) -> tuple[list[str], list[str]]:
    xml = app.test_client().get("/sitemap.xml").text
    site = [re.sub(r"^https?://[^/]+", "", loc) for loc in re.findall(r"<loc>([^<]+)</loc>", xml)]
    order_id = app.config["_sweep_order"]
    console = [f"/{lang}/console/{p}" for lang in ("en", "zh")
               for p in (*CONSOLE_PAGES, f"billing/orders/{order_id}")]
    return site + ["/zh/nope/", "/en/nope/"], console


def _set_width(driver, width: int) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})


def _judge(path: str, width: int, got: dict, english: list[str], words: set[str] = frozenset()) -> list[str]:
    problems = []
    if got["scroll"] > got["width"]:
        problems.append(f"{width} {path}: scrolls sideways ({got['scroll']}px)")
    problems += [f"{width} {path}: spills {spill}" for spill in got["spills"]]
    if path.startswith("/zh/") and width == WIDTHS[-1]:
        left = [s for s in english if s in got["text"]] + [t for t in got["nodes"] if t.lower() in words]
        if left:
            problems.append(f"{path}: English left on a Chinese page: {left[:3]}")
    return problems


def test_every_page_fits_and_speaks_its_language(live, browser):
    base, app = live
    site, console = _paths(app)
    assert len(site) > 200
    english, words = _english_ui_strings(), _english_words()
    problems: list[str] = []
    # Every page once, measured at both widths (the site refuses frames, so each is a navigation).
    shots = {tpl.format(l=lang): f"{name}-{lang}" for name, tpl in SHOT_PAGES.items() for lang in ("en", "zh")}
    shots.update({f"/{lang}/console/billing/orders/{app.config['_sweep_order']}": f"order-{lang}" for lang in ("en", "zh")})
    started = time.monotonic()
    try:
        for path in site + console + [p for p in shots if p not in site + console]:
            for width in WIDTHS:
                _set_width(browser, width)
                if width == WIDTHS[0]:
                    browser.get(base + path)
                problems += _judge(path, width, browser.execute_script(PROBE), english, words)
                if path in shots:
                    browser.save_screenshot(str(SHOTS / f"{shots[path]}-{width}.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    print(f"{len(site)} public and {len(console)} console pages at {WIDTHS}: {time.monotonic() - started:.1f}s")
    (SHOTS / "problems.txt").write_text("\n".join(problems) + "\n", encoding="utf-8")
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_status_badges_stay_visible_in_every_currency_mode(live, browser, lang):
    base, _ = live
    browser.get(f"{base}/{lang}/pricing/")
    for mode in ("usd", "cny", "both"):
        browser.execute_script("arguments[0].click()",
                               browser.find_element(By.CSS_SELECTOR, f"#currency button[data-cur={mode}]"))
        rows = browser.find_elements(By.CSS_SELECTOR, "#rates tbody tr:not([hidden])")
        badges = browser.find_elements(By.CSS_SELECTOR, "#rates tbody tr:not([hidden]) .badge")
        assert len(badges) == len(rows) > 0
        assert all(b.is_displayed() for b in badges), mode
        price = browser.find_element(By.CSS_SELECTOR, "#rates tbody tr:not([hidden]) td:nth-child(3)").text
        assert ("¥" in price) == (mode != "usd") and ("$" in price) == (mode != "cny"), (mode, price)

