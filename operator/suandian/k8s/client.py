"""The one door to the Kubernetes API for what kopf does not do itself.

Kopf watches our resources and patches the object a handler is handling; everything
else (creating and patching the child Jobs, patching gated Pods, writing status from
daemons) goes through :class:`KubeApi`.

Why this shape: the official ``kubernetes`` client resolves *where and how* to connect
(kubeconfig or in-cluster service account, TLS files, bearer tokens and their refresh
hooks), and the project depends on it anyway; but its generated, synchronous methods
cost several milliseconds of CPU per call and need a thread each, which at 200 job
creations a second is most of the operator's budget. So the requests themselves go
over one pooled ``aiohttp`` session in the operator's event loop, with the headers the
official client's configuration produces; bodies go and come as plain dicts (no model
classes: they cost time and memory and drop fields the client does not know). Kopf's
own API client is private (``kopf._cogs``) and not used.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import yaml
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from suandian.errors import FieldError, InputFileError, KubeApiError

__all__ = ["JSON_PATCH", "MERGE_PATCH", "KubeApi"]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CRD_PATH = "/apis/suandian.io/v1alpha1"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


class KubeApi:
    """Async calls to the Kubernetes API with dict bodies; errors as :class:`KubeApiError`."""

    def __init__(
        self,
        configuration: k8s_client.Configuration,
        *,
        max_connections: int = 8,
        timeout: tuple[float, float] = (5.0, 30.0),
        namespace: str = "default",
    ) -> None:
        self.configuration = configuration
        self.namespace = namespace
        """The operator's own namespace: where it reads the ConfigMaps and Secrets that
        PowerSites name without a namespace (the service account's, in a pod)."""
        self.timeout = aiohttp.ClientTimeout(sock_connect=timeout[0], total=timeout[1])
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None  # watches: a pool of their own

    @classmethod
    def from_environment(
        cls, *, kubeconfig: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubeApi:
        """In-cluster service account when there is one, else the kubeconfig file."""
        configuration = k8s_client.Configuration()
        try:
            k8s_config.load_incluster_config(  # type: ignore[no-untyped-call]
                client_configuration=configuration)
        except k8s_config.ConfigException:
            try:
                k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, context=context,
                    client_configuration=configuration)
                namespace = _kubeconfig_namespace(kubeconfig, context)
            except (k8s_config.ConfigException, yaml.YAMLError, OSError, ValueError,
                    TypeError) as exc:
                raise _kubeconfig_error(kubeconfig, context, exc) from None
        else:
            namespace = _service_account_namespace()
        return cls(configuration, namespace=namespace, **kwargs)

    @classmethod
    def for_server(cls, server: str, **kwargs: Any) -> KubeApi:
        """A client of an unauthenticated server by URL (test API servers)."""
        return cls(k8s_client.Configuration(host=server.rstrip("/")), **kwargs)

    @property
    def server(self) -> str:
        return str(self.configuration.host)

    def _ssl(self) -> ssl.SSLContext | bool:
        config = self.configuration
        if not str(config.host).startswith("https"):
            return False
        if not config.verify_ssl:
            return False
        context = ssl.create_default_context(cafile=config.ssl_ca_cert)
        if config.cert_file:
            context.load_cert_chain(config.cert_file, config.key_file)
        return context

    def _headers(self, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        # refresh hooks (exec plugins, projected service-account tokens) run here
        for raw in self.configuration.auth_settings().values():
            setting: dict[str, Any] = dict(raw)  # type: ignore[call-overload]
            if setting.get("in") == "header" and setting.get("value"):
                headers[str(setting["key"])] = str(setting["value"])
        if self.configuration.username and self.configuration.password:
            headers["Authorization"] = str(self.configuration.get_basic_auth_token())
        return headers

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(limit=self.max_connections, ssl=self._ssl())
            self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout)
        return self._session

    def _stream_client(self) -> aiohttp.ClientSession:
        """Watch streams hold a connection each for as long as they last: in the request
        pool they would starve the requests (one feed per served namespace)."""
        if self._streams is None or self._streams.closed:
            connector = aiohttp.TCPConnector(limit=0, ssl=self._ssl())
            self._streams = aiohttp.ClientSession(connector=connector)
        return self._streams

    async def aclose(self) -> None:
        """Close the pooled connections (the next call opens new ones)."""
        for session in (self._session, self._streams):
            if session is not None:
                await session.close()
        self._session = self._streams = None

    # -- generic -------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """One API call; the decoded JSON answer, or :class:`KubeApiError`."""
        url = str(self.configuration.host).rstrip("/") + path
        data = None if body is None else json.dumps(body)
        try:
            async with self._client().request(
                method, url, data=data, params=dict(query or {}),
                headers=self._headers(content_type),
            ) as response:
                raw = await response.read()
                status = response.status
                reason = response.reason or ""
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeApiError(0, type(exc).__name__, str(exc)) from exc
        try:
            decoded = json.loads(raw) if raw else {}
        except ValueError:
            decoded = {"message": raw[:200].decode("utf-8", "replace")}
        if not isinstance(decoded, dict):
            decoded = {"items": decoded}
        if status >= 400:
            raise KubeApiError(status, str(decoded.get("reason") or reason),
                               str(decoded.get("message") or ""))
        return decoded

    async def watch(self, path: str, query: Mapping[str, str],
                    read_timeout: float) -> AsyncIterator[dict[str, Any]]:
        """Stream a watch: decoded events, one per line, until the server ends it.

        Lines are split here, not by aiohttp's line reader, whose 64 KiB limit a large
        object (a Job with a big template) can exceed.
        """
        url = str(self.configuration.host).rstrip("/") + path
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.sock_connect,
                                        sock_read=read_timeout)
        try:
            async with self._stream_client().get(url, params=dict(query), timeout=timeout,
                                          headers=self._headers("application/json")
                                          ) as response:
                if response.status >= 400:
                    raw = await response.read()
                    raise KubeApiError(response.status, response.reason or "",
                                       raw[:200].decode("utf-8", "replace"))
                buffer = b""
                async for chunk in response.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeApiError(0, type(exc).__name__, str(exc)) from exc
        except ValueError as exc:  # a torn or non-JSON line
            raise KubeApiError(0, "BadWatchEvent", str(exc)) from exc

    # -- Jobs ----------------------------------------------------------------------------

    async def get(self, path: str) -> dict[str, Any] | None:
        """One object by its path; None when it does not exist (404)."""
        try:
            return await self.request("GET", path)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def get_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        return await self.get(_job_path(namespace, name))

    async def create_job(self, job: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create a Job; when one of that name exists already, return it instead.

        Returns ``(job, created)``. Creation is idempotent by name, so a retry after a
        lost answer, or a second operator replica, never makes a duplicate.
        """
        namespace = job["metadata"]["namespace"]
        try:
            created = await self.request("POST", _job_path(namespace), job)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            existing = await self.get_job(namespace, job["metadata"]["name"])
            if existing is None:  # deleted in between: let the caller retry
                raise
            return existing, False
        return created, True

    async def patch_job(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        kind = JSON_PATCH if isinstance(patch, list) else MERGE_PATCH
        return await self.request("PATCH", _job_path(namespace, name), patch, content_type=kind)

    async def delete_job(self, namespace: str, name: str) -> bool:
        """Delete a Job and its pods (background propagation); False when already gone."""
        try:
            await self.request("DELETE", _job_path(namespace, name),
                               {"propagationPolicy": "Background"})
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    # -- Pods ----------------------------------------------------------------------------

    async def patch_pod(self, namespace: str, name: str, patch: Any) -> dict[str, Any]:
        kind = JSON_PATCH if isinstance(patch, list) else MERGE_PATCH
        path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}"
        return await self.request("PATCH", path, patch, content_type=kind)

    # -- ConfigMaps and Secrets ----------------------------------------------------------

    async def get_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        """A ConfigMap's ``data`` (None when it does not exist)."""
        found = await self.get(f"/api/v1/namespaces/{quote(namespace)}/configmaps/{quote(name)}")
        if found is None:
            return None
        return {str(k): str(v) for k, v in (found.get("data") or {}).items()}

    async def get_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data, decoded (None when it does not exist). Never logged."""
        found = await self.get(f"/api/v1/namespaces/{quote(namespace)}/secrets/{quote(name)}")
        if found is None:
            return None
        return {str(k): base64.b64decode(v).decode("utf-8", "replace")
                for k, v in (found.get("data") or {}).items()}

    # -- our resources -------------------------------------------------------------------

    async def patch_computejob(
        self, namespace: str, name: str, patch: Mapping[str, Any], *, status: bool = False
    ) -> dict[str, Any]:
        """Merge-patch a ComputeJob (``status=True``: its status subresource)."""
        path = f"{CRD_PATH}/namespaces/{quote(namespace)}/computejobs/{quote(name)}"
        if status:
            path += "/status"
        return await self.request("PATCH", path, dict(patch), content_type=MERGE_PATCH)

    async def patch_powersite_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        path = f"{CRD_PATH}/powersites/{quote(name)}/status"
        return await self.request("PATCH", path, {"status": dict(status)},
                                  content_type=MERGE_PATCH)


def _kubeconfig_error(kubeconfig: str | None, context: str | None,
                      exc: Exception) -> InputFileError:
    """Why no kubeconfig could be used, naming the file and what to do."""
    path = kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
    detail = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    where = f"context {context}" if context else ""
    return InputFileError(path, [FieldError(where, (
        f"no usable kubeconfig ({detail}), and no service account of a pod either; pass "
        "--kubeconfig FILE (and --context NAME), set $KUBECONFIG, or run it in a pod"))])


def _service_account_namespace() -> str:
    """The pod's namespace, as its service account token's mount says."""
    try:
        return Path(SERVICE_ACCOUNT_NAMESPACE).read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def _kubeconfig_namespace(kubeconfig: str | None, context: str | None) -> str:
    """The namespace of the kubeconfig context in use (kubectl's default namespace)."""
    contexts, active = k8s_config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
        config_file=kubeconfig)
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return str(((chosen or {}).get("context") or {}).get("namespace") or "default")


def _job_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"
    return f"{path}/{quote(name)}" if name else path
