"""A GridEvent's status from answers and measurements (the pure builder)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from suandian.api import parse_gridevent
from suandian.k8s.gridstatus import event_status, measured_kw
from suandian.planner.grid import AskAnswer, GridAsk

T0 = datetime(2026, 6, 21, 1, tzinfo=UTC)
SLOT = timedelta(minutes=15)


def event(**spec: Any) -> Any:
    return parse_gridevent({
        "apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
        "metadata": {"name": "peak", "generation": 1},
        "spec": {"type": "Shed", "sites": ["jiangsu"], "start": "2026-06-21T01:00:00Z",
                 "end": "2026-06-21T02:00:00Z", "shed": {"ceilingKW": 0}, **spec}})


def answer(*, accepted: bool = True, shortfall: float = 0.0, start: int = 0) -> AskAnswer:
    ask = GridAsk(key="peak@jiangsu", site=0, start=T0, end=T0 + 4 * SLOT, ceiling_kw=0.0)
    n = 4 - start
    return AskAnswer(ask=ask, window=slice(start, 4), accepted=accepted,
                     asked_kw=np.full(n, 60.0), committed_kw=np.full(n, 60.0 - shortfall),
                     baseline_kw=np.full(n, 60.0), shortfall_kw=shortfall,
                     jobs=("cj/1",), reason="short by 60 kW" if shortfall else "met")


def build(now: datetime, previous: dict[str, Any] | None = None, delivered: float | None = None,
          answers: dict[str, AskAnswer] | None = None, sites: tuple[str, ...] = ("jiangsu",),
          **spec: Any) -> dict[str, Any]:
    return event_status(event(**spec), {"jiangsu": answer()} if answers is None else answers,
                        now=now, slot0=T0, slot=SLOT, known_sites=sites,
                        delivered_kw=delivered, previous=previous or {},
                        job_name=lambda key: {"cj/1": "batch/chunky"}[key])


def condition(status: dict[str, Any], kind: str) -> tuple[str, str]:
    found = next(c for c in status["conditions"] if c["type"] == kind)
    return found["status"], found["reason"]


def test_before_the_window_the_plan_is_accepted_with_the_jobs_it_moved() -> None:
    status = build(T0 - SLOT)
    assert (status["phase"], status["asked"], status["committed"]) == ("Accepted", "≤ 0 kW",
                                                                       "60 kW")
    assert status["affectedJobs"] == ["batch/chunky"] and status["jobsAffected"] == 1
    assert condition(status, "Accepted") == ("True", "Met")
    assert [s["start"] for s in status["slots"]] == [
        "2026-06-21T01:00:00Z", "2026-06-21T01:15:00Z", "2026-06-21T01:30:00Z",
        "2026-06-21T01:45:00Z"]
    assert "deliveredKWh" not in status and "compliance" not in status


def test_the_emissions_effect_is_the_plans_for_the_jobs_it_moves_and_lasts() -> None:
    moved = {"jiangsu": replace(answer(), moved_g={"cj/1": 1200.0, "cj/2": -200.0})}
    first = build(T0 - SLOT, answers=moved)
    assert first["emissionsEffectGrams"] == 1000.0
    # a later round's plan without requests holds the jobs where the event put them
    later = build(T0 - SLOT, previous=first)
    assert later["emissionsEffectGrams"] == 1000.0
    assert "emissionsEffectGrams" not in build(T0 - SLOT)  # nothing moved yet
    declined = {"jiangsu": replace(moved["jiangsu"], accepted=False)}
    assert "emissionsEffectGrams" not in build(T0 - SLOT, answers=declined)


def test_the_cost_effect_is_in_the_tariffs_currency_and_lasts() -> None:
    priced = {"jiangsu": replace(answer(), moved_g={"cj/1": 1200.0},
                                 moved_cost={"cj/1": -180.0}, currency="CNY")}
    first = build(T0 - SLOT, answers=priced)
    assert (first["costEffect"], first["currency"]) == (-180.0, "CNY")
    assert first["effect"] == "+1.2 kgCO2, -180.00 CNY"
    later = build(T0 - SLOT, previous=first)  # moves nothing more
    assert (later["costEffect"], later["currency"], later["effect"]) == (
        -180.0, "CNY", "+1.2 kgCO2, -180.00 CNY")
    unpriced = build(T0 - SLOT, answers={"jiangsu": replace(answer(),
                                                             moved_g={"cj/1": -50.0})})
    assert "costEffect" not in unpriced and unpriced["effect"] == "-50 gCO2"


def test_deadline_misses_are_counted_and_never_go_down() -> None:
    assert build(T0 - SLOT)["deadlineMisses"] == 0
    missed = event_status(event(), {"jiangsu": answer()}, now=T0, slot0=T0, slot=SLOT,
                          known_sites=("jiangsu",), delivered_kw=None, previous={},
                          deadline_misses=2)
    assert missed["deadlineMisses"] == 2
    assert build(T0, previous=missed)["deadlineMisses"] == 2  # a restart knew none


def test_a_shortfall_and_a_decline_say_so() -> None:
    short = build(T0 - SLOT, answers={"jiangsu": answer(shortfall=60.0)}, mandatory=True)
    assert short["committed"] == "60 kW short" and short["shortfallKW"] == 60.0
    assert condition(short, "Accepted") == ("True", "Short")
    declined = build(T0 - SLOT, answers={"jiangsu": answer(accepted=False, shortfall=60.0)})
    assert (declined["phase"], declined["committed"]) == ("Declined", "declined")
    assert condition(declined, "Accepted") == ("False", "Declined")


def test_an_unknown_site_is_admitted_and_flagged() -> None:
    status = build(T0 - SLOT, answers={}, sites=())
    assert status["phase"] == "Pending"
    assert condition(status, "SitesKnown") == ("False", "Unknown")
    assert status["reason"] == "no PowerSite named jiangsu yet: nothing planned"


def test_delivery_counts_each_interval_at_the_rate_measured_at_its_start() -> None:
    first = build(T0, delivered=60.0)
    assert (first["phase"], first["deliveringKW"], first["deliveredKWh"]) == ("Active", 60.0,
                                                                               0.0)
    # down for 30 minutes (a restart): counted at the last rate; then the job came back
    later = build(T0 + 2 * SLOT, previous=first, delivered=0.0,
                  answers={"jiangsu": answer(start=2)})
    assert later["deliveredKWh"] == 30.0 and later["deliveringKW"] == 0.0
    assert [s.get("deliveredKW") for s in later["slots"]] == [60.0, 60.0, None, None]
    assert later["compliance"] == 1.0 and later["delivered"] == "100%"
    done = build(T0 + 5 * SLOT, previous=later, delivered=None, answers={})
    assert done["phase"] == "Completed" and done["deliveredKWh"] == 30.0
    assert "deliveringKW" not in done
    assert [s["deliveredKW"] for s in done["slots"]] == [60.0, 60.0, 0.0, 0.0]
    assert done["compliance"] == 0.5 and done["delivered"] == "50%"


def test_what_a_site_delivers_is_its_baseline_less_what_it_imports() -> None:
    shed = answer()
    assert measured_kw(shed, load_kw=72.0, green_kw=30.0, at=0) == 18.0  # 60 − 42
    assert measured_kw(shed, load_kw=200.0, green_kw=0.0, at=0) == 0.0  # over: none
    surplus = AskAnswer(ask=GridAsk(key="w@s", site=0, start=T0, end=T0 + SLOT,
                                    absorb_kw=100.0), window=slice(0, 1), accepted=True,
                        asked_kw=np.full(1, 100.0), committed_kw=np.full(1, 60.0),
                        baseline_kw=np.zeros(1), shortfall_kw=0.0, jobs=(), reason="")
    assert measured_kw(surplus, load_kw=160.0, green_kw=20.0, at=0) == 100.0  # at most P
    assert measured_kw(surplus, load_kw=50.0, green_kw=20.0, at=0) == 30.0
