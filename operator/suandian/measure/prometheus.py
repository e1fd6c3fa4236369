"""Read a job's pods' energy from Kepler and DCGM-exporter series in Prometheus.

Raw samples, not ``query_range``: a range selector ``metric{...}[Ns]`` evaluated at the
window's end (``GET /api/v1/query``) returns exactly what was scraped, so a series that
stopped is seen to stop (``query_range`` would repeat its last value for the 5-minute
lookback) and :mod:`.series` does the reset-aware sums itself. Long runs are read in
windows of :data:`WINDOW_S`.

Series read (a job's pods are selected by namespace and pod name, so pods of other jobs
on the same node never count):

- **Kepler ≥ 0.10** (``kepler_metrics="pod"``): ``kepler_pod_cpu_joules_total``
  (counter, J; labels ``pod_name``, ``pod_namespace``, ``zone``, ``state``), zones
  ``package`` and ``dram`` (``core`` and ``uncore`` are inside ``package``); and, when
  DCGM is not also read, the GPU gauge ``kepler_pod_gpu_watts`` (W, experimental in
  Kepler 0.11).
- **Kepler ≤ 0.7** (``kepler_metrics="container"``): ``kepler_container_joules_total``
  (counter, J; ``pod_name``, ``container_namespace``, ``container_name``, ``mode`` idle
  and dynamic, both counted; GPUs included), or, when DCGM is also read,
  ``kepler_container_package_joules_total`` + ``kepler_container_dram_joules_total``.
- **DCGM-exporter**: ``DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION`` (counter, mJ since boot;
  labels ``gpu``, ``UUID``, ``Hostname``, ``pod``, ``namespace``, ``container`` with the
  kubelet pod-resources mapping on), else ``DCGM_FI_DEV_POWER_USAGE`` (gauge, W). The
  ``pod``/``namespace`` labels must be the exporter's (``honorLabels: true`` on its
  ServiceMonitor), not the scrape target's.

A series' identity is its metric name and the labels that say what was measured (pod,
namespace, zone or mode, container, GPU UUID): the exporter's own pod and instance
labels are left out, so an exporter that restarted continues the same series (and its
counter's drop is a reset).
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from suandian.config import KEPLER_METRICS, MEASURE_EXPORTERS
from suandian.errors import ProviderResponseError
from suandian.forecast.providers.base import HttpClient, RetryPolicy
from suandian.measure.series import Pieces, Series, merge, pieces_of

__all__ = ["EXPORTERS", "KEPLER_METRICS", "MeasureConfig", "Query", "describe",
           "parse_matrix", "pod_pattern", "queries_for", "read_job", "selector"]

EXPORTERS = MEASURE_EXPORTERS  # the settings' names, one place
WINDOW_S = 6 * 3600


@dataclass(frozen=True)
class MeasureConfig:
    """Where and how to read (the operator's ``SUANDIAN_MEASURE_*`` settings)."""

    url: str
    exporters: tuple[str, ...] = EXPORTERS
    kepler_metrics: str = "pod"
    token: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    interval_s: float = 30.0
    timeout_s: float = 10.0
    attempts: int = 2  # per query: a failing Prometheus holds a completion ~2 timeouts

    @property
    def max_gap_s(self) -> float:
        """Samples further apart than this are not joined (three scrape intervals)."""
        return 3.0 * self.interval_s

    def headers(self) -> dict[str, str]:
        if self.token:
            return {"Authorization": f"Bearer {self.token}"}
        if self.username:
            pair = f"{self.username}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {}


@dataclass(frozen=True)
class Query:
    """One metric to read for an exporter: its selector labels, identity labels, kind."""

    exporter: str
    metric: str
    namespace_label: str
    pod_label: str
    identity: tuple[str, ...]
    kind: str = "counter"
    scale: float = 1.0
    extra: Mapping[str, str] = field(default_factory=dict)  # more =~ matchers
    fallback: bool = False  # read only when the exporter's other queries found nothing


def queries_for(config: MeasureConfig) -> list[Query]:
    """The metrics read for the configured exporters (see the module docstring)."""
    both = "dcgm" in config.exporters
    out: list[Query] = []
    if "kepler" in config.exporters:
        if config.kepler_metrics == "pod":
            out.append(Query("kepler", "kepler_pod_cpu_joules_total", "pod_namespace",
                             "pod_name", ("pod_name", "pod_namespace", "zone"),
                             extra={"zone": "package|dram"}))
            if not both:
                out.append(Query("kepler", "kepler_pod_gpu_watts", "pod_namespace",
                                 "pod_name", ("pod_name", "pod_namespace", "gpu"),
                                 kind="gauge"))
        else:
            ident: tuple[str, ...] = ("pod_name", "container_namespace", "container_name",
                                      "mode")
            names = (("kepler_container_package_joules_total",
                      "kepler_container_dram_joules_total") if both
                     else ("kepler_container_joules_total",))
            out += [Query("kepler", n, "container_namespace", "pod_name", ident)
                    for n in names]
    if both:
        ident = ("pod", "namespace", "container", "UUID", "gpu")
        out.append(Query("dcgm", "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "namespace", "pod",
                         ident, scale=1e-3))
        out.append(Query("dcgm", "DCGM_FI_DEV_POWER_USAGE", "namespace", "pod", ident,
                         kind="gauge", fallback=True))
    return out


def pod_pattern(job_name: str, indexed: bool = False) -> str:
    """A regular expression for the pods of a ``batch/v1`` Job: ``<job>-<5 chars>``, or
    ``<job>-<index>-<5 chars>`` for an Indexed Job (PromQL anchors it at both ends). The
    suffix has no ``-``, so the pods of a Job named ``<job>-x`` never match."""
    index = "[0-9]+-" if indexed else ""
    return re.escape(job_name) + "-" + index + "[a-z0-9]{5}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def selector(q: Query, namespace: str, pods: str) -> str:
    """The PromQL selector of ``q`` for pods matching ``pods`` in ``namespace``."""
    matchers = [f"{q.namespace_label}={_quote(namespace)}", f"{q.pod_label}=~{_quote(pods)}",
                *(f"{k}=~{_quote(v)}" for k, v in q.extra.items())]
    return q.metric + "{" + ",".join(matchers) + "}"


async def _samples(client: HttpClient, config: MeasureConfig, q: Query, sel: str,
                   lo: float, hi: float) -> list[Series]:
    url = config.url.rstrip("/") + "/api/v1/query"
    out: list[Series] = []
    end = lo
    while end < hi:
        start, end = end, min(hi, end + WINDOW_S)
        span = max(1, math.ceil(end - start))
        body = await client.get_json(url, params={"query": f"{sel}[{span}s]",
                                                  "time": f"{end:.3f}"},
                                     headers=config.headers())
        out += parse_matrix(q, body)
    return out


def parse_matrix(q: Query, body: Any) -> list[Series]:
    """The series of a ``/api/v1/query`` answer for a range selector."""
    try:
        if body.get("status") != "success":
            raise ProviderResponseError("measure", "ClientError",
                                        f"{q.metric}: {body.get('errorType')}: "
                                        f"{body.get('error')}")
        data = body["data"]
        if data.get("resultType") != "matrix":
            raise ProviderResponseError("measure", "MalformedResponse",
                                        f"{q.metric}: expected a matrix")
        out = []
        for item in data["result"]:
            labels = item["metric"]
            pairs = item["values"]
            out.append(Series(
                (q.metric, *(str(labels.get(k, "")) for k in q.identity)),
                np.array([float(t) for t, _ in pairs]),
                np.array([float(v) for _, v in pairs]), q.kind, q.scale))
        return out
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderResponseError("measure", "MalformedResponse",
                                    f"{q.metric}: bad field {exc}") from exc


async def read_job(config: MeasureConfig, namespace: str, pods: str,
                   run: tuple[float, float], *, http: Mapping[str, Any] | None = None,
                   policy: RetryPolicy | None = None) -> dict[str, Pieces]:
    """Each configured exporter's pieces for the pods matching ``pods`` over ``run``
    (Unix seconds). Raises :class:`~suandian.errors.ProviderError` when Prometheus
    fails; an exporter with no series gives empty pieces."""
    lo, hi = run
    gap = config.max_gap_s
    policy = policy or RetryPolicy(attempts=config.attempts, timeout_s=config.timeout_s,
                                   backoff_base_s=0.5, backoff_max_s=2.0)
    found: dict[str, list[Series]] = {name: [] for name in config.exporters}
    async with HttpClient("measure", policy, **dict(http or {})) as client:
        for q in queries_for(config):
            if q.fallback and found[q.exporter]:
                continue
            found[q.exporter] += await _samples(client, config, q, selector(q, namespace, pods),
                                                lo - gap, hi + gap)
    return {name: Pieces.join(pieces_of(s, (lo, hi), gap) for s in merge(series))
            for name, series in found.items()}


def describe(queries: Sequence[Query], namespace: str, pods: str) -> list[str]:
    """The selectors a read would use (for docs, errors and tests)."""
    return [selector(q, namespace, pods) for q in queries]
