"""Real Prometheus scraping the real operator; the chart's RBAC against its real requests.

``test_prometheus_scrapes_the_real_operator``: the operator (kopf, our handlers, the
planner, forecast keepers over scripted providers) runs against the API emulator with
three PowerSites (one whose provider is down) and three ComputeJobs (one due now that
completes within seconds, two deferred), on real time: Prometheus needs real scrapes.
Its ``/metrics`` is served by ``suandian.metrics.start_metrics_server``, as
``suandian run`` serves it, and kopf's liveness endpoint answers ``/healthz`` (the chart's
probe path) with the planning probe ``ok``. Prometheus (Debian's binary, the chart's
alert rules) scrapes it every second; then every dashboard panel query and every alert
expression runs against it. A query must return finite data unless it is listed in
``EXPECTED_EMPTY`` with the reason, and each listed one must be empty (so the list cannot
go stale).

``test_the_charts_rbac_covers_exactly_what_the_operator_calls``: the requests the
emulator saw while the operator placed, deferred, started, finished and rebuilt jobs and
gated a pod, as (API group, resource, verb), must all be granted by the chart's default
RBAC, and every grant must be either seen or listed in ``GRANTED_NOT_EXERCISED`` with
why: RBAC is exactly what the operator uses.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import helm_python
import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, JOBS, PSITES, computejob, eventually
from tests.support.operator import free_port, running_operator

from chart.chartkit import CHART, objects_of, operator_roles
from integration.prometheus.test_prometheus_live import (
    PromApi,
    alert_rules,
    grafana,
    panel_queries,
    recording_rules,
)
from suandian import metrics
from suandian.controllers.clock import LoopClock
from suandian.k8s.decision import format_time
from suandian.report import build_report

REGION = "topology.kubernetes.io/region"
WAIT_S = 30.0

EXPECTED_EMPTY = {
    # the story's only running job (etl) runs one second: no scrape sees it Running
    "suandian-power: Jobs running [A]": "no job is Running at any scrape in this story",
    "suandian-power: Where jobs run now [A]": "no job is Running at any scrape in this story",
    # sites refresh every 15 m: within the rate window no request happens, so 0/0 (NaN)
    "suandian-savings: Provider error ratio [A]": "no provider request within the rate window",
    # the ledger's ratios: the only finished job (etl) starts and finishes between two
    # scrapes, so its ledger series are born holding its figures, which increase() does
    # not count (suandian report does: test_report_backfill.py); over 0 kWh, no ratio
    **{f"suandian-ledger: {title} [A]": "etl's ledger series are born at their value"
       for title in ("Green share", "PUE used", "CUE, kg CO₂ per IT kWh",
                     "Measured share of IT energy", "Green share by namespace, per day",
                     "PUE by site, per day", "CUE by site, per day")},
}
"""Panel queries that return nothing against the real operator, and why."""


@pytest.fixture
def clock() -> LoopClock:
    """The operator's clock at real now: Prometheus computes ages against wall time."""
    return LoopClock(datetime.now(UTC).replace(microsecond=0))


def three_sites(api: Any, cluster: Any, clock: LoopClock) -> dict[str, ScriptedProvider]:
    """gansu green now, guizhou green from three hours on, ningxia's provider down."""
    later = clock.start + timedelta(hours=3)
    providers = {"gansu": ScriptedProvider(lambda t: 5000.0, carbon=550.0),
                 "guizhou": ScriptedProvider(lambda t: 5000.0 if t >= later else 0.0,
                                             carbon=450.0),
                 "ningxia": ScriptedProvider(lambda t: 0.0, down=True)}
    for name in providers:
        cluster.add_node(f"{name}-1", {REGION: name})
        api.create(PSITES, powersite(name, name, wind_kw=5000.0))
    return providers


def phase(api: Any, name: str) -> str | None:
    return ((api.read(CJ, "batch", name) or {}).get("status") or {}).get("phase")


