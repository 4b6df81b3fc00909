"""Requests this service sends to addresses its users chose (webhooks, task callbacks).

A user-chosen URL must not turn the gateway into a probe of its own network:
the host is resolved once, every address it resolves to must be on the public
internet (not loopback, private, link-local, multicast, reserved or otherwise
special, IPv4 and IPv6 alike, IPv4-mapped IPv6 included), and the request
then goes to that very address (the name is kept for ``Host`` and TLS), so a
second DNS answer cannot point it elsewhere. Redirects are never followed.
An operator may allow private targets by CIDR (``BYTESPIKE_OUTBOUND_ALLOW``).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedTarget(ValueError):
    """The URL may not be called; ``str()`` says why, in words fit for the user who set it."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


def allow_list(text: str | None) -> tuple[Network, ...]:
    """Parse ``BYTESPIKE_OUTBOUND_ALLOW`` (comma-separated CIDRs); ValueError names a bad entry."""
    out = []
    for part in (text or "").split(","):
        if part.strip():
            try:
                out.append(ipaddress.ip_network(part.strip(), strict=False))
            except ValueError:
                raise ValueError(f"BYTESPIKE_OUTBOUND_ALLOW: {part.strip()!r} is not a CIDR") from None
    return tuple(out)


def _public(addr: Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return addr.is_global and not (addr.is_multicast or addr.is_reserved or addr.is_private
                                   or addr.is_loopback or addr.is_link_local or addr.is_unspecified)


def check_literal(url: str, allow: Iterable[Network] = ()) -> None:
    """Refuse at once a URL whose host is a non-public IP literal or ``localhost`` (names resolve at send)."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        raise BlockedTarget("the host is this machine, not a public internet address")
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return
    if not _public(addr) and not any(addr in net for net in allow):
        raise BlockedTarget(f"{addr} is not a public internet address")


def resolve(url: str, allow: Iterable[Network] = ()) -> tuple[str, str, int, Address]:
    """(scheme, host, port, the one address to connect to) for ``url``, or BlockedTarget."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedTarget("the URL must be http(s) with a host name")
    if parts.username or parts.password:
        raise BlockedTarget("the URL must not carry a user name or password")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise BlockedTarget("the URL's port is not a number from 1 to 65535") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise BlockedTarget(f"the host {parts.hostname!r} does not resolve") from None
    hosts = [info[4][0] for info in infos]  # an IPv4 or IPv6 socket address starts with the host as text
    addrs = [ipaddress.ip_address(host.split("%", 1)[0]) for host in hosts if isinstance(host, str)]
    allowed = tuple(allow)
    for addr in addrs:
        if not _public(addr) and not any(addr in net for net in allowed):
            raise BlockedTarget(f"the host {parts.hostname!r} resolves to {addr}, which is not a public "
                                "internet address")
    if not addrs:
        raise BlockedTarget(f"the host {parts.hostname!r} does not resolve")
    return parts.scheme, parts.hostname, port, addrs[0]


def post(url: str, body: bytes, headers: Mapping[str, str], *, allow: Iterable[Network] = (),
         timeout: tuple[float, float] = (3.0, 5.0)) -> Answer:
    """POST ``body`` to ``url`` at its checked, pinned address; BlockedTarget or urllib3's errors."""
    scheme, host, port, addr = resolve(url, allow)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    hdrs = {**headers, "Host": host if port in (80, 443) else f"{host}:{port}"}
    to = urllib3.Timeout(connect=timeout[0], read=timeout[1])
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(str(addr), port, timeout=to, retries=False, server_hostname=host,
                                           assert_hostname=host, cert_reqs="CERT_REQUIRED", ca_certs=certifi.where())
    else:
        pool = urllib3.HTTPConnectionPool(str(addr), port, timeout=to, retries=False)
    try:
        resp = pool.urlopen("POST", path, body=body, headers=hdrs, redirect=False, preload_content=False)
        data = resp.read(64 * 1024, decode_content=False)  # enough to show; the rest is not ours to read
        resp.release_conn()
        return Answer(resp.status, data)
    finally:
        pool.close()
