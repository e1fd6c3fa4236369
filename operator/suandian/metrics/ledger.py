"""The green-power ledger: every finished job's energy, by namespace, site and source.

China's data-centre rules ask a site to report its green-power share (绿电占比), PUE and
CUE; a platform team is asked the same per tenant. The ledger is the raw material: one
call of :func:`record_ledger_run` per finished job adds its figures to counters in base
units, and everything per day (kWh by source, green share, PUE, CUE, saving) is derived
from them by recording rules (``helm/suandian/alerts/suandian.rules.yaml``) and by
``suandian report`` (:mod:`suandian.report`), so nothing is summed twice in two places.

``namespace`` is a label here and only here: it is the job's namespace, bounded by the
cluster's namespaces (created by administrators, tens to hundreds), never by jobs or pods.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

from suandian.metrics.instruments import instruments
from suandian.metrics.labels import JOULES_PER_KWH, LEDGER_SOURCES, PROVENANCES, check

_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SLACK = 1e-9
"""Relative slack for float noise in the consistency checks (IT vs facility energy,
run-now emissions), far below any real error."""


def _amount(field: str, value: float, *, signed: bool = False) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"record_ledger_run: {field} must be a finite number, got {value!r}")
    if not signed and value < 0:
        raise ValueError(f"record_ledger_run: {field} must be >= 0, got {value!r}")
    return float(value)


def record_ledger_run(*, namespace: str, site: str, kwh_by_source: Mapping[str, float],
                      it_kwh: float, emissions_g: float, saved_g: float,
                      provenance: str) -> None:
    """Enter one finished job in the ledger.

    kwh_by_source keys from LEDGER_SOURCES = ("solar", "wind", "hydro", "directGreen",
    "storage", "grid"), facility kWh including PUE; it_kwh without PUE; provenance one
    of ("measured", "partial", "modelled").

    ``emissions_g`` is what the job emitted, ``saved_g`` what it avoided against running
    at once (negative when it did worse). Sources missing from ``kwh_by_source`` count 0.
    Raises ValueError naming the argument when a figure is negative, not finite, or
    inconsistent (IT energy above facility energy means a PUE below 1; a saving larger
    than a run-now emission could be means the run-now baseline is negative).
    """
    if not isinstance(namespace, str) or len(namespace) > 63 or not _NAMESPACE.fullmatch(
            namespace):
        raise ValueError(f"record_ledger_run: namespace {namespace!r} is not a Kubernetes "
                         "namespace name (DNS-1123 label: lowercase, digits, '-', <= 63)")
    if not isinstance(site, str) or not site:
        raise ValueError(f"record_ledger_run: site must be the PowerSite's name, got {site!r}")
    check("record_ledger_run: provenance", provenance, PROVENANCES)
    kwh: dict[str, float] = {}
    for source, value in kwh_by_source.items():
        check("record_ledger_run: kwh_by_source key", source, LEDGER_SOURCES)
        kwh[source] = _amount(f"kwh_by_source[{source!r}]", value)
    facility = sum(kwh.values())
    it = _amount("it_kwh", it_kwh)
    if it > facility * (1 + _SLACK) + _SLACK:
        raise ValueError(f"record_ledger_run: it_kwh {it} exceeds the facility energy "
                         f"{facility} (sum of kwh_by_source): facility kWh include PUE >= 1")
    emitted = _amount("emissions_g", emissions_g)
    saved = _amount("saved_g", saved_g, signed=True)
    run_now = emitted + saved
    if run_now < -_SLACK * max(1.0, emitted):
        raise ValueError(f"record_ledger_run: saved_g {saved} is below -emissions_g "
                         f"{-emitted}: running at once cannot have emitted less than 0 g")

    ledger = instruments().ledger
    key = (namespace, site, provenance)
    if key not in ledger.opened:
        _open(namespace, site, provenance)
        ledger.opened.add(key)
    for source, value in kwh.items():
        ledger.energy.labels(namespace=namespace, site=site, source=source,
                             provenance=provenance).inc(value * JOULES_PER_KWH)
    ledger.it_energy.labels(namespace=namespace, site=site, provenance=provenance).inc(
        it * JOULES_PER_KWH)
    ledger.emissions.labels(namespace=namespace, site=site).inc(emitted)
    ledger.run_now_emissions.labels(namespace=namespace, site=site).inc(max(0.0, run_now))
    ledger.runs.labels(namespace=namespace, site=site, provenance=provenance).inc()


def _open(namespace: str, site: str, provenance: str) -> None:
    """Create the series of a namespace at a site with a provenance at 0, on its first
    run in this process.

    ``increase()`` (the recording rules, the dashboards) cannot count a series' first
    value; with every source at 0 from the first run on, only that first run is unseen
    by them, not also the first wind, the first storage, and so on. ``suandian report``
    counts first values too. 8 series per namespace, site and provenance that ran a job
    (2 more per namespace and site); all three provenances up front would cost 26 per
    pair, which at 100 pairs took a /metrics render from 16 to 59 ms (50 sites).
    """
    ledger = instruments().ledger
    for source in LEDGER_SOURCES:
        ledger.energy.labels(namespace=namespace, site=site, source=source,
                             provenance=provenance)
    ledger.it_energy.labels(namespace=namespace, site=site, provenance=provenance)
    ledger.runs.labels(namespace=namespace, site=site, provenance=provenance)
    ledger.emissions.labels(namespace=namespace, site=site)
    ledger.run_now_emissions.labels(namespace=namespace, site=site)
