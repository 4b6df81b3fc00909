"""Webhooks and callbacks reach only the public internet, at the address that was checked."""

from __future__ import annotations

import ipaddress
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import outbound, signing

PRIVATE = ["127.0.0.1", "127.8.9.10", "10.0.0.5", "172.16.3.4", "192.168.1.1", "169.254.169.254", "100.64.0.1",
           "0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255", "::1", "fe80::1", "fc00::1", "ff02::1",
           "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::", "2001:db8::1", "192.0.2.1", "198.18.0.1"]


@pytest.mark.parametrize("addr", PRIVATE)
def test_outbound_refuses_every_non_public_address(addr):
    host = f"[{addr}]" if ":" in addr else addr
    with pytest.raises(outbound.BlockedTarget, match="not a public internet address"):
        outbound.resolve(f"http://{host}:8080/hook")
    with pytest.raises(outbound.BlockedTarget):
        outbound.check_literal(f"https://{host}/hook")


@pytest.mark.parametrize("url", ["http://2130706433/", "http://0x7f.1/", "http://localhost:6379/",
                                 "http://a.localhost/"])
def test_outbound_refuses_other_spellings_of_this_machine(url):
    with pytest.raises(outbound.BlockedTarget):
        outbound.resolve(url)


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://user:pw@example.com/", "file:///etc/passwd",
                                 "http:///nohost", "http://example.com:99999/"])
def test_outbound_refuses_urls_that_are_not_plain_http(url):
    with pytest.raises(outbound.BlockedTarget):
        outbound.resolve(url)


def _dns(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    asked: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            ipaddress.ip_address(host)
            return real(host, port, *args, **kwargs)  # a literal: no lookup happens
        except ValueError:
            asked.append(host)
        if host not in answers:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return asked


def test_outbound_refuses_a_name_whose_dns_answer_points_inside(monkeypatch):
    _dns(monkeypatch, {"hooks.evil.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(outbound.BlockedTarget, match="10.0.0.7"):
        outbound.resolve("https://hooks.evil.example/x")


class _Receiver(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).seen.append((self.path, self.headers.get("Host", ""), body))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:1/elsewhere")
        else:
            self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
        pass


@pytest.fixture
def receiver():
    _Receiver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_outbound_connects_to_the_checked_address_once_and_keeps_the_name(monkeypatch, receiver):
    asked = _dns(monkeypatch, {"hooks.customer.example": ["127.0.0.1"]})
    allow = outbound.allow_list("127.0.0.1/32")
    answer = outbound.post(f"http://hooks.customer.example:{receiver}/in?a=1", b"{}", {"Content-Type": "application/json"},
                           allow=allow)
    assert answer.status == 204
    assert asked == ["hooks.customer.example"]  # resolved once: the connection went to that answer
    assert _Receiver.seen == [("/in?a=1", f"hooks.customer.example:{receiver}", b"{}")]


def test_outbound_never_follows_a_redirect(monkeypatch, receiver):
    allow = outbound.allow_list("127.0.0.1/32")
    answer = outbound.post(f"http://127.0.0.1:{receiver}/moved", b"{}", {}, allow=allow)
    assert answer.status == 302 and len(_Receiver.seen) == 1


def test_outbound_without_the_allow_list_sends_nothing_to_a_private_receiver(receiver):
    with pytest.raises(outbound.BlockedTarget):
        outbound.post(f"http://127.0.0.1:{receiver}/in", b"{}", {})
    assert _Receiver.seen == []


def test_outbound_allow_list_is_validated():
    with pytest.raises(ValueError, match="BYTESPIKE_OUTBOUND_ALLOW"):
        outbound.allow_list("10.0.0.0/8, nonsense")


def test_outbound_signature_is_the_webhook_scheme():
    from website.payments import webhooks

    header = signing.sign("whsec_x", b'{"a":1}', 1_700_000_000)
    assert webhooks.verify("whsec_x", b'{"a":1}', header, 1_700_000_100)
    assert not webhooks.verify("whsec_y", b'{"a":1}', header, 1_700_000_100)
