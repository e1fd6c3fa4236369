"""People-facing views of a forecast: an hourly table (rich) and a PNG plot (matplotlib Agg)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from rich.table import Table

from suandian.forecast.series import SOURCE_TYPES, SiteForecast

__all__ = ["forecast_table", "hourly", "plot_forecast"]

_COLOURS = {"solar": "#f2b701", "wind": "#3b8bc2", "hydro": "#2a9d8f", "directGreen": "#7cb518",
            "storage": "#9b5de5"}


def hourly(a: np.ndarray, fc: SiteForecast) -> np.ndarray:
    """Hourly means of a slot series (the grid's slots per hour, trailing part kept)."""
    per = max(round(1.0 / fc.grid.slot_hours), 1)
    n = (a.size + per - 1) // per
    padded = np.full(n * per, np.nan)
    padded[: a.size] = a
    result: np.ndarray = np.nanmean(padded.reshape(n, per), axis=1)
    return result


def forecast_table(fc: SiteForecast, zone: str) -> Table:
    """Hourly table in the site's local time: green by source, band, storage, intensity."""
    tz = ZoneInfo(zone)
    kinds = [k for k in SOURCE_TYPES if k in fc.green_kw]
    table = Table(title=f"{fc.site}: green supply and grid intensity "
                  f"(source {fc.source}, issued {fc.issued_at:%Y-%m-%d %H:%M} UTC)",
                  caption="kW are hourly means; P10-P90 is the 80% band of total green; "
                  "storage is what the battery can add")
    table.add_column(f"local time ({zone})")
    for k in kinds:
        table.add_column(f"{k} kW", justify="right")
    for col in ("green P50 kW", "P10-P90 kW", "storage kW", "gCO2/kWh"):
        table.add_column(col, justify="right")
    per = max(round(1.0 / fc.grid.slot_hours), 1)
    cols = {k: hourly(fc.green_kw[k], fc) for k in kinds}
    total, lo, hi = (hourly(a, fc) for a in (fc.green_total_kw, fc.green_p10_kw, fc.green_p90_kw))
    storage, carbon = hourly(fc.storage_kw, fc), hourly(fc.carbon_g_per_kwh, fc)
    for i in range(total.size):
        t = fc.grid.time_at(i * per).astimezone(tz)
        table.add_row(f"{t:%a %m-%d %H:%M}", *(f"{cols[k][i]:,.0f}" for k in kinds),
                      f"{total[i]:,.0f}", f"{lo[i]:,.0f}-{hi[i]:,.0f}", f"{storage[i]:,.0f}",
                      f"{carbon[i]:.0f}")
    return table


def plot_forecast(fc: SiteForecast, path: Path, zone: str) -> Path:
    """Write a PNG: stacked green supply by source (and storage), the P10-P90 band of total
    green shaded, grid carbon intensity (with its band) on a second axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    tz = ZoneInfo(zone)
    stamps = [datetime.fromtimestamp(float(s), UTC) for s in fc.grid.epoch_seconds]
    times = mdates.date2num(stamps)  # type: ignore[no-untyped-call]
    kinds = [k for k in SOURCE_TYPES if k in fc.green_kw]
    fig, ax = plt.subplots(figsize=(12, 5.5), dpi=110)
    stacks = [fc.green_kw[k] / 1000 for k in kinds]
    labels = list(kinds)
    colours = [_COLOURS[k] for k in kinds]
    if fc.storage_max_kw > 0:
        stacks.append(fc.storage_kw / 1000)
        labels.append("storage (battery)")
        colours.append(_COLOURS["storage"])
    # the band sits behind the stack: its upper half shows above P50, P10 is dashed
    ax.fill_between(times, fc.green_p10_kw / 1000, fc.green_p90_kw / 1000, step="post",
                    color="#b0b0b0", alpha=0.45, lw=0, zorder=0, label="green P10-P90")
    ax.stackplot(times, *stacks, labels=labels, colors=colours, alpha=0.9, step="post",
                 zorder=1)
    ax.step(times, fc.green_total_kw / 1000, where="post", color="black", lw=1.0, zorder=2,
            label="green P50 (sources)")
    ax.step(times, fc.green_p10_kw / 1000, where="post", color="black", lw=0.8, ls="--",
            zorder=2, label="green P10")
    ax.set_ylabel("green power available (MW)")
    ax.set_ylim(bottom=0)
    ax.set_xlim(float(times[0]), float(times[-1]))
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(times, fc.carbon_g_per_kwh, color="#d62828", lw=1.8, label="grid gCO2/kWh")
    ax2.fill_between(times, fc.carbon_p10, fc.carbon_p90, color="#d62828", alpha=0.12)
    ax2.set_ylabel("grid carbon intensity (gCO2/kWh)", color="#d62828")
    ax2.tick_params(axis="y", colors="#d62828")
    ax2.set_ylim(0, max(float(fc.carbon_p90.max()) * 1.15, 1.0))
    # Ticks on whole local hours (every 3 h for two days), not matplotlib's odd 2.4 h steps.
    span_h = (times[-1] - times[0]) * 24
    ax.xaxis.set_major_locator(mdates.HourLocator(  # type: ignore[no-untyped-call]
        byhour=range(0, 24, max(1, int(span_h // 16) + 1)), tz=tz))
    ax.xaxis.set_major_formatter(
        mdates.DateFormatter("%m-%d %H:%M", tz=tz))  # type: ignore[no-untyped-call]
    ax.set_xlabel(f"local time ({zone})")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8, ncol=2, framealpha=0.9)
    ax.set_title(f"{fc.site}: {fc.grid.slots * fc.grid.slot_hours:.0f} h forecast "
                 f"(source {fc.source}, issued {fc.issued_at:%Y-%m-%d %H:%M} UTC)")
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
