"""The upstream pool over TLS: the connection it opens itself is verified and reused like urllib3's own."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
import urllib3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.providers import pool
from gateway.providers.base import UpstreamReply
from tests.gateway.providers.rawhttp import RawUpstream, framed

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
    """A TLS upstream answering every request with three events, and the CA file that trusts it."""
    cert, key = _cert(tmp_path)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    up = RawUpstream(framed([EVENT] * 3), tls=ctx)
    yield up, str(cert)
    up.close()


def _pool(**kw) -> urllib3.PoolManager:
    pm = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=5), **kw)
    pm.pool_classes_by_scheme = {"http": pool._Pool, "https": pool._TLSPool}
    return pm


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_a_verified_tls_stream_is_read_and_its_connection_reused(tls_upstream, host: str) -> None:
    up, ca = tls_upstream
    pm = _pool(ca_certs=ca)
    for _ in range(3):
        resp = pm.urlopen("POST", f"https://{host}:{up.port}/v1/chat/completions", body=b"{}",
                          preload_content=False, decode_content=False)
        reply = UpstreamReply(resp)
        assert b"".join(reply.chunks()) == EVENT * 3
        reply.close()
    assert up.accepted == 1


def test_an_untrusted_certificate_is_refused(tls_upstream) -> None:
    up, _ = tls_upstream
    with pytest.raises(urllib3.exceptions.SSLError):
        _pool().urlopen("POST", f"https://localhost:{up.port}/v1/chat/completions", body=b"{}")
