"""The ledger per day, namespace and site, read from Prometheus, and its reconciliation.

:func:`read_ledger` turns the counters of :mod:`suandian.metrics.ledger` into one
:class:`Row` per day, namespace and site (and a period total per namespace and site);
:func:`reconcile` checks that the ledger summed over namespaces matches the site
counters the operator keeps independently (``suandian_energy_joules_total``,
``suandian_emissions_grams_total``) within 1%, day by day: a job entered in one and not
the other, or split differently, shows up there.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from suandian.metrics.labels import JOULES_PER_KWH, LEDGER_SOURCES, PROVENANCES
from suandian.report.counters import daily
from suandian.report.days import Day
from suandian.report.prometheus import Labels, Prometheus

TOLERANCE = 0.01
"""Ledger and site totals must agree within 1% (relative to the larger)."""
ENERGY = "suandian_ledger_energy_joules_total"
IT_ENERGY = "suandian_ledger_it_energy_joules_total"
EMISSIONS = "suandian_ledger_emissions_grams_total"
RUN_NOW = "suandian_ledger_run_now_emissions_grams_total"
RUNS = "suandian_ledger_runs_total"
SITE_ENERGY = "suandian_energy_joules_total"
SITE_EMISSIONS = "suandian_emissions_grams_total"


def _share(part: float, whole: float) -> float | None:
    return part / whole if whole > 0 else None


@dataclass
class Row:
    """One namespace at one site over one day (``day`` None: the whole period)."""

    day: date | None
    namespace: str
    site: str
    partial: bool = False
    kwh: dict[str, float] = field(default_factory=lambda: dict.fromkeys(LEDGER_SOURCES, 0.0))
    it_kwh_by_provenance: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(PROVENANCES, 0.0))
    emissions_g: float = 0.0
    run_now_g: float = 0.0
    jobs: float = 0.0

    @property
    def total_kwh(self) -> float:
        return sum(self.kwh.values())

    @property
    def green_kwh(self) -> float:
        return self.total_kwh - self.kwh["grid"]

    @property
    def it_kwh(self) -> float:
        return sum(self.it_kwh_by_provenance.values())

    @property
    def green_share(self) -> float | None:
        return _share(self.green_kwh, self.total_kwh)

    @property
    def pue(self) -> float | None:
        """Facility over IT energy: the PUE the jobs' figures were computed with."""
        return _share(self.total_kwh, self.it_kwh)

    @property
    def cue_kg_per_kwh(self) -> float | None:
        """Carbon usage effectiveness: kg CO2 per kWh of IT energy."""
        return _share(self.emissions_g / 1000.0, self.it_kwh)

    @property
    def saved_g(self) -> float:
        """Emissions avoided against running every job at once (negative: worse)."""
        return self.run_now_g - self.emissions_g

    @property
    def measured_share(self) -> float | None:
        """Share of the IT energy read from an exporter for the job's whole run."""
        return _share(self.it_kwh_by_provenance["measured"], self.it_kwh)

    def add(self, other: Row) -> None:
        for source, kwh in other.kwh.items():
            self.kwh[source] += kwh
        for provenance, kwh in other.it_kwh_by_provenance.items():
            self.it_kwh_by_provenance[provenance] += kwh
        self.emissions_g += other.emissions_g
        self.run_now_g += other.run_now_g
        self.jobs += other.jobs
        self.partial = self.partial or other.partial


@dataclass(frozen=True)
class Check:
    """Ledger (summed over namespaces) against the site counters, one site, one day."""

    site: str
    day: date | None
    ledger_kwh: float
    site_kwh: float
    ledger_green_kwh: float
    site_green_kwh: float
    ledger_g: float
    site_g: float

    @staticmethod
    def gap(a: float, b: float) -> float:
        """Relative difference of two totals (0 when both are 0)."""
        larger = max(abs(a), abs(b))
        return abs(a - b) / larger if larger > 1e-12 else 0.0

    @property
    def worst(self) -> float:
        return max(self.gap(self.ledger_kwh, self.site_kwh),
                   self.gap(self.ledger_green_kwh, self.site_green_kwh),
                   self.gap(self.ledger_g, self.site_g))

    @property
    def ok(self) -> bool:
        return self.worst <= TOLERANCE


@dataclass
class Ledger:
    """What :func:`read_ledger` found: rows per day, totals, and the checks."""

    days: list[Day]
    rows: list[Row]
    totals: list[Row]
    checks: list[Check]
    queries: int = 0

    @property
    def reconciled(self) -> bool:
        return all(c.ok for c in self.checks)


def _label(labels: Labels, name: str) -> str:
    return dict(labels).get(name, "")


