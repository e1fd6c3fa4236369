"""What ``suandian simulate`` shows: a rich table, and a PNG of supply, load and savings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from suandian.sim.run import SimReport

__all__ = ["render_table", "write_plot"]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def render_table(report: SimReport) -> Table:
    """One row per policy: emissions, energy, green %, misses, delays, share of the oracle."""
    sc = report.scenario
    table = Table(
        title=f"{sc.name}: {len(report.world.jobs)} jobs over {sc.days} days, "
              f"{len(sc.sites)} sites, forecast error {report.world.error:.0%}, "
              f"seed {report.world.seed}",
        caption=("share = (run-now − policy) / (run-now − oracle) of the emissions saved; "
                 "vs bound: the same against the oracle's proven lower bound; over import: "
                 "energy drawn beyond the sites' grid import limits"
                 + (f"\noracle: {report.oracle_note}" if report.oracle_note else "")),
    )
    for col in ("policy", "tCO2", "MWh", "green", "misses", "mean delay", "p95 delay",
                "of oracle", "vs bound", "over import"):
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for name, r in report.results.items():
        table.add_row(
            name, f"{r.emissions_g / 1e6:,.0f}", f"{r.energy_kwh / 1e3:,.0f}",
            f"{r.green_fraction:.1%}", str(r.deadline_misses), _hours(r.mean_delay_s),
            _hours(r.p95_delay_s), _share(report.share_of_oracle(name)),
            _share(report.share_of_bound(name)), f"{r.import_overload_kwh / 1e3:,.0f} MWh",
        )
    return table


def write_plot(report: SimReport, path: Path, policy: str = "suandian") -> None:
    """Per-site actual green supply vs the load ``policy`` (and best-window) scheduled
    there, over time; and a bar chart of every policy's emissions and green share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    world = report.world
    names = world.names
    rows = (len(names) + 1) // 2
    fig = plt.figure(figsize=(14, 2.2 * rows + 4.0), constrained_layout=True)
    grid = fig.add_gridspec(rows + 2, 2)
    n = max((r.load_kw.shape[1] for r in report.results.values()), default=world.slots)
    hours = np.arange(n) * world.h
    for s, name in enumerate(names):
        ax = fig.add_subplot(grid[s // 2, s % 2])
        ax.fill_between(hours, world.green[s, :n] / 1e3, color="#7fc97f", alpha=0.6,
                        step="post", label="green supply (actual)")
        for pname, style in ((policy, "-"), ("best-window", ":"), ("run-now", "--")):
            if pname in report.results:
                ax.step(hours, report.results[pname].load_kw[s, :n] / 1e3, style,
                        where="post", lw=1.0, label=f"{pname} load")
        ax.set_title(name, fontsize=9, loc="left")
        ax.set_ylabel("MW", fontsize=8)
        ax.tick_params(labelsize=7)
        if s == 0:
            ax.legend(fontsize=7, loc="upper right", ncols=4)
    ax = fig.add_subplot(grid[rows:, :])
    labels = list(report.results)
    tons = [report.results[p].emissions_g / 1e6 for p in labels]
    bars = ax.bar(labels, tons, color=["#bbbbbb", "#fdc086", "#beaed4", "#386cb0", "#222222"]
                  [: len(labels)])
    for bar, p in zip(bars, labels, strict=True):
        r = report.results[p]
        ax.annotate(f"{r.green_fraction:.0%} green\n{r.deadline_misses} misses",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max([*tons, 1e-9]) * 1.18)  # room for the labels above the bars
    ax.set_ylabel("emissions, tCO2")
    ax.set_title(f"{report.scenario.name}: emissions by policy "
                 f"(forecast error {world.error:.0%})", fontsize=10, loc="left")
    ax.set_xlabel("hours from scenario start (site panels above)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
