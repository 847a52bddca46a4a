"""A self-signed certificate for TLS on loopback, made at start with the ``openssl`` command line.

``openssl`` is on every Debian box the setup targets, so TLS needs no new Python dependency (``trustme``
would need ``cryptography``, a large compiled wheel); the key is an ephemeral P-256 key valid for a day,
for 127.0.0.1, ::1 and localhost only, written to a private temporary folder removed at close.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

from vkit.errors import ConfigError, got


class SelfSignedCertificate:
    """A certificate and key for ``host`` in a temporary folder; contexts for the server and for clients."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        if shutil.which("openssl") is None:
            raise ConfigError(f"TLS on loopback needs the openssl command (Debian: apt-get install openssl) {got(host)}")
        self._folder = Path(tempfile.mkdtemp(prefix="vkit-tls-"))
        self.cert_path = self._folder / "cert.pem"
        self.key_path = self._folder / "key.pem"
        names = "IP:127.0.0.1,IP:::1,DNS:localhost" + (f",IP:{host}" if host not in ("127.0.0.1", "::1") else "")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-days", "1", "-subj", "/CN=vkit local", "-addext", f"subjectAltName={names}",
                        "-keyout", str(self.key_path), "-out", str(self.cert_path)],
                       check=True, capture_output=True, timeout=30)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert_path))

    def remove(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)
