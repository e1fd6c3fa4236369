"""Each HTTP provider against a local server in its real shape, faults included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from suandian.api.powersite import (
    CarbonAwareSdkForecast,
    ElectricityMapsForecast,
    PrometheusForecast,
    SecretKeyRef,
    WattTimeForecast,
)
from suandian.errors import ProviderAuthError, ProviderError, ProviderRateLimited
from suandian.forecast import TimeGrid
from suandian.forecast.providers import (
    CarbonAwareSdkProvider,
    Credentials,
    ElectricityMapsProvider,
    PrometheusProvider,
    RetryPolicy,
    WattTimeProvider,
)

from .conftest import FakeService, hang, malformed, ok, status

NOW = datetime(2026, 6, 1, 3, 5, tzinfo=UTC)
GRID = TimeGrid.covering(NOW, slots=96)
POLICY = RetryPolicy(attempts=3, timeout_s=0.2, backoff_base_s=0.5)
SECRET = "s3cr3t-token-value"


def hourly(n: int = 30, start: datetime = GRID.start, value: Any = 500.0) -> list[datetime]:
    return [start + timedelta(hours=h) for h in range(n)]


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- Electricity Maps


def em_body(values: list[float] | None = None, updated: datetime = NOW,
            zone: str = "CN") -> dict[str, Any]:
    vals = values if values is not None else [500.0 - 5 * h for h in range(30)]
    return {"zone": zone, "forecast": [
        {"carbonIntensity": v, "datetime": iso(GRID.start + timedelta(hours=h))}
        for h, v in enumerate(vals)], "updatedAt": iso(updated)}


def em(service: FakeService, http: dict[str, Any]) -> ElectricityMapsProvider:
    spec = ElectricityMapsForecast(url=service.url + "/v3", zone="CN",
                                   token_secret_ref=SecretKeyRef(name="em", key="token"))
    return ElectricityMapsProvider(spec, Credentials({"em": {"token": SECRET}}), POLICY, http)


async def test_electricity_maps_success(service: FakeService, http: dict[str, Any],
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    service.on("/v3/carbon-intensity/forecast", ok(em_body()))
    sig = await em(service, http).fetch(GRID, NOW)
    req = service.requests[0]
    assert req.headers["auth-token"] == SECRET and req.query["zone"] == "CN"
    ci = sig.values["carbonIntensity"]
    assert ci.shape == (96,) and not np.any(np.isnan(ci))
    # interpolated between hourly midpoints
    assert ci[0] == pytest.approx(500.0) and ci[6] == pytest.approx(494.375)
    assert SECRET not in caplog.text


@pytest.mark.parametrize(("reply", "reason", "exc"), [
    (status(401), "Unauthorized", ProviderAuthError),
    (malformed(), "MalformedResponse", ProviderError),
    (ok(em_body(values=[0.45] * 30)), "WrongUnits", ProviderError),
    (ok(em_body(values=[3000.0] * 30)), "OutOfRange", ProviderError),
    (ok(em_body(updated=NOW - timedelta(hours=9))), "Stale", ProviderError),
    (ok(em_body(zone="DE")), "MalformedResponse", ProviderError),
    (ok({"zone": "CN", "forecast": []}), "Gaps", ProviderError),
    (ok({"zone": "CN"}), "MalformedResponse", ProviderError),
])
async def test_electricity_maps_faults(service: FakeService, http: dict[str, Any],
                                       sleeps: list[float], reply: web.Response, reason: str,
                                       exc: type[Exception]) -> None:
    service.on("/v3/carbon-intensity/forecast", reply)
    with pytest.raises(exc) as e:
        await em(service, http).fetch(GRID, NOW)
    assert e.value.reason == reason  # type: ignore[attr-defined]
    assert len(service.requests) == 1 and sleeps == []  # not retried: retrying cannot help


async def test_rate_limit_honours_retry_after_then_succeeds(
        service: FakeService, http: dict[str, Any], sleeps: list[float]) -> None:
    service.on("/v3/carbon-intensity/forecast", status(429, {"Retry-After": "7"}),
               ok(em_body()))
    sig = await em(service, http).fetch(GRID, NOW)
    assert sleeps == [7.0] and len(service.requests) == 2
    assert np.isfinite(sig.values["carbonIntensity"]).all()


async def test_rate_limit_too_long_is_not_waited_for(service: FakeService, http: dict[str, Any],
                                                    sleeps: list[float]) -> None:
    service.on("/v3/carbon-intensity/forecast", status(429, {"Retry-After": "3600"}))
    with pytest.raises(ProviderRateLimited) as e:
        await em(service, http).fetch(GRID, NOW)
    assert e.value.retry_after == 3600 and sleeps == [] and len(service.requests) == 1


async def test_server_errors_retry_with_backoff_then_fail(
        service: FakeService, http: dict[str, Any], sleeps: list[float]) -> None:
    service.on("/v3/carbon-intensity/forecast", status(500))
    with pytest.raises(ProviderError) as e:
        await em(service, http).fetch(GRID, NOW)
    assert e.value.reason == "ServerError" and len(service.requests) == 3
    assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0


async def test_timeouts_retry_then_fail(service: FakeService, http: dict[str, Any],
                                        sleeps: list[float]) -> None:
    service.on("/v3/carbon-intensity/forecast", hang)
    with pytest.raises(ProviderError) as e:
        await em(service, http).fetch(GRID, NOW)
    assert e.value.reason == "Timeout" and len(sleeps) == 2


async def test_missing_credentials_never_call_out(service: FakeService,
                                                  http: dict[str, Any]) -> None:
    spec = ElectricityMapsForecast(url=service.url + "/v3", zone="CN",
                                   token_secret_ref=SecretKeyRef(name="em", key="token"))
    provider = ElectricityMapsProvider(spec, Credentials({}, env={}), POLICY, http)
    with pytest.raises(ProviderAuthError) as e:
        await provider.fetch(GRID, NOW)
    assert e.value.reason == "MissingCredentials" and service.requests == []
    from_env = Credentials({}, env={"SUANDIAN_SECRET_EM_TOKEN": SECRET})
    assert from_env.get("x", spec.token_secret_ref).get_secret_value() == SECRET
    assert SECRET not in repr(from_env.get("x", spec.token_secret_ref))


# ---------------------------------------------------------------- Carbon Aware SDK


def casdk_body(n: int = 48 * 12, start: datetime = GRID.start) -> list[dict[str, Any]]:
    points = [{"location": "eastus", "timestamp": iso(start + timedelta(minutes=5 * i)),
               "duration": 5, "value": 400.0 + (i % 12)} for i in range(n)]
    return [{"requestedAt": iso(NOW), "generatedAt": iso(NOW), "location": "eastus",
             "dataStartAt": iso(start), "dataEndAt": iso(start + timedelta(hours=48)),
             "windowSize": 5, "optimalDataPoints": points[:1], "forecastData": points}]


def casdk(service: FakeService, http: dict[str, Any]) -> CarbonAwareSdkProvider:
    return CarbonAwareSdkProvider(
        CarbonAwareSdkForecast(url=service.url, location="eastus"), POLICY, http)


async def test_carbon_aware_sdk_success_averages_five_minute_points(
        service: FakeService, http: dict[str, Any]) -> None:
    service.on("/emissions/forecasts/current", ok(casdk_body()))
    sig = await casdk(service, http).fetch(GRID, NOW)
    assert service.requests[0].query["location"] == "eastus"
    assert "dataStartAt" in service.requests[0].query
    ci = sig.values["carbonIntensity"]
    assert np.isfinite(ci).all() and ci.min() >= 400 and ci.max() <= 411


async def test_carbon_aware_sdk_gaps_and_stale(service: FakeService,
                                               http: dict[str, Any]) -> None:
    body = casdk_body()
    del body[0]["forecastData"][24:96]  # a six-hour hole
    service.on("/emissions/forecasts/current", ok(body))
    sig = await casdk(service, http).fetch(GRID, NOW)
    assert np.isnan(sig.values["carbonIntensity"]).sum() > 16  # left for the gap policy
    from suandian.errors import ProviderResponseError
    from suandian.forecast.assemble import clean_signal

    with pytest.raises(ProviderResponseError, match="missing inside"):
        clean_signal("carbonAwareSdk", "carbonIntensity", sig.values["carbonIntensity"], GRID,
                     "persist")
    stale = casdk_body(start=GRID.start - timedelta(days=3), n=12)
    stale[0]["generatedAt"] = iso(NOW - timedelta(days=3))
    service.on("/emissions/forecasts/current", ok(stale))
    with pytest.raises(ProviderError) as e:
        await casdk(service, http).fetch(GRID, NOW)
    assert e.value.reason == "Stale"


# ---------------------------------------------------------------- WattTime


def wt_body(units: str = "lbs_co2_per_mwh", region: str = "CAISO_NORTH") -> dict[str, Any]:
    return {"data": [{"point_time": iso(GRID.start + timedelta(minutes=5 * i)), "value": 1000.0}
                     for i in range(24 * 12)],
            "meta": {"region": region, "signal_type": "co2_moer", "units": units,
                     "data_point_period_seconds": 300, "generated_at": iso(NOW),
                     "model": {"date": "2026-03-01"}}}


def wt(service: FakeService, http: dict[str, Any]) -> WattTimeProvider:
    spec = WattTimeForecast(url=service.url, region="CAISO_NORTH",
                            username_secret_ref=SecretKeyRef(name="wt", key="user"),
                            password_secret_ref=SecretKeyRef(name="wt", key="password"))
    creds = Credentials({"wt": {"user": "alice", "password": SECRET}})
    return WattTimeProvider(spec, creds, POLICY, http)


async def test_watttime_login_bearer_and_unit_conversion(service: FakeService,
                                                         http: dict[str, Any]) -> None:
    service.on("/login", ok({"token": "tok-1"}))
    service.on("/v3/forecast", ok(wt_body()))
    provider = wt(service, http)
    sig = await provider.fetch(GRID, NOW)
    login, fc = service.requests
    assert login.headers["Authorization"].startswith("Basic ")
    assert fc.headers["Authorization"] == "Bearer tok-1"
    assert fc.query["signal_type"] == "co2_moer" and fc.query["region"] == "CAISO_NORTH"
    ci = sig.values["carbonIntensity"]
    assert ci[0] == pytest.approx(453.59237)  # 1000 lbs/MWh in g/kWh
    assert np.isfinite(ci).all()  # 24 h of 5-minute points cover the 24 h grid
    await provider.fetch(GRID, NOW + timedelta(minutes=5))  # token reused
    assert [r.path for r in service.requests].count("/login") == 1


async def test_watttime_relogs_once_on_401(service: FakeService, http: dict[str, Any]) -> None:
    service.on("/login", ok({"token": "old"}), ok({"token": "new"}))
    service.on("/v3/forecast", status(401), ok(wt_body()))
    await wt(service, http).fetch(GRID, NOW)
    assert [r.path for r in service.requests] == ["/login", "/v3/forecast", "/login",
                                                  "/v3/forecast"]
    assert service.requests[-1].headers["Authorization"] == "Bearer new"


@pytest.mark.parametrize(("login", "forecast", "reason"), [
    (status(401), ok(wt_body()), "Unauthorized"),
    (ok({"token": "t"}), ok(wt_body(units="percent")), "WrongUnits"),
    (ok({"token": "t"}), ok(wt_body(region="PJM")), "MalformedResponse"),
    (ok({"token": "t"}), malformed(), "MalformedResponse"),
    (ok({"nope": 1}), ok(wt_body()), "MalformedResponse"),
])
async def test_watttime_faults(service: FakeService, http: dict[str, Any], login: web.Response,
                               forecast: web.Response, reason: str) -> None:
    service.on("/login", login)
    service.on("/v3/forecast", forecast)
    with pytest.raises(ProviderError) as e:
        await wt(service, http).fetch(GRID, NOW)
    assert e.value.reason == reason


# ---------------------------------------------------------------- Prometheus


def prom_body(values: list[tuple[float, str]]) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"site": "gansu"}, "values": [[t, v] for t, v in values]}]}}


def prom(service: FakeService, http: dict[str, Any], units: dict[str, str] | None = None
         ) -> PrometheusProvider:
    spec = PrometheusForecast(url=service.url, queries={"solar": "sum(site_solar_watts)"},
                              units=units or {})
    return PrometheusProvider(spec, POLICY, http)


async def test_prometheus_query_range_in_watts(service: FakeService,
                                               http: dict[str, Any]) -> None:
    pts = [(GRID.start_epoch + 900 * i, str(2_000_000.0)) for i in range(96)]
    service.on("/api/v1/query_range", ok(prom_body(pts)))
    sig = await prom(service, http).fetch(GRID, NOW)
    q = service.requests[0].query
    assert q["query"] == "sum(site_solar_watts)" and q["step"] == "900s"
    assert int(q["start"]) == GRID.start_epoch
    np.testing.assert_allclose(sig.values["solar"], 2000.0)  # W -> kW
    service.on("/api/v1/query_range", ok(prom_body(pts)))
    mw = await prom(service, http, {"solar": "MW"}).fetch(GRID, NOW)
    assert mw.values["solar"][0] == pytest.approx(2e9)


@pytest.mark.parametrize(("body", "reason"), [
    ({"status": "error", "errorType": "bad_data", "error": "parse error"}, "ClientError"),
    ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "Gaps"),
    ({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {}, "values": []}, {"metric": {}, "values": []}]}}, "ClientError"),
    ({"status": "success", "data": {"resultType": "vector", "result": []}}, "MalformedResponse"),
    ({"status": "success", "data": {"resultType": "matrix",
                                    "result": [{"metric": {}, "values": [[1, "x"]]}]}},
     "MalformedResponse"),
])
async def test_prometheus_faults(service: FakeService, http: dict[str, Any], body: Any,
                                 reason: str) -> None:
    service.on("/api/v1/query_range", ok(body))
    with pytest.raises(ProviderError) as e:
        await prom(service, http).fetch(GRID, NOW)
    assert e.value.reason == reason


async def test_prometheus_wrong_units_and_nan_gaps(service: FakeService,
                                                   http: dict[str, Any]) -> None:
    pts = [(GRID.start_epoch + 900 * i, "NaN" if 10 <= i < 30 else "1000") for i in range(96)]
    service.on("/api/v1/query_range", ok(prom_body(pts)))
    sig = await prom(service, http).fetch(GRID, NOW)
    assert np.isnan(sig.values["solar"][10:30]).all()
    with pytest.raises(ProviderError) as e:
        await prom(service, http, {"solar": "g/kWh"}).fetch(GRID, NOW)
    assert e.value.reason == "WrongUnits"
