"""The operator: kopf handlers, thin, one module per resource, over shared services.

:func:`build` assembles one operator (its own kopf registry, kopf settings and memo), so
``suandian run`` and the tests run exactly the same handlers:

- :mod:`.powersite`: forecast refresh, site status and events;
- :mod:`.gridevent`: the grid's requests into planning, the plan's answers into status;
- :mod:`.computejob`: validation, placement, deferral, start, suspend/resume, completion;
- :mod:`.pod`: the scheduling-gate webhook and the gated-pod release;
- :mod:`.webhook`: the webhook's server, which tells the probes when it listens;
- :mod:`.scheduler`: the one task that steps every ComputeJob and gated Pod when it
  changed or is due (no kopf daemon per object: see there);
- :mod:`.cluster`: the cluster view for planning (Nodes, bound Pods, child Jobs),
  mirrored with list + watch outside kopf (kopf would keep a memory per object).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import kopf

from suandian import metrics
from suandian.backends import backend_for
from suandian.config import Settings
from suandian.controllers import computejob, gridevent, pod, powersite
from suandian.controllers.accounting import meter_from
from suandian.controllers.clock import Clock, LoopClock, WallClock
from suandian.controllers.cluster import start_feeds
from suandian.controllers.context import Context, KeeperFactory, memo_context
from suandian.controllers.heap import HeapPolicy
from suandian.controllers.webhook import ListeningWebhook
from suandian.errors import KubeApiError, PlanningError
from suandian.forecast import ForecastKeeper
from suandian.k8s.client import KubeApi
from suandian.k8s.pods import MANAGED_LABEL
from suandian.measure.learned import PowerModel

__all__ = ["Clock", "Context", "LoopClock", "NoEssence", "OperatorParts", "SharedMemo",
           "WallClock", "build"]

log = logging.getLogger(__name__)


@dataclass
class OperatorParts:
    """Everything ``kopf.operator()`` needs besides the connection and the flags."""

    registry: kopf.OperatorRegistry
    settings: kopf.OperatorSettings
    memo: kopf.Memo
    context: Context


def build(
    *,
    settings: Settings,
    api: KubeApi,
    clock: Clock | None = None,
    keeper_factory: KeeperFactory = ForecastKeeper.from_inputs,
    login: Callable[..., Any] | None = None,
    webhook: kopf.WebhookServer | None = None,
    peering_name: str = "suandian",
    heap: HeapPolicy | None = None,
    namespaces: Sequence[str] = (),
) -> OperatorParts:
    """One operator's registry, kopf settings and shared context.

    ``login``: a kopf login handler (default: kopf's own, kubeconfig or in-cluster).
    ``webhook``: where kopf serves the admission webhook (None: no webhook server).
    ``namespaces``: the namespace patterns served (empty: all), for the cluster view.
    ``heap``: when to collect garbage (None: Python's defaults; ``suandian run`` passes
    a :class:`~suandian.controllers.heap.HeapPolicy`).
    """
    registry = kopf.OperatorRegistry()
    context = Context(settings=settings, clock=clock or WallClock(), api=api,
                      keeper_factory=keeper_factory, heap=heap,
                      backend=backend_for(settings), meter=meter_from(settings),
                      power_model=PowerModel(settings.power_model_templates))
    context.steps[computejob.KIND] = functools.partial(computejob.step, context)
    context.steps[pod.KIND] = functools.partial(pod.step, context)
    powersite.register(registry)
    gridevent.register(registry)
    if settings.openadr_vtn_url:
        from suandian.controllers.openadr import Ven  # openleadr: the [openadr] extra

        ven = context.ven = Ven(context)
        context.activity.append(ven.activate)
    computejob.register(registry)
    pod.register(registry, webhook=webhook is not None)
    if login is not None:
        kopf.on.login(registry=registry)(login)
    else:
        kopf.on.login(registry=registry)(kopf.login_with_service_account)
        kopf.on.login(registry=registry)(kopf.login_with_kubeconfig)

    @kopf.on.startup(registry=registry)
    async def startup(memo: kopf.Memo, **_: Any) -> None:
        metrics.record_build_info(kopf_version=getattr(kopf, "__version__", None))
        ctx = memo_context(memo)
        try:  # before any round: the PowerSites whose first forecasts rounds wait for
            ctx.expect_sites(await ctx.api.powersite_names())
        except KubeApiError as exc:  # kopf's listing names them as it comes
            log.warning("could not list the PowerSites at start: %s", exc)
        ctx.planning.start()
        ctx.feeds = start_feeds(ctx, functools.partial(computejob.wake_owner, ctx), namespaces)
        if ctx.heap is not None:
            ctx.heap.install(asyncio.get_running_loop())

    @kopf.on.cleanup(registry=registry)
    async def cleanup(memo: kopf.Memo, **_: Any) -> None:
        ctx = memo_context(memo)
        if ctx.heap is not None:
            ctx.heap.uninstall()
        for feed in ctx.feeds:
            feed.cancel()
        await asyncio.gather(*ctx.feeds, return_exceptions=True)
        await ctx.scheduler.stop()
        if ctx.ven is not None:
            await ctx.ven.close()
        await ctx.planning.stop()
        await ctx.api.aclose()

    @kopf.on.probe(registry=registry, id="planning")
    async def planning_probe(memo: kopf.Memo, **_: Any) -> str:
        """The liveness endpoint answers 500 when this raises: the planning loop died
        or is wedged (see PlanningService.health). Permanent, so kopf fails the probe at
        once instead of retrying the handler past the kubelet's timeout."""
        ctx = memo_context(memo)
        try:
            return ctx.planning.health(ctx.clock.now())
        except PlanningError as exc:
            raise kopf.PermanentError(str(exc)) from exc

    kopf_settings = kopf.OperatorSettings()
    kopf_settings.peering.name = peering_name
    kopf_settings.peering.lifetime = settings.peering_lifetime
    kopf_settings.posting.level = logging.INFO
    kopf_settings.persistence.finalizer = "suandian.io/operator"
    # list in pages: ten thousand ComputeJobs in one answer is a memory spike of its own
    kopf_settings.watching.chunk_size = 500
    # kopf's worker for an object holds its last event (the whole decoded body, ~20 KB
    # for a ComputeJob) until it has been idle this long (default 5 s): at start-up every
    # listed job at once. 0.5 s keeps the bursts of one object's events (our status write
    # and its echo) in one worker: 10,000 jobs x 5,000 nodes peaked 45 MB lower
    kopf_settings.queueing.idle_timeout = 0.5
    # kopf sees only the pods it gates (the cluster view mirrors bound pods itself)
    kopf_settings.watching.label_selectors["v1", "pods"] = (
        f"{MANAGED_LABEL}=true")
    kopf_settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(
        prefix="suandian.io")
    kopf_settings.persistence.diffbase_storage = NoEssence(
        prefix="suandian.io", key="last-handled-configuration")
    if webhook is not None:
        served = ListeningWebhook(webhook)
        kopf_settings.admission.server = served

        @kopf.on.probe(registry=registry, id="webhook")
        async def webhook_probe(**_: Any) -> str:
            """Fails until the webhook listens: the chart's readiness probe is this
            endpoint, so no admission review reaches a pod that cannot gate yet."""
            return served.health()

    return OperatorParts(registry=registry, settings=kopf_settings,
                         memo=SharedMemo(ctx=context), context=context)


class SharedMemo(kopf.Memo):
    """The operator's memo, which kopf gives every object too, uncopied.

    Kopf hands each watched object a shallow copy of the operator's memo, kept as long
    as the object exists: ten thousand copies of one key (some 260 bytes each) to reach
    the one :class:`Context`. No handler keeps anything per object in its memo (they
    reach the Context, whose structures are per object), so one memo serves all.
    """

    def __copy__(self) -> SharedMemo:
        return self


class NoEssence(kopf.AnnotationsDiffBaseStorage):
    """A diff base that keeps nothing: Suandian has no on-create/update/delete handlers.

    Kopf builds every watched object's "essence" (a deep copy of it, then another) to
    diff it for change handlers, on every event of every resource, whether or not any
    handler would use it. Suandian reacts with watch handlers and daemons only (a test
    keeps it so), and kopf's own profile of ten thousand jobs spent a sixth of the
    operator's time in those copies. The empty essence never differs, so no change
    handler could fire even if one were added by mistake: the test fails first.
    """

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})
