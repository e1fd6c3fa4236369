"""Where and how the operator connects, resolved as kubectl does (``k8s/connection.py``):
every kubeconfig form, the exec plugin (a tiny script), the pod's service account from
environment variables and files, and the errors that name the file, field and fix."""

from __future__ import annotations

import base64
import json
import os
import ssl
import stat
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.support.pki import Pki

from suandian.errors import InputFileError, KubeCredentialsError
from suandian.k8s.connection import (
    Connection,
    Credentials,
    ExecPlugin,
    StaticToken,
    TokenFile,
    from_kubeconfig,
    in_cluster,
    resolve,
)

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def kubeconfig(path: Path, *, current: str | None = "main", server: str = "https://k:6443",
               cluster: dict[str, Any] | None = None, user: dict[str, Any] | None = None,
               extra_contexts: list[dict[str, Any]] = (),  # type: ignore[assignment]
               namespace: str | None = "team-a") -> Path:
    """A one-context kubeconfig file (cluster ``c``, user ``u``, context ``main``)."""
    context: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        context["namespace"] = namespace
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster or {"server": server}}],
        "users": [{"name": "u", "user": user if user is not None else {"token": "t0"}}],
        "contexts": [{"name": "main", "context": context}, *extra_contexts],
    }
    if current:
        config["current-context"] = current
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def token_of(connection: Connection) -> str | None:
    return connection.credentials().token


def problem(excinfo: pytest.ExceptionInfo[InputFileError]) -> str:
    return str(excinfo.value)


# -- kubeconfig: the plain forms ----------------------------------------------------------


def test_a_token_kubeconfig(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    connection = from_kubeconfig(str(path), env={})
    assert connection.server == "https://k:6443"
    assert token_of(connection) == "t0"
    assert connection.headers(connection.credentials()) == {"Authorization": "Bearer t0"}
    assert connection.namespace == "team-a"
    assert connection.origin == f"{path}, context main"


def test_the_current_context_or_the_one_named(tmp_path: Path) -> None:
    other = {"name": "other", "context": {"cluster": "c", "user": "u"}}
    path = kubeconfig(tmp_path / "config", extra_contexts=[other])
    assert from_kubeconfig(str(path), env={}).namespace == "team-a"
    assert from_kubeconfig(str(path), "other", env={}).namespace == "default"


def test_a_context_that_does_not_exist_lists_those_that_do(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    with pytest.raises(InputFileError) as named:
        from_kubeconfig(str(path), "prod", env={})
    assert problem(named) == (f"{path}: --context: no usable kubeconfig (context 'prod' is "
                              "not defined; the contexts are: main); pass --context NAME")
    kubeconfig(path, current="gone")
    with pytest.raises(InputFileError, match="current-context: no usable kubeconfig "
                       r"\(context 'gone' is not defined"):
        from_kubeconfig(str(path), env={})


def test_no_current_context_says_how_to_choose_one(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", current=None)
    with pytest.raises(InputFileError, match=r"current-context: no usable kubeconfig .*"
                       "kubectl config use-context NAME"):
        from_kubeconfig(str(path), env={})


def test_username_and_password(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"username": "ann", "password": "s3cret"})
    connection = from_kubeconfig(str(path), env={})
    basic = base64.b64encode(b"ann:s3cret").decode()
    assert connection.headers(connection.credentials()) == {"Authorization": f"Basic {basic}"}


def test_a_token_and_a_password_are_refused_as_kubectl_does(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"token": "t", "username": "a", "password": "b"})
    with pytest.raises(InputFileError) as both:
        from_kubeconfig(str(path), env={})
    assert problem(both) == (f"{path}: users[u].user: more than one authentication method "
                             "(token, basicAuth; kubectl refuses it too); keep one")


def test_no_user_is_anonymous(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump({
        "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:8080"}}],
        "contexts": [{"name": "main", "context": {"cluster": "c"}}],
        "current-context": "main"}))
    connection = from_kubeconfig(str(path), env={})
    assert connection.headers(connection.credentials()) == {}
    assert connection.ssl_context() is False


