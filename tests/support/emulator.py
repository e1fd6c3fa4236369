"""A kmock Kubernetes emulator with the API-server behaviour kmock 0.8 lacks.

kmock stores objects and serves list/watch/fetch/create/patch/delete over HTTP, but (see
docs/testing.md) it stamps no ``uid``/``resourceVersion``/``generation``, ignores
``generateName`` and the namespace of a POST URL, replays every object on each watch
whatever ``resourceVersion`` is asked for, applies a change even when an injected error
is answered, and has no garbage collector. This subclass adds exactly those, no more:

- metadata on create: ``uid``, ``namespace`` (from the URL), ``name`` (from
  ``generateName``), ``creationTimestamp`` (from the test's clock), ``generation``;
- a global ``resourceVersion`` bumped on every change; no-op patches change nothing;
- ``generation`` bumped when ``spec`` changes; the ``status`` subresource: a patch to
  ``/status`` changes only ``status``, a patch to the object never changes ``status``;
- ``metadata.resourceVersion`` in a merge patch is a precondition (409 on mismatch);
- list answers the current ``resourceVersion``, in pages when asked for a ``limit`` (the
  ``continue`` token serves the rest of the same snapshot); a watch streams only what happened after
  the one asked for, answers ``410 Gone`` when that is compacted away, and ends after
  ``timeoutSeconds`` (loop time);
- deletion of an owner deletes its dependents (``ownerReferences``; background GC);
- faults: ``fail(...)`` answers an error *without* applying the change, ``drop_watches()``
  ends every open watch stream, ``stall(...)`` delays an answer (client timeouts).

Everything happens synchronously inside one request (no ``await`` while state changes),
so the emulator needs no locks of its own.
"""

from __future__ import annotations

import asyncio
import copy
import random
import string
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
import attrs
import jsonpatch
import jsonpointer
import kmock
from kmock._internal import dicts as kmock_dicts
from kmock._internal.k8s import KubernetesObjectConflictError

__all__ = ["ApiEmulator", "Change", "Fault"]

LOG_LIMIT = 50_000  # watch-log entries kept per resource before 410 Gone
_DROP = object()


@dataclass
class Fault:
    """An injected failure: the next ``times`` matching requests get ``status``, unapplied."""

    action: str | None = None  # 'create', 'update', 'delete', 'fetch', 'list', 'watch'
    plural: str | None = None
    name: str | None = None
    subresource: str | None = None
    status: int = 500
    times: int = 1
    delay: float = 0.0  # loop-time seconds to wait before answering (timeouts)
    seen: int = 0

    def matches(self, request: kmock.Request) -> bool:
        if self.times <= 0:
            return False
        if self.action is not None and (
            request.action is None or request.action.value.lower() != self.action.lower()
        ):
            return False
        if self.plural is not None and (
            request.resource is None or request.resource.plural != self.plural
        ):
            return False
        if self.name is not None and request.name != self.name:
            return False
        return self.subresource is None or request.subresource == self.subresource


@dataclass(frozen=True)
class Change:
    """One change of the stored state, as a watch event; passed to listeners."""

    type: str  # ADDED, MODIFIED, DELETED
    plural: str
    obj: dict[str, Any]
    old: dict[str, Any] | None = None


@dataclass
class _Log:
    events: deque[tuple[int, dict[str, Any]]] = field(
        default_factory=lambda: deque(maxlen=LOG_LIMIT)
    )
    compacted: int = 0  # every resourceVersion up to this one is gone from the log


