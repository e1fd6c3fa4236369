"""The resolved connection on the wire: :class:`KubeApi` over TLS to a loopback server
that checks the CA, the client certificate and the bearer token, renews rotated
credentials after a 401, and the kopf login handler hands kopf the same connection."""

from __future__ import annotations

import base64
import ssl
import stat
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from aiohttp import web
from tests.support.operator import free_port
from tests.support.pki import Pki

from suandian.controllers.main import _login_from
from suandian.errors import KubeApiError, KubeCredentialsError
from suandian.k8s.client import KubeApi
from suandian.k8s.connection import from_kubeconfig


@dataclass
class Server:
    """A TLS API server stand-in: answers who it saw; 401 for a token not in ``tokens``
    (when no client certificate was shown)."""

    url: str
    tokens: set[str] = field(default_factory=set)
    seen: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def server(pki: Pki) -> AsyncIterator[Server]:
    port = free_port()
    state = Server(url=f"https://127.0.0.1:{port}")

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        auth = request.headers.get("Authorization", "")
        state.seen.append({"authorization": auth, "cn": subject.get("commonName")})
        token = auth.removeprefix("Bearer ")
        if not subject and token not in state.tokens:
            return web.json_response({"reason": "Unauthorized", "message": "who are you"},
                                     status=401)
        return web.json_response({"kind": "Status", "cn": subject.get("commonName"),
                                  "token": token or None})

    app = web.Application()
    app.router.add_get("/version", handle)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca_cert))
    context.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    context.verify_mode = ssl.CERT_OPTIONAL
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    try:
        yield state
    finally:
        await runner.cleanup()


def write_kubeconfig(path: Path, server: str, user: dict[str, Any], **cluster: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "current-context": "main",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}]}))
    return path


def ca_data(pki: Pki) -> str:
    return base64.b64encode(pki.ca_cert.read_bytes()).decode()