@pytest.mark.prometheus
async def test_prometheus_scrapes_the_real_operator(
    api: Any, cluster: Any, clock: LoopClock, start_prometheus: Any,
) -> None:
    metrics.reset()
    providers = three_sites(api, cluster, clock)
    cluster.runtimes["etl"] = timedelta(seconds=1)
    server = await metrics.start_metrics_server("127.0.0.1", 0)
    session = aiohttp.ClientSession(headers={"Connection": "close"})
    try:
        prometheus = start_prometheus([f"127.0.0.1:{server.port}"])
        prom = PromApi(session, prometheus.url)
        health = f"http://127.0.0.1:{free_port()}/healthz"  # the chart's probe path
        async with running_operator(api, clock, keeper_factory(providers),
                                    liveness_endpoint=health):
            probed = await probe(session, health)  # what the chart's three probes GET
            assert probed["planning"] == "ok"
            # the jobs come once Prometheus scrapes, so rates and increases see them
            await wait_for_scrapes(prom, session, prometheus, minimum=2)
            api.create(GEV, peak(clock.now(), "guizhou"))
            api.create(CJ, computejob("etl", sites=["gansu"], watts=2000.0))
            api.create(CJ, computejob("nightly", sites=["guizhou"], max_delay="20h"))
            api.create(CJ, computejob("report", sites=["guizhou", "ningxia"], max_delay="10h",
                                        watts=1000.0))
            settled = {"etl": {"Succeeded"}, "nightly": {"Deferred"}, "report": {"Deferred"}}
            try:
                await eventually(lambda: all(phase(api, n) in ok for n, ok in settled.items()),
                                 timeout=WAIT_S, step=0.1, what="etl to finish, others deferred")
            except AssertionError as exc:
                raise AssertionError({n: api.read(CJ, "batch", n) for n in settled}) from exc
            await wait_for_scrapes(prom, session, prometheus, minimum=3)
            panels = {title: await prom.query(grafana(expr))
                      for title, expr in panel_queries()}
            rules = await evaluated_rules(prom)
            alerts = {a["labels"]["alertname"]: a
                      for a in (await prom.get("/api/v1/alerts"))["alerts"]}
            expressions = {r["alert"]: await prom.query(r["expr"]) for r in alert_rules()}
            today = datetime.now(UTC).date()
            ledger = await asyncio.to_thread(build_report, prometheus.url,
                                             today - timedelta(days=1),
                                             today + timedelta(days=1))
    finally:
        await session.close()
        await server.stop()
        metrics.reset()

    returned = {title: [float(s["value"][1]) for s in result]
                for title, result in panels.items()}
    with_data = {t for t, values in returned.items()
                 if values and all(math.isfinite(v) for v in values)}
    assert set(EXPECTED_EMPTY) <= set(returned), set(EXPECTED_EMPTY) - set(returned)
    assert {t: returned[t] for t in EXPECTED_EMPTY  # NaN (0/0) is no data too
            if any(math.isfinite(v) for v in returned[t])} == {}
    missing = {t: v for t, v in returned.items() if t not in with_data | set(EXPECTED_EMPTY)}
    assert missing == {}, "panels without data against the real operator"

    unhealthy = {r["name"]: r.get("lastError") for r in rules if r["health"] != "ok"}
    assert unhealthy == {}
    assert {r["name"] for r in rules} == set(expressions) | {
        r["record"] for r in recording_rules()}
    # the real story: ningxia's provider is down (degraded, waiting out its 30 m `for`);
    # nothing missed a deadline, the operator is up, planning ran and was fast
    assert alerts["SuandianSiteDegraded"]["labels"]["site"] == "ningxia"
    assert alerts["SuandianSiteDegraded"]["state"] == "pending"
    quiet = {"SuandianDeadlineMissed", "SuandianOperatorDown", "SuandianForecastStale",
             "SuandianNoDecisions", "SuandianPlanningSlow", "SuandianProviderFailing",
             "SuandianPlanningFailing"}
    assert not quiet & set(alerts), {n: alerts[n] for n in quiet & set(alerts)}
    assert all(not expressions[name] for name in quiet), {n: expressions[n] for n in quiet}
    # the operator's own completion path feeds the ledger and the site counters alike:
    # `suandian report` finds etl (and only etl) at gansu, and the two agree
    assert [(r.namespace, r.site, r.jobs) for r in ledger.totals] == [("batch", "gansu", 1)]
    assert ledger.totals[0].total_kwh > 0
    assert ledger.reconciled, ledger.checks


