"""The whole connect flow against the app under gunicorn (2 gevent workers, PostgreSQL, Redis), consent in Chromium.

A loopback listener of the test's own receives the code; the issued key calls
``/v1/messages`` through the official Anthropic SDK until its quota stops it;
revoking it on the Connected apps page refuses it on every worker. The docs'
Python and JavaScript examples run unchanged against the same server.
"""

from __future__ import annotations

import hashlib
import http.server
import queue
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import anthropic
import pytest
import requests
import sqlalchemy as sa
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.security import generate_password_hash

from tests.conftest import create_pg_database, drop_pg_database, free_port
from tests.gateway.conftest import (
    BIN,
    ROOT,
    _clean_redis,
    channels_toml,
    server_env,
    start_gunicorn,
    stop_gunicorn,
)
from tests.gateway.fakes import FakeVendor
from tests.website.console.conftest import PASSWORD

from .conftest import pkce

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage")
SHOTS = ROOT / "test-artifacts" / "screenshots" / "oauth"
EMAIL = "desk-owner@example.com"


class Served:
    def __init__(self, base_url: str, db_url: str, env: dict[str, str], log_path: Path) -> None:
        self.base_url, self.db_url, self.env, self.log_path = base_url, db_url, env, log_path
        self.engine = sa.create_engine(db_url)

    def cli(self, *args: str) -> str:
        res = subprocess.run([str(BIN / "flask"), "--app", "app", *args], cwd=ROOT, env=self.env,
                             capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr[-2000:]
        return res.stdout

    def key_row(self, key: str) -> sa.Row:
        with self.engine.connect() as c:
            return c.execute(sa.text("SELECT * FROM api_keys WHERE key_hash = :h"),
                             {"h": hashlib.sha256(key.encode()).hexdigest()}).one()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("oauth-served")
    fake = FakeVendor("anthropic")
    fake.start()
    db_url = create_pg_database()
    channels = tmp / "channels.toml"
    channels.write_text(channels_toml({"anthropic": fake}))
    prefix = f"bstest:{uuid.uuid4().hex[:8]}:"
    env = server_env(db_url, channels, prefix)
    env["GUNICORN_CMD_ARGS"] = "--access-logfile -"  # the access log is on: the code must not be in it
    port = free_port()
    srv = Served(f"http://127.0.0.1:{port}", db_url, env, tmp / "gunicorn.log")
    srv.cli("init-db")
    srv.cli("create-account", "--email", EMAIL, "--credits", "50000000")
    with srv.engine.begin() as c:
        c.execute(sa.text("UPDATE users SET password_hash = :p WHERE email = :e"),
                  {"p": generate_password_hash(PASSWORD, method="scrypt"), "e": EMAIL})
    proc = start_gunicorn(env, port, srv.log_path, workers=2)
    yield srv
    stop_gunicorn(proc)
    srv.engine.dispose()
    drop_pg_database(db_url)
    _clean_redis(prefix)
    fake.stop()


@pytest.fixture(scope="module")
def browser(served):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument("--window-size=1280,1000")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.get(f"{served.base_url}/en/console/login")
    driver.find_element(By.NAME, "email").send_keys(EMAIL)
    driver.find_element(By.NAME, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "form.stack button[type=submit]").click()
    WebDriverWait(driver, 60).until(lambda d: "/console/login" not in d.current_url)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def client_id(served):
    return served.cli("oauth-register-app", "--name", "Desk Agent", "--redirect-uri",
                      "http://127.0.0.1/callback").strip().splitlines()[-1]


class Loopback:
    """The desktop app's side: a one-shot listener on a free loopback port."""

    def __init__(self) -> None:
        self.answers: queue.Queue[dict[str, str]] = queue.Queue()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlsplit(self.path)
                if url.path == "/callback":
                    outer.answers.put(dict(parse_qsl(url.query)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"connected")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_port}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _consent(driver, url: str, shot: str, **fields: str) -> None:
    """Open the authorize URL, fill the consent form, allow."""
    driver.get(url)
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "consent-form"))
    for name, value in fields.items():
        box = driver.find_element(By.NAME, name)
        box.clear()
        box.send_keys(value)
    driver.save_screenshot(str(SHOTS / f"{shot}.png"))
    driver.find_element(By.ID, "consent-allow").click()


def _fresh_call(served, key: str) -> int:
    """One call on a new connection (so calls spread over both workers)."""
    with requests.Session() as s:
        return s.post(f"{served.base_url}/v1/messages", headers={"x-api-key": key, "connection": "close"}, json={
            "model": "bytespike-echo", "max_tokens": 8, "messages": [{"role": "user", "content": "ping"}]},
            timeout=60).status_code