def test_a_cluster_without_a_server(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", cluster={"insecure-skip-tls-verify": True})
    with pytest.raises(InputFileError) as missing:
        from_kubeconfig(str(path), env={})
    assert problem(missing) == (f"{path}: clusters[c].cluster.server: no server is set; write "
                                "the API server's URL (https://HOST:PORT)")


def test_impersonation_and_tls_server_name_are_refused_with_the_field(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"token": "t", "as": "bob"})
    with pytest.raises(InputFileError, match=r"users\[u\]\.user\.as: impersonation is not"):
        from_kubeconfig(str(path), env={})
    path = kubeconfig(tmp_path / "config", cluster={"server": "https://k",
                                                    "tls-server-name": "api"})
    with pytest.raises(InputFileError, match=r"clusters\[c\]\.cluster\.tls-server-name: is "
                       "not supported"):
        from_kubeconfig(str(path), env={})


def test_an_auth_provider_token_is_used_as_stored(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"auth-provider": {
        "name": "oidc", "config": {"id-token": "idt", "refresh-token": "r"}}})
    assert token_of(from_kubeconfig(str(path), env={})) == "idt"
    path = kubeconfig(tmp_path / "config", user={"auth-provider": {"name": "gcp"}})
    with pytest.raises(InputFileError, match="use an exec plugin"):
        from_kubeconfig(str(path), env={})


def test_proxy_url_is_kept(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", cluster={"server": "https://k",
                                                    "proxy-url": "http://proxy:3128"})
    assert from_kubeconfig(str(path), env={}).proxy_url == "http://proxy:3128"


# -- TLS: certificate authority, client certificates, insecure ---------------------------


def test_certificate_authority_as_a_file_and_as_data(tmp_path: Path, pki: Pki) -> None:
    path = kubeconfig(tmp_path / "config", cluster={
        "server": "https://k", "certificate-authority": str(pki.ca_cert)})
    connection = from_kubeconfig(str(path), env={})
    assert connection.ca_file == str(pki.ca_cert)
    context = connection.ssl_context()
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert any(c["subject"] == ((("commonName", "suandian-test-ca"),),)
               for c in context.get_ca_certs())
    data = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    path = kubeconfig(path, cluster={"server": "https://k", "certificate-authority-data": data})
    connection = from_kubeconfig(str(path), env={})
    assert connection.ca_pem == pki.ca_cert.read_bytes()
    context = connection.ssl_context()
    assert isinstance(context, ssl.SSLContext) and len(context.get_ca_certs()) == 1


def test_certificate_authority_errors_name_the_field(tmp_path: Path, pki: Pki) -> None:
    path = kubeconfig(tmp_path / "config", cluster={
        "server": "https://k", "certificate-authority": "missing-ca.crt"})
    with pytest.raises(InputFileError) as missing:
        from_kubeconfig(str(path), env={})
    assert problem(missing).startswith(
        f"{path}: clusters[c].cluster.certificate-authority: {tmp_path}/missing-ca.crt cannot "
        "be read (No such file or directory); correct the path (relative paths are relative "
        "to this file)")
    kubeconfig(path, cluster={"server": "https://k", "certificate-authority-data": "not base64!"})
    with pytest.raises(InputFileError, match="certificate-authority-data: is not base64"):
        from_kubeconfig(str(path), env={})
    both = {"server": "https://k", "certificate-authority": str(pki.ca_cert),
            "certificate-authority-data": base64.b64encode(pki.ca_cert.read_bytes()).decode()}
    kubeconfig(path, cluster=both)
    with pytest.raises(InputFileError, match="both certificate-authority and "
                       "certificate-authority-data are set"):
        from_kubeconfig(str(path), env={})
    kubeconfig(path, cluster={"server": "https://k", "certificate-authority": str(pki.ca_cert),
                              "insecure-skip-tls-verify": True})
    with pytest.raises(InputFileError, match="insecure-skip-tls-verify is set with a "
                       "certificate authority"):
        from_kubeconfig(str(path), env={})