async def probe(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    """GET kopf's liveness endpoint once it listens (bounded); 200 and its JSON body."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        try:
            async with session.get(url) as rsp:
                assert rsp.status == 200, await rsp.text()
                return await rsp.json()  # type: ignore[no-any-return]
        except aiohttp.ClientConnectionError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def wait_for_scrapes(prom: PromApi, session: aiohttp.ClientSession, prometheus: Any,
                           minimum: int) -> None:
    """Wait (bounded) until Prometheus is ready and has scraped ``minimum`` more times."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S

    async def scrapes() -> float:
        if prometheus.process.poll() is not None:
            pytest.fail("prometheus exited:\n" + prometheus.log.read_text())
        try:
            async with session.get(f"{prometheus.url}/-/ready") as rsp:
                if rsp.status != 200:
                    return -1.0
        except aiohttp.ClientConnectionError:
            return -1.0
        result = await prom.query('count_over_time(up{job="suandian"}[5m])')
        return float(result[0]["value"][1]) if result else 0.0

    start = await scrapes()
    while (now := await scrapes()) < max(start, 0.0) + minimum:
        if loop.time() > deadline:
            pytest.fail(f"{now} scrapes after {WAIT_S:.0f} s")
        await asyncio.sleep(0.25)


async def evaluated_rules(prom: PromApi) -> list[dict[str, Any]]:
    expected = {rule["alert"] for rule in alert_rules()} | {
        rule["record"] for rule in recording_rules()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while True:
        data = await prom.get("/api/v1/rules")
        rules = [r for g in data["groups"] for r in g["rules"]]
        if {r["name"] for r in rules} == expected and all(
                r["lastEvaluation"] > "2000" for r in rules):
            return rules
        if loop.time() > deadline:
            pytest.fail(f"rules not evaluated after {WAIT_S:.0f} s: {rules}")
        await asyncio.sleep(0.25)


# -- RBAC: the chart's grants against the operator's real requests --------------------------

VERBS = {"LIST": "list", "WATCH": "watch", "FETCH": "get", "CREATE": "create",
         "DELETE": "delete"}
GRANTED_NOT_EXERCISED = {
    ("", "secrets", "get"): "forecast provider credentials (not used by scripted providers)",
    ("", "configmaps", "get"): "CSV forecasts (not used by scripted providers)",
    ("batch", "jobs", "get"): "KubeApi.create_job reads the Job back after 409 AlreadyExists",
    ("suandian.io", "computejobs/finalizers", "update"): "never called: the API server's "
    "OwnerReferencesPermissionEnforcement checks it when a child Job's owner reference sets "
    "blockOwnerDeletion (tests/envtest/test_ownerrefs.py proves it on a real server)",
    ("", "namespaces", "list"): "kopf's namespace observation with --namespace patterns",
    ("", "namespaces", "watch"): "kopf's namespace observation with --namespace patterns",
    ("kopf.dev", "clusterkopfpeerings", "list"): "peering (this scenario runs standalone)",
    ("kopf.dev", "clusterkopfpeerings", "watch"): "peering (this scenario runs standalone)",
    ("kopf.dev", "clusterkopfpeerings", "patch"): "peering (this scenario runs standalone)",
}
"""Chart grants the scenario does not exercise, each with the reason it is granted."""


def seen_calls(requests: list[Any]) -> tuple[set[tuple[str, str, str]], set[str]]:
    """(API group, resource[/subresource], RBAC verb) of each request; discovery apart."""
    calls, others = set(), set()
    for request in requests:
        if request.resource is None or request.resource.plural is None or request.action is None:
            others.add(f"{request.method.value} {request.url.path}")
            continue
        resource = request.resource.plural
        if request.subresource:
            resource += f"/{request.subresource}"
        action = request.action.value
        verb = VERBS.get(action) or ("update" if request.method.value == "PUT" else "patch")
        calls.add((request.resource.group or "", resource, verb))
    return calls, others


def chart_grants() -> set[tuple[str, str, str]]:
    chart = helm_python.Chart.load(CHART)
    try:
        objects = objects_of(chart.render({}, name="suandian", namespace="suandian-system",
                                          is_install=True))
    finally:
        chart.close()
    return {(group, resource, verb)
            for role in operator_roles(objects)  # (the user roles are bound to nobody)
            for rule in role["rules"] for group in rule["apiGroups"]
            for resource in rule["resources"] for verb in rule["verbs"]}


GEV = "suandian.io/v1alpha1/gridevents"


def peak(now: datetime, site: str) -> dict[str, Any]:
    """A shed under way at ``site`` whose ceiling (100 MW) nothing here reaches."""
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": f"{site}-peak"},
            "spec": {"type": "Shed", "sites": [site], "shed": {"ceilingKW": 100_000},
                     "start": format_time(now - timedelta(hours=1)),
                     "end": format_time(now + timedelta(hours=4))}}


def gated_pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "batch",
                         "labels": {"suandian.io/managed": "true"},
                         "annotations": {"suandian.io/duration": "1h",
                                         "suandian.io/max-delay": "8h"}},
            "spec": {"schedulingGates": [{"name": "suandian.io/green-window"}],
                     "containers": [{"name": "main", "image": "busybox",
                                     "resources": {"requests": {"cpu": "1"}}}]}}


