"""Keep a local view of one kind of object with list + watch, without kopf.

Kopf keeps a memory of its own (some 3 KB) for every object of every resource it
watches, for as long as the object exists. The cluster view needs Nodes, bound Pods and
the child Jobs only as a few fields each, and has no handlers to run for them, so it
mirrors them itself: ten thousand child Jobs and five thousand Nodes were 45 MB of
kopf's bookkeeping. The loop is Kubernetes' own "reflector" protocol:

1. list in pages (``limit``/``continue``), remember the list's ``resourceVersion``,
   and hand the whole set to ``reset`` (so objects deleted meanwhile are dropped); each
   object is first reduced by ``slim`` (what ``reset`` reads of it), page by page, so a
   listing holds one page of served objects at a time, not the cluster's every one;
2. watch from that version, handing each event to ``apply``; a stream that ends (its
   ``timeoutSeconds``) is resumed from the last version seen;
3. ``410 Gone`` (the version was compacted away): list again (1);
4. other errors: wait ``retry_delay`` and watch again from the last version (list again
   after ``RESUMES`` failures in a row, or when ``apply``/``reset`` raised).

It only reads: a standby replica mirrors too (its view is ready when it takes over).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from suandian.errors import KubeApiError
from suandian.k8s.client import KubeApi

__all__ = ["Apply", "Reset", "Slim", "mirror"]

log = logging.getLogger(__name__)

Apply = Callable[[str, Mapping[str, Any]], None]
"""``apply(event_type, object)``: ``ADDED``, ``MODIFIED`` or ``DELETED``."""
Reset = Callable[[Sequence[Mapping[str, Any]]], None]
"""``reset(objects)``: exactly these exist now (after a list)."""
Slim = Callable[[Mapping[str, Any]], Mapping[str, Any]]
"""``slim(object)``: what ``reset`` needs of a listed object (the same shape, fewer fields)."""

PAGE = 500
RESUMES = 3
WATCH_SECONDS = 1800  # the API server's default --min-request-timeout


class _Gone(Exception):
    """The watch's resourceVersion is too old: list again."""


async def mirror(api: KubeApi, path: str, *, apply: Apply, reset: Reset,
                 label_selector: str | None = None, retry_delay: float = 5.0,
                 watch_seconds: int = WATCH_SECONDS, slim: Slim | None = None) -> None:
    """Mirror the collection at ``path`` (e.g. ``/api/v1/nodes``) until cancelled."""
    selector = {"labelSelector": label_selector} if label_selector else {}
    gone = 0  # 410s in a row: a fresh list's version should not be gone at once
    version: str | None = None  # None: list first
    failures = 0  # broken streams in a row: resumed from ``version`` up to RESUMES times
    while True:
        try:
            if version is None:
                version = await _list(api, path, selector, reset, slim)
            while True:
                version = await _watch(api, path, selector, version, apply, watch_seconds)
                gone = failures = 0
        except _Gone:
            log.info("%s: the watch fell too far behind; listing again", path)
            version = None
            gone += 1
            if gone > 1:
                await asyncio.sleep(retry_delay)
        except KubeApiError as exc:
            failures += 1
            if failures > RESUMES:
                version = None
            log.warning("%s: %s; %s in %.0f s", path, exc,
                        "watching again" if version else "listing again", retry_delay)
            await asyncio.sleep(retry_delay)
        except Exception:  # a bug in apply/reset must not leave the view silently frozen
            log.exception("%s: the mirror failed; listing again in %.0f s", path, retry_delay)
            version = None
            await asyncio.sleep(retry_delay)


async def _list(api: KubeApi, path: str, selector: Mapping[str, str], reset: Reset,
                slim: Slim | None = None) -> str:
    objects: list[Mapping[str, Any]] = []
    query: dict[str, str] = {**selector, "limit": str(PAGE)}
    while True:
        page = await api.request("GET", path, query=query)
        items = page.get("items") or []
        objects.extend(items if slim is None else map(slim, items))
        del items
        meta = page.get("metadata") or {}
        token = meta.get("continue")
        if not token:
            reset(objects)
            return str(meta.get("resourceVersion") or "")
        query = {**query, "continue": token}


async def _watch(api: KubeApi, path: str, selector: Mapping[str, str], version: str,
                 apply: Apply, seconds: int) -> str:
    """One watch stream from ``version``; the last version it showed."""
    query = {**selector, "watch": "true", "resourceVersion": version,
             "allowWatchBookmarks": "true", "timeoutSeconds": str(seconds)}
    async for event in api.watch(path, query, read_timeout=seconds + 30):
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise _Gone
            raise KubeApiError(int(obj.get("code") or 0), str(obj.get("reason") or ""),
                               str(obj.get("message") or ""))
        version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
        if kind in ("ADDED", "MODIFIED", "DELETED"):
            apply(kind, obj)
    return version
