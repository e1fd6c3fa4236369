"""The fallback chain end to end: a PowerSite whose carbon forecast comes from a (local)
Electricity Maps that works, fails, stays down past maxStaleness, and recovers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from suandian.api import parse_powersite
from suandian.forecast import ForecastKeeper, TimeGrid
from suandian.forecast.providers import Credentials, RetryPolicy

from .conftest import FakeService, hang, ok, status

T0 = datetime(2026, 6, 1, 3, 5, tzinfo=UTC)
SITES = Path(__file__).resolve().parents[3] / "examples" / "powersites"


def _site(url: str) -> Any:
    doc = yaml.safe_load((SITES / "ningxia.yaml").read_text())
    doc["spec"]["forecast"]["maxStaleness"] = "3h"
    doc["spec"]["forecast"]["carbon"] = {
        "provider": "electricityMaps",
        "electricityMaps": {"url": url + "/v3", "zone": "CN-NW",
                            "tokenSecretRef": {"name": "em", "key": "token"}}}
    return parse_powersite(doc)


def _body(now: datetime) -> dict[str, Any]:
    start = TimeGrid.covering(now).start
    return {"zone": "CN-NW", "updatedAt": now.isoformat(), "forecast": [
        {"datetime": (start + timedelta(hours=h)).isoformat(), "carbonIntensity": 600 - h}
        for h in range(72)]}


async def test_provider_up_down_stale_and_back(service: FakeService, http: dict[str, Any]
                                               ) -> None:
    site = _site(service.url)
    keeper = ForecastKeeper.for_site(
        site, credentials=Credentials({"em": {"token": "t"}}),
        policy=RetryPolicy(attempts=2, timeout_s=0.2), http=http)
    path = "/v3/carbon-intensity/forecast"

    service.on(path, ok(_body(T0)))
    fc = await keeper.refresh(T0)
    assert fc.source == "builtin+electricityMaps"
    assert fc.carbon_g_per_kwh[0] == pytest.approx(600.0)
    assert fc.green_total_kw.sum() > 0
    assert keeper.health(T0).conditions()[0]["status"] == "True"

    t1 = T0 + timedelta(hours=1)
    service.on(path, status(503))
    kept = await keeper.refresh(t1)
    h = keeper.health(t1)
    assert kept.source == "lastGood" and h.ready and h.degraded and h.reason == "ServerError"
    np.testing.assert_array_equal(kept.carbon_g_per_kwh[:188], fc.carbon_g_per_kwh[4:])

    t2 = T0 + timedelta(hours=2)
    service.on(path, hang)
    kept = await keeper.refresh(t2)
    assert kept.source == "lastGood" and keeper.health(t2).reason == "Timeout"

    t4 = T0 + timedelta(hours=4)
    service.on(path, status(401))
    cons = await keeper.refresh(t4)
    h = keeper.health(t4)
    assert cons.source == "conservative" and not h.ready and h.reason == "Unauthorized"
    assert cons.green_supply_kw.sum() == 0.0
    assert np.all(cons.carbon_g_per_kwh == 642.3)

    t5 = T0 + timedelta(hours=5)
    service.on(path, ok(_body(t5)))
    back = await keeper.refresh(t5)
    assert back.source == "builtin+electricityMaps" and keeper.health(t5).reason == "ForecastFresh"