@pytest.mark.looptime
async def test_the_charts_rbac_covers_exactly_what_the_operator_calls(
    api: Any, cluster: Any, clock: LoopClock,
) -> None:
    three = clock.start + timedelta(hours=3)
    providers = {"ningxia": ScriptedProvider(lambda t: 1000.0 if t >= three else 0.0)}
    cluster.add_node("ningxia-1", {REGION: "ningxia"})
    api.create(PSITES, powersite("ningxia", "ningxia"))
    cluster.runtimes["a"] = timedelta(minutes=30)
    async with running_operator(api, clock, keeper_factory(providers)):
        api.create(CJ, computejob("a", max_delay="20h"))
        api.create(CJ, computejob("b", max_delay="20h"))
        api.create(CJ, computejob("gone", max_delay="20h"))
        # left by an earlier version, whose per-job daemons needed a finalizer: removed
        legacy = computejob("legacy", max_delay="20h")
        legacy["metadata"]["finalizers"] = ["suandian.io/operator"]
        api.create(CJ, legacy)
        api.create("v1/pods", gated_pod("p"))
        api.create(GEV, peak(clock.now(), "ningxia"))
        await eventually(lambda: all(api.read(JOBS, "batch", n) for n in ("a", "b", "gone")),
                         what="three child Jobs")
        await eventually(lambda: not api.read(CJ, "batch", "legacy")["metadata"].get(
            "finalizers"), what="the legacy finalizer removed")
        api.change(CJ, "batch", "b", {"spec": {"duration": "1h"}})  # rebuilt before start
        before = len(api._requests)
        await api.delete("/apis/suandian.io/v1alpha1/namespaces/batch/computejobs/gone")
        # the test's own request, not the operator's
        ours = [r for r in api._requests[before:]
                if r.method.value == "DELETE" and r.name == "gone"]
        await eventually(lambda: phase(api, "a") == "Succeeded", timeout=6 * 3600, step=60,
                         what="a to start and finish")
        await eventually(lambda: not (api.read("v1/pods", "batch", "p") or {}).get(
            "spec", {}).get("schedulingGates"), timeout=6 * 3600, step=60,
            what="the pod released")
    assert len(ours) == 1
    calls, others = seen_calls([r for r in api._requests if r is not ours[0]])
    grants = chart_grants()
    assert calls - grants == set(), "the operator calls what the chart does not grant"
    unexplained = grants - calls - set(GRANTED_NOT_EXERCISED)
    assert unexplained == set(), f"granted but never used nor explained: {sorted(unexplained)}"
    assert not set(GRANTED_NOT_EXERCISED) & calls, set(GRANTED_NOT_EXERCISED) & calls
    assert {("batch", "jobs", "create"), ("batch", "jobs", "patch"), ("batch", "jobs", "delete"),
            ("", "pods", "patch"), ("suandian.io", "computejobs/status", "patch"),
            ("suandian.io", "powersites/status", "patch"), ("", "events", "create"),
            ("apiextensions.k8s.io", "customresourcedefinitions", "watch")} <= calls
    assert all(o.startswith("GET /api") for o in others), others  # discovery: no RBAC rule
