"""A throwaway certificate authority, a server certificate for 127.0.0.1 and a client
certificate, made with the ``openssl`` command (for the connection tests)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Pki", "make_pki"]

EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_name: str = "alice"


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _signed(folder: Path, name: str, subject: str, extensions: str, ca: tuple[Path, Path]
            ) -> tuple[Path, Path]:
    key, csr, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.crt"
    ext = folder / f"{name}.ext"
    ext.write_text(extensions + "\n", encoding="utf-8")
    _openssl("req", *EC, "-subj", subject, "-keyout", str(key), "-out", str(csr))
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
             "-CAcreateserial", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    return cert, key


def make_pki(folder: Path) -> Pki:
    """Make the CA and both certificates under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = folder / "ca.crt", folder / "ca.key"
    _openssl("req", "-x509", *EC, "-subj", "/CN=suandian-test-ca", "-days", "2",
             "-keyout", str(ca_key), "-out", str(ca_cert))
    server = _signed(folder, "server", "/CN=127.0.0.1",
                     "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth",
                     (ca_cert, ca_key))
    client = _signed(folder, "client", "/CN=alice", "extendedKeyUsage=clientAuth",
                     (ca_cert, ca_key))
    return Pki(ca_cert=ca_cert, ca_key=ca_key, server_cert=server[0], server_key=server[1],
               client_cert=client[0], client_key=client[1])
