"""Snapshots built from API objects: resources, power estimates, windows, residency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from suandian.api.validation import parse_computejob, parse_powersite
from suandian.errors import PlanningError
from suandian.planner import JobInput, SiteSignals, estimate_power_w, plan, snapshot_from
from suandian.planner.power import gpu_watts

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def _site(name: str, zone: str) -> dict:
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "PowerSite",
            "metadata": {"name": name, "labels": {"suandian.io/zone": zone}},
            "spec": {"nodeSelector": {"topology.kubernetes.io/region": name},
                     "location": {"latitude": 37.5, "longitude": 105.2},
                     "supply": [{"type": "solar", "capacityKW": 5000}],
                     "grid": {"importLimitKW": 10000, "carbonIntensity": 600}, "pue": 1.2}}


def _job(name: str, **spec: object) -> dict:
    body = {"duration": "2h", "deadline": {"maxDelay": "10h"},
            "template": {"spec": {"parallelism": 4, "template": {"spec": {"containers": [{
                "name": "c", "image": "x",
                "resources": {"requests": {"cpu": "8", "memory": "32Gi",
                                           "nvidia.com/gpu": "1"}}}],
                "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}}}}}}
    body.update(spec)
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
            "metadata": {"name": name, "namespace": "ml"}, "spec": body}


def _signals(green: float) -> SiteSignals:
    return SiteSignals(green_p50_kw=np.full(96, green), green_p10_kw=np.full(96, green / 2),
                       carbon_g_per_kwh=np.full(96, 600.0))


def _snapshot(*jobs: dict) -> object:
    sites = [parse_powersite(_site("east", "east")), parse_powersite(_site("west", "west"))]
    return snapshot_from(
        now=NOW, slot=SLOT, sites=sites,
        signals={"east": _signals(0.0), "west": _signals(5000.0)},
        jobs=[JobInput(parse_computejob(j, created=NOW), key=f"ml/{j['metadata']['name']}",
                       created=NOW) for j in jobs],
        capacity={"east": {"cpu": 1000.0}},
    )


def test_resources_power_and_window_come_from_the_spec() -> None:
    snap = _snapshot(_job("a"))
    j = snap.jobs[0]  # type: ignore[attr-defined]
    assert list(j.resources) == pytest.approx([32.0, 128.0, 4.0])
    assert list(j.pod_resources) == pytest.approx([8.0, 32.0, 1.0])
    assert j.gpu_model == "NVIDIA-H100-80GB-HBM3"
    assert j.power_w == pytest.approx(4 * 32 + 0.4 * 128 + 4 * 700)
    assert j.deadline - j.earliest_start == timedelta(hours=12)
    east = snap.sites[0]  # type: ignore[attr-defined]
    assert east.capacity[0, 0] == 1000.0 and np.isinf(east.capacity[1, 0])
    assert east.import_limit_kw[0] == 10000.0 and east.pue == 1.2


def test_explicit_power_wins_and_sites_keep_the_users_order() -> None:
    snap = _snapshot(_job("a", power={"watts": 5000}, sites=["west", "east"]),
                     _job("b", siteSelector={"matchLabels": {"suandian.io/zone": "east"}}),
                     _job("c", sites=["nowhere"]))
    a, b, c = snap.jobs  # type: ignore[attr-defined]
    assert a.power_w == 5000 and a.allowed_sites == (1, 0)
    assert b.allowed_sites == (0,)
    assert c.allowed_sites == ()
    result = plan(snap)  # type: ignore[arg-type]
    assert result.by_key["ml/a"].site == "west"
    assert result.by_key["ml/b"].site == "east"
    assert result.by_key["ml/c"].site is None


def test_power_estimate_per_resource() -> None:
    assert estimate_power_w({"cpu": 10, "memory": 100}) == pytest.approx(80.0)
    assert estimate_power_w({"nvidia.com/gpu": 2}, "Tesla-T4") == pytest.approx(140.0)
    assert estimate_power_w({"nvidia.com/gpu": 1}, None) == pytest.approx(400.0)
    assert gpu_watts("NVIDIA-L40S") == 350.0  # longest key first: not "l40"


def test_missing_signals_are_an_error() -> None:
    with pytest.raises(PlanningError, match="no forecast arrays"):
        snapshot_from(now=NOW, slot=SLOT, sites=[parse_powersite(_site("east", "east"))],
                      signals={}, jobs=[])
