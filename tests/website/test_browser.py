"""Real-browser checks (Debian chromium): both languages, badges, the language switch, screenshots."""

from __future__ import annotations

import re
import threading
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import free_port, make_app

CJK = re.compile(r"[\u4e00-\u9fff]")
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """Serve the whole app on a free port from a thread; yield its base URL and the app."""
    db = tmp_path_factory.mktemp("browser") / "site.db"
    port = free_port()
    app = make_app(f"sqlite:///{db}", BYTESPIKE_PUBLIC_URL=f"http://127.0.0.1:{port}")
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", app
    server.shutdown()
    app.extensions["bytespike_db"].dispose()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,900")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_window_size(1280, 900)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def twin_slug(app, kind: str) -> str:
    """Pick a page that exists in both languages."""
    from website import content

    with app.test_request_context():
        en = [p.slug for p in content.pages("en", kind)]
        zh = {p.slug for p in content.pages("zh", kind)}
    both = [s for s in en if s in zh]
    assert both, f"no {kind} page exists in both languages"
    return both[0]


def money(text: str) -> str:
    """The site's money rule: at least two decimals, zeros past the second dropped ($0.06, ¥1,296.00)."""
    return re.sub(r"(\.\d{2}\d*?)0+$", r"\1", text)


def shot(driver, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def click(driver, element) -> None:
    """Scroll an element clear of the sticky header, then click it like a user."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def visible(driver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def page_paths(app) -> dict[str, str]:
    return {"home": "/{l}/", "pricing": "/{l}/pricing/", "blog": f"/{{l}}/blog/{twin_slug(app, 'blog')}/",
            "docs": f"/{{l}}/docs/{twin_slug(app, 'docs')}/"}


@pytest.mark.parametrize("page", ["home", "pricing", "blog", "docs"])
def test_browser_pages_in_both_languages(live, browser, page):
    base, app = live
    path = page_paths(app)[page]
    for lang in ("en", "zh"):
        browser.get(base + path.format(l=lang))
        heading = visible(browser, "main h1")
        nav = visible(browser, ".site-nav")
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == ("en" if lang == "en" else "zh-Hans")
        if lang == "zh":
            assert CJK.search(heading), heading
            assert "价格" in nav and "文档" in nav
        else:
            assert not CJK.search(nav)
            assert "Pricing" in nav
        shot(browser, f"{page}-{lang}")
        # The switch leads to the same page in the other language.
        other = "zh" if lang == "en" else "en"
        click(browser, browser.find_element(By.CSS_SELECTOR, "a.lang-switch"))
        WebDriverWait(browser, 10).until(EC.url_to_be(base + path.format(l=other)))


def test_browser_pricing_badges_currency_and_calculator(live, browser):
    base, _ = live
    browser.get(base + "/en/pricing/")
    badges = {b.text for b in browser.find_elements(By.CSS_SELECTOR, "#rates .badge") if b.is_displayed()}
    assert "Demo" in badges and ("Live channel" in badges or "Scaffold estimate" in badges)
    # Filtering hides rows without a reload.
    box = browser.find_element(By.CSS_SELECTOR, "#rate-filters input[name=q]")
    box.send_keys("echo")
    rows = [r for r in browser.find_elements(By.CSS_SELECTOR, "#rates tbody tr") if r.is_displayed()]
    assert [r.get_attribute("data-id") for r in rows] == ["bytespike-echo"]
    box.clear()
    box.send_keys(" ")
    # The calculator: 1,000,000 input tokens and 1,000,000 output at the selected model's prices.
    select = browser.find_element(By.ID, "calc-model")
    option = select.find_element(By.CSS_SELECTOR, "option:checked")
    p_in, p_out = int(option.get_attribute("data-in")), int(option.get_attribute("data-out"))
    for field, value in (("calc-in", "1000000"), ("calc-out", "1000000"), ("calc-cr", "0"), ("calc-n", "1")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    credits = p_in + p_out
    assert browser.find_element(By.ID, "calc-credits").text == f"{credits:,}"
    assert browser.find_element(By.ID, "calc-usd").text == money(f"${credits // 10**6:,}.{credits % 10**6:06d}")
    # CNY at the page's rate, exactly: credits x rate, in yuan to four places (rounded half up).
    rate = Decimal(browser.find_element(By.ID, "calc-result").get_attribute("data-rate"))
    yuan = (Decimal(credits) * rate / 10**6).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert browser.find_element(By.ID, "calc-cny").text == money(f"¥{yuan:,}")
    click(browser, browser.find_element(By.CSS_SELECTOR, "#currency button[data-cur=cny]"))
    first_price = browser.find_element(By.CSS_SELECTOR, "#rates tbody tr:not([hidden]) td:nth-child(3)")
    assert first_price.text.startswith("¥") and "$" not in first_price.text
    click(browser, browser.find_element(By.CSS_SELECTOR, "#currency button[data-cur=usd]"))
    assert first_price.text.startswith("$") and "¥" not in first_price.text
    browser.execute_script("document.getElementById('calculator').scrollIntoView()")
    shot(browser, "pricing-calculator-en")


def test_browser_calculator_rounds_up_to_a_credit(live, browser):
    base, _ = live
    browser.get(base + "/zh/pricing/")
    select = browser.find_element(By.ID, "calc-model")
    option = select.find_element(By.CSS_SELECTOR, "option:checked")
    p_in = int(option.get_attribute("data-in"))
    for field, value in (("calc-in", "1"), ("calc-out", "0"), ("calc-cr", "0"), ("calc-n", "3")):
        element = browser.find_element(By.ID, field)
        element.clear()
        element.send_keys(value)
    per_call = -(-p_in // 10**6)  # one token at a price per million: a fraction of a credit, rounded up
    assert browser.find_element(By.ID, "calc-credits").text == f"{per_call * 3:,}"


def test_browser_playground_runs_and_refuses_the_fourth(live, browser):
    base, _ = live
    browser.get(base + "/zh/playground/")
    shot(browser, "playground-zh")
    out = browser.find_element(By.ID, "play-out")
    for n in range(3):
        prompt = browser.find_element(By.ID, "prompt")
        prompt.clear()
        prompt.send_keys(f"你好 {n}")
        click(browser, browser.find_element(By.ID, "play-run"))
        WebDriverWait(browser, 10).until(lambda d, n=n: f"你好 {n}" in out.text)
    assert "0 / 3" in visible(browser, "#runs")
    assert not browser.find_element(By.ID, "play-run").is_enabled()
    shot(browser, "playground-used-up-zh")
    browser.get(base + "/zh/playground/")
    assert "用完" in visible(browser, "#play-notice")


def test_browser_docs_search_finds_pages(live, browser):
    base, app = live
    browser.get(base + "/en/docs/")
    box = browser.find_element(By.ID, "docs-q")
    box.send_keys("stream")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#docs-hits a"))
    shot(browser, "docs-search-en")
    browser.get(base + "/zh/docs/")
    box = browser.find_element(By.ID, "docs-q")
    box.send_keys("密钥")
    WebDriverWait(browser, 10).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#docs-hits a"))
    assert all("/zh/docs/" in a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#docs-hits a"))


def test_browser_mobile_layout(live, browser):
    base, app = live
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
    try:
        for lang in ("en", "zh"):
            for name, path in (("home", "/{l}/"), ("pricing", "/{l}/pricing/"),
                               ("docs", f"/{{l}}/docs/{twin_slug(app, 'docs')}/")):
                url = path.format(l=lang)
                browser.get(base + url)
                width = browser.execute_script("return document.documentElement.scrollWidth")
                assert width <= 390, f"horizontal overflow on {url}: {width}px"
                shot(browser, f"mobile-{name}-{lang}")
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
