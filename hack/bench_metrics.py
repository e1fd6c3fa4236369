"""What the record_* helpers cost per call, against a bare prometheus_client counter.

    python hack/bench_metrics.py [--calls N] [--sites S]

The operator calls these on every decision; the target of 200 decisions/s leaves a
budget of milliseconds per decision, so a helper must stay in microseconds. Also times
one /metrics render of a registry with S sites, which Prometheus does every scrape.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, generate_latest

from suandian import metrics


def per_call(fn: Callable[[int], None], calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=50)
    args = parser.parse_args()
    sites = [f"site-{i}" for i in range(args.sites)]

    bare = Counter("bench_total", "baseline", ["site"], registry=CollectorRegistry())
    baseline = per_call(lambda i: bare.labels(site=sites[i % len(sites)]).inc(), args.calls)

    metrics.reset()
    status = {"solar": 1200.0, "wind": 300.0, "storage": 40.0}
    ledger = {"solar": 2.0, "wind": 1.0, "grid": 1.0}
    cases: dict[str, Callable[[int], None]] = {
        "record_deferral": lambda i: metrics.record_deferral(sites[i % len(sites)]),
        "record_start": lambda i: metrics.record_start(
            sites[i % len(sites)], trigger="planned", delay_s=float(i % 86400)),
        "record_job_finished": lambda i: metrics.record_job_finished(
            sites[i % len(sites)], outcome="Succeeded", green_kwh=3.0, grid_kwh=1.0,
            emissions_g=400.0, avoided_g=900.0),
        "record_site": lambda i: metrics.record_site(
            sites[i % len(sites)], green_power_kw_by_source=status,
            grid_carbon_intensity_g_per_kwh=480.0, compute_power_kw=800.0, headroom_kw=740.0,
            forecast_updated=1.8e9, max_staleness_s=21600.0, degraded=False),
        "record_provider_request": lambda i: metrics.record_provider_request(
            "wattTime", duration_s=0.2, error=TimeoutError() if i % 10 == 0 else None),
        "record_ledger_run": lambda i: metrics.record_ledger_run(
            namespace=f"team-{i % 20}", site=sites[i % len(sites)], kwh_by_source=ledger,
            it_kwh=3.2, emissions_g=400.0, saved_g=900.0, provenance="measured"),
    }
    print(f"baseline Counter.labels().inc(): {baseline * 1e6:.2f} us/call")
    for name, fn in cases.items():
        cost = per_call(fn, args.calls)
        print(f"{name:26s} {cost * 1e6:7.2f} us/call  {cost / baseline:5.1f}x baseline")
    renders = 50
    started = time.perf_counter()
    for _ in range(renders):
        body = generate_latest(metrics.registry())
    render_s = (time.perf_counter() - started) / renders
    print(f"/metrics render, {args.sites} sites: {render_s * 1e3:.2f} ms, {len(body)} bytes")


if __name__ == "__main__":
    main()
