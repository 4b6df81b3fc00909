"""An answer's header block read without the e-mail parser gives the message http.client's parser gives."""

from __future__ import annotations

import http.client
import io

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.providers.head import Response, parse_headers

LINES = [b"Content-Type: text/event-stream\r\n", b"Transfer-Encoding: chunked\r\n", b"X-Empty:\r\n",
         b"X-Spaced:   value with  spaces \t\r\n", b"Set-Cookie: a=1\r\n", b"Set-Cookie: b=2\r\n", b" folded\r\n",
         b"\tfolded\r\n", b"From someone\r\n", b"NoColon\r\n", b"Bad Name: x\r\n", b"A\t: x\r\n", b"X-Latin: \xe9t\xe9\r\n",
         b"x-lower: 1\n", b"X:Y:Z\r\n", b": no name\r\n", b"Retry-After: 3\r\n",
         b"X-Nel: a\x85B: c\r\n", b"X-Cr: a\rC: d\r\n", b"X-Ff: a\x0cb\r\n", b"X-Trail: a\r\r\n"]


def _same(raw: bytes) -> None:
    want = http.client.parse_headers(io.BytesIO(raw))
    got = parse_headers(io.BytesIO(raw))
    assert type(got) is type(want)
    assert got.items() == want.items()
    assert got.get_payload() == want.get_payload()
    assert [type(d) for d in got.defects] == [type(d) for d in want.defects]
    assert got.get_unixfrom() == want.get_unixfrom()


@settings(max_examples=300, deadline=None)
@example([b"Content-Type: text/event-stream\r\n", b"Transfer-Encoding: chunked\r\n"], b"\r\n")
@given(st.lists(st.sampled_from(LINES), max_size=8), st.sampled_from([b"\r\n", b"\n", b"", b"\r\nbody"]))
def test_the_message_is_the_parsers(lines: list[bytes], end: bytes) -> None:
    _same(b"".join(lines) + end)


class _Sock:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


ANSWERS = [
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nConnection: close\r\n\r\nslow down",
    b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{}",
    b"HTTP/1.1 100 Continue\r\nX: 1\r\n\r\nHTTP/1.1 204 No Content\r\nX: 2\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nab",
    b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\nContent-Length: 1\r\n\r\nz",
]


@pytest.mark.parametrize("raw", ANSWERS)
def test_the_response_reads_as_the_librarys(raw: bytes) -> None:
    want, got = http.client.HTTPResponse(_Sock(raw)), Response(_Sock(raw))
    want.begin()
    got.begin()
    for name in ("status", "reason", "version", "chunked", "length", "will_close"):
        assert getattr(got, name) == getattr(want, name), name
    assert got.msg.items() == want.msg.items()
    assert got.read() == want.read()
