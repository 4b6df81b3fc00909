"""A database that cannot be reached answers 503 in the caller's shape, retryable and free, never a 500."""

from __future__ import annotations

from pathlib import Path

from app import create_app
from tests.conftest import free_port


def test_no_database_connection_is_a_503(tmp_path: Path) -> None:
    channels = tmp_path / "channels.toml"
    channels.write_text("")
    port = free_port()  # nothing listens there
    app = create_app({"BYTESPIKE_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{port}/none",
                      "BYTESPIKE_CHANNELS_FILE": str(channels), "BYTESPIKE_SECRET_KEY": "t"})
    client = app.test_client()
    resp = client.post("/v1/messages", json={"model": "claude-sonnet-4-6", "max_tokens": 8,
                                             "messages": [{"role": "user", "content": "hi"}]},
                       headers={"x-api-key": "sk-byts-" + "a" * 43, "anthropic-version": "2023-06-01"})
    assert resp.status_code == 503, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert resp.headers["retry-after"] == "1"
    assert "127.0.0.1" not in resp.get_data(as_text=True)  # no connection details leak
