"""Every dashboard query and every alert against a real Prometheus scraping Suandian.

The /metrics endpoint is the one the operator mounts (suandian.metrics), filled through
the same record_* helpers the operator calls, for three sites and a handful of jobs.
Prometheus scrapes it every second; the test waits (bounded) for scrapes, then runs each
panel's PromQL (template variables substituted as Grafana would) and asserts it returns
finite data, and checks each alert rule loads, evaluates without error, and fires or not
as the recorded story says.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from suandian import metrics
from suandian.errors import ProviderError

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "helm" / "suandian" / "dashboards").glob("*.json"))
RULES = ROOT / "helm" / "suandian" / "alerts" / "suandian.rules.yaml"
LEDGER_RULES = RULES.parent / "suandian.ledger.rules.yaml"
GRAFANA_VARIABLES = {"$__rate_interval": "30s", "$__range": "1h", "$__interval": "5s",
                     "$site": ".*", "$namespace": ".*"}
SITES = ("gansu", "guizhou", "ningxia")
WAIT_S = 60.0

pytestmark = [pytest.mark.prometheus, pytest.mark.asyncio(loop_scope="module")]


def panel_queries() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel["targets"]:
                found.append((f"{board['uid']}: {panel['title']} [{target['refId']}]",
                              target["expr"]))
    return found


def grafana(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def recording_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(LEDGER_RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def ledger_runs(i: int) -> list[tuple[str, dict[str, float], float, float, str]]:
    """The ledger entries of site ``i``'s finished job, split over two namespaces so
    they add up to what record_job_finished gets (green 40 + i kWh, grid 10, 4800 g)."""
    return [("team-a", {"solar": 30.0 + i, "wind": 5.0, "grid": 6.0}, 3000.0, 8000.0,
             "measured"),
            ("team-b", {"storage": 5.0, "grid": 4.0}, 1800.0, 4000.0, "modelled")]


def record_round(round_no: int) -> None:
    """What the operator records in one cycle: site status, a census, decisions, outcomes."""
    clock = metrics.instruments().clock()
    for i, site in enumerate(SITES):
        metrics.record_site(
            site,
            green_power_kw_by_source={"solar": 8000.0 + 1000 * i, "wind": 3000.0 - 500 * i,
                                      "storage": 200.0},
            grid_carbon_intensity_g_per_kwh=(480.0, 300.0, 620.0)[i],
            compute_power_kw=4000.0 + 100 * round_no, headroom_kw=7200.0 - 100 * round_no,
            forecast_updated=clock - 120, max_staleness_s=21600, degraded=site == "ningxia")
        metrics.record_site_forecast(site, {"1h": 9000.0, "6h": 7000.0, "24h": 5000.0})
        metrics.record_deferral(site)
        metrics.record_start(site, trigger="planned", delay_s=3600.0 * (i + 1))
        metrics.record_start(site, trigger="immediate", delay_s=0.0)
        metrics.record_job_finished(site, outcome="Succeeded", green_kwh=40.0 + i,
                                    grid_kwh=10.0, emissions_g=4800.0, avoided_g=12000.0)
        for namespace, kwh, emitted, saved, provenance in ledger_runs(i):
            metrics.record_ledger_run(
                namespace=namespace, site=site, kwh_by_source=kwh,
                it_kwh=sum(kwh.values()) / 1.25, emissions_g=emitted, saved_g=saved,
                provenance=provenance if site != "ningxia" else "partial")
    metrics.record_jobs_by_phase({
        ("gansu", "Running"): 4, ("guizhou", "Running"): 2, ("ningxia", "Deferred"): 5,
        ("gansu", "Suspended"): 1, (None, "Pending"): 3, ("guizhou", "Succeeded"): 9})
    # a shed at gansu: 60 kW asked and committed, delivered in full
    metrics.record_grid_event("evening-peak", "Shed", "Active", {"gansu": metrics.SiteFigures(
        asked_kw=60.0, committed_kw=60.0, delivered_kw=60.0, shortfall_kw=0.0)},
        delivered_kwh=5.0)
    metrics.record_planning(0.015 * (round_no + 1), jobs=12)
    metrics.record_planning(0.4, jobs=3)
    metrics.record_provider_request("wattTime", duration_s=0.2)
    metrics.record_provider_request("wattTime", duration_s=5.0,
                                    error=ProviderError("wattTime", "Timeout", "10 s"))
    metrics.record_provider_request("wattTime", duration_s=0.3, error=ProviderError(
        "wattTime", "Unreachable", "ClientOSError: connection reset"))
    metrics.record_provider_request("builtin", duration_s=0.01)
    if round_no == 1:
        metrics.record_deadline_miss("ningxia")


class PromApi:
    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url

    async def get(self, path: str, **params: str) -> Any:
        async with self.session.get(f"{self.url}{path}", params=params) as rsp:
            body = await rsp.json()
            assert body["status"] == "success", (path, params, body)
            return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        data = await self.get("/api/v1/query", query=expr)
        return data["result"]  # type: ignore[no-any-return]

    async def wait_for(self, what: str, check: Callable[[], Any]) -> None:
        """Poll ``check`` (an async callable) every 250 ms, at most WAIT_S seconds."""
        deadline = asyncio.get_running_loop().time() + WAIT_S
        while not await check():
            if asyncio.get_running_loop().time() > deadline:
                pytest.fail(f"gave up after {WAIT_S:.0f} s waiting for {what}")
            await asyncio.sleep(0.25)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def scraped(start_prometheus: Any) -> AsyncIterator[PromApi]:
    """Prometheus with at least three scrapes of a /metrics that changed between them."""
    metrics.reset()
    record_round(0)
    server = await metrics.start_metrics_server("127.0.0.1", 0)
    prometheus = start_prometheus([f"127.0.0.1:{server.port}"])
    session = aiohttp.ClientSession(headers={"Connection": "close"})
    api = PromApi(session, prometheus.url)
    try:
        async def ready() -> bool:
            if prometheus.process.poll() is not None:
                pytest.fail("prometheus exited:\n" + prometheus.log.read_text())
            try:
                async with session.get(f"{prometheus.url}/-/ready") as rsp:
                    return rsp.status == 200
            except aiohttp.ClientConnectionError:
                return False

        async def scrapes(n: int) -> Callable[[], Any]:
            async def enough() -> bool:
                result = await api.query('count_over_time(up{job="suandian"}[5m])')
                return bool(result) and float(result[0]["value"][1]) >= n
            return enough

        await api.wait_for("Prometheus to be ready", ready)
        await api.wait_for("the first scrape", await scrapes(1))
        record_round(1)
        await api.wait_for("a scrape after round 1", await scrapes(3))
        record_round(2)
        await api.wait_for("a scrape after round 2", await scrapes(5))
        yield api
    finally:
        await session.close()
        await server.stop()
        metrics.reset()


async def test_prometheus_scrapes_the_operator_endpoint(scraped: PromApi) -> None:
    up = await scraped.query('up{job="suandian"}')
    assert [float(s["value"][1]) for s in up] == [1.0]
    sites = await scraped.get("/api/v1/label/site/values",
                              **{"match[]": "suandian_site_green_power_watts"})
    assert sorted(sites) == sorted(SITES)


async def test_every_dashboard_query_returns_finite_data(scraped: PromApi) -> None:
    queries = panel_queries()
    assert len(queries) >= 20
    failures = {}
    for title, expr in queries:
        result = await scraped.query(grafana(expr))
        values = [float(s["value"][1]) for s in result]
        if not values or not all(math.isfinite(v) for v in values):
            failures[title] = (expr, values)
    assert failures == {}


async def test_every_alert_rule_is_loaded_and_evaluates_cleanly(scraped: PromApi) -> None:
    expected = {rule["alert"] for rule in alert_rules()} | {
        rule["record"] for rule in recording_rules()}

    async def evaluated() -> bool:
        data = await scraped.get("/api/v1/rules")
        rules = [r for g in data["groups"] for r in g["rules"]]
        return {r["name"] for r in rules} == expected and all(
            r["lastEvaluation"] > "2000" for r in rules)

    await scraped.wait_for("every rule to be evaluated", evaluated)
    data = await scraped.get("/api/v1/rules")
    unhealthy = {r["name"]: r.get("lastError") for g in data["groups"] for r in g["rules"]
                 if r["health"] != "ok"}
    assert unhealthy == {}


async def test_every_alert_expression_queries_series_that_exist(scraped: PromApi) -> None:
    for rule in alert_rules():
        await scraped.query(rule["expr"])  # valid PromQL, or PromApi.get fails
        names = set(re.findall(r"\b(suandian_[a-z_]+|up)\b", rule["expr"]))
        assert names, rule["alert"]
        for name in names:
            assert await scraped.query(f"count({{__name__={name!r}}})".replace("'", '"')), (
                f"{rule['alert']}: no series named {name}")


async def test_alerts_fire_as_the_story_says(scraped: PromApi) -> None:
    async def miss_alert() -> bool:
        alerts = (await scraped.get("/api/v1/alerts"))["alerts"]
        return any(a["labels"]["alertname"] == "SuandianDeadlineMissed" for a in alerts)

    await scraped.wait_for("SuandianDeadlineMissed to fire", miss_alert)
    alerts = (await scraped.get("/api/v1/alerts"))["alerts"]
    by_name = {a["labels"]["alertname"]: a for a in alerts}
    assert by_name["SuandianDeadlineMissed"]["labels"]["site"] == "ningxia"
    assert by_name["SuandianDeadlineMissed"]["state"] == "firing"
    assert by_name["SuandianSiteDegraded"]["labels"]["site"] == "ningxia"
    assert by_name["SuandianSiteDegraded"]["state"] == "pending"
    assert by_name["SuandianProviderFailing"]["labels"]["provider"] == "wattTime"
    for quiet in ("SuandianOperatorDown", "SuandianForecastStale", "SuandianNoDecisions",
                  "SuandianPlanningSlow", "SuandianPlanningFailing", "SuandianShedNotDelivered",
                  "SuandianVenNotRegistered"):
        assert quiet not in by_name, by_name[quiet]


async def test_the_report_reads_back_every_ledger_run_and_reconciles(scraped: PromApi) -> None:
    """`suandian report`'s reader over the live endpoint: three rounds of ledger runs,
    the first recorded before the first scrape (a series' first value counts too)."""
    from datetime import UTC, datetime, timedelta

    from suandian.report import build_report

    today = datetime.now(UTC).date()
    ledger = await asyncio.to_thread(build_report, scraped.url, today - timedelta(days=1),
                                     today + timedelta(days=1))
    totals = {(r.namespace, r.site): r for r in ledger.totals}
    assert sorted(totals) == [(ns, site) for ns in ("team-a", "team-b") for site in sorted(SITES)]
    for i, site in enumerate(SITES):
        a, b = totals["team-a", site], totals["team-b", site]
        assert a.kwh["solar"] == pytest.approx(3 * (30.0 + i))
        assert a.total_kwh == pytest.approx(3 * (41.0 + i))
        assert b.kwh == pytest.approx({"solar": 0, "wind": 0, "hydro": 0, "directGreen": 0,
                                       "storage": 15.0, "grid": 12.0})
        assert a.pue == pytest.approx(1.25)
        assert (a.emissions_g, b.emissions_g) == pytest.approx((9000.0, 5400.0))
        assert a.saved_g == pytest.approx(24000.0)
        assert a.jobs == b.jobs == 3
    assert ledger.reconciled, ledger.checks
    assert [c.site for c in ledger.checks if c.day is None] == sorted(SITES)
