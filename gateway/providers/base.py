"""The provider interface: build one upstream HTTP call, send it, hand back the raw answer.

A provider knows a vendor's URL layout and auth headers, and which wire codec
(``gateway.protocols.<name>``) speaks its format. It never touches the ledger
or the caller's protocol: the pipeline decides passthrough or translation and
reads the answer through the codec.

HTTP goes through one pooled ``requests.Session`` per process (rebuilt after
a fork), with explicit (connect, read) timeouts on every call.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from importlib import import_module
from types import ModuleType
from typing import Any, Iterator, Mapping

import requests
from requests.adapters import HTTPAdapter

from core.channels import ChannelConfig

# Client headers that may travel to an upstream of the caller's own protocol.
# Everything else (hop-by-hop, encoding, x-stainless-*, the caller's key) stays here.
FORWARDED_HEADERS = ("anthropic-beta",)

_session_lock = threading.Lock()
_session: tuple[int, requests.Session] | None = None


def http_session() -> requests.Session:
    """Return this process's pooled session (a forked worker builds its own)."""
    global _session
    pid = os.getpid()
    held = _session
    if held is not None and held[0] == pid:
        return held[1]
    with _session_lock:
        if _session is None or _session[0] != pid:
            s = requests.Session()
            # Enough pooled connections per upstream host for many concurrent streams.
            adapter = HTTPAdapter(pool_connections=16, pool_maxsize=1024, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.trust_env = False  # no proxy or netrc surprises; keys go only where configured
            _session = (pid, s)
        return _session[1]


@dataclass(frozen=True)
class Prepared:
    """One upstream call, ready to send. ``headers`` hold a secret: never log them."""

    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool
    # For a provider that answers locally (the demo channel): the request body as a dict.
    payload: Mapping[str, Any] | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"Prepared(url={self.url!r}, stream={self.stream})"


class UpstreamReply:
    """The upstream's answer: status, headers, and the body read incrementally."""

    def __init__(self, resp: requests.Response) -> None:
        self._resp = resp
        self.status: int = resp.status_code
        self.headers = resp.headers

    def read(self) -> bytes:
        """Read the whole body (non-stream answers and error bodies)."""
        try:
            return self._resp.content
        finally:
            self._resp.close()

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """Yield body bytes as they arrive: ``read1`` returns whatever one socket read gives."""
        raw = self._resp.raw
        while True:
            data = raw.read1(size)
            if not data:
                return
            yield data

    def close(self) -> None:
        self._resp.close()

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


class Provider:
    """A vendor's HTTP surface. Subclasses give ``wire``, ``url`` and ``auth_headers``."""

    wire: str = ""  # the protocol spoken on the wire: anthropic | openai | gemini
    codec_module: str = ""  # gateway.protocols.<name> for that wire format

    @property
    def codec(self) -> ModuleType:
        return import_module(f"gateway.protocols.{self.codec_module}")

    def vendor(self, channel: ChannelConfig, default: str = "") -> str:
        """Name the vendor behind a channel, for x-bytespike-provider and the usage log."""
        return self.wire

    def url(self, channel: ChannelConfig, upstream_model: str, stream: bool) -> str:
        raise NotImplementedError

    def auth_headers(self, api_key: str, version: str | None) -> dict[str, str]:
        raise NotImplementedError

    def prepare(
        self,
        channel: ChannelConfig,
        api_key: str,
        upstream_model: str,
        payload: Mapping[str, Any],
        *,
        stream: bool,
        version: str | None = None,
        forward: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Prepared:
        """Build the call; ``forward`` holds caller headers allowed through (same protocol only)."""
        headers = {"content-type": "application/json", "user-agent": "bytespike-gateway/1"}
        if stream:
            # A compressed event stream would sit in a decoder's buffer instead of flowing.
            headers["accept-encoding"] = "identity"
            headers["accept"] = "text/event-stream"
        for name, value in (forward or {}).items():
            if name in FORWARDED_HEADERS and value:
                headers[name] = value
        headers.update(self.auth_headers(api_key, version))
        data = body if body is not None else dumps(payload)
        return Prepared(self.url(channel, upstream_model, stream), headers, data, stream, payload)

    def send(self, prepared: Prepared, *, timeout: tuple[float, float]) -> UpstreamReply:
        """POST the call; raises requests exceptions on connect/read failure."""
        resp = http_session().post(
            prepared.url, data=prepared.body, headers=prepared.headers, stream=True, timeout=timeout
        )
        return UpstreamReply(resp)


def dumps(obj: Any) -> bytes:
    """Serialise a request body compactly, keeping non-ASCII text as UTF-8."""
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
