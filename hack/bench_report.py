"""What `suandian report` costs over a month: queries, seconds, against a real Prometheus.

    python hack/bench_report.py [--days 31] [--namespaces 5] [--sites 3] [--scrape 300]
                                [--jobs-per-day 200]

Builds the ledger and site counters of a synthetic month (jobs at random times over the
namespaces and sites, measured or modelled, an operator restart every 7 days) as an
operator scraped every ``--scrape`` seconds would show them, backfills them with
``promtool tsdb create-blocks-from openmetrics``, starts Prometheus on the blocks and
times ``build_report`` over the whole period. It also checks the report against the
story: every job's kWh is found (total within 1e-6) and the reconciliation holds.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from suandian.metrics.labels import JOULES_PER_KWH, LEDGER_SOURCES
from suandian.report import build_report

Series = tuple[str, tuple[tuple[str, str], ...]]


def story(days: int, namespaces: int, sites: int, per_day: int, seed: int = 1
          ) -> list[tuple[float, str, str, str, dict[str, float]]]:
    """(offset s, namespace, site, provenance, kWh by source) per job, in time order."""
    rng = random.Random(seed)
    jobs = []
    for _ in range(days * per_day):
        kwh = {s: rng.choice((0.0, rng.uniform(0.5, 40.0))) for s in LEDGER_SOURCES}
        kwh["grid"] += 0.1
        jobs.append((rng.uniform(0, days * 86400), f"team-{rng.randrange(namespaces)}",
                     f"site-{rng.randrange(sites)}", rng.choice(("measured", "modelled")), kwh))
    return sorted(jobs)


def openmetrics(base: float, days: int, scrape: int,
                jobs: list[tuple[float, str, str, str, dict[str, float]]], path: Path) -> float:
    """Write the scraped counters to ``path``; returns the story's total facility kWh."""
    values: dict[Series, float] = {}
    out: dict[str, dict[Series, list[str]]] = defaultdict(lambda: defaultdict(list))
    total = 0.0
    pending = list(jobs)
    for t in range(0, days * 86400 + scrape, scrape):
        if t and t % (7 * 86400) < scrape:
            values.clear()  # an operator restart: counters from 0, series re-created
        while pending and pending[0][0] <= t:
            _, ns, site, provenance, kwh = pending.pop(0)
            where = (("namespace", ns), ("site", site))
            for source, value in kwh.items():
                key = ("suandian_ledger_energy_joules", (*where, ("provenance", provenance),
                                                         ("source", source)))
                values[key] = values.get(key, 0.0) + value * JOULES_PER_KWH
            it = sum(kwh.values()) / 1.3
            total += sum(kwh.values())
            for name, labels, add in (
                    ("suandian_ledger_it_energy_joules", (*where, ("provenance", provenance)),
                     it * JOULES_PER_KWH),
                    ("suandian_ledger_runs", (*where, ("provenance", provenance)), 1.0),
                    ("suandian_ledger_emissions_grams", where, kwh["grid"] * 500),
                    ("suandian_ledger_run_now_emissions_grams", where, kwh["grid"] * 600),
                    ("suandian_energy_joules", (("site", site), ("source", "grid")),
                     kwh["grid"] * JOULES_PER_KWH),
                    ("suandian_energy_joules", (("site", site), ("source", "green")),
                     (sum(kwh.values()) - kwh["grid"]) * JOULES_PER_KWH),
                    ("suandian_emissions_grams", (("site", site),), kwh["grid"] * 500)):
                values[name, labels] = values.get((name, labels), 0.0) + add
        for (name, labels), value in values.items():
            out[name][name, labels].append(f"{value!r} {base + t:.0f}")
    with path.open("w", encoding="utf-8") as f:
        for name, series in out.items():
            f.write(f"# TYPE {name} counter\n# HELP {name} bench\n")
            for (_, labels), points in series.items():
                text = ",".join(f'{k}="{v}"' for k, v in (*labels, ("job", "suandian")))
                f.writelines(f"{name}_total{{{text}}} {p}\n" for p in points)
        f.write("# EOF\n")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--sites", type=int, default=3)
    parser.add_argument("--scrape", type=int, default=300, help="seconds between scrapes")
    parser.add_argument("--jobs-per-day", type=int, default=200)
    args = parser.parse_args()
    promtool, prometheus = shutil.which("promtool"), shutil.which("prometheus")
    if not promtool or not prometheus:
        raise SystemExit("needs promtool and prometheus (Debian package `prometheus`)")
    first = datetime.now(UTC).date() - timedelta(days=args.days + 1)
    base = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        jobs = story(args.days, args.namespaces, args.sites, args.jobs_per_day)
        total = openmetrics(base, args.days, args.scrape, jobs, work / "month.om")
        lines = sum(1 for _ in (work / "month.om").open(encoding="utf-8"))
        subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", "-q",
                        str(work / "month.om"), str(work / "data")], check=True)
        print(f"{len(jobs)} jobs, {lines} samples backfilled in "
              f"{time.perf_counter() - started:.1f} s")
        (work / "prometheus.yml").write_text("global: {}\n", encoding="utf-8")
        port = 19090 + random.randrange(1000)
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [prometheus, f"--config.file={work / 'prometheus.yml'}",
             f"--storage.tsdb.path={work / 'data'}", "--storage.tsdb.retention.time=400d",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=error"])
        try:
            for _ in range(240):
                try:
                    with urllib.request.urlopen(f"{url}/-/ready", timeout=2):
                        break
                except OSError:
                    time.sleep(0.25)
            started = time.perf_counter()
            ledger = build_report(url, first, first + timedelta(days=args.days))
            took = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    found = sum(r.total_kwh for r in ledger.totals)
    print(f"report over {args.days} days, {args.namespaces} namespaces x {args.sites} sites, "
          f"scrape {args.scrape} s: {took:.2f} s, {ledger.queries} queries, "
          f"{len(ledger.rows)} rows")
    print(f"kWh found {found:.3f} of {total:.3f} (gap {abs(found - total) / total:.2e}); "
          f"reconciled: {ledger.reconciled}")


if __name__ == "__main__":
    main()
