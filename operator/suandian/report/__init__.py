"""``suandian report``: the green-power ledger per day, namespace and site, from Prometheus.

The operator counts every finished job's energy by source, IT energy, emissions and
run-now emissions (:mod:`suandian.metrics.ledger`); this package reads those counters
back day by day (:mod:`.counters`: exact per-day increases, resets handled), builds rows
and checks them against the site totals (:mod:`.ledger`), and formats them
(:mod:`.format`, :mod:`.plot`). :mod:`.prometheus` is the only module doing I/O.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import date

from suandian.report.days import Day, ReportInputError, days_between, timezone
from suandian.report.ledger import Check, Ledger, Row, read_ledger
from suandian.report.prometheus import Prometheus, PrometheusError

__all__ = ["Check", "Day", "Ledger", "Prometheus", "PrometheusError", "ReportInputError", "Row",
           "build_report", "days_between", "timezone"]


def build_report(url: str, since: date, until: date, *, zone: str = "UTC",
                 namespaces: Sequence[str] = (), sites: Sequence[str] = (),
                 now: float | None = None, token: str = "") -> Ledger:
    """The ledger from ``since`` (included) to ``until`` (excluded), local days of ``zone``;
    ``token``: a bearer token for Prometheus (empty: none)."""
    days = days_between(since, until, timezone(zone), time.time() if now is None else now)
    return read_ledger(Prometheus(url, token=token), days, namespaces=namespaces, sites=sites)