def test_insecure_skip_tls_verify(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", cluster={"server": "https://k",
                                                    "insecure-skip-tls-verify": True})
    context = from_kubeconfig(str(path), env={}).ssl_context()
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname


def test_client_certificates_as_files_and_as_data(tmp_path: Path, pki: Pki) -> None:
    path = kubeconfig(tmp_path / "config", user={
        "client-certificate": str(pki.client_cert), "client-key": str(pki.client_key)})
    connection = from_kubeconfig(str(path), env={})
    assert (connection.cert_file, connection.key_file) == (str(pki.client_cert),
                                                           str(pki.client_key))
    assert isinstance(connection.ssl_context(), ssl.SSLContext)  # the pair loads
    path = kubeconfig(path, user={
        "client-certificate-data": base64.b64encode(pki.client_cert.read_bytes()).decode(),
        "client-key-data": base64.b64encode(pki.client_key.read_bytes()).decode()})
    connection = from_kubeconfig(str(path), env={})
    assert connection.cert_pem == pki.client_cert.read_bytes()
    assert isinstance(connection.ssl_context(), ssl.SSLContext)
    assert connection.headers(connection.credentials()) == {}


def test_a_certificate_without_its_key(tmp_path: Path, pki: Pki) -> None:
    path = kubeconfig(tmp_path / "config", user={"client-certificate": str(pki.client_cert)})
    with pytest.raises(InputFileError) as half:
        from_kubeconfig(str(path), env={})
    assert problem(half) == (f"{path}: users[u].user: a client certificate needs its key and "
                             "the other way round; add client-key (or client-key-data)")


# -- tokenFile ----------------------------------------------------------------------------


