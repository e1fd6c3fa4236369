"""Prometheus ``query_range``: for sites whose microgrid or SCADA exports green power.

``GET /api/v1/query_range?query=&start=&end=&step=`` -> ``{status: "success", data:
{resultType: "matrix", result: [{metric, values: [[unix_seconds, "value"], ...]}]}}``;
errors come as ``{status: "error", errorType, error}``. Each query must give one series
(wrap it in ``sum(...)``); values are in Prometheus base units (W) unless ``units``
says otherwise. The query is evaluated over the forecast horizon, so it must yield
future values: a forecast exporter's series, or day-ahead persistence (``offset 1d``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from suandian.api.powersite import PrometheusForecast
from suandian.errors import ProviderResponseError
from suandian.forecast.grid import TimeGrid
from suandian.forecast.providers.base import (
    HttpClient,
    RetryPolicy,
    Signals,
    convert_units,
    signal_dimension,
)
from suandian.forecast.resample import Kind, resample

__all__ = ["PrometheusProvider"]


@dataclass
class PrometheusProvider:
    spec: PrometheusForecast
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    http: dict[str, Any] = field(default_factory=dict)
    name: str = "prometheus"

    def _unit(self, signal: str) -> str:
        default = {"power": "W", "carbon": "g/kWh", "price": "CNY/kWh"}
        return self.spec.units.get(signal, default[signal_dimension(signal)])

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals:
        url = str(self.spec.url).rstrip("/") + "/api/v1/query_range"
        out: dict[str, np.ndarray] = {}
        async with HttpClient(self.name, self.policy, **self.http) as client:
            for signal, query in self.spec.queries.items():
                params = {"query": query, "start": str(grid.start_epoch),
                          "end": str(grid.start_epoch + grid.slot_seconds * (grid.slots - 1)),
                          "step": f"{grid.slot_seconds}s"}
                body = await client.get_json(url, params=params)
                times, values = self._series(signal, body)
                kind: Kind = "rate" if signal_dimension(signal) != "power" else "energy"
                try:
                    on_grid, _ = resample(times, values, grid, kind,
                                          durations=float(grid.slot_seconds))
                except ValueError as exc:
                    raise ProviderResponseError(self.name, "MalformedResponse", str(exc)) from exc
                out[signal] = convert_units(self.name, signal, on_grid, self._unit(signal))
        return Signals(self.name, grid, out, generated_at=now)

    def _series(self, signal: str, body: Any) -> tuple[np.ndarray, np.ndarray]:
        try:
            if body.get("status") != "success":
                raise ProviderResponseError(
                    self.name, "ClientError",
                    f"{signal}: {body.get('errorType')}: {body.get('error')}")
            result = body["data"]["result"]
            if body["data"].get("resultType") != "matrix":
                raise ProviderResponseError(self.name, "MalformedResponse",
                                            f"{signal}: expected a matrix")
            if len(result) != 1:
                raise ProviderResponseError(
                    self.name, "Gaps" if not result else "ClientError",
                    f"{signal}: query gave {len(result)} series; wrap it in sum(...)")
            pairs = result[0]["values"]
            times = np.array([float(t) for t, _ in pairs])
            values = np.array([float(v) for _, v in pairs])  # "NaN" parses as a gap
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderResponseError(
                self.name, "MalformedResponse", f"{signal}: bad field {exc}") from exc
        return times, values
