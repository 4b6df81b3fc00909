"""The idle timer throws only into a read that is still waiting when the throw comes due."""

from __future__ import annotations

import time

from gateway.providers import idle


class _Glet:
    def __init__(self) -> None:
        self.thrown: list[BaseException] = []

    def throw(self, exc: BaseException) -> None:
        self.thrown.append(exc)


def test_a_read_still_waiting_past_its_limit_is_interrupted() -> None:
    glet = _Glet()
    idle._expire(glet, [time.monotonic() - 5], 3.0)
    assert len(glet.thrown) == 1 and isinstance(glet.thrown[0], TimeoutError)


def test_a_read_that_got_its_bytes_or_started_again_is_left_alone() -> None:
    glet = _Glet()
    idle._expire(glet, [0.0], 3.0)  # between reads (writing to the caller, settling)
    idle._expire(glet, [time.monotonic()], 3.0)  # a new read, just started
    assert glet.thrown == []


def test_unwatch_drops_a_throw_already_scheduled() -> None:
    glet, stamp = _Glet(), [time.monotonic() - 5]
    idle.unwatch(stamp)
    idle._expire(glet, stamp, 3.0)
    assert glet.thrown == []


def test_a_plain_socket_keeps_its_own_timeout() -> None:
    import socket

    with socket.socket() as s:
        s.settimeout(3)
        assert idle.watch(s, [0.0]) is False
        assert s.gettimeout() == 3
