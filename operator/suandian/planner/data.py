"""Data has a distance: what moving a job away from the data it reads costs.

A job may declare the data it reads (``JobDemand.data_gb`` living at the site named
``JobDemand.data_site``). Running it at another site means moving that data first, over
the link between the two sites (:class:`DataLinks`: a bandwidth and an energy per GB,
defaults for every pair and overrides for some). For each site ``s`` a job may use:

- time: ``transfer_s = GB · 8 / Gbit/s``; the earliest start at ``s`` is the job's
  earliest start plus ``ceil(transfer_s / slot)`` slots; its latest start is unchanged
  (the deadline still holds), so the window at ``s`` shrinks, and a site where the
  transfer cannot finish by the latest start is not offered. The site the job already
  holds keeps its start: its transfer was under way since that decision was made.
- energy: ``GB · kWh/GB`` of network energy, counted at the grid intensity of the data's
  site in the job's start slot (the destination's when the data lives at no known site):
  an approximation, since the routers along the path draw from the grids they cross.

Same site: no transfer. A job whose data no allowed site can receive before its latest
start is planned as if its data were at hand (it must start, and will read its data
remotely): the transfer energy is still counted. Jobs without data cost nothing here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from suandian.errors import PlanningError
from suandian.links import DEFAULT_GBPS, DEFAULT_KWH_PER_GB, parse_link_text

__all__ = ["DEFAULT_GBPS", "DEFAULT_KWH_PER_GB", "DataLink", "DataLinks", "SiteData",
           "parse_links", "site_data"]



@dataclass(frozen=True)
class DataLink:
    """One link between two sites: sustained bandwidth (Gbit/s) and energy per GB (kWh)."""

    gbps: float
    kwh_per_gb: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.gbps) and self.gbps > 0):
            raise PlanningError(f"a data link's bandwidth must be > 0 Gbit/s, got {self.gbps}")
        if not (math.isfinite(self.kwh_per_gb) and self.kwh_per_gb >= 0):
            raise PlanningError("a data link's energy must be >= 0 kWh/GB, got "
                                f"{self.kwh_per_gb}")

    def seconds(self, gb: float) -> float:
        """Transfer time of ``gb`` gigabytes (10^9 bytes), seconds."""
        return gb * 8.0 / self.gbps


@dataclass(frozen=True)
class DataLinks:
    """The links between sites: ``default`` for every pair, ``pairs`` overriding some
    (keyed by a sorted pair of site names: a link serves both ways)."""

    default: DataLink = DataLink(DEFAULT_GBPS, DEFAULT_KWH_PER_GB)
    pairs: Mapping[tuple[str, str], DataLink] = field(default_factory=dict)

    def link(self, a: str, b: str) -> DataLink:
        """The link between sites ``a`` and ``b`` (either order)."""
        key = (a, b) if a <= b else (b, a)
        return self.pairs.get(key, self.default)


def parse_links(text: str, default: DataLink) -> DataLinks:
    """``a:b=25Gbps,0.03kWh;c:d=1Gbps`` (:func:`suandian.links.parse_link_text`;
    a figure left out is the default's). Raises ValueError naming the bad entry."""
    return DataLinks(default, {
        key: DataLink(default.gbps if gbps is None else gbps,
                      default.kwh_per_gb if kwh is None else kwh)
        for key, (gbps, kwh) in parse_link_text(text).items()})


@dataclass(frozen=True, slots=True)
class SiteData:
    """A job's data as the planner sees it in one round, per snapshot site index:
    ``first[s]`` the earliest start slot at ``s`` once its data is there, ``kwh[s]`` the
    transfer's energy, ``row`` the data's site (-1: at no site of the snapshot)."""

    first: np.ndarray
    kwh: np.ndarray
    row: int
    slots: np.ndarray  # transfer time in slots per site (0 where the data is)


def site_data(site_names: tuple[str, ...], links: DataLinks, gb: float, home: str,
              earliest: int, slot: timedelta, held_site: int, held_start: int
              ) -> SiteData:
    """The transfer to every site of a job reading ``gb`` from ``home`` (a site name)."""
    slot_s = slot.total_seconds()
    n = len(site_names)
    slots = np.zeros(n, dtype=np.int64)
    kwh = np.zeros(n)
    for s, name in enumerate(site_names):
        if name == home:
            continue
        link = links.link(home, name)
        slots[s] = math.ceil(link.seconds(gb) / slot_s - 1e-9)
        kwh[s] = gb * link.kwh_per_gb
    first = earliest + slots
    if 0 <= held_site < n and held_start >= earliest:  # its transfer began when decided
        first[held_site] = min(int(first[held_site]), held_start)
    row = site_names.index(home) if home in site_names else -1
    return SiteData(first, kwh, row, slots)
