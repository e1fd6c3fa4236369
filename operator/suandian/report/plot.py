"""A PNG of the ledger: kWh by source per day, stacked, and the green share over it."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path

from suandian.metrics.labels import LEDGER_SOURCES
from suandian.report.ledger import Ledger, Row

COLOURS = {"solar": "#f2b705", "wind": "#4c9be8", "hydro": "#1f5f8b",
           "directGreen": "#2ca25f", "storage": "#9e6ebd", "grid": "#7f7f7f"}


def per_day(ledger: Ledger) -> list[Row]:
    """The selected rows summed over namespaces and sites: one per day, in order."""
    out: dict[date, Row] = defaultdict(lambda: Row(None, "", ""))
    for day in ledger.days:
        out[day.day].day = day.day
    for row in ledger.rows:
        if row.day is not None:
            out[row.day].add(row)
    return [out[d] for d in sorted(out)]


def plot(ledger: Ledger, path: Path, title: str) -> None:
    """Write the PNG to ``path``; needs matplotlib (``pip install 'suandian[sim]'``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    days = per_day(ledger)
    labels = [r.day.isoformat() if r.day else "" for r in days]
    figure, axis = plt.subplots(figsize=(max(6.0, 0.45 * len(days) + 3), 4.5))
    bottom = [0.0] * len(days)
    for source in LEDGER_SOURCES:
        heights = [r.kwh[source] for r in days]
        if any(heights):
            axis.bar(labels, heights, bottom=bottom, label=source, color=COLOURS[source])
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    axis.set_ylabel("facility energy, kWh")
    axis.set_title(title)
    share = axis.twinx()
    share.plot(labels, [100 * (r.green_share or 0.0) for r in days], color="#006d2c",
               marker="o", label="green share")
    share.set_ylim(0, 100)
    share.set_ylabel("green share, %")
    axis.legend(loc="upper left", fontsize="small")
    axis.tick_params(axis="x", labelrotation=60, labelsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
