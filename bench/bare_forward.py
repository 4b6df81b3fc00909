"""The floor of this stack: a bare Flask view forwarding the body with one requests.Session.

No auth, no ledger, no translation: what ByteSpike's own overhead is compared with.
Run: gunicorn -k gevent -w 1 -b 127.0.0.1:8101 'bench.bare_forward:make_app("http://127.0.0.1:9000")'
"""

from __future__ import annotations

import requests
from flask import Flask, Response, request


def make_app(upstream: str) -> Flask:
    app = Flask(__name__)
    session = requests.Session()

    def forward(path: str) -> Response:
        headers = {"content-type": "application/json", "authorization": "Bearer sk-direct",
                   "x-api-key": "sk-direct", "anthropic-version": "2023-06-01", "accept-encoding": "identity"}
        up = session.post(upstream + path, data=request.get_data(), headers=headers, stream=True, timeout=(5, 60))
        if up.headers.get("content-type", "").startswith("text/event-stream"):
            def gen():  # noqa: ANN202
                try:
                    while True:
                        data = up.raw.read1(65536)
                        if not data:
                            return
                        yield data
                finally:
                    up.close()
            return Response(gen(), status=up.status_code, mimetype="text/event-stream")
        return Response(up.content, status=up.status_code, mimetype="application/json")

    app.add_url_rule("/v1/chat/completions", "chat", lambda: forward("/v1/chat/completions"), methods=["POST"])
    app.add_url_rule("/v1/messages", "messages", lambda: forward("/v1/messages"), methods=["POST"])
    app.add_url_rule("/healthz", "health", lambda: "ok")
    return app
