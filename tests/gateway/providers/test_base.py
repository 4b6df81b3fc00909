"""The chunked-body reader under a stream: same bytes as the framing says, whatever the reads, and a
connection that ends at a message boundary goes back to the pool."""

from __future__ import annotations

import random
import socket
from typing import Callable, Iterator

import pytest
import urllib3

from gateway.providers.base import Prepared, Provider, dechunk
from tests.gateway.providers.rawhttp import RawUpstream, framed


def reads_of(wire: bytes, cuts: list[int]) -> Callable[[int], bytes]:
    """A ``read1`` that gives ``wire`` cut at ``cuts``, then EOF."""
    pieces = [wire[a:b] for a, b in zip([0, *cuts], [*cuts, len(wire)], strict=True) if wire[a:b]]
    it: Iterator[bytes] = iter(pieces)
    return lambda size: next(it, b"")


EVENTS = [b'data: {"id":"c1","choices":[{"delta":{"content":"%d"}}]}\n\n' % i for i in range(12)] + [b"data: [DONE]\n\n"]


@pytest.mark.parametrize("seed", range(40))
def test_any_cutting_gives_the_same_data(seed: int) -> None:
    rnd = random.Random(seed)
    wire = framed(EVENTS, ext=seed % 3 == 0, trailers=b"x-trailer: 1\r\n" if seed % 4 == 0 else b"")
    cuts = sorted(rnd.sample(range(1, len(wire)), rnd.randint(0, min(60, len(wire) - 1))))
    got = list(dechunk(reads_of(wire, cuts)))
    assert b"".join(got) == b"".join(EVENTS)
    assert all(got)  # no empty pieces


def test_one_read_per_event_gives_one_piece_per_event() -> None:
    wire = framed(EVENTS)
    cuts, at = [], 0
    for ev in EVENTS:
        at += len(b"%x\r\n" % len(ev)) + len(ev) + 2
        cuts.append(at)
    assert list(dechunk(reads_of(wire, cuts[:-1]))) == EVENTS[:-1] + [EVENTS[-1]]


@pytest.mark.parametrize("wire", [
    b"5\r\nhello\r\n",                       # closed inside the body
    b"5\r\nhello",                           # closed inside a chunk
    b"zz\r\nhello\r\n0\r\n\r\n",             # not hex
    b"0x5\r\nhello\r\n0\r\n\r\n",            # not a bare hex number
    b"-5\r\nhello\r\n0\r\n\r\n",
    b"5\r\nhelloXX0\r\n\r\n",                # data not followed by CRLF
    b"1" * 5000,                             # a size line without an end
    b"5\r\nhello\r\n0\r\n\r\nHTTP/1.1",      # bytes after the body
])
def test_bad_framing_is_an_error(wire: bytes) -> None:
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(dechunk(reads_of(wire, [])))


class _Plain(Provider):
    protocol = "openai"


@pytest.fixture
def upstream() -> Iterator[tuple[RawUpstream, Prepared]]:
    """A raw upstream serving ``EVENTS`` (with a trailer), and a call prepared for it."""
    up = RawUpstream(framed(EVENTS, trailers=b"x-done: yes\r\n"))
    try:
        yield up, Prepared(f"http://127.0.0.1:{up.port}/v1/chat/completions",
                           {"content-type": "application/json"}, b"{}", True)
    finally:
        up.close()


def test_a_finished_stream_gives_its_connection_back(upstream: tuple[RawUpstream, Prepared]) -> None:
    up, prepared = upstream
    for _ in range(3):
        reply = _Plain().send(prepared, timeout=(5, 5))
        assert b"".join(reply.chunks()) == b"".join(EVENTS)
        reply.close()
    assert up.accepted == 1


def test_an_abandoned_stream_drops_its_connection(upstream: tuple[RawUpstream, Prepared]) -> None:
    up, prepared = upstream
    reply = _Plain().send(prepared, timeout=(5, 5))
    assert next(iter(reply.chunks()))
    reply.close()  # mid-body: the connection cannot be reused
    reply = _Plain().send(prepared, timeout=(5, 5))
    assert b"".join(reply.chunks()) == b"".join(EVENTS)
    reply.close()
    assert up.accepted == 2


def test_an_address_is_used_as_given_and_a_name_is_looked_up_once() -> None:
    from gateway.providers import pool

    assert pool.addresses("127.0.0.1", 80)[0][4] == ("127.0.0.1", 80)
    assert pool.addresses("[::1]", 80)[0][4][:2] == ("::1", 80)
    pool._addresses.clear()
    first = pool.addresses("localhost", 8080)
    assert ("localhost", 8080) in pool._addresses
    assert pool.addresses("localhost", 8080) is first


def test_a_pooled_connection_closed_by_the_upstream_is_not_reused(upstream: tuple[RawUpstream, Prepared]) -> None:
    _, prepared = upstream
    reply = _Plain().send(prepared, timeout=(5, 5))
    assert b"".join(reply.chunks()) == b"".join(EVENTS)
    conn = reply._resp._connection
    assert conn is not None and conn.is_connected
    reply.close()
    conn.sock.shutdown(socket.SHUT_RD)  # as if the peer had closed it: readable at EOF
    assert not conn.is_connected


def test_what_came_before_a_framing_fault_is_given_first() -> None:
    wire = framed(EVENTS[:2])[:-5] + b"zz\r\nhello\r\n"  # two events, then a size line that is not hex
    got: list[bytes] = []
    with pytest.raises(urllib3.exceptions.ProtocolError):
        for piece in dechunk(reads_of(wire, [])):  # all in one read
            got.append(piece)
    assert b"".join(got) == b"".join(EVENTS[:2])


@pytest.mark.parametrize("line", [b"%x", b"%X", b"000%x", b" %x", b"%x \t", b"%x;name=value", b"%x ; a=b;c",
                                  b"%x;a\rb", b"%x;a\nb", b"+%x", b"%x_0", b"0x%x", b""])
def test_whole_chunks_read_as_byte_by_byte(line: bytes) -> None:
    """Whole chunks in one read go the quick way; any size line reads as it does a byte at a time."""
    def wire() -> bytes:
        body = b"".join((line % len(ev) if b"%" in line else line) + b"\r\n" + ev + b"\r\n" for ev in EVENTS)
        return body + b"0\r\n\r\n"

    def run(cuts: list[int]) -> tuple[bytes, str]:
        got: list[bytes] = []
        try:
            for piece in dechunk(reads_of(wire(), cuts)):
                got.append(piece)
        except urllib3.exceptions.ProtocolError as err:
            return b"".join(got), str(err)
        return b"".join(got), ""

    assert run([]) == run(list(range(1, len(wire()))))