def site_matchers(sites: Sequence[str]) -> str:
    """``site=~"..."`` matching exactly these sites: each name regex-escaped (``-`` and
    ``.`` are common in PowerSite names), then quoted as a PromQL string."""
    if not sites:
        return ""
    return f"site=~{json.dumps('|'.join(re.escape(s) for s in sites))}"


def read_ledger(prometheus: Prometheus, days: Sequence[Day], *,
                namespaces: Sequence[str] = (), sites: Sequence[str] = ()) -> Ledger:
    """The ledger of ``days`` for the given namespaces and sites (all when empty)."""
    matchers = site_matchers(sites)
    rows: dict[tuple[int, str, str], Row] = {}

    def row(i: int, labels: Labels) -> Row:
        key = (i, _label(labels, "namespace"), _label(labels, "site"))
        if key not in rows:
            rows[key] = Row(days[i].day, key[1], key[2], partial=days[i].partial)
        return rows[key]

    for i, found in enumerate(daily(prometheus, ENERGY, matchers, days)):
        for labels, joules in found.items():
            source = _label(labels, "source")
            if source in LEDGER_SOURCES:
                row(i, labels).kwh[source] += joules / JOULES_PER_KWH
    for i, found in enumerate(daily(prometheus, IT_ENERGY, matchers, days)):
        for labels, joules in found.items():
            provenance = _label(labels, "provenance")
            if provenance in PROVENANCES:
                row(i, labels).it_kwh_by_provenance[provenance] += joules / JOULES_PER_KWH
    for name, attribute in ((EMISSIONS, "emissions_g"), (RUN_NOW, "run_now_g"),
                            (RUNS, "jobs")):
        for i, found in enumerate(daily(prometheus, name, matchers, days)):
            for labels, value in found.items():
                target = row(i, labels)
                setattr(target, attribute, getattr(target, attribute) + value)
    every = sorted(rows.values(), key=lambda r: (r.day or date.min, r.site, r.namespace))
    checks = _checks(prometheus, days, matchers, every)
    chosen = [r for r in every if not namespaces or r.namespace in namespaces]
    return Ledger(days=list(days), rows=chosen, totals=totals(chosen), checks=checks,
                  queries=prometheus.queries)


def totals(rows: Iterable[Row]) -> list[Row]:
    """One row per namespace and site over the whole period."""
    out: dict[tuple[str, str], Row] = {}
    for r in rows:
        out.setdefault((r.site, r.namespace), Row(None, r.namespace, r.site)).add(r)
    return [out[key] for key in sorted(out)]


def site_rows(rows: Iterable[Row]) -> dict[tuple[date | None, str], Row]:
    """The rows summed over namespaces: one per day (or period) and site."""
    out: dict[tuple[date | None, str], Row] = {}
    for r in rows:
        out.setdefault((r.day, r.site), Row(r.day, "", r.site)).add(r)
    return out


def _checks(prometheus: Prometheus, days: Sequence[Day], matchers: str,
            rows: Sequence[Row]) -> list[Check]:
    energy = daily(prometheus, SITE_ENERGY, matchers, days)
    emissions = daily(prometheus, SITE_EMISSIONS, matchers, days)
    site_kwh: dict[tuple[date | None, str], list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for i, day in enumerate(days):
        for labels, joules in energy[i].items():
            entry = site_kwh[day.day, _label(labels, "site")]
            entry[0] += joules / JOULES_PER_KWH
            if _label(labels, "source") == "green":
                entry[1] += joules / JOULES_PER_KWH
        for labels, grams in emissions[i].items():
            site_kwh[day.day, _label(labels, "site")][2] += grams
    return compare(site_rows(rows), site_kwh)


def compare(ledger: dict[tuple[date | None, str], Row],
            site: dict[tuple[date | None, str], list[float]]) -> list[Check]:
    """One check per day and site, then one per site over the period (``day`` None)."""
    keys = sorted(set(ledger) | set(site), key=lambda k: (k[1], k[0] or date.min))
    checks = []
    period: dict[str, list[float]] = defaultdict(lambda: [0.0] * 6)
    for key in keys:
        r = ledger.get(key) or Row(key[0], "", key[1])
        kwh, green, grams = site.get(key, [0.0, 0.0, 0.0])
        figures = [r.total_kwh, kwh, r.green_kwh, green, r.emissions_g, grams]
        checks.append(Check(key[1], key[0], *figures))
        period[key[1]] = [a + b for a, b in zip(period[key[1]], figures, strict=True)]
    checks += [Check(s, None, *figures) for s, figures in sorted(period.items())]
    return checks
