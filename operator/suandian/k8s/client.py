"""The one door to the Kubernetes API for what kopf does not do itself.

Kopf watches our resources and patches the object a handler is handling; everything
else (creating and patching the child Jobs, patching gated Pods, writing status from
daemons) goes through :class:`KubeApi`.

Why this shape: where and how to connect (the pod's service account or a kubeconfig,
TLS files, tokens that rotate, exec plugins) is resolved by :mod:`.connection`, the
way kubectl resolves it, and the same :class:`~.connection.Connection` logs kopf in
(``controllers/main.py``), so both talk to one server as one user. The requests go
over one pooled ``aiohttp`` session in the operator's event loop (a generated,
synchronous client costs several milliseconds of CPU per call and a thread each, which
at 200 job creations a second is most of the operator's budget); bodies go and come as
plain dicts (no model classes: they cost time and memory and drop fields a client does
not know). Kopf's own API client is private (``kopf._cogs``) and not used.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote

import aiohttp

from suandian.errors import KubeApiError
from suandian.k8s.connection import Connection, Credentials, load_client_certificate, resolve

__all__ = ["JSON_PATCH", "MERGE_PATCH", "KubeApi"]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
CRD_PATH = "/apis/suandian.io/v1alpha1"

log = logging.getLogger(__name__)


class KubeApi:
    """Async calls to the Kubernetes API with dict bodies; errors as :class:`KubeApiError`."""

    def __init__(
        self,
        connection: Connection,
        *,
        max_connections: int = 8,
        timeout: tuple[float, float] = (5.0, 30.0),
        namespace: str | None = None,
    ) -> None:
        self.connection = connection
        self.namespace = namespace or connection.namespace
        """The operator's own namespace: where it reads the ConfigMaps and Secrets that
        PowerSites name without a namespace (the service account's in a pod, the
        context's with a kubeconfig)."""
        self.timeout = aiohttp.ClientTimeout(sock_connect=timeout[0], total=timeout[1])
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._streams: aiohttp.ClientSession | None = None  # watches: a pool of their own
        self._tls: ssl.SSLContext | bool | None = None  # made once, shared by both pools
        self._client_cert: bytes | None = None  # the plugin's certificate loaded in _tls

    @classmethod
    def from_environment(
        cls, *, kubeconfig: str | None = None, context: str | None = None, **kwargs: Any
    ) -> KubeApi:
        """In-cluster service account when there is one (and no kubeconfig or context is
        named), else the kubeconfig: see :func:`suandian.k8s.connection.resolve`."""
        connection = resolve(kubeconfig, context)
        log.info("Kubernetes API server %s (%s)", connection.server, connection.origin)
        return cls(connection, **kwargs)

    @classmethod
    def for_server(cls, server: str, **kwargs: Any) -> KubeApi:
        """A client of an unauthenticated server by URL (test API servers)."""
        return cls(Connection(server=server.rstrip("/")), **kwargs)

    @property
    def server(self) -> str:
        return self.connection.server

    def _ssl(self) -> ssl.SSLContext | bool:
        if self._tls is None:
            self._tls = self.connection.ssl_context()
        return self._tls

    async def _credentials(self) -> Credentials:
        """The credentials for a request: the ones in hand, else obtained in a thread (a
        token file read, an exec plugin run) so the event loop never waits on them."""
        auth = self.connection.auth
        if auth is None:
            return self.connection.credentials()
        found = auth.cached()
        if found is None:
            found = await asyncio.to_thread(auth.credentials)
        if found.cert_pem and found.key_pem and found.cert_pem != self._client_cert:
            context = self._ssl()
            if isinstance(context, ssl.SSLContext):  # new connections present it
                load_client_certificate(context, found.cert_pem, found.key_pem)
                self._client_cert = found.cert_pem
        return found

    def _refused(self, used: Credentials) -> None:
        """A 401: the credentials used are stale (a rotated token, an expired plugin
        credential); the next request obtains new ones."""
        if self.connection.auth is not None:
            self.connection.auth.invalidate(used)

    async def _headers(self, content_type: str) -> tuple[dict[str, str], Credentials]:
        credentials = await self._credentials()
        headers = {"Accept": "application/json", "Content-Type": content_type,
                   **self.connection.headers(credentials)}
        return headers, credentials

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
        url = self.connection.server + path
        data = None if body is None else json.dumps(body)
        headers, used = await self._headers(content_type)
        for attempt in (1, 2):
            try:
                async with self._client().request(
                    method, url, data=data, params=dict(query or {}), headers=headers,
                    proxy=self.connection.proxy_url,
                ) as response:
                    raw = await response.read()
                    status = response.status
                    reason = response.reason or ""
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise KubeApiError(0, type(exc).__name__, str(exc)) from exc
            if status != 401 or attempt == 2 or self.connection.auth is None:
                break
            self._refused(used)  # once more if the credentials read or made again differ
            previous = used
            headers, used = await self._headers(content_type)
            if used == previous:
                break
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
        url = self.connection.server + path
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout.sock_connect,
                                        sock_read=read_timeout)
        headers, used = await self._headers("application/json")
        try:
            async with self._stream_client().get(url, params=dict(query), timeout=timeout,
                                                 headers=headers,
                                                 proxy=self.connection.proxy_url
                                                 ) as response:
                if response.status >= 400:
                    if response.status == 401:
                        self._refused(used)  # the caller watches again, with new ones
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

    async def powersite_names(self) -> list[str]:
        """The names of every PowerSite (a paged list; only the names are kept)."""
        names: list[str] = []
        query = {"limit": "500"}
        while True:
            page = await self.request("GET", f"{CRD_PATH}/powersites", query=query)
            names += [str(item["metadata"]["name"]) for item in page.get("items") or []]
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                return names
            query = {"limit": "500", "continue": str(token)}

    async def apply_gridevent(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """Create a GridEvent, or when one of its name exists, replace its spec with
        this one and merge these labels (an OpenADR event modified at the VTN; the spec
        by a JSON patch, as a merge patch would keep a block the new spec drops, a
        Shed's ``shed`` under an Absorb, say, which admission then refuses)."""
        name = event["metadata"]["name"]
        try:
            return await self.request("POST", f"{CRD_PATH}/gridevents", dict(event))
        except KubeApiError as exc:
            if exc.status != 409:
                raise
        path = f"{CRD_PATH}/gridevents/{quote(name)}"
        # two writes, the spec first (what the plan reads): a failure between them
        # leaves the old labels, which the next update of the event sets again
        updated = await self.request(
            "PATCH", path, [{"op": "replace", "path": "/spec", "value": dict(event["spec"])}],
            content_type=JSON_PATCH)
        labels = dict(event["metadata"].get("labels") or {})
        if labels:  # merged: labels others set stay
            updated = await self.request("PATCH", path, {"metadata": {"labels": labels}},
                                         content_type=MERGE_PATCH)
        return updated

    async def delete_gridevent(self, name: str) -> bool:
        """Delete a GridEvent; False when already gone."""
        try:
            await self.request("DELETE", f"{CRD_PATH}/gridevents/{quote(name)}")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def patch_gridevent_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        path = f"{CRD_PATH}/gridevents/{quote(name)}/status"
        return await self.request("PATCH", path, {"status": dict(status)},
                                  content_type=MERGE_PATCH)

    async def patch_powersite_status(self, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        path = f"{CRD_PATH}/powersites/{quote(name)}/status"
        return await self.request("PATCH", path, {"status": dict(status)},
                                  content_type=MERGE_PATCH)


def _job_path(namespace: str, name: str | None = None) -> str:
    path = f"/apis/batch/v1/namespaces/{quote(namespace)}/jobs"
    return f"{path}/{quote(name)}" if name else path
