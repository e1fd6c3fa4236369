"""Grid carbon-intensity services: Carbon Aware SDK, Electricity Maps v3, WattTime v3.

Each speaks its service's real request and response shapes (checked against their
public docs and clients):

* Carbon Aware SDK WebAPI ``GET /emissions/forecasts/current?location=...&dataStartAt=
  &dataEndAt=`` -> ``[{location, generatedAt, forecastData: [{location, timestamp,
  duration (minutes), value (gCO2/kWh)}], ...}]``.
* Electricity Maps ``GET /v3/carbon-intensity/forecast?zone=...`` with header
  ``auth-token`` -> ``{zone, forecast: [{carbonIntensity, datetime}], updatedAt}``
  (hourly, gCO2eq/kWh).
* WattTime ``GET /login`` (HTTP basic auth) -> ``{token}`` (valid 30 minutes), then
  ``GET /v3/forecast?region=...&signal_type=co2_moer`` with ``Authorization: Bearer``
  -> ``{data: [{point_time, value}], meta: {region, signal_type, units
  ("lbs_co2_per_mwh"), data_point_period_seconds, generated_at}}``. MOER is the
  *marginal* rate; Suandian uses it as the grid intensity the site would cause.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from suandian.api.powersite import (
    CarbonAwareSdkForecast,
    ElectricityMapsForecast,
    WattTimeForecast,
)
from suandian.errors import ProviderAuthError, ProviderResponseError
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import (
    Credentials,
    HttpClient,
    RetryPolicy,
    Signals,
    convert_units,
    parse_instant,
)
from suandian.forecast.resample import resample

__all__ = ["CarbonAwareSdkProvider", "ElectricityMapsProvider", "WattTimeProvider",
           "carbon_signals"]

CARBON = "carbonIntensity"
DEFAULT_MAX_AGE = timedelta(hours=6)
_SHAPE_ERRORS = (KeyError, TypeError, IndexError, AttributeError, ValueError, OverflowError)
"""What indexing, ``float()`` and ``.get()`` raise on JSON of an unexpected shape."""
IMPLAUSIBLY_LOW = 1.0
"""No grid averages under 1 gCO2/kWh: all values below it means kg/kWh was sent."""


def carbon_signals(provider: str, grid: TimeGrid, now: datetime, times: Sequence[datetime],
                   values: Sequence[Any], durations_s: Sequence[float] | float | None,
                   generated_at: datetime | None, max_age: timedelta) -> Signals:
    """Checked carbon-intensity points -> ``Signals`` on ``grid``."""
    if not times:
        raise ProviderResponseError(provider, "Gaps", "the forecast has no data points")
    try:
        vals = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ProviderResponseError(provider, "MalformedResponse", f"bad value: {exc}") from exc
    finite = vals[np.isfinite(vals)]
    if finite.size and np.all(finite < IMPLAUSIBLY_LOW):
        raise ProviderResponseError(
            provider, "WrongUnits", f"values up to {finite.max():.3g}: looks like kg/kWh")
    if np.any(finite < 0) or np.any(finite > 2000):
        raise ProviderResponseError(
            provider, "OutOfRange", "carbon intensity outside 0..2000 gCO2/kWh")
    if generated_at is not None and now - generated_at > max_age:
        raise ProviderResponseError(
            provider, "Stale", f"forecast generated {now - generated_at} ago")
    starts = np.array([t.timestamp() for t in times])
    durs = None if durations_s is None else np.asarray(durations_s, dtype=np.float64)
    if durs is not None and not np.all(durs > 0):
        raise ProviderResponseError(provider, "MalformedResponse", "non-positive durations")
    try:
        on_grid, _ = resample(starts, vals, grid, "rate", durations=durs)
    except ValueError as exc:
        raise ProviderResponseError(provider, "MalformedResponse", str(exc)) from exc
    return Signals(provider, grid, {CARBON: on_grid}, generated_at=generated_at)


def _expect(provider: str, cond: bool, what: str) -> None:
    if not cond:
        raise ProviderResponseError(provider, "MalformedResponse", what)


@dataclass
class CarbonAwareSdkProvider:
    spec: CarbonAwareSdkForecast
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    http: dict[str, Any] = field(default_factory=dict)
    max_age: timedelta = DEFAULT_MAX_AGE
    name: str = "carbonAwareSdk"

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        url = str(self.spec.url).rstrip("/") + "/emissions/forecasts/current"
        params = {"location": self.spec.location,
                  "dataStartAt": grid.start.isoformat().replace("+00:00", "Z"),
                  "dataEndAt": grid.end.isoformat().replace("+00:00", "Z")}
        async with HttpClient(self.name, self.policy, **self.http) as client:
            body = await client.get_json(url, params=params)
        return self.parse(body, grid, now)

    def parse(self, body: Any, grid: TimeGrid, now: datetime) -> Signals:
        """The WebAPI's JSON answer as ``Signals`` (``ProviderResponseError`` if unusable)."""
        try:
            _expect(self.name, isinstance(body, list) and len(body) > 0,
                    "expected a non-empty JSON array of forecasts")
            fc = body[0]
            points = fc["forecastData"]
            _expect(self.name, isinstance(points, list), "forecastData is not a list")
            times = [parse_instant(self.name, p["timestamp"]) for p in points]
            values = [p["value"] for p in points]
            durations = [float(p.get("duration") or 0) * 60.0 for p in points]
            gen = fc.get("generatedAt")
            generated = parse_instant(self.name, gen) if gen else None
        except _SHAPE_ERRORS as exc:
            raise ProviderResponseError(
                self.name, "MalformedResponse", f"bad field {exc}") from exc
        durs: list[float] | None = durations if all(d > 0 for d in durations) else None
        return carbon_signals(self.name, grid, now, times, values, durs, generated,
                              self.max_age)


