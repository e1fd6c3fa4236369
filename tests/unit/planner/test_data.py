"""Data has a distance: a job's data moves with it, in time and in energy."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from suandian.api import parse_computejob
from suandian.config import Settings
from suandian.errors import InvalidSpecError, PlanningError
from suandian.planner import JobDemand, PlanParams, SiteSupply, Snapshot, plan
from suandian.planner.build import JobTerms
from suandian.planner.data import DataLink, DataLinks, parse_links, site_data
from unit.planner.synthetic import NOW, RESOURCES, SLOT, snapshot
from unit.planner.test_properties import instances

H = 48


def _site(name: str, green_kw: float, carbon: float) -> SiteSupply:
    return SiteSupply(name=name, green_p50_kw=np.full(H, green_kw),
                      green_p10_kw=np.full(H, green_kw), carbon_g_per_kwh=np.full(H, carbon),
                      import_limit_kw=np.full(H, 1e9), pue=1.0,
                      capacity=np.full((len(RESOURCES), H), np.inf))


def _job(gb: float, *, hours: int = 2, slack: int = 6, power_w: float = 10_000.0,
         **kw: object) -> JobDemand:
    return JobDemand(key="j", resources=np.array([1.0, 0.0, 0.0]), power_w=power_w,
                     duration=timedelta(hours=hours), earliest_start=NOW,
                     deadline=NOW + timedelta(hours=hours + slack), allowed_sites=(0, 1),
                     data_gb=gb, data_site="east", **kw)  # type: ignore[arg-type]


EAST_WEST = (_site("east", 0.0, 600.0), _site("west", 1e6, 600.0))  # west: all green
NO_MARGIN = PlanParams(safety_margin=timedelta(0))


def test_transfer_time_and_energy_per_pair_of_sites() -> None:
    links = DataLinks(DataLink(10.0, 0.06), {("east", "west"): DataLink(25.0, 0.03)})
    assert links.link("west", "east") == DataLink(25.0, 0.03)  # a link serves both ways
    assert links.link("east", "north") == DataLink(10.0, 0.06)
    assert DataLink(10.0, 0.06).seconds(500) == pytest.approx(400.0)  # 4,000 Gbit at 10
    data = site_data(("east", "west", "north"), links, 9000.0, "east", 2,
                     timedelta(minutes=15), -1, -1)
    # 9,000 GB: 2,880 s at 25 Gbit/s (4 slots of 15 min), 7,200 s at 10 (8 slots)
    assert data.slots.tolist() == [0, 4, 8]
    assert data.first.tolist() == [2, 6, 10]
    assert data.kwh.tolist() == pytest.approx([0.0, 270.0, 540.0])
    assert data.row == 0


def test_the_site_a_job_holds_keeps_its_start_its_transfer_is_under_way() -> None:
    data = site_data(("east", "west"), DataLinks(DataLink(1.0, 0.06)), 3600.0, "east", 0,
                     timedelta(hours=1), 1, 3)
    assert data.slots.tolist() == [0, 8]
    assert data.first.tolist() == [0, 3]


def test_links_are_parsed_and_bad_ones_named() -> None:
    links = parse_links("gansu:yangtze-delta=25Gbps,0.03kWh; a:b=500Mbps",
                        DataLink(10.0, 0.06))
    assert links.link("yangtze-delta", "gansu") == DataLink(25.0, 0.03)
    assert links.link("a", "b") == DataLink(0.5, 0.06)
    for text, says in (("gansu=25Gbps", "site:site"), ("a:a=1Gbps", "two different"),
                       ("a:b=fast", "neither a bandwidth"), ("a:b=0Gbps", "> 0"),
                       ("a:b=1Gbps;b:a=2Gbps", "given twice"),
                       ("a:b=1.2.3Gbps", "neither a bandwidth")):
        with pytest.raises(ValueError, match=says):
            parse_links(text, DataLink(10.0, 0.06))


def test_settings_name_a_bad_link_and_reach_the_planner_defaults() -> None:
    settings = Settings.from_env({"SUANDIAN_DATA_BANDWIDTH_GBPS": "40",
                                  "SUANDIAN_DATA_LINKS": "gansu:ningxia=100Gbps"})
    table = parse_links(settings.data_links, DataLink(settings.data_bandwidth_gbps,
                                                       settings.data_kwh_per_gb))
    assert table.default == DataLink(40.0, 0.06)
    assert table.link("ningxia", "gansu") == DataLink(100.0, 0.06)
    with pytest.raises(InvalidSpecError, match="SUANDIAN_DATA_LINKS"):
        Settings.from_env({"SUANDIAN_DATA_LINKS": "gansu"})
    with pytest.raises(InvalidSpecError, match="SUANDIAN_DATA_BANDWIDTH_GBPS"):
        Settings.from_env({"SUANDIAN_DATA_BANDWIDTH_GBPS": "0"})


def test_big_data_stays_home_when_moving_costs_more_than_it_saves() -> None:
    # 20 kWh at 600 g/kWh: 12 kg to save by running on the west's green power; moving
    # 500 GB costs 30 kWh of network energy, 18 kg at the data site's 600 g/kWh
    d = plan(snapshot(EAST_WEST, [_job(500.0)]), NO_MARGIN).decisions[0]
    assert d.site == "east"
    assert "moves" not in d.reason
    assert d.expected_emissions_g == pytest.approx(12_000.0)


def test_data_moves_when_the_saving_is_larger_than_the_transfer() -> None:
    # 100 GB: 6 kWh, 3.6 kg to save 12; at 1 Gbit/s it takes 800 s: one slot of an hour
    links = PlanParams(safety_margin=timedelta(0),
                       data_links=DataLinks(DataLink(1.0, 0.06)))
    d = plan(snapshot(EAST_WEST, [_job(100.0)]), links).decisions[0]
    assert d.site == "west"
    assert d.start_slot == 1  # it waits for its data
    assert d.expected_emissions_g == pytest.approx(3_600.0)
    assert d.run_now_emissions_g == pytest.approx(12_000.0)  # at home, no transfer
    assert "moves 100 GB from east: +1h, +3.6 kg" in d.reason, d.reason


def test_without_data_the_same_job_moves_at_once() -> None:
    d = plan(snapshot(EAST_WEST, [_job(0.0)]), NO_MARGIN).decisions[0]
    assert (d.site, d.start_slot, d.expected_emissions_g) == ("west", 0, 0.0)


def test_a_site_too_far_for_the_deadline_is_not_used() -> None:
    # 10,000 GB over 1 Gbit/s: 22.2 h; the job may start as late as 6 h from now
    slow = PlanParams(safety_margin=timedelta(0), data_links=DataLinks(DataLink(1.0, 0.0)))
    d = plan(snapshot(EAST_WEST, [_job(10_000.0)]), slow).decisions[0]
    assert d.site == "east"  # free energy in the west, but its data cannot get there
    # an interruptible job the same
    job = dataclasses.replace(_job(10_000.0), interruptible=True)
    assert plan(snapshot(EAST_WEST, [job]), slow).decisions[0].site == "east"


def test_the_transfer_shrinks_the_window_not_the_deadline() -> None:
    # 5 h of transfer, latest start at 6 h: only the start at 5 or 6 h reaches the west
    slow = PlanParams(safety_margin=timedelta(0),
                      data_links=DataLinks(DataLink(8.0 * 4500.0 / 5 / 3600, 0.0)))
    d = plan(snapshot(EAST_WEST, [_job(4500.0)]), slow).decisions[0]
    assert d.site == "west" and d.start_slot == 5
    assert d.planned_start is not None and d.planned_start + timedelta(hours=2) <= (
        NOW + timedelta(hours=8))


def test_data_at_no_allowed_site_that_cannot_arrive_is_read_remotely() -> None:
    # the data lives in the north, 22 h away from both: the job starts (deadline first)
    job = dataclasses.replace(_job(10_000.0), data_site="north")
    slow = PlanParams(safety_margin=timedelta(0), data_links=DataLinks(DataLink(1.0, 0.06)))
    d = plan(snapshot(EAST_WEST, [job]), slow).decisions[0]
    assert d.site is not None and d.start_slot is not None
    assert d.start_slot <= 6
    # 600 kWh counted at the destination's intensity (the north is no site here)
    assert d.expected_emissions_g == pytest.approx(600.0 * 600.0)


def test_a_held_remote_decision_still_stands_as_the_clock_moves() -> None:
    """Planned for the west at 5 h (its data moving since), re-planned at 4 h: the data
    would take 5 h again if it started now, but the decision it holds keeps its start."""
    slow = PlanParams(safety_margin=timedelta(0), move_threshold_g=0.0,
                      move_threshold_share=0.0,
                      data_links=DataLinks(DataLink(8.0 * 4500.0 / 5 / 3600, 0.0)))
    first = plan(snapshot(EAST_WEST, [_job(4500.0)]), slow).decisions[0]
    later = NOW + timedelta(hours=4)
    sites = tuple(dataclasses.replace(s, green_p50_kw=s.green_p50_kw[4:],
                                      green_p10_kw=s.green_p10_kw[4:],
                                      carbon_g_per_kwh=s.carbon_g_per_kwh[4:],
                                      import_limit_kw=s.import_limit_kw[4:],
                                      capacity=s.capacity[:, 4:]) for s in EAST_WEST)
    from suandian.planner import Incumbent

    job = dataclasses.replace(_job(4500.0), earliest_start=later,
                              incumbent=Incumbent(1, first.windows))
    again = plan(Snapshot(now=later, slot=SLOT, resources=RESOURCES, sites=sites,
                          jobs=(job,)), slow).decisions[0]
    assert (again.site, again.planned_start) == ("west", first.planned_start)


def test_a_snapshot_refuses_data_without_a_site() -> None:
    with pytest.raises(PlanningError, match="data_site"):
        snapshot(EAST_WEST, [dataclasses.replace(_job(10.0), data_site="")])


def test_a_computejob_declares_its_data() -> None:
    job = parse_computejob({
        "apiVersion": "suandian.io/v1alpha1", "kind": "ComputeJob",
        "metadata": {"name": "x", "namespace": "d"},
        "spec": {"duration": "1h", "deadline": {"maxDelay": "4h"},
                 "data": {"sizeGB": 500, "site": "yangtze-delta"},
                 "template": {"spec": {"template": {"spec": {"containers": [
                     {"name": "c", "image": "i"}]}}}}}})
    terms = JobTerms.from_computejob(job)
    assert (terms.data_gb, terms.data_site) == (500.0, "yangtze-delta")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances(), st.data())
def test_the_transfer_never_costs_a_deadline(snap: Snapshot, data: st.DataObject) -> None:
    """Whatever data the jobs read, each starts by its latest start, and where it runs
    away from its data (and some allowed site could receive it in time) it starts no
    earlier than its data gets there, unless that is the site it held."""
    names = snap.site_names
    jobs = tuple(dataclasses.replace(
        j, data_gb=data.draw(st.sampled_from([0.0, 200.0, 2000.0, 9000.0])),
        data_site=data.draw(st.sampled_from(names))) for j in snap.jobs)
    links = DataLinks(DataLink(2.0, 0.06))  # 2 Gbit/s: 2,000 GB in 2.2 h
    params = PlanParams(safety_margin=timedelta(minutes=15), data_links=links)
    result = plan(dataclasses.replace(snap, jobs=jobs), params)
    for j in jobs:
        d = result.by_key[j.key]
        n = math.ceil(j.duration / SLOT)
        earliest = max(0, math.ceil((j.earliest_start - NOW) / SLOT))
        latest = math.floor((j.deadline - j.duration - params.safety_margin - NOW) / SLOT)
        if d.site is None:
            assert latest > earliest
            continue
        assert d.start_slot is not None and d.start_slot <= max(latest, earliest), d.reason
        assert len(d.slots) == n
        if j.data_gb <= 0 or d.site == j.data_site or j.policy == "RunNow":
            continue
        if j.incumbent is not None and d.site_index == j.incumbent.site:
            continue  # the site it held: its data has been moving since that decision
        wait = math.ceil(j.data_gb * 8 / 2.0 / SLOT.total_seconds() - 1e-9)
        allowed = j.allowed_sites or range(len(names))
        fixed = j.policy != "Optimize" or latest <= earliest
        bar = earliest if fixed else max(latest, earliest)
        reachable = any(names[s] == j.data_site or earliest + wait <= bar for s in allowed)
        if reachable:
            assert d.start_slot >= earliest + wait, (d.reason, j)


def test_the_operator_plans_on_its_settings_links_and_the_job_s_data() -> None:
    """The links reach the planning service's parameters (and survive the trip to the
    planner process, pickled); a ComputeJob's data reaches its JobDemand."""
    import pickle
    from datetime import UTC, datetime

    from suandian.controllers.clock import LoopClock
    from suandian.controllers.planning import PlanningService
    from suandian.planner.build import job_demand_from

    settings = Settings.from_env({"SUANDIAN_DATA_KWH_PER_GB": "0.01",
                                  "SUANDIAN_DATA_LINKS": "east:west=40Gbps"})
    service = PlanningService(settings, LoopClock(datetime(2026, 6, 1, tzinfo=UTC)),
                              dict, lambda: None)
    links = service.params.data_links
    assert links.link("west", "east") == DataLink(40.0, 0.01)
    assert pickle.loads(pickle.dumps(service.params)) == service.params
    terms = JobTerms(power_w=1000.0, duration=timedelta(hours=1),
                     max_delay=timedelta(hours=4), data_gb=500.0, data_site="east")
    demand = job_demand_from(terms, key="d/x", created=NOW, sites=EAST_WEST)
    assert (demand.data_gb, demand.data_site) == (500.0, "east")
