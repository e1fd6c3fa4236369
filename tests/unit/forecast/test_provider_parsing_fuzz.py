"""Whatever JSON a service sends, parsing ends in Signals or a ProviderError: never another
exception that would escape the keeper."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from suandian.api.powersite import (
    CarbonAwareSdkForecast,
    ElectricityMapsForecast,
    PrometheusForecast,
    SecretKeyRef,
    WattTimeForecast,
)
from suandian.errors import ProviderError
from suandian.forecast import TimeGrid
from suandian.forecast.providers import (
    CarbonAwareSdkProvider,
    Credentials,
    ElectricityMapsProvider,
    PrometheusProvider,
    WattTimeProvider,
)

NOW = datetime(2026, 6, 1, 3, tzinfo=UTC)
GRID = TimeGrid.covering(NOW, slots=16)
REF = SecretKeyRef(name="s", key="k")

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=True) | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=20,
)
stamps = st.one_of(
    st.integers(-48, 48).map(lambda h: (NOW + timedelta(minutes=30 * h)).isoformat()),
    st.text(max_size=10), st.none(), st.integers())
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none(), st.text(max_size=4),
                   st.integers(-10**6, 10**6))

PROVIDERS = {
    "casdk": CarbonAwareSdkProvider(CarbonAwareSdkForecast(url="http://x", location="l")),
    "em": ElectricityMapsProvider(
        ElectricityMapsForecast(zone="CN", token_secret_ref=REF), Credentials()),
    "wt": WattTimeProvider(WattTimeForecast(region="R", username_secret_ref=REF,
                                            password_secret_ref=REF), Credentials()),
}
PROM = PrometheusProvider(PrometheusForecast(url="http://x", queries={"solar": "q"}))


def _check(parse: Any, body: Any) -> None:
    try:
        sig = parse(body, GRID, NOW)
    except ProviderError:
        return
    for arr in sig.values.values():
        assert arr.shape == (GRID.slots,)
        finite = arr[np.isfinite(arr)]
        assert np.all((finite >= 0) & (finite <= 2000))


@settings(max_examples=80, deadline=None)
@given(body=json_values, which=st.sampled_from(sorted(PROVIDERS)))
def test_any_json_shape(body: Any, which: str) -> None:
    _check(PROVIDERS[which].parse, body)


@settings(max_examples=80, deadline=None)
@given(points=st.lists(st.tuples(stamps, values, values), max_size=12),
       generated=stamps, units=st.sampled_from(["lbs_co2_per_mwh", "g/kWh", "percent", ""]))
def test_right_shape_wrong_contents(points: list[tuple[Any, Any, Any]], generated: Any,
                                    units: str) -> None:
    _check(PROVIDERS["em"].parse, {"zone": "CN", "updatedAt": generated, "forecast": [
        {"datetime": t, "carbonIntensity": v} for t, v, _ in points]})
    _check(PROVIDERS["casdk"].parse, [{"generatedAt": generated, "forecastData": [
        {"timestamp": t, "value": v, "duration": d} for t, v, d in points]}])
    _check(PROVIDERS["wt"].parse, {
        "meta": {"units": units, "region": "R", "generated_at": generated,
                 "data_point_period_seconds": points[0][2] if points else 300},
        "data": [{"point_time": t, "value": v} for t, v, _ in points]})


@settings(max_examples=60, deadline=None)
@given(body=json_values)
def test_prometheus_any_json(body: Any) -> None:
    try:
        PROM._series("solar", body)
    except ProviderError:
        return
