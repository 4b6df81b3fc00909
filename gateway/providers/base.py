"""The provider interface: build one upstream HTTP call, send it, hand back the raw answer.

A provider knows a vendor's URL layout and auth headers, and the protocol it
speaks, whose codec (``gateway.protocols.registry``) reads and writes its format. It never touches the ledger
or the caller's protocol: the pipeline decides passthrough or translation and
reads the answer through the codec.

Chat calls go through this process's urllib3 pool (``gateway.providers.pool``);
``http_session`` stays for the media endpoints.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import requests
import urllib3
import urllib3.connection
from requests.adapters import HTTPAdapter

from core.channels import ChannelConfig
from gateway.protocols.contract import UpstreamCodec
from gateway.protocols.registry import upstream_codec
from gateway.providers.idle import Stamp, unwatch, watch
from gateway.providers.pool import PerProcess, route

# Client headers that may travel to an upstream of the caller's own protocol.
# Everything else (hop-by-hop, encoding, x-stainless-*, the caller's key) stays here.
FORWARDED_HEADERS = ("anthropic-beta",)
USER_AGENT = "bytespike-gateway/1"
# A whole answer may come compressed; an event stream must not (it would sit in a decoder's buffer).
JSON_HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT,
                "accept-encoding": "gzip, deflate", "accept": "*/*"}
STREAM_HEADERS = {"content-type": "application/json", "user-agent": USER_AGENT,
                  "accept-encoding": "identity", "accept": "text/event-stream"}

def _build_session() -> requests.Session:
    s = requests.Session()
    # Enough pooled connections per upstream host for many concurrent streams.
    adapter = HTTPAdapter(pool_connections=16, pool_maxsize=1024, max_retries=0)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    s.trust_env = False  # no proxy or netrc surprises; keys go only where configured
    return s


_session = PerProcess(_build_session)


def http_session() -> requests.Session:
    """Return this process's pooled session (used by the media endpoints)."""
    return _session.get()


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

    def __init__(self, resp: urllib3.BaseHTTPResponse) -> None:
        self._resp = resp
        self.status: int = resp.status
        self.headers = resp.headers
        self._done = False

    def read(self) -> bytes:
        """Read the whole body, decompressed (non-stream answers and error bodies)."""
        try:
            data = self._resp.read(decode_content=True)
            self._done = True
            return data
        finally:
            self.close()

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        """Body bytes as they arrive, each piece what one socket read gave.

        A chunked HTTP/1.1 body (every vendor's event stream) is unframed here, straight off the
        connection's buffered reader: the same bytes urllib3 and http.client would give, at a
        fraction of the calls per event. Anything else goes through urllib3's ``read1``.
        """
        conn = _chunked_reader(self._resp)
        if conn is not None:
            return self._unchunked(*conn, size)
        return self._read1(size)

    def _read1(self, size: int) -> Iterator[bytes]:
        read1 = self._resp.read1
        while True:
            data = read1(size, decode_content=False)
            if not data:
                self._done = True
                return
            yield data

    def _unchunked(self, hr: Any, read1: Callable[[int], bytes], size: int) -> Iterator[bytes]:
        stamp: Stamp = [0.0]
        body = dechunk(read1, size, stamp)
        first = next(body, None)  # the first bytes under the socket's own read timeout (never empty)
        if first is not None:
            yield first
            # Then one timer per process keeps the read timeout, not one per read (``idle``).
            watched = watch(getattr(hr.fp.raw, "_sock", None), stamp)
            try:
                yield from body
            finally:
                if watched:
                    unwatch(stamp)
        # The last chunk and the trailer were read: the connection is at a message boundary and
        # goes back to the pool (http.client sees its response closed; urllib3 releases it).
        hr._close_conn()
        self._done = True

    def close(self) -> None:
        """Give the connection back to the pool, or drop it if the body was left unread."""
        if not self._done:
            self._resp.close()
        self._resp.release_conn()

    @property
    def retry_after(self) -> float | None:
        value = self.headers.get("retry-after")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


def _chunked_reader(resp: urllib3.BaseHTTPResponse) -> tuple[Any, Callable[[int], bytes]] | None:
    """(http.client response, its buffered reader's ``read1``) for an unread chunked body, else None."""
    hr: Any = getattr(resp, "_fp", None)
    fp = getattr(hr, "fp", None)
    if (fp is None or not getattr(hr, "chunked", False) or getattr(hr, "chunk_left", 0) is not None
            or getattr(resp, "_fp_bytes_read", 1) != 0 or not hasattr(hr, "_close_conn")):
        return None
    peek, read1 = fp.peek, fp.read1

    def read(size: int) -> bytes:
        # What one socket read brought, through the reader's own buffer: ``read1(size)`` on an
        # empty buffer would allocate ``size`` bytes for every event, and hold them while it waits.
        data: bytes = peek(1)
        return read1(len(data)) if data else data

    return hr, read


_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,15}")
# A size line as the general path reads it (hex, blanks around it, an extension), in one match;
# a line this does not match (a lone CR or LF in an extension, say) takes the general path.
_SIZE_LINE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")
_MAX_LINE = 4096  # a chunk-size line or a trailer line longer than this is a broken stream


