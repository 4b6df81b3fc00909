"""Log-in throttling holds under parallel guesses: a served app, real concurrent HTTP requests."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from werkzeug.serving import make_server

from tests.conftest import REDIS_URL, make_app
from website.console import auth
from website.console.services import users

from .conftest import PASSWORD, csrf_of, signup

GUESSES = 120


@pytest.fixture(params=["redis", "in-process"])
def served(request, tmp_path, console_instance, redis_prefix):
    extra = {"BYTESPIKE_REDIS_URL": REDIS_URL, "BYTESPIKE_REDIS_PREFIX": redis_prefix} if request.param == "redis" else {}
    app = make_app(f"sqlite:///{tmp_path / 'console.db'}", **extra)
    app.instance_path = console_instance
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield app, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=60)
    app.extensions["bytespike_db"].dispose()


def test_parallel_wrong_passwords_check_at_most_the_limit(served, monkeypatch):
    app, base = served
    signup(app, "target@example.com")
    checks: list[int] = []
    real_check = users.check_password

    def counting(user, password):  # the real scrypt check, counted
        checks.append(1)
        return real_check(user, password)

    monkeypatch.setattr(users, "check_password", counting)
    browser = requests.Session()
    token = csrf_of(browser.get(base + "/en/console/login", timeout=60).text)
    cookies = browser.cookies.get_dict()
    start = threading.Barrier(GUESSES)

    def guess(i: int) -> int:
        start.wait(timeout=120)
        r = requests.post(base + "/en/console/login", cookies=cookies, timeout=120, allow_redirects=False,
                          data={"csrf_token": token, "email": "target@example.com", "password": f"guess-{i}-Xy1!"})
        return r.status_code

    with ThreadPoolExecutor(max_workers=GUESSES) as pool:
        statuses = list(pool.map(guess, range(GUESSES)))
    assert len(checks) <= auth.MAX_FAILURES
    assert statuses.count(401) == len(checks) and statuses.count(429) == GUESSES - len(checks)
    r = requests.post(base + "/en/console/login", cookies=cookies, timeout=60, allow_redirects=False,
                      data={"csrf_token": token, "email": "target@example.com", "password": PASSWORD})
    assert r.status_code == 429  # the window is full: even the right password waits
