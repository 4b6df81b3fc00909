"""This process's upstream connection pool: urllib3, with the per-call costs it pays under gevent cut.

Chat calls go straight through one urllib3 pool per process (rebuilt after a fork), with
explicit (connect, read) timeouts on every call: requests' session layer (settings merging,
cookies, hooks) cost more CPU per call than the rest of the hop.
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from typing import Any, Callable, Generic, TypeVar

import urllib3
import urllib3.connection
import urllib3.util.timeout
from urllib3.util.connection import allowed_gai_family

from gateway.providers.head import Response

try:  # the original functions, not gevent's cooperative ones (neither ever waits here)
    from gevent.monkey import get_original

    _poll, _getaddrinfo = get_original("select", "poll"), get_original("_socket", "getaddrinfo")
except ImportError:  # pragma: no cover - gevent is a requirement
    _poll, _getaddrinfo = select.poll, socket.getaddrinfo

T = TypeVar("T")


class PerProcess(Generic[T]):
    """One object per process, built on first use (a forked worker builds its own)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._held: tuple[int, T] | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        pid = os.getpid()
        held = self._held
        if held is not None and held[0] == pid:
            return held[1]
        with self._lock:
            if self._held is None or self._held[0] != pid:
                self._held = (pid, self._build())
            return self._held[1]


class _OneWrite:
    """Send the request head and a bytes body in one write instead of two.

    urllib3 writes the headers, then the body: two syscalls and two packets per
    call, which on loopback cost about as much as the rest of the send path
    (http.client joins them the same way for bytes bodies).
    """

    _head: bytes | None = None

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kw: Any) -> None:
        self._head = b"" if isinstance(body, bytes) and body else None
        try:
            super().request(method, url, body=body, headers=headers, **kw)  # type: ignore[misc]
        finally:
            head, self._head = self._head, None
            if head:  # the body never came: the head still goes out alone
                super().send(head)  # type: ignore[misc]

    def send(self, data: Any) -> None:
        head = self._head
        if head is not None:
            if not head:
                self._head = bytes(data)  # the head: hold it for the body
                return
            data, self._head = head + bytes(data), None
        super().send(data)  # type: ignore[misc]


class _Cheap:
    """Two costs urllib3 pays per call under gevent, avoided.

    - ``is_connected``, asked each time a pooled connection is taken, polls the socket
      with a zero timeout through gevent's ``select.poll`` emulation (watchers started
      and stopped for a call that never waits); the original ``poll`` answers the same.
    - A new connection resolves its host through gevent's thread-pool resolver, a hand-off to
      a native thread and back, even for an IP address. An address is used as it is, and
      a name's answer is kept for ``ADDRESS_TTL_S``.
    """

    sock: Any
    host: str
    port: int
    timeout: Any
    source_address: Any
    socket_options: Any
    _dns_host: str

    @property
    def is_connected(self) -> bool:
        if self.sock is None:
            return False
        p = _poll()
        p.register(self.sock, select.POLLIN)
        return not p.poll(0)  # readable while idle: closed by the peer, or stray bytes

    def _new_conn(self) -> socket.socket:
        try:
            sock = _connect(addresses(self._dns_host, self.port), self.timeout, self.source_address,
                            self.socket_options)
        except socket.gaierror as e:
            raise urllib3.exceptions.NameResolutionError(self.host, self, e) from e  # type: ignore[arg-type]
        except TimeoutError as e:
            raise urllib3.exceptions.ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})") from e
        except OSError as e:
            raise urllib3.exceptions.NewConnectionError(
                self, f"Failed to establish a new connection: {e}") from e  # type: ignore[arg-type]
        return sock


ADDRESS_TTL_S = 30.0
_addresses: dict[tuple[str, int], tuple[float, list[Any]]] = {}


def addresses(host: str, port: int) -> list[Any]:
    """``getaddrinfo`` for a TCP connection: an address at once, a name's answer kept ``ADDRESS_TTL_S``."""
    host = host.strip("[]")
    family = allowed_gai_family()
    try:  # an IP address: nothing to look up, no thread hand-off
        return list(_getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST))
    except socket.gaierror:
        pass
    now = time.monotonic()
    hit = _addresses.get((host, port))
    if hit is not None and hit[0] > now:
        return hit[1]
    found = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)  # gevent's resolver when patched
    if len(_addresses) > 256:
        _addresses.clear()
    _addresses[(host, port)] = (now + ADDRESS_TTL_S, found)
    return found


def _connect(infos: list[Any], timeout: Any, source: Any, options: Any) -> socket.socket:
    """The first address of ``infos`` that accepts, as urllib3's ``create_connection`` does."""
    err: OSError | None = None
    for af, socktype, proto, _, sa in infos:
        sock = None
        try:
            sock = socket.socket(af, socktype, proto)
            for opt in options or ():
                sock.setsockopt(*opt)
            if timeout is not urllib3.util.timeout._DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source:
                sock.bind(source)
            sock.connect(sa)
            return sock
        except OSError as e:
            err = e
            if sock is not None:
                sock.close()
    raise err if err is not None else OSError("getaddrinfo returned an empty list")


class _Conn(_OneWrite, _Cheap, urllib3.connection.HTTPConnection):
    response_class = Response  # the answer's head without the e-mail parser


class _TLSConn(_OneWrite, _Cheap, urllib3.connection.HTTPSConnection):
    response_class = Response


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _Conn


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TLSConn


def _build_pool() -> urllib3.PoolManager:
    import certifi

    # Enough pooled connections per upstream host for many concurrent streams; the same
    # CA bundle requests used; no retries or redirects (the router decides what happens next).
    pool = urllib3.PoolManager(num_pools=16, maxsize=1024, block=False, retries=False,
                               ca_certs=certifi.where())
    pool.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return pool


_pool = PerProcess(_build_pool)


def http_pool() -> urllib3.PoolManager:
    """Return this process's upstream connection pool (a forked worker builds its own)."""
    return _pool.get()


_routes: PerProcess[dict[str, tuple[urllib3.HTTPConnectionPool, str]]] = PerProcess(dict)


def route(url: str) -> tuple[urllib3.HTTPConnectionPool, str]:
    """The host's connection pool and the request target of ``url``, worked out once per URL.

    What ``PoolManager.urlopen`` does on every call (parse the URL, look the pool up by a
    normalised key) costs as much as parsing the answer's head; channel URLs are few.
    A pool the manager has since closed (it keeps ``num_pools``) is looked up again.
    """
    routes = _routes.get()
    hit = routes.get(url)
    if hit is not None and hit[0].pool is not None:
        return hit
    u = urllib3.util.parse_url(url)
    found = (http_pool().connection_from_host(u.host, port=u.port, scheme=u.scheme or "http"), u.request_uri)
    if len(routes) >= 1024:
        routes.clear()
    routes[url] = found
    return found