async def test_ca_data_and_a_token(tmp_path: Path, pki: Pki, server: Server) -> None:
    server.tokens = {"t0"}
    path = write_kubeconfig(tmp_path / "config", server.url, {"token": "t0"},
                            **{"certificate-authority-data": ca_data(pki)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        assert await api.request("GET", "/version") == {"kind": "Status", "cn": None,
                                                        "token": "t0"}
    finally:
        await api.aclose()


async def test_the_server_certificate_is_checked(tmp_path: Path, server: Server) -> None:
    path = write_kubeconfig(tmp_path / "config", server.url, {"token": "t0"})  # system CAs
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        with pytest.raises(KubeApiError, match="CERTIFICATE_VERIFY_FAILED"):
            await api.request("GET", "/version")
    finally:
        await api.aclose()
    path = write_kubeconfig(path, server.url, {"token": "t0"},
                            **{"insecure-skip-tls-verify": True})
    server.tokens = {"t0"}
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        assert (await api.request("GET", "/version"))["token"] == "t0"
    finally:
        await api.aclose()


async def test_a_client_certificate_from_files(tmp_path: Path, pki: Pki,
                                               server: Server) -> None:
    path = write_kubeconfig(tmp_path / "config", server.url, {
        "client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)},
        **{"certificate-authority": str(pki.ca_cert)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        assert (await api.request("GET", "/version"))["cn"] == "alice"
    finally:
        await api.aclose()


async def test_a_rotated_token_file_is_read_again_after_a_401(tmp_path: Path, pki: Pki,
                                                              server: Server) -> None:
    token = tmp_path / "token"
    token.write_text("old")
    path = write_kubeconfig(tmp_path / "config", server.url, {"tokenFile": str(token)},
                            **{"certificate-authority": str(pki.ca_cert)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        server.tokens = {"old"}
        assert (await api.request("GET", "/version"))["token"] == "old"
        token.write_text("new")  # rotated; the server no longer takes the old one
        server.tokens = {"new"}
        assert (await api.request("GET", "/version"))["token"] == "new"
        assert [s["authorization"] for s in server.seen] == [
            "Bearer old", "Bearer old", "Bearer new"]
        server.tokens = set()  # refused whatever is sent: one retry only if it changed
        with pytest.raises(KubeApiError) as refused:
            await api.request("GET", "/version")
        assert refused.value.status == 401
        assert len(server.seen) == 4
    finally:
        await api.aclose()


def exec_plugin(folder: Path, body: str) -> Path:
    script = folder / "plugin"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


async def test_an_exec_plugin_token_renewed_after_a_401(tmp_path: Path, pki: Pki,
                                                        server: Server) -> None:
    counter = tmp_path / "count"
    counter.write_text("0")
    exec_plugin(tmp_path, f"""\
n = int(open({str(counter)!r}).read()) + 1
open({str(counter)!r}, "w").write(str(n))
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1",
                  "status": {{"token": f"exec-{{n}}"}}}}))
""")
    path = write_kubeconfig(tmp_path / "config", server.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": "./plugin",
        "interactiveMode": "Never"}}, **{"certificate-authority": str(pki.ca_cert)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        server.tokens = {"exec-1"}
        assert (await api.request("GET", "/version"))["token"] == "exec-1"
        assert (await api.request("GET", "/version"))["token"] == "exec-1"  # kept
        server.tokens = {"exec-2"}  # the server stops taking exec-1
        assert (await api.request("GET", "/version"))["token"] == "exec-2"
        assert counter.read_text() == "2"
    finally:
        await api.aclose()


async def test_an_exec_plugin_client_certificate(tmp_path: Path, pki: Pki,
                                                 server: Server) -> None:
    exec_plugin(tmp_path, f"""\
print(json.dumps({{"apiVersion": "client.authentication.k8s.io/v1beta1",
                  "kind": "ExecCredential", "status": {{
    "clientCertificateData": open({str(pki.client_cert)!r}).read(),
    "clientKeyData": open({str(pki.client_key)!r}).read(),
    "expirationTimestamp": "2099-01-01T00:00:00Z"}}}}))
""")
    path = write_kubeconfig(tmp_path / "config", server.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": str(tmp_path / "plugin")}},
        **{"certificate-authority-data": ca_data(pki)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        assert (await api.request("GET", "/version"))["cn"] == "alice"
    finally:
        await api.aclose()
    info = _login_from(KubeApi(from_kubeconfig(str(path), env={})))()
    assert isinstance(info, kopf.ConnectionInfo)
    assert info.certificate_data == pki.client_cert.read_bytes()
    assert info.private_key_data == pki.client_key.read_bytes()
    assert info.token is None and info.ca_data == pki.ca_cert.read_bytes()
    assert info.expiration is not None and info.expiration.year == 2099


async def test_a_failing_plugin_is_a_transient_api_error(tmp_path: Path, pki: Pki,
                                                         server: Server) -> None:
    exec_plugin(tmp_path, "sys.stderr.write('the identity provider is down'); sys.exit(1)\n")
    path = write_kubeconfig(tmp_path / "config", server.url, {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1", "command": str(tmp_path / "plugin"),
        "interactiveMode": "Never"}}, **{"certificate-authority": str(pki.ca_cert)})
    api = KubeApi(from_kubeconfig(str(path), env={}))
    try:
        with pytest.raises(KubeCredentialsError, match="the identity provider is down") as err:
            await api.request("GET", "/version")
        assert err.value.transient and server.seen == []  # nothing was sent
    finally:
        await api.aclose()


def test_kopf_logs_in_with_the_same_connection(tmp_path: Path, pki: Pki) -> None:
    """What kopf is given: the server, CA, token (read again at each login: kopf logs in
    again after a 401), basic auth or client certificate files, the proxy."""
    token = tmp_path / "token"
    token.write_text("first")
    path = write_kubeconfig(tmp_path / "config", "https://k:6443", {"tokenFile": str(token)},
                            **{"certificate-authority": str(pki.ca_cert),
                               "proxy-url": "http://proxy:3128"})
    login = _login_from(KubeApi(from_kubeconfig(str(path), env={})))
    info = login()
    assert (info.server, info.ca_path, info.scheme, info.token, info.proxy_url) == (
        "https://k:6443", str(pki.ca_cert), "Bearer", "first", "http://proxy:3128")
    assert info.as_http_headers() == {"Authorization": "Bearer first"}
    token.write_text("second")
    assert login().token == "second"
    path = write_kubeconfig(path, "https://k:6443", {"username": "ann", "password": "pw"},
                            **{"insecure-skip-tls-verify": True})
    info = _login_from(KubeApi(from_kubeconfig(str(path), env={})))()
    assert (info.username, info.password, info.token, info.insecure) == ("ann", "pw", None,
                                                                         True)
    path = write_kubeconfig(path, "https://k:6443", {
        "client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)})
    info = _login_from(KubeApi(from_kubeconfig(str(path), env={})))()
    assert (info.certificate_path, info.private_key_path) == (str(pki.client_cert),
                                                              str(pki.client_key))
    assert info.as_http_headers() == {}