def test_a_token_file_is_read_again_every_minute(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("first\n")
    path = kubeconfig(tmp_path / "config", user={"tokenFile": "token"})  # relative
    connection = from_kubeconfig(str(path), env={})
    auth = connection.auth
    assert isinstance(auth, TokenFile) and auth.path == tmp_path / "token"
    clock = [0.0]
    auth._monotonic = lambda: clock[0]  # type: ignore[method-assign]
    auth._read_at = 0.0
    (tmp_path / "token").write_text("second")
    clock[0] = 59.0
    assert token_of(connection) == "first"
    clock[0] = 60.0
    assert token_of(connection) == "second"
    (tmp_path / "token").write_text("third")
    auth.invalidate(Credentials(token="second"))  # a 401: read at once
    assert token_of(connection) == "third"


def test_a_token_file_that_cannot_be_read_keeps_the_last_token(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("kept")
    auth = TokenFile(token)
    assert auth.credentials().token == "kept"
    token.unlink()
    assert auth.credentials(fresh=True).token == "kept"
    with pytest.raises(KubeCredentialsError, match=f"the token file {tmp_path}/none cannot be "
                       "read"):
        TokenFile(tmp_path / "none").credentials()


def test_token_and_token_file_the_file_wins(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-file")
    path = kubeconfig(tmp_path / "config", user={"token": "inline", "tokenFile": "token"})
    assert token_of(from_kubeconfig(str(path), env={})) == "from-file"
    path = kubeconfig(tmp_path / "config", user={"tokenFile": "absent"})
    with pytest.raises(InputFileError, match=r"users\[u\]\.user\.tokenFile: .*absent cannot "
                       "be read"):
        from_kubeconfig(str(path), env={})


# -- several files in KUBECONFIG -----------------------------------------------------------


def test_kubeconfig_files_merge_as_kubectl_merges_them(tmp_path: Path, pki: Pki) -> None:
    """The first file to name a cluster, user or context (or current-context) wins;
    missing files are skipped; relative paths are relative to the file naming them."""
    first = tmp_path / "a" / "config"
    first.parent.mkdir()
    first.write_text(yaml.safe_dump({
        "current-context": "dev",
        "users": [{"name": "u", "user": {"tokenFile": "token-a"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u",
                                                 "namespace": "from-a"}}]}))
    (first.parent / "token-a").write_text("token-of-a")
    second = tmp_path / "b" / "config"
    second.parent.mkdir()
    (second.parent / "ca.crt").write_bytes(pki.ca_cert.read_bytes())
    second.write_text(yaml.safe_dump({
        "current-context": "prod",
        "clusters": [{"name": "c", "cluster": {"server": "https://b:6443",
                                               "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"token": "token-of-b"}}],
        "contexts": [{"name": "dev", "context": {"cluster": "c", "user": "u"}},
                     {"name": "prod", "context": {"cluster": "c", "user": "u",
                                                  "namespace": "from-b"}}]}))
    env = {"KUBECONFIG": os.pathsep.join([str(first), str(tmp_path / "missing"), "",
                                          str(second)])}
    connection = resolve(env=env)
    assert connection.server == "https://b:6443"
    assert connection.ca_file == str(second.parent / "ca.crt")
    assert token_of(connection) == "token-of-a"
    assert connection.namespace == "from-a"
    assert resolve(context="prod", env=env).namespace == "from-b"
    # the other order: b's current-context, user and contexts win
    env = {"KUBECONFIG": os.pathsep.join([str(second), str(first)])}
    assert (resolve(env=env).namespace, token_of(resolve(env=env))) == ("from-b", "token-of-b")


def test_home_kubeconfig_when_kubeconfig_is_unset(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    kubeconfig(tmp_path / ".kube" / "config")
    assert resolve(env={}).origin == f"{tmp_path}/.kube/config, context main"
    assert resolve(env={"KUBECONFIG": ""}).origin == f"{tmp_path}/.kube/config, context main"


def test_nothing_at_all_says_every_way_to_connect(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputFileError) as nothing:
        resolve(env={}, service_account=tmp_path / "sa")
    assert problem(nothing) == (
        f"{tmp_path}/.kube/config: no usable kubeconfig (no such file; not in a pod "
        "(KUBERNETES_SERVICE_HOST and _PORT are not set)); pass --kubeconfig FILE (and "
        "--context NAME), set $KUBECONFIG, or run it in a pod with a service account")


def test_malformed_files_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "kc"
    path.write_text("clusters: [\n")
    with pytest.raises(InputFileError) as bad:
        from_kubeconfig(str(path), env={})
    assert problem(bad).startswith(f"{path}: no usable kubeconfig (line 2, column 1: not "
                                   "valid YAML")
    path.write_text("clusters: {c: 1}\n")
    with pytest.raises(InputFileError, match="clusters: must be a list"):
        from_kubeconfig(str(path), env={})
    with pytest.raises(InputFileError, match="no usable kubeconfig \\(no such file\\)"):
        from_kubeconfig(str(tmp_path / "absent"), env={})


# -- the exec plugin -----------------------------------------------------------------------


def plugin(folder: Path, body: str, name: str = "plugin") -> Path:
    """An executable Python script: ``body`` runs with ``info`` (KUBERNETES_EXEC_INFO,
    decoded), ``api`` (its apiVersion), ``say(status)`` printing the ExecCredential, and
    every run's argv, info and PLUGIN_* environment appended to ``runs.jsonl``."""
    script = folder / name
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent("""\
        import json, os, sys
        info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
        api = info["apiVersion"]
        with open(os.path.join(os.path.dirname(__file__), "runs.jsonl"), "a") as log:
            log.write(json.dumps({"argv": sys.argv[1:], "info": info, "env": {
                k: v for k, v in os.environ.items() if k.startswith("PLUGIN_")}}) + "\\n")
        def say(status, **extra):
            print(json.dumps({"apiVersion": api, "kind": "ExecCredential", "status": status,
                              **extra}))
        """) + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def runs(folder: Path) -> list[dict[str, Any]]:
    log = folder / "runs.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.mark.parametrize("api_version", [V1, V1BETA1])
def test_an_exec_plugin_gives_a_token(tmp_path: Path, api_version: str) -> None:
    plugin(tmp_path, "say({'token': 'exec-' + sys.argv[1] + os.environ['PLUGIN_X']})\n")
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": api_version, "command": "./plugin", "args": ["a"],
        "env": [{"name": "PLUGIN_X", "value": "x"}], "interactiveMode": "Never"}})
    connection = from_kubeconfig(str(path), env={})
    assert isinstance(connection.auth, ExecPlugin)
    assert connection.auth.config.command == str(tmp_path / "plugin")  # relative to the file
    assert runs(tmp_path) == []  # not before the first request
    assert token_of(connection) == "exec-ax"
    assert token_of(connection) == "exec-ax"  # kept: no expirationTimestamp
    [run] = runs(tmp_path)
    assert run["argv"] == ["a"] and run["env"] == {"PLUGIN_X": "x"}
    assert run["info"] == {"apiVersion": api_version, "kind": "ExecCredential",
                           "spec": {"interactive": False}}


def test_v1beta1_needs_no_interactive_mode_v1_does(tmp_path: Path) -> None:
    plugin(tmp_path, "say({'token': 't'})\n")
    user = {"exec": {"apiVersion": V1BETA1, "command": str(tmp_path / "plugin")}}
    path = kubeconfig(tmp_path / "config", user=user)
    assert token_of(from_kubeconfig(str(path), env={})) == "t"
    user["exec"]["apiVersion"] = V1
    path = kubeconfig(path, user=user)
    with pytest.raises(InputFileError) as v1:
        from_kubeconfig(str(path), env={})
    assert problem(v1) == (f"{path}: users[u].user.exec.interactiveMode: must be set for "
                           f"{V1} (kubectl requires it too); write Never")
    user["exec"]["interactiveMode"] = "Always"
    path = kubeconfig(path, user=user)
    with pytest.raises(InputFileError, match="Always needs a terminal"):
        from_kubeconfig(str(path), env={})
    user["exec"]["apiVersion"] = "client.authentication.k8s.io/v1alpha1"
    path = kubeconfig(path, user=user)
    with pytest.raises(InputFileError, match=r"exec\.apiVersion: 'client.authentication.k8s.io"
                       r"/v1alpha1' is not supported"):
        from_kubeconfig(str(path), env={})


def test_the_expiration_timestamp_is_honoured(tmp_path: Path) -> None:
    plugin(tmp_path, """\
        n = len(open(os.path.join(os.path.dirname(__file__), "runs.jsonl")).readlines())
        hours, minutes = divmod(15 * n, 60)
        say({'token': f'token-{n}',
             'expirationTimestamp': f'2026-06-01T{12 + hours}:{minutes:02}:00Z'})
        """)
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    clock = [now]
    config = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": V1, "command": str(tmp_path / "plugin"), "interactiveMode": "Never"}})
    auth = from_kubeconfig(str(config), env={}).auth
    assert isinstance(auth, ExecPlugin)
    auth._now = lambda: clock[0]  # type: ignore[method-assign]
    first = auth.credentials()
    assert first == Credentials(token="token-1",
                                expires=datetime(2026, 6, 1, 12, 15, tzinfo=UTC))
    clock[0] = now + timedelta(minutes=14)
    assert auth.cached() is first and auth.credentials().token == "token-1"
    clock[0] = now + timedelta(minutes=14, seconds=51)  # within 10 s of the expiry: renewed
    assert auth.cached() is None and auth.credentials().token == "token-2"
    auth.invalidate(first)  # an old credential refused: nothing to do
    assert auth.credentials().token == "token-2"
    auth.invalidate(auth.credentials())  # the current one refused (401): run again
    assert auth.credentials().token == "token-3"
    assert auth.credentials(fresh=True).token == "token-4"
    assert len(runs(tmp_path)) == 4


def test_an_exec_plugin_gives_a_client_certificate(tmp_path: Path, pki: Pki) -> None:
    plugin(tmp_path, f"""\
        say({{'clientCertificateData': open({str(pki.client_cert)!r}).read(),
              'clientKeyData': open({str(pki.client_key)!r}).read()}})
        """)
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": V1, "command": str(tmp_path / "plugin"), "interactiveMode": "IfAvailable"}})
    credentials = from_kubeconfig(str(path), env={}).credentials()
    assert credentials.token is None
    assert credentials.cert_pem == pki.client_cert.read_bytes()
    assert credentials.key_pem == pki.client_key.read_bytes()


def test_provide_cluster_info_passes_the_cluster(tmp_path: Path, pki: Pki) -> None:
    plugin(tmp_path, "say({'token': 't'})\n")
    path = kubeconfig(tmp_path / "config", cluster={
        "server": "https://k:6443", "certificate-authority": str(pki.ca_cert),
        "extensions": [{"name": "client.authentication.k8s.io/exec",
                        "extension": {"audience": "suandian"}}]},
        user={"exec": {"apiVersion": V1, "command": str(tmp_path / "plugin"),
                       "interactiveMode": "Never", "provideClusterInfo": True}})
    from_kubeconfig(str(path), env={}).credentials()
    assert runs(tmp_path)[0]["info"]["spec"] == {"interactive": False, "cluster": {
        "server": "https://k:6443",
        "certificate-authority-data": base64.b64encode(pki.ca_cert.read_bytes()).decode(),
        "config": {"audience": "suandian"}}}


def test_a_static_token_wins_over_the_plugin_as_in_client_go(tmp_path: Path) -> None:
    plugin(tmp_path, "say({'token': 'from-plugin'})\n")
    path = kubeconfig(tmp_path / "config", user={"token": "static", "exec": {
        "apiVersion": V1, "command": str(tmp_path / "plugin"), "interactiveMode": "Never"}})
    assert token_of(from_kubeconfig(str(path), env={})) == "static"
    assert runs(tmp_path) == []


@pytest.mark.parametrize(("body", "message"), [
    ("sys.stderr.write('no credentials for you\\n'); sys.exit(3)\n",
     "failed (exit status 3): no credentials for you"),
    ("print('hello')\n", "answered what is not JSON"),
    ("say({'token': 't'}, apiVersion='client.authentication.k8s.io/v1beta1')\n",
     "answered apiVersion 'client.authentication.k8s.io/v1beta1', not the one configured"),
    ("say({})\n", "answered neither a token nor a certificate and key"),
    ("say({'clientCertificateData': 'x'})\n", "answered a certificate without its key"),
    ("say({'token': 't', 'expirationTimestamp': 'soon'})\n", "expirationTimestamp 'soon'"),
])
def test_a_failing_plugin_is_named_with_what_went_wrong(tmp_path: Path, body: str,
                                                        message: str) -> None:
    plugin(tmp_path, body)
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": V1, "command": str(tmp_path / "plugin"), "interactiveMode": "Never"}})
    connection = from_kubeconfig(str(path), env={})
    with pytest.raises(KubeCredentialsError) as failed:
        connection.credentials()
    assert f"{path}: users[u].user.exec: the exec plugin '{tmp_path}/plugin' " in str(failed.value)
    assert message in str(failed.value)
    assert failed.value.status == 0 and failed.value.transient


def test_a_plugin_not_on_path_gives_its_install_hint(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": V1, "command": "kubelogin-absent", "interactiveMode": "Never",
        "installHint": "brew install kubelogin-absent"}})
    with pytest.raises(KubeCredentialsError) as absent:
        from_kubeconfig(str(path), env={}).credentials()
    assert str(absent.value).endswith(
        "the exec plugin 'kubelogin-absent' was not found (brew install kubelogin-absent); "
        "install it (on PATH) or correct command")


def test_a_plugin_that_hangs_is_stopped(tmp_path: Path) -> None:
    plugin(tmp_path, "import time; time.sleep(30)\n")
    path = kubeconfig(tmp_path / "config", user={"exec": {
        "apiVersion": V1, "command": str(tmp_path / "plugin"), "interactiveMode": "Never"}})
    auth = from_kubeconfig(str(path), env={}).auth
    assert isinstance(auth, ExecPlugin)
    auth.timeout = 0.5
    with pytest.raises(KubeCredentialsError, match="gave no answer in 0 s"):
        auth.credentials()


# -- in a pod ------------------------------------------------------------------------------


def service_account(folder: Path, *, token: str = "sa-token", ca: bytes | None = None,
                    namespace: str | None = "suandian-system") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "token").write_text(token)
    if ca is not None:
        (folder / "ca.crt").write_bytes(ca)
    if namespace is not None:
        (folder / "namespace").write_text(namespace + "\n")
    return folder


def test_in_cluster_from_the_environment_and_the_mounted_files(tmp_path: Path,
                                                               pki: Pki) -> None:
    folder = service_account(tmp_path / "sa", ca=pki.ca_cert.read_bytes())
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    connection = resolve(env=env, service_account=folder)
    assert connection.server == "https://10.96.0.1:443"
    assert connection.ca_file == str(folder / "ca.crt")
    assert connection.namespace == "suandian-system"
    assert connection.origin == "in-cluster service account"
    assert connection.headers(connection.credentials()) == {"Authorization": "Bearer sa-token"}
    auth = connection.auth
    assert isinstance(auth, TokenFile)
    (folder / "token").write_text("rotated")  # the kubelet rewrites it
    auth.invalidate(Credentials(token="sa-token"))  # the next 401
    assert token_of(connection) == "rotated"


def test_in_cluster_ipv6_and_no_ca(tmp_path: Path) -> None:
    folder = service_account(tmp_path / "sa", namespace=None)
    found, _ = in_cluster({"KUBERNETES_SERVICE_HOST": "fd00:10:96::1",
                           "KUBERNETES_SERVICE_PORT": "6443"}, folder)
    assert found is not None
    assert found.server == "https://[fd00:10:96::1]:6443"
    assert found.ca_file is None  # the system's roots, as client-go
    assert found.namespace == "default"


def test_an_explicit_kubeconfig_wins_over_the_pod(tmp_path: Path) -> None:
    folder = service_account(tmp_path / "sa")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
           "KUBECONFIG": str(kubeconfig(tmp_path / "env-config"))}
    assert resolve(env=env, service_account=folder).origin == "in-cluster service account"
    explicit = kubeconfig(tmp_path / "explicit", server="https://explicit")
    assert resolve(str(explicit), env=env, service_account=folder).server == "https://explicit"
    assert resolve(context="main", env=env, service_account=folder).server == "https://k:6443"


def test_a_pod_without_a_token_falls_back_to_the_kubeconfig(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(InputFileError, match="no such file; in a pod, but without a service "
                       "account token"):
        resolve(env=env, service_account=tmp_path / "none")
    env["KUBECONFIG"] = str(kubeconfig(tmp_path / "config"))
    assert resolve(env=env, service_account=tmp_path / "none").server == "https://k:6443"


def test_a_static_token_connection() -> None:
    connection = Connection.for_token("https://k/", "t", ca_file="/ca")
    assert connection.server == "https://k" and connection.ca_file == "/ca"
    assert isinstance(connection.auth, StaticToken)
    assert token_of(connection) == "t"
