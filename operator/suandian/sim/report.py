"""What ``suandian simulate`` shows: a rich table, and a PNG of supply, load and savings."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from rich.table import Table

from suandian.sim.run import SimReport, format_mass

__all__ = ["caption", "render_table", "write_plot"]


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h"


def _energy(kwh: float) -> str:
    """kWh in the unit that fits, four significant digits (``10,408 MWh``, ``2.871 MWh``,
    ``17.3 kWh``)."""
    if abs(kwh) >= 1e3:
        value, unit = kwh / 1e3, "MWh"
    else:
        value, unit = kwh, "kWh"
    digits = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 0
    return f"{value:,.{min(digits, 3)}f} {unit}"


def _share(report: SimReport, name: str, against: str) -> str:
    value = report.share_of_oracle(name) if against == "oracle" else report.share_of_bound(
        name)
    if value is not None:
        return f"{value:.1%}"
    note = report.infeasible(name)
    return {"misses": "(misses)", "over import": "(import)"}.get(note or "", "n/a")


def caption(report: SimReport) -> str:
    """What the share columns mean, and the oracle's outcome in words."""
    o = report.oracle
    base = report.baseline
    lines = ["of optimum: the share of the largest possible saving a policy captured, "
             f"({base} − policy) / ({base} − oracle); vs bound: the same with the "
             "oracle's proven lower bound in place of its emissions."]
    if base == "nominal":
        lines[0] += (" Savings count from nominal: each job at its usual time, what runs "
                     "without carbon awareness (run-now starts it when its window opens).")
    if o is not None and not o.optimal:
        lines[0] = lines[0].replace("of optimum:", "of oracle:", 1)
        lines.append(f"The oracle is not proven optimal (gap {o.gap:.1%}): a policy's share "
                     "of the optimum lies between 'vs bound' and 'of oracle'.")
    marked = sorted({n for name in report.results if (n := report.infeasible(name))})
    if marked:
        lines.append("(misses), (import): not ranked, the policy missed deadlines or drew "
                     "beyond the sites' grid import limits (over import), both of which the "
                     "oracle keeps.")
    else:
        lines.append("over import: energy drawn beyond the sites' grid import limits.")
    moved = [(n, r) for n, r in report.results.items() if r.transfer_jobs]
    if moved or any(j.data_wait for j in report.world.jobs):
        lines.append("data moved (in emissions): " + ("; ".join(
            f"{n} {r.transfer_jobs} jobs, {r.transfer_gb:,.0f} GB, {_energy(r.transfer_kwh)}, "
            f"{format_mass(r.transfer_g)}" for n, r in moved) or "by no policy"))
    if report.world.events:
        lines.append("shed: energy under run-now's grid import in the grid's shed windows; "
                     "shed met: delivered over asked; absorbed: surplus power used; grid "
                     "cost: grid power at the run's tariffs (an absorb's surplus is free). "
                     "Only suandian and the oracle read the grid's requests: the oracle "
                     "meets every shed" + (
                         f" and its shares are of CO2 + {format_mass(report.tariff_weight_g)}"
                         " per unit of grid cost, the weight suandian plans with"
                         if report.priced else "") + ".")
    if report.oracle_note:
        lines.append(f"oracle: {report.oracle_note}")
    return "\n".join(lines)


def render_table(report: SimReport) -> Table:
    """One row per policy: emissions, energy, green %, misses, delays, shares of the
    possible saving (or why a share is n/a), energy over the import limits."""
    sc = report.scenario
    table = Table(
        title=f"{sc.name}: {len(report.world.jobs)} jobs over {sc.days} days, "
              f"{len(sc.sites)} sites, forecast error {report.world.error:.0%}, "
              f"seed {report.world.seed}",
        caption=caption(report), caption_justify="left",
    )
    of = "of optimum" if report.oracle is not None and report.oracle.optimal else "of oracle"
    events = bool(report.world.events)
    priced = report.priced
    for col in ("policy", "CO2", "energy", "green", "misses", "mean delay", "p95 delay",
                of, "vs bound", "over import",
                *(("shed", "shed met", "absorbed") if events else ()),
                *(("grid cost",) if priced else ())):
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=True)
    for name, r in report.results.items():
        table.add_row(
            name, format_mass(r.emissions_g), _energy(r.energy_kwh),
            f"{r.green_fraction:.1%}", str(r.deadline_misses), _hours(r.mean_delay_s),
            _hours(r.p95_delay_s), _share(report, name, "oracle"),
            _share(report, name, "bound"), _energy(r.import_overload_kwh),
            *(_grid_cells(report, name) if events else ()),
            *((_cost(report, name),) if priced else ()),
        )
    return table


def _cost(report: SimReport, name: str) -> str:
    """What the policy's grid power cost under the run's tariffs."""
    g = report.grid.get(name)
    return "n/a" if g is None or g.cost is None else f"{g.cost:,.0f}"


def _grid_cells(report: SimReport, name: str) -> tuple[str, str, str]:
    """Energy shed under the baseline, the share of the asked shed delivered, and the
    surplus absorbed (see :mod:`suandian.sim.grid_events`)."""
    g = report.grid.get(name)
    if g is None:
        return "n/a", "n/a", "n/a"
    met = g.shed_compliance
    return (_energy(g.shed_kwh), "n/a" if met is None else f"{met:.1%}",
            _energy(g.absorbed_kwh))


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
    top = max([report.results[p].emissions_g for p in labels] + [0.0])
    unit, size = ("t", 1e6) if top >= 1e6 else ("kg", 1e3) if top >= 1e3 else ("g", 1.0)
    tons = [report.results[p].emissions_g / size for p in labels]
    palette = ["#bbbbbb", "#999999", "#fdc086", "#beaed4", "#386cb0", "#222222"]
    bars = ax.bar(labels, tons, color=[palette[i % len(palette)] for i in range(len(labels))])
    for bar, p in zip(bars, labels, strict=True):
        r = report.results[p]
        ax.annotate(f"{r.green_fraction:.0%} green\n{r.deadline_misses} misses",
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    ha="center", va="bottom", fontsize=8)
    ax.set_ylim(0, max([*tons, 1e-9]) * 1.18)  # room for the labels above the bars
    ax.set_ylabel(f"emissions, {unit}CO2")
    ax.set_title(f"{report.scenario.name}: emissions by policy "
                 f"(forecast error {world.error:.0%})", fontsize=10, loc="left")
    ax.set_xlabel("hours from scenario start (site panels above)")
    fig.savefig(path, dpi=90)
    plt.close(fig)
