"""Headless Chromium walks the console in both languages against the served app.

sign up -> mint a key -> call the gateway with it through the official OpenAI SDK ->
see the call in the usage log -> top up through the sandbox -> see the balance rise.
Screenshots go to test-artifacts/screenshots/console/.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import openai
import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

from tests.conftest import free_port, make_app

from .conftest import PASSWORD

SHOTS = Path(__file__).resolve().parents[3] / "test-artifacts" / "screenshots" / "console"
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    """The whole app with the payment sandbox switched on (opt-in), werkzeug-threaded on a free port."""
    tmp = tmp_path_factory.mktemp("console-browser")
    port = free_port()
    app = make_app(f"sqlite:///{tmp / 'console.db'}", BYTESPIKE_PUBLIC_URL=f"http://127.0.0.1:{port}",
                   BYTESPIKE_PAYMENTS_SANDBOX="1")
    app.instance_path = str(tmp / "instance")
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    app.extensions["bytespike_db"].dispose()


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver, lang: str, name: str) -> None:
    driver.save_screenshot(str(SHOTS / f"{lang}-{name}.png"))


def _balance(driver) -> int:
    return int(driver.find_element(By.ID, "balance-credits").get_attribute("data-credits"))


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_console_signup_key_call_usage_topup(live, browser, lang):
    # The order page reloads itself once paid: an element read mid-reload is stale, not missing.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    browser.delete_all_cookies()
    browser.get(f"{live}/{lang}/console/")
    wait.until(EC.presence_of_element_located((By.NAME, "email")))
    assert browser.current_url.endswith(f"/{lang}/console/login")
    browser.get(f"{live}/{lang}/console/signup")
    browser.find_element(By.NAME, "email").send_keys(f"walk-{lang}@example.com")
    browser.find_element(By.NAME, "password").send_keys(PASSWORD)
    _shot(browser, lang, "1-signup")
    browser.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    wait.until(EC.presence_of_element_located((By.ID, "balance-credits")))
    assert _balance(browser) == 0
    if lang == "zh":
        assert "概览" in browser.page_source and CJK.search(browser.find_element(By.TAG_NAME, "h1").text)
    _shot(browser, lang, "2-dashboard-new")

    browser.get(f"{live}/{lang}/console/keys")
    browser.find_element(By.CSS_SELECTOR, "#mint-form input[name=name]").send_keys("browser")
    browser.find_element(By.CSS_SELECTOR, "#mint-form button").click()
    key = wait.until(EC.presence_of_element_located((By.ID, "new-key"))).text.strip()
    assert key.startswith("sk-byts-") and len(key) >= 40
    _shot(browser, lang, "3-key-minted")
    browser.get(f"{live}/{lang}/console/keys")  # shown once: gone on the next view
    assert key not in browser.page_source

    client = openai.OpenAI(base_url=f"{live}/v1", api_key=key, max_retries=0)
    reply = client.chat.completions.create(model="bytespike-echo", messages=[{"role": "user", "content": f"hello {lang}"}])
    assert reply.choices[0].message.content == f"hello {lang}"

    def usage_rows(driver):  # the call's row is written just behind its answer: reload until it is there
        driver.get(f"{live}/{lang}/console/usage")
        return driver.find_elements(By.CSS_SELECTOR, "#usage-table tr[data-request-id]")

    rows = WebDriverWait(browser, 15, poll_frequency=0.2).until(usage_rows)
    assert len(rows) == 1 and "bytespike-echo" in rows[0].text
    _shot(browser, lang, "4-usage")

    browser.get(f"{live}/{lang}/console/billing")
    amount = browser.find_element(By.ID, "amount")
    amount.clear()
    amount.send_keys("720")
    browser.find_element(By.CSS_SELECTOR, "input[name=method][value=sandbox]").click()
    _shot(browser, lang, "5-billing")
    browser.find_element(By.CSS_SELECTOR, "#topup-form button").click()
    wait.until(EC.presence_of_element_located((By.ID, "simulate")))
    assert browser.find_elements(By.CSS_SELECTOR, ".qr svg")
    _shot(browser, lang, "6-order-pending")
    browser.find_element(By.ID, "simulate").click()
    wait.until(lambda d: d.find_element(By.ID, "order-status").get_attribute("data-status") == "paid")
    _shot(browser, lang, "7-order-paid")

    browser.get(f"{live}/{lang}/console/dashboard")
    assert _balance(browser) == 105_000_000  # ¥720 = $100 at 7.20, plus the 5% ladder bonus
    _shot(browser, lang, "8-dashboard-topped-up")
    browser.get(f"{live}/{lang}/console/billing/transactions")
    kinds = {r.get_attribute("class") for r in browser.find_elements(By.CSS_SELECTOR, "#tx-table tbody tr")}
    assert {"kind-topup", "kind-bonus"} <= kinds
    _shot(browser, lang, "9-transactions")
    for page in ("keys", "members", "settings", "webhooks", "usage"):
        browser.get(f"{live}/{lang}/console/{page}")
        assert browser.find_element(By.TAG_NAME, "h1").text
        # nothing may overflow the page sideways
        assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
        _shot(browser, lang, f"10-{page}")