def test_oauth_served_browser_consent_quota_and_revocation_across_workers(served, browser, client_id):
    app_side = Loopback()
    verifier, challenge = pkce()
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": app_side.redirect_uri,
                       "scope": "inference", "state": "desk-1", "code_challenge": challenge,
                       "code_challenge_method": "S256"})
    _consent(browser, f"{served.base_url}/oauth/authorize?{query}", "1-consent", quota_usd="0.01",
             rate_limit_1d_usd="5", models="claude-sonnet-4-6, bytespike-echo", expires_in_days="7")
    answer = app_side.answers.get(timeout=60)
    app_side.close()
    assert answer["state"] == "desk-1" and "code" in answer
    assert "127.0.0.1" in browser.current_url and "connected" in browser.page_source

    resp = requests.post(f"{served.base_url}/oauth/token", timeout=60, data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": app_side.redirect_uri,
        "client_id": client_id, "code_verifier": verifier})
    assert resp.status_code == 200, resp.text
    key = resp.json()["access_token"]
    row = served.key_row(key)
    assert row.kind == "sub" and row.quota_credits == 10_000 and row.rate_limit_1d == 5_000_000
    assert row.models == ["claude-sonnet-4-6", "bytespike-echo"] and row.expires_at is not None

    sdk = anthropic.Anthropic(base_url=served.base_url, api_key=key, max_retries=0)
    small = sdk.messages.create(model="claude-sonnet-4-6", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    assert small.content[0].text
    with pytest.raises(anthropic.APIStatusError) as over:  # its upper bound does not fit the 0.01 USD quota
        sdk.messages.create(model="claude-sonnet-4-6", max_tokens=4000, messages=[{"role": "user", "content": "hi"}])
    assert over.value.status_code == 402 and "quota" in str(over.value.body)
    with pytest.raises(anthropic.PermissionDeniedError):  # outside the model list chosen at consent
        sdk.messages.create(model="gpt-5-4", max_tokens=16, messages=[{"role": "user", "content": "hi"}])
    deadline = time.time() + 30
    while served.key_row(key).spent_credits == 0 and time.time() < deadline:
        time.sleep(0.1)
    spent = served.key_row(key).spent_credits
    assert 0 < spent <= 10_000

    assert all(_fresh_call(served, key) == 200 for _ in range(12))  # both workers now hold the key
    browser.get(f"{served.base_url}/en/console/apps")
    rows = browser.find_elements(By.CSS_SELECTOR, "#connections-table tr[data-connection-id]")
    assert len(rows) == 1 and "Desk Agent" in rows[0].text
    assert rows[0].find_element(By.CSS_SELECTOR, "[data-spent-credits]").get_attribute("data-spent-credits") == str(spent)
    browser.save_screenshot(str(SHOTS / "2-connected-apps.png"))
    rows[0].find_element(By.CSS_SELECTOR, "button.danger").click()
    WebDriverWait(browser, 60, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException)).until(
        lambda d: "revoked" in d.find_element(By.ID, "connections-table").text)  # the page reloads under the wait
    assert [_fresh_call(served, key) for _ in range(20)] == [401] * 20

    log = served.log_path.read_text(errors="replace")
    assert "POST /oauth/token" in log  # the access log is on
    assert answer["code"] not in log and key not in log and verifier not in log


def _docs_example(lang: str) -> str:
    text = (ROOT / "content" / "en" / "docs" / "connect-your-app.md").read_text()
    match = re.search(rf"```{lang}\n(.*?)\n```", text, re.S)
    assert match, f"no {lang} example in the docs page"
    return match.group(1)


@pytest.mark.parametrize("lang, command", [("python", [sys.executable]), ("javascript", ["node"])])
def test_oauth_served_docs_example_connects_and_calls(served, browser, client_id, tmp_path, lang, command):
    script = tmp_path / ("connect.py" if lang == "python" else "connect.mjs")
    script.write_text(_docs_example(lang))
    env = dict(served.env, BYTESPIKE_BASE_URL=served.base_url, BYTESPIKE_CLIENT_ID=client_id,
               BYTESPIKE_MODEL="bytespike-echo", BROWSER="true", PATH="/usr/bin:/bin")
    proc = subprocess.Popen([*command, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
    try:
        first = lines.get(timeout=60)
        url = first.split(": ", 1)[1].strip()
        assert url.startswith(f"{served.base_url}/oauth/authorize?")
        _consent(browser, url, f"3-example-{lang}", quota_usd="1")
        assert proc.wait(timeout=120) == 0, proc.stderr.read()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
    rest = [lines.get(timeout=10) for _ in range(2)]
    assert rest[0].strip() == "Connected." and rest[1].strip() == "Say hello to ByteSpike."


def test_oauth_docs_examples_are_the_same_in_both_languages():
    en = (ROOT / "content" / "en" / "docs" / "connect-your-app.md").read_text()
    zh = (ROOT / "content" / "zh" / "docs" / "connect-your-app.md").read_text()
    for lang in ("python", "javascript"):
        pattern = rf"```{lang}\n(.*?)\n```"
        assert re.search(pattern, en, re.S).group(1) == re.search(pattern, zh, re.S).group(1)  # type: ignore[union-attr]
