"""RSA key loading and the HTTP transport shared by the providers."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Mapping

import requests
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .base import ProviderError, Transport


def _pem_or_bare(text: str, kind: str) -> bytes:
    """Accept a PEM file or the bare Base64 that Alipay's key tool writes."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return text.encode()
    label = "PRIVATE KEY" if kind == "private" else "PUBLIC KEY"
    body = "\n".join(text[i : i + 64] for i in range(0, len(text), 64))
    return f"-----BEGIN {label}-----\n{body}\n-----END {label}-----\n".encode()


def load_private_key(path_or_pem: str) -> rsa.RSAPrivateKey:
    """Load an RSA private key (PKCS#8 or PKCS#1) from a file path or PEM text."""
    text = _read(path_or_pem)
    pem = _pem_or_bare(text, "private")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError:
        # Alipay's PKCS#1 keys come bare; retry with the PKCS#1 label.
        pem = pem.replace(b"BEGIN PRIVATE KEY", b"BEGIN RSA PRIVATE KEY").replace(
            b"END PRIVATE KEY", b"END RSA PRIVATE KEY"
        )
        key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(path_or_pem: str) -> rsa.RSAPublicKey:
    """Load an RSA public key (X.509 SubjectPublicKeyInfo) from a file path or PEM text."""
    key = serialization.load_pem_public_key(_pem_or_bare(_read(path_or_pem), "public"))
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def _read(path_or_pem: str) -> str:
    if "-----BEGIN" in path_or_pem:
        return path_or_pem
    path = Path(path_or_pem)
    return path.read_text() if path.exists() else path_or_pem


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def public_pem(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def rsa_sha256_sign(key: rsa.RSAPrivateKey, message: bytes) -> str:
    """RSASSA-PKCS1-v1_5 with SHA-256, standard Base64: both providers' signature."""
    return base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()


def rsa_sha256_verify(key: rsa.RSAPublicKey, message: bytes, signature_b64: str) -> bool:
    """Check a Base64 RSA-SHA256 signature; malformed Base64 is simply a bad signature."""
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        return False
    try:
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        return False
    return True


_session: requests.Session | None = None


def http_transport(timeout: tuple[float, float] = (5.0, 15.0)) -> Transport:
    """Send provider calls over HTTPS with one pooled session per process."""

    def send(method: str, url: str, headers: Mapping[str, str], body: bytes):  # type: ignore[no-untyped-def]
        global _session
        if _session is None:
            _session = requests.Session()
        try:
            resp = _session.request(method, url, headers=dict(headers), data=body or None, timeout=timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"provider unreachable: {type(exc).__name__}") from exc
        return resp.status_code, resp.headers, resp.content

    return send
