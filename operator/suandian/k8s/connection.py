"""Where and how to reach the Kubernetes API: a pod's service account, or a kubeconfig.

:func:`resolve` answers it the way kubectl (client-go) does, for what an operator needs,
without the ``kubernetes`` package (some 34 MB of memory in every replica, for this alone):

- **Which source.** An explicit ``--kubeconfig``/``--context`` wins; else the pod's
  service account when ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT`` are
  set and its token is mounted; else ``$KUBECONFIG`` (several files joined by ``:``) or
  ``~/.kube/config``.
- **In a pod.** ``https://HOST:PORT`` (an IPv6 host in brackets), the mounted
  ``ca.crt`` (the system's roots when it is missing or empty, as client-go), the
  mounted token, read again at most every minute (the kubelet rotates it) and at once
  after a 401, and the mounted ``namespace``.
- **Kubeconfig files.** Merged as kubectl merges ``$KUBECONFIG``: files that do not
  exist are skipped; for every cluster, user and context name and for
  ``current-context`` the first file that sets it wins; relative paths
  (``certificate-authority``, ``client-certificate``, ``client-key``, ``tokenFile``, an
  ``exec`` command with a ``/``) are relative to the file that names them. An explicit
  file is read alone and must exist.
- **A context.** ``--context`` or ``current-context``; its cluster (``server``,
  ``certificate-authority`` or ``-data``, ``insecure-skip-tls-verify``,
  ``proxy-url``), its user and its ``namespace`` (default ``default``).
- **A user.** ``client-certificate``/``client-key`` (or ``-data``), ``token`` or
  ``tokenFile`` (the file wins and is read again every minute, as client-go),
  ``username``/``password``, the ``exec`` plugin (below), or a legacy
  ``auth-provider``'s stored ``id-token``/``access-token`` (never refreshed). The
  combinations kubectl refuses (a token and a password, data and a file for one
  certificate, a CA with ``insecure-skip-tls-verify``) are refused here too, and so is
  what kopf could not use as well (impersonation, ``tls-server-name``): both clients
  of the operator must reach the same server as the same user.
- **The exec plugin** (``client.authentication.k8s.io/v1`` and ``v1beta1``): the command
  runs with its ``args``, the process environment plus its ``env``, no terminal
  (``interactiveMode: Always`` is refused: an operator has nobody to ask) and
  ``KUBERNETES_EXEC_INFO`` (``spec.interactive: false``, and ``spec.cluster`` when
  ``provideClusterInfo``); its ``ExecCredential`` answer gives ``status.token`` or
  ``status.clientCertificateData`` and ``clientKeyData``, kept until its
  ``expirationTimestamp`` (for ever without one) or the server's next 401. As in
  client-go, a token, password or client certificate written in the kubeconfig wins
  and the plugin is not run.

Every problem found in a kubeconfig is an :class:`~suandian.errors.InputFileError`
naming the file, the field (``users[alice].user.exec.apiVersion``) and the fix; a plugin
or token file that fails later, at a request, is a
:class:`~suandian.errors.KubeCredentialsError`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import yaml

from suandian.errors import FieldError, InputFileError, KubeCredentialsError

__all__ = [
    "EXEC_API_VERSIONS",
    "SERVICE_ACCOUNT_DIR",
    "Authenticator",
    "Connection",
    "Credentials",
    "ExecPlugin",
    "StaticToken",
    "TokenFile",
    "from_kubeconfig",
    "in_cluster",
    "resolve",
]

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DEFAULT_KUBECONFIG = "~/.kube/config"
TOKEN_FILE_PERIOD = 60.0
"""Seconds a token file's content is trusted before it is read again (client-go's)."""
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_TIMEOUT = 60.0
"""Seconds an exec plugin may take (client-go waits for ever; an operator must not)."""
EXEC_EARLY = timedelta(seconds=10)
"""An exec credential is renewed this long before its ``expirationTimestamp``."""
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
FIX = ("pass --kubeconfig FILE (and --context NAME), set $KUBECONFIG, or run it in a pod "
       "with a service account")


# -- credentials ----------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """What requests authenticate with at the moment: a bearer token and/or a client
    certificate (PEM), until ``expires`` (None: until the server refuses them)."""

    token: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    expires: datetime | None = None


NO_CREDENTIALS = Credentials()


class Authenticator(Protocol):
    """A source of credentials that may change (a token file, an exec plugin)."""

    def cached(self) -> Credentials | None:
        """The credentials in hand if still good (never blocks); None: call
        :meth:`credentials`."""

    def credentials(self, *, fresh: bool = False) -> Credentials:
        """Good credentials, read or made again when needed (or always: ``fresh``).
        May block (a file read, a process): raises KubeCredentialsError."""

    def invalidate(self, used: Credentials) -> None:
        """The server refused ``used`` (401): the next call obtains new ones."""


class StaticToken:
    """A token written in the kubeconfig (or given by a test)."""

    def __init__(self, token: str) -> None:
        self._credentials = Credentials(token=token)

    def cached(self) -> Credentials:
        return self._credentials

    def credentials(self, *, fresh: bool = False) -> Credentials:
        del fresh
        return self._credentials

    def invalidate(self, used: Credentials) -> None:
        del used  # nothing else to send


class TokenFile:
    """A bearer token in a file that is rewritten in place (a projected service account
    token, a kubeconfig's ``tokenFile``): read again after ``period`` seconds or a 401;
    while it cannot be read, the last token read (or ``fallback``) is kept."""

    def __init__(self, path: str | Path, *, fallback: str | None = None,
                 period: float = TOKEN_FILE_PERIOD,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path)
        self.period = period
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._credentials = Credentials(token=fallback) if fallback else None
        self._read_at: float | None = None

    def cached(self) -> Credentials | None:
        if self._read_at is None or self._monotonic() - self._read_at >= self.period:
            return None
        return self._credentials

    def credentials(self, *, fresh: bool = False) -> Credentials:
        with self._lock:
            if not fresh and (found := self.cached()) is not None:
                return found
            try:
                token = self.path.read_text(encoding="utf-8").strip()
            except (OSError, UnicodeDecodeError) as exc:
                problem = f"cannot be read ({exc})"
            else:
                if token:
                    self._credentials = Credentials(token=token)
                    self._read_at = self._monotonic()
                    return self._credentials
                problem = "is empty"
            if self._credentials is None:
                raise KubeCredentialsError(f"the token file {self.path} {problem}; mount or "
                                           "write the token there, or name another file")
            log.warning("the token file %s %s; the last token read is kept", self.path, problem)
            self._read_at = self._monotonic()
            return self._credentials

    def invalidate(self, used: Credentials) -> None:
        with self._lock:
            if used.token == (self._credentials.token if self._credentials else None):
                self._read_at = None


@dataclass(frozen=True)
class ExecConfig:
    """A kubeconfig user's ``exec`` section, checked (see :class:`ExecPlugin`)."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    install_hint: str = ""
    provide_cluster_info: bool = False
    where: str = ""  # "FILE: users[NAME].user.exec", for messages


class ExecPlugin:
    """Credentials from a client-go credential plugin (see the module docstring)."""

    def __init__(self, config: ExecConfig, cluster: Mapping[str, Any] | None = None, *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 timeout: float = EXEC_TIMEOUT) -> None:
        self.config = config
        self.cluster = dict(cluster) if cluster is not None else None
        self._now = now
        self.timeout = timeout
        self._lock = threading.Lock()
        self._credentials: Credentials | None = None
        self.runs = 0  # how many times the plugin ran (for tests and logs)

    def cached(self) -> Credentials | None:
        found = self._credentials
        if found is None or (found.expires is not None
                             and self._now() >= found.expires - EXEC_EARLY):
            return None
        return found

    def credentials(self, *, fresh: bool = False) -> Credentials:
        with self._lock:
            if not fresh and (found := self.cached()) is not None:
                return found
            self._credentials = self._run()
            return self._credentials

    def invalidate(self, used: Credentials) -> None:
        with self._lock:
            if self._credentials is used:
                self._credentials = None

    def exec_info(self) -> dict[str, Any]:
        """The ``KUBERNETES_EXEC_INFO`` the plugin is given."""
        spec: dict[str, Any] = {"interactive": False}
        if self.config.provide_cluster_info and self.cluster is not None:
            spec["cluster"] = self.cluster
        return {"apiVersion": self.config.api_version, "kind": "ExecCredential", "spec": spec}

    def _run(self) -> Credentials:
        config = self.config
        name = config.command
        command = name if os.sep in name else shutil.which(name)
        if command is None or not Path(command).exists():
            hint = f" ({config.install_hint.strip()})" if config.install_hint.strip() else ""
            raise KubeCredentialsError(
                f"{config.where}: the exec plugin {name!r} was not found{hint}; install it "
                "(on PATH) or correct command")
        env = {**os.environ, **dict(config.env),
               "KUBERNETES_EXEC_INFO": json.dumps(self.exec_info())}
        self.runs += 1
        try:
            done = subprocess.run([command, *config.args], env=env, stdin=subprocess.DEVNULL,
                                  capture_output=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired:
            raise KubeCredentialsError(
                f"{config.where}: the exec plugin {name!r} gave no answer in "
                f"{self.timeout:.0f} s") from None
        except OSError as exc:
            raise KubeCredentialsError(f"{config.where}: the exec plugin {name!r} could not "
                                       f"be started ({exc})") from None
        stderr = " ".join(done.stderr.decode("utf-8", "replace").split())[-500:]
        if done.returncode != 0:
            raise KubeCredentialsError(
                f"{config.where}: the exec plugin {name!r} failed (exit status "
                f"{done.returncode}){': ' + stderr if stderr else ''}")
        return self._answer(done.stdout)

    def _answer(self, stdout: bytes) -> Credentials:
        where, name = self.config.where, self.config.command

        def bad(problem: str) -> KubeCredentialsError:
            return KubeCredentialsError(
                f"{where}: the exec plugin {name!r} answered {problem}; it must print an "
                f"ExecCredential of {self.config.api_version} with status.token or "
                "status.clientCertificateData and clientKeyData")

        try:
            answer = json.loads(stdout)
        except ValueError:
            raise bad("what is not JSON") from None
        if not isinstance(answer, dict):
            raise bad("JSON that is not an object")
        if answer.get("apiVersion") != self.config.api_version:
            raise bad(f"apiVersion {answer.get('apiVersion')!r}, not the one configured")
        if answer.get("kind") not in (None, "ExecCredential"):
            raise bad(f"kind {answer.get('kind')!r}")
        status = answer.get("status")
        if not isinstance(status, dict):
            raise bad("no status")
        token = status.get("token") or None
        cert, key = status.get("clientCertificateData"), status.get("clientKeyData")
        if not (token or cert or key):
            raise bad("neither a token nor a certificate and key")
        if bool(cert) != bool(key):
            raise bad("a certificate without its key, or a key without its certificate")
        expires: datetime | None = None
        if status.get("expirationTimestamp"):
            try:
                expires = _rfc3339(str(status["expirationTimestamp"]))
            except ValueError:
                raise bad(f"expirationTimestamp {status['expirationTimestamp']!r}, which is "
                          "not an RFC 3339 time") from None
        return Credentials(token=str(token) if token else None,
                           cert_pem=str(cert).encode() if cert else None,
                           key_pem=str(key).encode() if key else None, expires=expires)


def _rfc3339(text: str) -> datetime:
    when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if when.tzinfo is None:
        raise ValueError(text)
    return when.astimezone(UTC)


# -- the connection -------------------------------------------------------------------


@dataclass
class Connection:
    """One API server and how to authenticate to it (see the module docstring).

    ``cert_file``/``key_file`` or ``cert_pem``/``key_pem``: a client certificate of the
    kubeconfig; an ``auth`` that gives certificates (an exec plugin) adds its own.
    """

    server: str
    ca_file: str | None = None
    ca_pem: bytes | None = None
    insecure: bool = False
    cert_file: str | None = None
    key_file: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None
    username: str | None = None
    password: str | None = None
    auth: Authenticator | None = None
    proxy_url: str | None = None
    namespace: str = "default"
    origin: str = ""
    """Where it came from, for logs: ``in-cluster service account``, ``FILE, context X``."""

    @classmethod
    def for_token(cls, server: str, token: str, *, ca_file: str | None = None) -> Connection:
        return cls(server=server.rstrip("/"), ca_file=ca_file, auth=StaticToken(token))

    @property
    def tls(self) -> bool:
        return self.server.lower().startswith("https:")

    def credentials(self, *, fresh: bool = False) -> Credentials:
        """The credentials for the next request (may block: see :class:`Authenticator`)."""
        if self.auth is None:
            return NO_CREDENTIALS
        return self.auth.credentials(fresh=fresh)

    def headers(self, credentials: Credentials) -> dict[str, str]:
        """The ``Authorization`` header for these credentials (none: anonymous)."""
        if credentials.token:
            return {"Authorization": f"Bearer {credentials.token}"}
        if self.username is not None and self.password is not None:
            pair = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
        return {}

    def ssl_context(self) -> ssl.SSLContext | bool:
        """The TLS context (False for plain HTTP), with the kubeconfig's client certificate;
        :meth:`load_client_certificate` adds a plugin's."""
        if not self.tls:
            return False
        context = ssl.create_default_context(
            cafile=self.ca_file, cadata=self.ca_pem.decode("ascii") if self.ca_pem else None)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file and self.key_file:
            context.load_cert_chain(self.cert_file, self.key_file)
        elif self.cert_pem and self.key_pem:
            load_client_certificate(context, self.cert_pem, self.key_pem)
        return context


def load_client_certificate(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    """Load a PEM certificate and key into ``context`` (Python's ssl reads them only from
    files: they exist for the moment of the call, readable by this user alone)."""
    with tempfile.TemporaryDirectory(prefix="suandian-tls-") as folder:
        cert, key = Path(folder, "tls.crt"), Path(folder, "tls.key")
        for path, data in ((cert, cert_pem), (key, key_pem)):
            path.touch(mode=0o600)
            path.write_bytes(data)
        context.load_cert_chain(str(cert), str(key))


# -- in a pod -------------------------------------------------------------------------


def in_cluster(env: Mapping[str, str] | None = None,
               folder: str | Path = SERVICE_ACCOUNT_DIR) -> tuple[Connection | None, str]:
    """The pod's service account: ``(connection, "")``, or ``(None, why not)``."""
    env = os.environ if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        return None, "not in a pod (KUBERNETES_SERVICE_HOST and _PORT are not set)"
    folder = Path(folder)
    token = TokenFile(folder / "token")
    try:
        token.credentials()
    except KubeCredentialsError as exc:
        return None, f"in a pod, but without a service account token ({exc})"
    ca: str | None = str(folder / "ca.crt")
    try:
        if not Path(str(ca)).read_bytes().strip():
            raise OSError("empty")
    except OSError as exc:
        log.warning("the service account's CA %s cannot be used (%s): the system's are", ca, exc)
        ca = None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address
    try:
        namespace = (folder / "namespace").read_text(encoding="utf-8").strip() or "default"
    except OSError:
        namespace = "default"
    return Connection(server=f"https://{host}:{port}", ca_file=ca, auth=token,
                      namespace=namespace, origin="in-cluster service account"), ""


# -- kubeconfig files -----------------------------------------------------------------


@dataclass
class _Entry:
    """A named cluster, user or context, and the file that defined it."""

    body: dict[str, Any]
    file: Path


@dataclass
class _Merged:
    files: list[Path]
    current: str | None = None
    current_file: Path | None = None
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)


def kubeconfig_paths(explicit: str | None, env: Mapping[str, str]) -> list[Path]:
    """The files to merge: the explicit one alone, else ``$KUBECONFIG``'s (in order,
    each once), else ``~/.kube/config``."""
    if explicit:
        return [Path(explicit).expanduser()]
    raw = env.get("KUBECONFIG", "")
    paths: list[Path] = []
    for part in raw.split(os.pathsep):
        if part.strip() and (path := Path(part.strip()).expanduser()) not in paths:
            paths.append(path)
    return paths or [Path(DEFAULT_KUBECONFIG).expanduser()]


def _problem(path: Path | str, where: str, message: str) -> InputFileError:
    return InputFileError(path, [FieldError(where, message)])


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _problem(path, "", f"no usable kubeconfig (it cannot be read: {exc})") from None
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise _problem(path, "", f"no usable kubeconfig ({where}not valid YAML: "
                       f"{' '.join(str(problem).split())})") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise _problem(path, "", "no usable kubeconfig (a kubeconfig is a YAML mapping with "
                       "clusters, users and contexts)")
    return loaded


_RELATIVE = {"clusters": ("cluster", ("certificate-authority",)),
             "users": ("user", ("client-certificate", "client-key", "tokenFile")),
             "contexts": ("context", ())}


def _entries(path: Path, config: Mapping[str, Any], section: str) -> list[tuple[str, _Entry]]:
    inner, relative = _RELATIVE[section]
    raw = config.get(section)
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise _problem(path, section, "must be a list of {name, " + inner + "} entries")
    out: list[tuple[str, _Entry]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) \
                or not item["name"]:
            raise _problem(path, f"{section}[{index}]", f"each entry needs a name and a {inner}")
        body = item.get(inner) or {}
        if not isinstance(body, dict):
            raise _problem(path, f"{section}[{item['name']}].{inner}", "must be a mapping")
        body = dict(body)
        for key in relative:  # relative to the file that names them, as kubectl
            value = body.get(key)
            if isinstance(value, str) and value and not Path(value).is_absolute():
                body[key] = str(path.parent / value)
        if section == "users" and isinstance(body.get("exec"), dict):
            command = body["exec"].get("command")
            if isinstance(command, str) and os.sep in command and not Path(command).is_absolute():
                body["exec"] = {**body["exec"], "command": str(path.parent / command)}
        out.append((item["name"], _Entry(body, path)))
    return out


def load_kubeconfig(explicit: str | None = None, env: Mapping[str, str] | None = None
                    ) -> _Merged:
    """Read and merge the kubeconfig files (see :func:`kubeconfig_paths`)."""
    env = os.environ if env is None else env
    paths = kubeconfig_paths(explicit, env)
    if explicit and not paths[0].is_file():
        raise _problem(paths[0], "", f"no usable kubeconfig (no such file); {FIX}")
    existing = [p for p in paths if p.is_file()]
    merged = _Merged(files=existing)
    for path in existing:
        config = _load_file(path)
        current = config.get("current-context")
        if merged.current is None and isinstance(current, str) and current:
            merged.current, merged.current_file = current, path
        for section in ("clusters", "users", "contexts"):
            target: dict[str, _Entry] = getattr(merged, section)
            for name, entry in _entries(path, config, section):
                target.setdefault(name, entry)  # the first file to name it wins
    return merged


def from_kubeconfig(kubeconfig: str | None = None, context: str | None = None, *,
                    env: Mapping[str, str] | None = None, why_not_pod: str = "") -> Connection:
    """The connection of a kubeconfig context (see the module docstring)."""
    env = os.environ if env is None else env
    merged = load_kubeconfig(kubeconfig, env)
    shown = ":".join(str(p) for p in kubeconfig_paths(kubeconfig, env))
    if not merged.files:
        also = f"; {why_not_pod}" if why_not_pod else ""
        raise _problem(shown, "", f"no usable kubeconfig (no such file{also}); {FIX}")
    name = context or merged.current
    if not name:
        raise _problem(shown, "current-context", (
            "no usable kubeconfig (no current-context is set and no --context given); pass "
            "--context NAME or run kubectl config use-context NAME"))
    chosen = merged.contexts.get(name)
    if chosen is None:
        known = ", ".join(sorted(merged.contexts)) or "none"
        field_name = "current-context" if context is None else "--context"
        raise _problem(merged.current_file if context is None and merged.current_file else shown,
                       field_name, (f"no usable kubeconfig (context {name!r} is not defined; "
                                    f"the contexts are: {known}); pass --context NAME"))
    ctx, where = chosen.body, f"contexts[{name}].context"
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if not isinstance(cluster_name, str) or not cluster_name:
        raise _problem(chosen.file, f"{where}.cluster", "names no cluster; name one of clusters")
    cluster = merged.clusters.get(cluster_name)
    if cluster is None:
        raise _problem(chosen.file, f"{where}.cluster", (
            f"cluster {cluster_name!r} is not defined in {shown}; the clusters are: "
            f"{', '.join(sorted(merged.clusters)) or 'none'}"))
    user: _Entry | None = None
    if user_name:
        user = merged.users.get(str(user_name))
        if user is None:
            raise _problem(chosen.file, f"{where}.user", (
                f"user {user_name!r} is not defined in {shown}; the users are: "
                f"{', '.join(sorted(merged.users)) or 'none'}"))
    namespace = ctx.get("namespace") or "default"
    connection = _cluster_connection(cluster_name, cluster)
    connection = replace(connection, namespace=str(namespace),
                         origin=f"{shown}, context {name}")
    if user is not None:
        connection = _with_user(connection, str(user_name), user, cluster_name, cluster)
    return connection


def _text(entry: _Entry, where: str, key: str) -> str | None:
    value = entry.body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _problem(entry.file, f"{where}.{key}", f"must be a string, not {value!r}")
    return value


def _readable(entry: _Entry, where: str, key: str) -> str | None:
    path = _text(entry, where, key)
    if path is not None:
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise _problem(entry.file, f"{where}.{key}", (
                f"{path} cannot be read ({exc.strerror or exc}); correct the path (relative "
                "paths are relative to this file)")) from None
    return path


def _data(entry: _Entry, where: str, key: str) -> bytes | None:
    raw = _text(entry, where, key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _problem(entry.file, f"{where}.{key}", (
            "is not base64 (the -data fields hold base64 of the PEM text; name a PEM file "
            f"with {key.removesuffix('-data')} instead)")) from None


def _cluster_connection(name: str, cluster: _Entry) -> Connection:
    where = f"clusters[{name}].cluster"
    server = _text(cluster, where, "server")
    if server is None:
        raise _problem(cluster.file, f"{where}.server",
                       "no server is set; write the API server's URL (https://HOST:PORT)")
    if not server.lower().startswith(("https://", "http://")):
        raise _problem(cluster.file, f"{where}.server",
                       f"{server!r} is not an http(s) URL; write https://HOST:PORT")
    if _text(cluster, where, "tls-server-name"):
        raise _problem(cluster.file, f"{where}.tls-server-name", (
            "is not supported by the operator (nor by kopf, which shares the connection); "
            "use a server URL whose host name the server's certificate carries"))
    ca_file = _readable(cluster, where, "certificate-authority")
    ca_pem = _data(cluster, where, "certificate-authority-data")
    if ca_file and ca_pem:
        raise _problem(cluster.file, where, (
            "both certificate-authority and certificate-authority-data are set (kubectl "
            "refuses it too); keep one"))
    insecure = cluster.body.get("insecure-skip-tls-verify") or False
    if not isinstance(insecure, bool):
        raise _problem(cluster.file, f"{where}.insecure-skip-tls-verify",
                       f"must be true or false, not {insecure!r}")
    if insecure and (ca_file or ca_pem):
        raise _problem(cluster.file, where, (
            "insecure-skip-tls-verify is set with a certificate authority (kubectl refuses "
            "it too); drop one of them"))
    if ca_pem is not None:
        try:
            ssl.create_default_context(cadata=ca_pem.decode("ascii"))
        except (ssl.SSLError, ValueError, UnicodeDecodeError) as exc:
            raise _problem(cluster.file, f"{where}.certificate-authority-data", (
                f"holds no PEM certificate ({exc}); it is base64 of the CA's PEM file")) \
                from None
    return Connection(server=server.rstrip("/"), ca_file=ca_file, ca_pem=ca_pem,
                      insecure=insecure, proxy_url=_text(cluster, where, "proxy-url"))


def _with_user(connection: Connection, name: str, user: _Entry, cluster_name: str,
               cluster: _Entry) -> Connection:
    where = f"users[{name}].user"
    for key in ("as", "as-uid", "as-groups", "as-user-extra"):
        if user.body.get(key):
            raise _problem(user.file, f"{where}.{key}", (
                "impersonation is not supported by the operator (nor by kopf, which shares "
                "the connection); give the operator's own credentials"))
    cert_file = _readable(user, where, "client-certificate")
    key_file = _readable(user, where, "client-key")
    cert_pem = _data(user, where, "client-certificate-data")
    key_pem = _data(user, where, "client-key-data")
    if cert_file and cert_pem:
        raise _problem(user.file, where, "both client-certificate and client-certificate-data "
                       "are set (kubectl refuses it too); keep one")
    if key_file and key_pem:
        raise _problem(user.file, where, "both client-key and client-key-data are set "
                       "(kubectl refuses it too); keep one")
    has_cert, has_key = bool(cert_file or cert_pem), bool(key_file or key_pem)
    if has_cert != has_key:
        missing = "client-key (or client-key-data)" if has_cert else \
            "client-certificate (or client-certificate-data)"
        raise _problem(user.file, where, f"a client certificate needs its key and the other "
                       f"way round; add {missing}")
    if (cert_file and key_pem) or (cert_pem and key_file):
        raise _problem(user.file, where, "give the client certificate and its key both as "
                       "files or both as -data")
    token = _text(user, where, "token")
    token_file = _readable(user, where, "tokenFile")
    username, password = _text(user, where, "username"), _text(user, where, "password")
    methods = [m for m, on in (("token", token or token_file),
                               ("basicAuth", username or password)) if on]
    if len(methods) > 1:
        raise _problem(user.file, where, (
            f"more than one authentication method ({', '.join(methods)}; kubectl refuses "
            "it too); keep one"))
    if (username is None) != (password is None):
        raise _problem(user.file, where, "username and password go together; set both")
    auth: Authenticator | None = None
    if token_file:
        auth = TokenFile(token_file, fallback=token)
        auth.credentials()  # read now: a missing token is a start-up error, as in kubectl
    elif token:
        auth = StaticToken(token)
    provider = user.body.get("auth-provider")
    exec_section = user.body.get("exec")
    if provider and exec_section:
        raise _problem(user.file, where, "auth-provider and exec are both set (kubectl "
                       "refuses it too); keep exec")
    if provider and auth is None and not has_cert and username is None:
        auth = _provider_token(user, where, provider)
    if exec_section is not None and auth is None and not has_cert and username is None:
        auth = ExecPlugin(_exec_config(user, where, exec_section),
                          _exec_cluster(cluster_name, cluster, connection))
    elif exec_section is not None:
        _exec_config(user, where, exec_section)  # still checked, though a static one wins
    return replace(connection, cert_file=cert_file, key_file=key_file, cert_pem=cert_pem,
                   key_pem=key_pem, username=username, password=password, auth=auth)


def _provider_token(user: _Entry, where: str, provider: Any) -> StaticToken:
    config = provider.get("config") if isinstance(provider, dict) else None
    token = (config or {}).get("id-token") or (config or {}).get("access-token")
    if not isinstance(token, str) or not token:
        name = provider.get("name") if isinstance(provider, dict) else None
        raise _problem(user.file, f"{where}.auth-provider", (
            f"the {name or 'auth'} provider stores no id-token or access-token to use, and "
            "auth providers are not run; use an exec plugin (e.g. kubelogin) instead"))
    log.warning("%s: %s.auth-provider: its stored token is used and never refreshed; an exec "
                "plugin would renew it", user.file, where)
    return StaticToken(token)


def _exec_config(user: _Entry, where: str, raw: Any) -> ExecConfig:
    at = f"{where}.exec"
    if not isinstance(raw, dict):
        raise _problem(user.file, at, "must be a mapping with apiVersion and command")
    api_version = raw.get("apiVersion")
    if not api_version:
        raise _problem(user.file, f"{at}.apiVersion", (
            f"must be set; write one of {', '.join(EXEC_API_VERSIONS)}"))
    if api_version not in EXEC_API_VERSIONS:
        raise _problem(user.file, f"{at}.apiVersion", (
            f"{api_version!r} is not supported (v1alpha1 was removed in Kubernetes 1.24); "
            f"write one of {', '.join(EXEC_API_VERSIONS)} if the plugin speaks it"))
    command = raw.get("command")
    if not isinstance(command, str) or not command:
        raise _problem(user.file, f"{at}.command", "must name the plugin to run")
    args = raw.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise _problem(user.file, f"{at}.args", "must be a list of strings")
    env: list[tuple[str, str]] = []
    for index, item in enumerate(raw.get("env") or []):
        if not isinstance(item, dict) or not item.get("name"):
            raise _problem(user.file, f"{at}.env[{index}]", "needs a name (and a value)")
        env.append((str(item["name"]), str(item.get("value") or "")))
    mode = raw.get("interactiveMode")
    if not mode and api_version == EXEC_API_VERSIONS[0]:
        raise _problem(user.file, f"{at}.interactiveMode", (
            f"must be set for {api_version} (kubectl requires it too); write Never"))
    if mode and mode not in INTERACTIVE_MODES:
        raise _problem(user.file, f"{at}.interactiveMode", (
            f"{mode!r} is not one of {', '.join(INTERACTIVE_MODES)}; write Never"))
    if mode == "Always":
        raise _problem(user.file, f"{at}.interactiveMode", (
            "Always needs a terminal to ask someone, and the operator has none; use a plugin "
            "that can run unattended (interactiveMode Never or IfAvailable)"))
    return ExecConfig(command=command, api_version=str(api_version), args=tuple(args),
                      env=tuple(env), install_hint=str(raw.get("installHint") or ""),
                      provide_cluster_info=bool(raw.get("provideClusterInfo")),
                      where=f"{user.file}: {at}")


def _exec_cluster(name: str, cluster: _Entry, connection: Connection) -> dict[str, Any]:
    """``spec.cluster`` for a plugin with ``provideClusterInfo`` (the CA as base64 data)."""
    del name
    out: dict[str, Any] = {"server": connection.server}
    if connection.insecure:
        out["insecure-skip-tls-verify"] = True
    ca = connection.ca_pem
    if ca is None and connection.ca_file:
        with contextlib.suppress(OSError):
            ca = Path(connection.ca_file).read_bytes()
    if ca:
        out["certificate-authority-data"] = base64.b64encode(ca).decode("ascii")
    if connection.proxy_url:
        out["proxy-url"] = connection.proxy_url
    if cluster.body.get("disable-compression"):
        out["disable-compression"] = True
    for extension in cluster.body.get("extensions") or []:
        if isinstance(extension, dict) and \
                extension.get("name") == "client.authentication.k8s.io/exec":
            out["config"] = extension.get("extension")
    return out


# -- both -----------------------------------------------------------------------------


def resolve(kubeconfig: str | None = None, context: str | None = None, *,
            env: Mapping[str, str] | None = None,
            service_account: str | Path = SERVICE_ACCOUNT_DIR) -> Connection:
    """Where and how to connect (see the module docstring for the order)."""
    env = os.environ if env is None else env
    why_not_pod = ""
    if kubeconfig is None and context is None:
        found, why_not_pod = in_cluster(env, service_account)
        if found is not None:
            return found
    return from_kubeconfig(kubeconfig, context, env=env, why_not_pod=why_not_pod)

