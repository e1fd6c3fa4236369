"""The plan's decisions as the operator and the simulator read them: where, when, the
figures, the reason, and the nodes preferred for each job's pods."""

from __future__ import annotations

from datetime import datetime

import numpy as np

from suandian.planner.choose import Choice, Figures
from suandian.planner.model import JobDecision, PlanParams, Snapshot
from suandian.planner.placement import rank_nodes
from suandian.planner.reasons import SourceMeans, explain, format_grams
from suandian.planner.terms import Terms

__all__ = ["decided", "node_preferences", "undecided"]


def undecided(snap: Snapshot, t: Terms) -> JobDecision:
    if t.demand.allowed_sites == ():
        why = "no site matches its sites and siteSelector"
    elif t.earliest >= snap.slots:
        why = "its earliest start is beyond the forecast horizon"
    else:
        why = "no allowed site has room or grid import for it"

    return JobDecision(
        key=t.demand.key, site=None, site_index=None, start_slot=None, planned_start=None,
        latest_start=t.latest_start, slots=(), windows=(), start_now=False,
        node_preferences=(), expected_emissions_g=0.0, run_now_emissions_g=0.0,
        expected_green_fraction=0.0, energy_kwh=t.demand.power_w / 1000.0
        * t.demand.duration.total_seconds() / 3600.0,
        reason=f"not placed yet: {why}; re-planned each round, starts by "
               f"{t.latest_start:%Y-%m-%d %H:%M} UTC",
    )


def decided(
    snap: Snapshot, t: Terms, site: int, slots: np.ndarray, forced: bool, over: bool,
    figures: Figures,
    prefs: tuple[tuple[str, int], ...], times: list[datetime], sources: SourceMeans,
) -> JobDecision:
    exp_g, exp_gf, now_g, now_gf, q, home = figures
    listed = slots.tolist()
    start = listed[0]
    windows = _windows(listed, times)
    reason = explain(snap, t.demand, site, slots, start - t.earliest, forced, over,
                     exp_gf, now_gf, now_g - exp_g, t.latest_start, home, sources=sources,
                     listed=listed)
    if t.data is not None and t.data.kwh[site] + t.data.slots[site] > 0:
        reason += _moved_words(snap, t, site, start)
    return JobDecision(
        key=t.demand.key, site=snap.site_names[site], site_index=site, start_slot=start,
        planned_start=times[start], latest_start=t.latest_start,
        slots=tuple(listed), windows=windows, start_now=start == 0,
        node_preferences=prefs, expected_emissions_g=exp_g, run_now_emissions_g=now_g,
        expected_green_fraction=exp_gf, energy_kwh=q * len(listed) * snap.slot_hours,
        reason=reason, forced=forced, oversubscribed=over,
    )


def _moved_words(snap: Snapshot, t: Terms, site: int, start: int) -> str:
    """``; moves 500 GB from gansu: +7 min, +1.7 kg`` (the transfer's time and
    grams, at the data site's intensity in the start slot as the cost counts them)."""
    assert t.data is not None
    row = t.data.row if t.data.row >= 0 else site
    carbon = np.asarray(snap.sites[row].carbon_g_per_kwh, dtype=float)
    at = float(carbon[start]) if start < carbon.size else float(carbon.mean())
    seconds = int(t.data.slots[site]) * snap.slot.total_seconds()
    return (f"; moves {t.demand.data_gb:g} GB from {t.demand.data_site}: "
            f"+{_duration_words(seconds)}, +{format_grams(float(t.data.kwh[site]) * at, '')}")


def _duration_words(seconds: float) -> str:
    if seconds < 3600:
        return f"{round(seconds / 60)} min"
    hours = seconds / 3600
    return f"{hours:.0f}h" if hours == int(hours) or hours >= 10 else f"{hours:.1f}h"


def _windows(slots: list[int], times: list[datetime]
             ) -> tuple[tuple[datetime, datetime], ...]:
    """Contiguous runs of slots as (start, end) times (``times[k]``: start of slot k)."""
    if not slots:
        return ()
    if slots[-1] - slots[0] == len(slots) - 1:
        return ((times[slots[0]], times[slots[-1] + 1]),)
    out = []
    first = prev = slots[0]
    for k in slots[1:]:
        if k != prev + 1:
            out.append((times[first], times[prev + 1]))
            first = k
        prev = k
    out.append((times[first], times[prev + 1]))
    return tuple(out)


def node_preferences(
    snap: Snapshot, params: PlanParams, terms: list[Terms],
    chosen: dict[int, Choice],
) -> dict[int, tuple[tuple[str, int], ...]]:
    """Rank each site's nodes for the jobs placed there, one vectorised call per site."""
    if not snap.nodes or not terms or params.node_preferences <= 0:
        return {}
    by_site: dict[int, list[int]] = {}
    for index, (site, _slots, _f, _o) in chosen.items():
        if site is not None:
            by_site.setdefault(site, []).append(index)
    nodes_of: dict[int, list[int]] = {}
    for m, node in enumerate(snap.nodes):
        nodes_of.setdefault(node.site, []).append(m)
    out: dict[int, tuple[tuple[str, int], ...]] = {}
    gpu_col = [r for r, name in enumerate(snap.resources) if name.endswith("/gpu")]
    # rank each distinct pod shape once per site: shapes are found once for all jobs
    pods = np.array([t.demand.resources if t.demand.pod_resources is None
                     else t.demand.pod_resources for t in terms], dtype=float)
    shapes, shape_of = np.unique(pods, axis=0, return_inverse=True)
    shape_of = shape_of.ravel()
    wants_gpu = shapes[:, gpu_col].sum(axis=1) > 0 if gpu_col else np.zeros(len(shapes), bool)
    for site, jobs in by_site.items():
        limit = params.node_preference_site_limit
        members = [snap.nodes[m] for m in nodes_of.get(site, [])][:limit]
        present, which = np.unique(shape_of[jobs], return_inverse=True)
        ranked = rank_nodes(members, shapes[present], wants_gpu[present],
                            params.node_preferences)
        for j, w in zip(jobs, which.ravel().tolist(), strict=True):
            out[j] = ranked[w]
    return out
