"""The upstream pool over TLS: the connection it opens itself is verified and reused like urllib3's own."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
from pathlib import Path

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.providers import pool
from gateway.providers.base import UpstreamReply

EVENT = b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'


def _cert(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def tls_upstream(tmp_path: Path):
    """(port, CA file, connections accepted) of a TLS server answering every request with a chunked stream."""
    cert, key = _cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def answer(conn: socket.socket) -> None:
        try:
            tls = ctx.wrap_socket(conn, server_side=True)
            f = tls.makefile("rb")
            while True:
                line, length = f.readline(), 0
                if not line:
                    return
                while line not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                    line = f.readline()
                f.read(length)
                tls.sendall(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                            + b"%x\r\n%s\r\n" % (len(EVENT), EVENT) * 3 + b"0\r\n\r\n")
        except OSError:  # a refused handshake, a client that hung up
            pass
        finally:
            conn.close()

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            accepted.append(1)
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield srv.getsockname()[1], str(cert), accepted
    srv.close()


def _pool(**kw) -> urllib3.PoolManager:
    pm = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=5), **kw)
    pm.pool_classes_by_scheme = {"http": pool._Pool, "https": pool._TLSPool}
    return pm


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_verified_tls_stream_is_read_and_its_connection_reused(tls_upstream, host: str) -> None:
    port, ca, accepted = tls_upstream
    pm = _pool(ca_certs=ca)
    for _ in range(3):
        resp = pm.urlopen("POST", f"https://{host}:{port}/v1/chat/completions", body=b"{}",
                          preload_content=False, decode_content=False)
        reply = UpstreamReply(resp)
        assert b"".join(reply.chunks()) == EVENT * 3
        reply.close()
    assert len(accepted) == 1


def test_an_untrusted_certificate_is_refused(tls_upstream) -> None:
    port, _, _ = tls_upstream
    with pytest.raises(urllib3.exceptions.SSLError):
        _pool().urlopen("POST", f"https://localhost:{port}/v1/chat/completions", body=b"{}")
