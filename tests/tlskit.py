"""A self-signed certificate for the TLS tests (made with the openssl command)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path


def self_signed(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext, str]:
    """A certificate for localhost / 127.0.0.1 in ``directory``: (server context,
    client context that trusts it, the certificate's PEM file)."""
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    return server_ctx, client_ctx, str(cert)