@attrs.define(kw_only=True)
class ApiEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with uid, resourceVersion, generation, GC and honest faults."""

    clock: Callable[[], datetime] = attrs.field(factory=lambda: _utcnow)
    keep_history: bool = True
    _rv: int = attrs.field(default=0, init=False)
    _logs: dict[Any, _Log] = attrs.field(factory=lambda: defaultdict(_Log), init=False)
    _watchers: dict[Any, set[asyncio.Queue[Any]]] = attrs.field(
        factory=lambda: defaultdict(set), init=False
    )
    _faults: list[Fault] = attrs.field(factory=list, init=False)
    _listeners: list[Callable[[Change], None]] = attrs.field(factory=list, init=False)
    _pages: dict[str, tuple[str, list[dict[str, Any]]]] = attrs.field(factory=dict, init=False)
    pages_served: int = attrs.field(default=0, init=False)

    # -- test-side API -------------------------------------------------------------------

    def fail(self, **kwargs: Any) -> Fault:
        """Answer the next matching request(s) with an error, without applying them."""
        fault = Fault(**kwargs)
        self._faults.append(fault)
        return fault

    def stall(self, delay: float, **kwargs: Any) -> Fault:
        """Answer the next matching request(s) after ``delay`` loop-seconds, with 504."""
        return self.fail(delay=delay, status=kwargs.pop("status", 504), **kwargs)

    def drop_watches(self) -> int:
        """End every open watch stream, as a restarted API server or a proxy would."""
        count = 0
        for queues in self._watchers.values():
            for queue in queues:
                queue.put_nowait(_DROP)
                count += 1
        return count

    def listen(self, listener: Callable[[Change], None]) -> None:
        """Call ``listener`` synchronously on every stored change (for simulators)."""
        self._listeners.append(listener)

    def read(self, resource: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The current object, or None when absent or deleted."""
        key = (kmock.resource(resource), namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def items(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Every live object of a resource (in a namespace, or all)."""
        res = kmock.resource(resource)
        return [
            obj.raw
            for (r, ns, _), obj in self.objects.items()
            if r == res and not obj.deleted and (namespace is None or ns == namespace)
        ]

    def create(self, resource: str, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create an object as a POST would (used by tests and simulators)."""
        res = kmock.resource(resource)
        meta = obj.get("metadata", {})
        return self._create(res, meta.get("namespace"), copy.deepcopy(dict(obj)))

    def change(
        self, resource: str, namespace: str | None, name: str, patch: Any,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """Patch an object as a PATCH would (used by tests and simulators)."""
        return self._update(kmock.resource(resource), namespace, name, subresource, patch)

    def remove(self, resource: str, namespace: str | None, name: str) -> None:
        """Delete an object as a DELETE would."""
        self._delete(kmock.resource(resource), namespace, name, orphan=False)

    # -- request handling ----------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> Any:
        if request.resource is not None:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    fault.seen += 1
                    if fault.delay:
                        await asyncio.sleep(fault.delay)
                    raise kmock.KubernetesError(
                        status=fault.status, reason="InjectedFault",
                        message=f"fault injected by the test ({fault.status})",
                        details={},
                    )
            # Changes and reads answer directly (kmock's reaction matching costs ~10 ms a
            # request, which would make the emulator, not the operator, the bottleneck).
            action = request.action
            if action == kmock.action.CREATE:
                obj = self._create(request.resource, request.namespace, request.data)
                return aiohttp.web.json_response(obj, status=201)
            if action == kmock.action.UPDATE and request.name is not None:
                obj = self._update(request.resource, request.namespace, request.name,
                                   request.subresource, request.data)
                return aiohttp.web.json_response(obj)
            if action == kmock.action.DELETE and request.name is not None:
                body = request.data if isinstance(request.data, dict) else {}
                last = self.read_key(request.resource, request.namespace, request.name)
                self._delete(request.resource, request.namespace, request.name,
                             orphan=body.get("propagationPolicy") == "Orphan")
                return aiohttp.web.json_response(last)
            if action == kmock.action.FETCH and request.name is not None and not \
                    request.subresource:
                obj = self.read_key(request.resource, request.namespace, request.name)
                if obj is None:
                    raise kmock.KubernetesObjectNotFoundError()
                return aiohttp.web.json_response(obj)
        # Watches, lists and discovery go through kmock's own serving.
        return await kmock.KubernetesScaffold._handle(self, request)

    def read_key(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any] | None:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            return None
        return self.objects[key].raw

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _has_status(self, resource: Any) -> bool:
        for res in self.resources:
            if res == resource:
                return "status" in self.resources[res].subresources
        return False

    def _create(self, resource: Any, namespace: str | None, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise kmock.KubernetesError(status=400, reason="BadRequest", message="not an object")
        meta = data.setdefault("metadata", {})
        namespace = namespace or meta.get("namespace")
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise kmock.KubernetesError(
                    status=422, reason="Invalid", message="name or generateName is required"
                )
            # five random characters, retried on a name in use, as kube-apiserver does
            # since 1.32 (RetryGenerateName): 16,000 Events drew about two collisions
            for _ in range(8):
                name = prefix + "".join(random.choices(string.ascii_lowercase + string.digits,
                                                       k=5))
                key = (resource, namespace, name)
                if key not in self.objects or self.objects[key].deleted:
                    break
            meta["name"] = name
        if namespace is not None:
            meta["namespace"] = namespace
        key = (resource, namespace, meta["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise KubernetesObjectConflictError()
        if self._has_status(resource):
            data.pop("status", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _stamp(self.clock())
        meta["generation"] = 1
        meta["resourceVersion"] = self._next_rv()
        if key in self.objects:
            self.objects[key].create(data)
        else:
            self.objects[key] = data
        self._publish("ADDED", resource, data, None)
        return data

    def _update(
        self, resource: Any, namespace: str | None, name: str, subresource: str | None,
        patch: Any,
    ) -> dict[str, Any]:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        stored = self.objects[key]
        old = stored.raw
        patch = _restrict(patch, subresource, self._has_status(resource))
        if isinstance(patch, dict):
            wanted_rv = (patch.get("metadata") or {}).get("resourceVersion")
            if wanted_rv is not None and wanted_rv != old["metadata"]["resourceVersion"]:
                raise kmock.KubernetesError(
                    status=409, reason="Conflict",
                    message="the object has been modified; please apply your changes "
                            "to the latest version and try again", details={},
                )
        try:
            new = dict(kmock_dicts.patch_dict(copy.deepcopy(old), patch))
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
            # what the API server answers when a JSON patch's "test" fails or a path is absent
            raise kmock.KubernetesError(status=422, reason="Invalid", message=str(exc),
                                        details={}) from None
        new_meta = dict(new.get("metadata") or {})
        for fixed in ("uid", "creationTimestamp", "generation", "resourceVersion", "namespace",
                      "name"):
            if fixed in old["metadata"]:
                new_meta[fixed] = old["metadata"][fixed]
        new["metadata"] = new_meta
        if new == old:
            return old
        if new.get("spec") != old.get("spec"):
            new_meta["generation"] = int(old["metadata"].get("generation", 1)) + 1
        new_meta["resourceVersion"] = self._next_rv()
        if new_meta.get("deletionTimestamp") and not new_meta.get("finalizers"):
            self._store(key, new)
            self._finish_delete(key, resource, new)
            return new
        self._store(key, new)
        self._publish("MODIFIED", resource, new, old)
        return new

    def _store(self, key: Any, new: dict[str, Any]) -> None:
        history = self.objects[key].history
        if self.keep_history:
            history.append(new)
        else:
            history[:] = [new]

    def _delete(self, resource: Any, namespace: str | None, name: str, *, orphan: bool) -> None:
        key = (resource, namespace, name)
        if key not in self.objects or self.objects[key].deleted:
            raise kmock.KubernetesObjectNotFoundError()
        old = self.objects[key].raw
        meta = old.get("metadata", {})
        if meta.get("deletionTimestamp"):
            return
        if meta.get("finalizers"):
            new = copy.deepcopy(old)
            new["metadata"]["deletionTimestamp"] = _stamp(self.clock())
            new["metadata"]["resourceVersion"] = self._next_rv()
            self._store(key, new)
            self._publish("MODIFIED", resource, new, old)
            return
        self._finish_delete(key, resource, old, orphan=orphan)

    def _finish_delete(
        self, key: Any, resource: Any, last: dict[str, Any], *, orphan: bool = False
    ) -> None:
        final = copy.deepcopy(last)
        final["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key].delete()
        self._publish("DELETED", resource, final, last)
        if not orphan:
            self._collect_dependents(final["metadata"].get("uid"))

    def _collect_dependents(self, owner_uid: str | None) -> None:
        """The garbage collector: delete objects owned by a deleted owner."""
        if not owner_uid:
            return
        doomed = [
            (res, ns, name)
            for (res, ns, name), obj in list(self.objects.items())
            if not obj.deleted
            and any(ref.get("uid") == owner_uid
                    for ref in (obj.raw.get("metadata", {}).get("ownerReferences") or []))
        ]
        for res, ns, name in doomed:
            if not self.objects[res, ns, name].deleted:
                self._delete(res, ns, name, orphan=False)

    def _publish(
        self, kind: str, resource: Any, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        rv = int(obj["metadata"]["resourceVersion"])
        event = {"type": kind, "object": obj}
        log = self._logs[resource]
        if len(log.events) == log.events.maxlen:
            log.compacted = log.events[0][0]
        log.events.append((rv, event))
        for queue in self._watchers[resource]:
            queue.put_nowait(event)
        change = Change(kind, resource.plural or "", obj, old)
        for listener in self._listeners:
            listener(change)

    # -- serving -------------------------------------------------------------------------

    async def _serve_list(self, request: kmock.Request) -> Any:
        params = request.params or {}
        token = params.get("continue")
        if token:  # the next page of a list answered earlier, from its snapshot
            if token not in self._pages:
                raise kmock.KubernetesError(status=410, reason="Expired",
                                            message="the continue token has expired",
                                            details={})
            rv, objs = self._pages.pop(token)
        else:
            rv = str(self._rv)
            objs = [obj for obj in self._select(request) if _labels_match(request, obj)]
        limit = int(params.get("limit") or 0)
        meta: dict[str, Any] = {"resourceVersion": rv}
        if limit and len(objs) > limit:
            token = uuid.uuid4().hex
            self._pages[token] = (rv, objs[limit:])
            objs, meta["continue"] = objs[:limit], token
        self.pages_served += 1
        return {"metadata": meta, "items": objs}

    async def _serve_watch(self, request: kmock.Request) -> Any:
        yield b""
        params = request.params or {}
        since = params.get("resourceVersion")
        timeout = params.get("timeoutSeconds")
        queue: asyncio.Queue[Any] = asyncio.Queue()
        log = self._logs[request.resource]
        if since in (None, "", "0"):
            backlog = [{"type": "ADDED", "object": obj} for obj in self._select(request)]
        elif int(since) < log.compacted:
            yield {"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                "reason": "Expired", "message": f"too old resource version: {since}"}}
            return
        else:
            backlog = [event for rv, event in log.events if rv > int(since)]
        self._watchers[request.resource].add(queue)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout) if timeout else None
        try:
            for event in backlog:
                if self._event_matches(request, event):
                    yield event
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    return
                if event is _DROP:
                    return
                if self._event_matches(request, event):
                    yield event
        finally:
            self._watchers[request.resource].discard(queue)

    def _select(self, request: kmock.Request) -> Iterator[dict[str, Any]]:
        for (res, ns, name), obj in self.objects.items():
            if res != request.resource or obj.deleted:
                continue
            if request.namespace is not None and ns != request.namespace:
                continue
            if request.name is not None and name != request.name:
                continue
            yield obj.raw

    def _event_matches(self, request: kmock.Request, event: dict[str, Any]) -> bool:
        meta = event["object"].get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        return _labels_match(request, event["object"])


def _restrict(patch: Any, subresource: str | None, has_status: bool) -> Any:
    """What the API server keeps of a patch: /status changes only status, and vice versa."""
    if not has_status:
        return patch
    if isinstance(patch, dict):
        if subresource == "status":
            kept = {"status": patch["status"]} if "status" in patch else {}
            rv = (patch.get("metadata") or {}).get("resourceVersion")
            if rv is not None:
                kept["metadata"] = {"resourceVersion": rv}
            return kept
        return {k: v for k, v in patch.items() if k != "status"}
    if isinstance(patch, list):
        def on_status(op: Mapping[str, Any]) -> bool:
            return str(op.get("path", "")).startswith("/status")

        return [op for op in patch if op.get("op") == "test"
                or on_status(op) == (subresource == "status")]
    return patch


def _labels_match(request: kmock.Request, obj: Mapping[str, Any]) -> bool:
    """Equality-based label selectors (``a=b``, ``a!=b``, ``a``, ``!a``), as the API has."""
    selector = (request.params or {}).get("labelSelector")
    if not selector:
        return True
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in selector.split(","):
        term = term.strip()
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term and term not in labels:
            return False
    return True


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
