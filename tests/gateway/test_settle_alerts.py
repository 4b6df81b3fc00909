"""A served call whose settlement takes the balance below the org's line: the worker sends one balance.low."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic
import sqlalchemy as sa

from core import signing
from tests.conftest import free_port

DEADLINE_S = 240


def _receiver() -> tuple[ThreadingHTTPServer, str, list[tuple[dict[str, str], bytes]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            got.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/hook", got


def test_settle_crossing_the_low_balance_line_sends_one_alert(gateway):
    credits = 50_000_000
    key = gateway.account(credits=credits)
    server, url, got = _receiver()
    try:
        with gateway.engine.begin() as conn:
            org_id = conn.execute(sa.text("SELECT org_id FROM api_keys WHERE key_hash = :h"),
                                  {"h": hashlib.sha256(key.encode()).hexdigest()}).scalar()
            conn.execute(sa.text("UPDATE orgs SET webhook_url = :u, webhook_secret = 'whsec_low', "
                                 "low_balance_credits = :t WHERE id = :o"), {"u": url, "t": credits, "o": org_id})
        client = anthropic.Anthropic(base_url=gateway.base_url, api_key=key, max_retries=0)
        for _ in range(2):  # the first call crosses the line; the second stays below it
            client.messages.create(model="claude-sonnet-4-6", max_tokens=50,
                                   messages=[{"role": "user", "content": "hi [fake in=40 out=9]"}])
        deadline = time.time() + DEADLINE_S
        while not got and time.time() < deadline:
            gateway.cli("worker", "--burst")
        gateway.cli("worker", "--burst")
        assert len(got) == 1
        headers, body = got[0]
        assert signing.verify("whsec_low", body, headers["X-ByteSpike-Signature"], int(time.time()))
        event = json.loads(body)
        assert event["type"] == "balance.low" and event["org_id"] == org_id
        assert event["data"]["threshold_credits"] == credits and event["data"]["balance_credits"] < credits
    finally:
        server.shutdown()