@dataclass
class ElectricityMapsProvider:
    spec: ElectricityMapsForecast
    credentials: Credentials
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    http: dict[str, Any] = field(default_factory=dict)
    max_age: timedelta = DEFAULT_MAX_AGE
    name: str = "electricityMaps"

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        token = self.credentials.get(self.name, self.spec.token_secret_ref)
        url = str(self.spec.url).rstrip("/") + "/carbon-intensity/forecast"
        async with HttpClient(self.name, self.policy, **self.http) as client:
            body = await client.get_json(url, params={"zone": self.spec.zone},
                                         headers={"auth-token": token.get_secret_value()})
        return self.parse(body, grid, now)

    def parse(self, body: Any, grid: TimeGrid, now: datetime) -> Signals:
        """The forecast JSON answer as ``Signals`` (``ProviderResponseError`` if unusable)."""
        try:
            _expect(self.name, isinstance(body, dict), "expected a JSON object")
            points = body["forecast"]
            _expect(self.name, isinstance(points, list), "forecast is not a list")
            zone = body.get("zone")
            _expect(self.name, zone in (None, self.spec.zone),
                    f"answer is for zone {zone!r}, not {self.spec.zone!r}")
            times = [parse_instant(self.name, p["datetime"]) for p in points]
            values = [p["carbonIntensity"] for p in points]
            upd = body.get("updatedAt")
            generated = parse_instant(self.name, upd) if upd else None
        except _SHAPE_ERRORS as exc:
            raise ProviderResponseError(
                self.name, "MalformedResponse", f"bad field {exc}") from exc
        return carbon_signals(self.name, grid, now, times, values, None, generated,
                              self.max_age)


@dataclass
class WattTimeProvider:
    spec: WattTimeForecast
    credentials: Credentials
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    http: dict[str, Any] = field(default_factory=dict)
    max_age: timedelta = DEFAULT_MAX_AGE
    name: str = "wattTime"
    token_lifetime: timedelta = timedelta(minutes=25)
    _token: str | None = field(default=None, repr=False)
    _token_at: datetime | None = field(default=None, repr=False)

    async def _login(self, client: HttpClient, now: datetime) -> str:
        if self._token and self._token_at and now - self._token_at < self.token_lifetime:
            return self._token
        user = self.credentials.get(self.name, self.spec.username_secret_ref)
        password = self.credentials.get(self.name, self.spec.password_secret_ref)
        base = str(self.spec.url).rstrip("/")
        pair = f"{user.get_secret_value()}:{password.get_secret_value()}".encode()
        basic = "Basic " + base64.b64encode(pair).decode("ascii")
        body = await client.get_json(base + "/login", headers={"Authorization": basic})
        if not isinstance(body, dict) or not isinstance(body.get("token"), str):
            raise ProviderResponseError(self.name, "MalformedResponse", "login gave no token")
        self._token, self._token_at = body["token"], now
        return self._token

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        base = str(self.spec.url).rstrip("/")
        params = {"region": self.spec.region, "signal_type": "co2_moer"}
        async with HttpClient(self.name, self.policy, **self.http) as client:
            token = await self._login(client, now)
            try:
                body = await client.get_json(base + "/v3/forecast", params=params,
                                             headers={"Authorization": f"Bearer {token}"})
            except ProviderAuthError:
                self._token = None  # expired early: log in again, once
                token = await self._login(client, now)
                body = await client.get_json(base + "/v3/forecast", params=params,
                                             headers={"Authorization": f"Bearer {token}"})
        return self.parse(body, grid, now)

    def parse(self, body: Any, grid: TimeGrid, now: datetime) -> Signals:
        """The ``/v3/forecast`` JSON answer as ``Signals`` (``ProviderResponseError`` if
        unusable)."""
        try:
            _expect(self.name, isinstance(body, dict), "expected a JSON object")
            meta, data = body["meta"], body["data"]
            _expect(self.name, isinstance(data, list), "data is not a list")
            units = str(meta.get("units", ""))
            region = meta.get("region")
            _expect(self.name, region in (None, self.spec.region),
                    f"answer is for region {region!r}, not {self.spec.region!r}")
            period = float(meta.get("data_point_period_seconds") or 300)
            times = [parse_instant(self.name, p["point_time"]) for p in data]
            raw = np.array([np.nan if p["value"] is None else float(p["value"]) for p in data])
            gen = meta.get("generated_at")
            generated = parse_instant(self.name, gen) if gen else None
        except _SHAPE_ERRORS as exc:
            raise ProviderResponseError(
                self.name, "MalformedResponse", f"bad field {exc}") from exc
        if not period > 0:
            raise ProviderResponseError(self.name, "MalformedResponse",
                                        f"data_point_period_seconds {period} is not positive")
        values = convert_units(self.name, CARBON, raw, units)
        return carbon_signals(self.name, grid, now, times, list(values), period, generated,
                              self.max_age)