def dechunk(read1: Callable[[int], bytes], size: int = 65536, stamp: list[float] | None = None) -> Iterator[bytes]:
    """The data of an HTTP/1.1 chunked body read with ``read1``, one piece per read that carried data.

    Stops after the last chunk's trailer section; raises ``ProtocolError`` on bad framing or a
    connection that closes inside the body (the caller's stream then ends with an error event),
    after giving what came before the fault. ``stamp[0]`` holds the time the current read started
    waiting, 0.0 between reads (``idle``).
    """
    stamp, now, framing = stamp if stamp is not None else [0.0], time.monotonic, _Framing()
    while True:
        stamp[0] = now()
        data = read1(size)
        stamp[0] = 0.0
        if not data:
            raise urllib3.exceptions.ProtocolError("upstream closed the connection inside a chunked body")
        out: list[bytes] = []
        try:
            ended = framing.feed(data, out)
        except urllib3.exceptions.ProtocolError:
            if out:
                yield b"".join(out)
            raise
        if out:
            yield out[0] if len(out) == 1 else b"".join(out)
        if ended:
            return


class _Framing:
    """Where a chunked body's framing stands between reads."""

    __slots__ = ("buf", "left", "crlf")

    def __init__(self) -> None:
        self.buf = b""
        self.left = -1  # bytes of the current chunk's data still to come; -1: a size line is next; -2: trailers
        self.crlf = False  # the CRLF after a chunk's data is next

    def feed(self, data: bytes, out: list[bytes]) -> bool:
        """Append ``data``'s chunk data to ``out``; True once the body's end (after its trailers) is read."""
        if self.buf:
            data, self.buf = self.buf + data, b""
        pos, end, left = 0, len(data), self.left
        if left == -1 and not self.crlf:
            pos = _whole_chunks(data, out)
        try:
            while pos < end:
                if left > 0:
                    take = min(left, end - pos)
                    out.append(data[pos:pos + take])
                    pos, left = pos + take, left - take
                    if left:
                        break
                    self.crlf = True
                    continue
                if self.crlf:
                    if end - pos < 2:
                        break
                    if data[pos:pos + 2] != b"\r\n":
                        raise urllib3.exceptions.ProtocolError("chunk data not followed by CRLF")
                    pos, self.crlf, left = pos + 2, False, -1
                    continue
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > _MAX_LINE:
                        raise urllib3.exceptions.ProtocolError("chunk-size or trailer line too long")
                    break
                line, pos = data[pos:eol], eol + 2
                if left == -2:  # a trailer field, or the empty line that ends the body
                    if line:
                        continue
                    if pos != end:
                        raise urllib3.exceptions.ProtocolError("bytes after the end of a chunked body")
                    return True
                digits = line.split(b";", 1)[0].strip(b" \t")
                if _CHUNK_SIZE.fullmatch(digits) is None:
                    raise urllib3.exceptions.ProtocolError("invalid chunk-size line")
                left = int(digits, 16) or -2
        finally:
            self.left = left
        if pos < end:
            self.buf = data[pos:]
        return False


def _whole_chunks(data: bytes, out: list[bytes]) -> int:
    """Append the data of the whole chunks at ``data``'s start (size line, data, CRLF); where they stop.

    A vendor sends each event as its own chunk, so a read holds many: one match a chunk here.
    What is left (a chunk cut by the read, the last chunk, anything unusual) is for the
    general path of ``_Framing.feed``, which reads it exactly as if this had not run.
    """
    pos, match = 0, _SIZE_LINE.match
    m = match(data)
    while m is not None:
        start = m.end()
        stop = start + int(m.group(1), 16)
        if stop == start or data[stop:stop + 2] != b"\r\n":
            break
        out.append(data[start:stop])
        pos = stop + 2
        m = match(data, pos)
    return pos


class Provider:
    """A vendor's HTTP surface. Subclasses give ``protocol``, ``url`` and ``auth_headers``."""

    protocol: str = ""  # the protocol it speaks: anthropic | openai | gemini

    @property
    def codec(self) -> UpstreamCodec:
        return upstream_codec(self.protocol)

    def vendor(self, channel: ChannelConfig, default: str = "") -> str:
        """Name the vendor behind a channel, for x-bytespike-provider and the usage log."""
        return self.protocol

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
        headers = dict(STREAM_HEADERS if stream else JSON_HEADERS)
        if forward:
            for name, value in forward.items():
                if name in FORWARDED_HEADERS and value:
                    headers[name] = value
        headers.update(self.auth_headers(api_key, version))
        data = body if body is not None else dumps(payload)
        return Prepared(self.url(channel, upstream_model, stream), headers, data, stream, payload)

    def send(self, prepared: Prepared, *, timeout: tuple[float, float]) -> UpstreamReply:
        """POST the call; raises urllib3 exceptions on connect/read failure (``gateway.upstream`` maps them)."""
        pool, target = route(prepared.url)
        resp = pool.urlopen(
            "POST", target, body=prepared.body, headers=prepared.headers,
            timeout=urllib3.Timeout(connect=timeout[0], read=timeout[1]),
            retries=False, redirect=False, assert_same_host=False, preload_content=False, decode_content=False,
        )
        return UpstreamReply(resp)


def dumps(obj: Any) -> bytes:
    """Serialise a request body compactly, keeping non-ASCII text as UTF-8."""
    import json

    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
