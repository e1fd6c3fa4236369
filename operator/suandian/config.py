"""The operator's own settings, typed, from environment variables.

Kopf's settings (peering, watching, posting) are kopf's; these are Suandian's: how it
plans and how it treats jobs and pods. Each setting is one environment variable,
``SUANDIAN_`` + its name in upper case (``SUANDIAN_PLAN_BATCH_WINDOW=0.05``); ``suandian
run --help`` lists them, and docs/operator.md explains each. Durations accept ``90s``,
``5m``, ``1h`` (or a number of seconds).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import timedelta
from typing import Any

from suandian.errors import FieldError, InvalidSpecError
from suandian.links import DEFAULT_GBPS, DEFAULT_KWH_PER_GB, parse_link_text
from suandian.units import parse_duration

__all__ = ["DEFAULT_SIMPLE_LEVELS", "ENV_PREFIX", "FULL_ROUNDS", "MODES", "Settings",
           "simple_levels"]

ENV_PREFIX = "SUANDIAN_"
MODES = ("native", "kueue", "karmada")
FULL_ROUNDS = ("process", "thread")
MEASURE_EXPORTERS = ("kepler", "dcgm")
"""The exporters measured energy is read from (``SUANDIAN_MEASURE_EXPORTERS``)."""
KEPLER_METRICS = ("pod", "container")
"""Kepler's metric families: 0.10 and later (pod), 0.7 and earlier (container)."""


DEFAULT_SIMPLE_LEVELS = "1=25,2=50,3=75"
"""The share of import each OpenADR ``SIMPLE`` level sheds, percent: 75 at level 3, as a
Shanghai computing centre cut its load in a 2025 trial."""


def simple_levels(text: str) -> dict[int, float]:
    """``"1=25,2=50,3=75"`` as ``{1: 25.0, 2: 50.0, 3: 75.0}``: each ``SIMPLE`` level's
    reduction, percent. ValueError says what is wrong."""
    out: dict[int, float] = {}
    for item in (i.strip() for i in text.split(",")):
        level, sep, percent = item.partition("=")
        try:
            key, value = int(level), float(percent)
        except ValueError:
            raise ValueError(f"{item!r} is not level=percent, e.g. 3=75") from None
        if not sep or key not in (1, 2, 3) or not 0 < value <= 100 or key in out:
            raise ValueError(f"{item!r}: give each level 1, 2 or 3 once, with a percent "
                             "within 0..100 (more than 0), e.g. 3=75")
        out[key] = value
    return out


@dataclass(frozen=True)
class Settings:
    """Suandian's operator settings (see the module docstring for how to set them)."""

    plan_batch_window: float = 0.05
    """Seconds to gather job arrivals into one planning round (latency vs. batching)."""
    replan_interval: timedelta = timedelta(minutes=5)
    """Re-plan deferred work at least this often, even if nothing changed."""
    horizon_slots: int = 192
    """How many forecast slots the planner looks ahead (15-minute slots: 48 h)."""
    safety_margin: timedelta = timedelta(minutes=15)
    """Start this long before the last moment that would still meet the deadline."""
    risk_aversion: float = 0.5
    """0 plans on the median forecast, 1 on the pessimistic (P10) one."""
    move_threshold_g: float = 100.0
    """A re-plan moves a deferred job only when the move saves more than this many grams
    of CO2, or ``move_threshold_share`` of its emissions if that is more, or when its
    decision no longer holds (room, deadline). 0 and 0: every re-plan may move it."""
    move_threshold_share: float = 0.05
    """The share of a deferred job's expected emissions a move must save (see
    ``move_threshold_g``)."""
    delay_penalty_share_h: float = 0.001
    """What an hour of waiting costs, as a share of the spread of a kWh's cost at the
    site (0.001: 0.1% an hour): a tie-breaker for earlier starts that is right on a clean
    grid and a dirty one alike; on a grid-only site it grows with capacity pressure."""
    repair_work: int = 4000
    """How many feasibility checks the planner may spend making room for a job that does
    not fit, by moving waiting jobs within their windows (docs/planner.md)."""
    repair_jobs: int = 60
    """How many waiting jobs one such repair may move at most."""
    expected_arrivals: bool = True
    """Plan the work expected to arrive (what arrived a day earlier) beside the jobs that
    exist, so that deferring today's jobs leaves room for tomorrow's; it holds capacity
    and grid import, never green supply, and gives way to any real job (docs/planner.md)."""
    data_bandwidth_gbps: float = DEFAULT_GBPS
    """Sustained bandwidth between two sites, Gbit/s, for jobs that declare the data they
    read (``spec.data``): moving 500 GB at 10 Gbit/s takes about 7 minutes."""
    data_kwh_per_gb: float = DEFAULT_KWH_PER_GB
    """Network energy per GB moved between two sites, kWh (Aslan et al. 2018: 0.06
    kWh/GB, a conservative figure; docs/planner.md)."""
    data_links: str = ""
    """Links that differ from those defaults, ``a:b=25Gbps,0.03kWh;c:d=1Gbps`` (site
    names; a link serves both ways; a figure left out is the default)."""
    pod_default_duration: timedelta = timedelta(hours=1)
    """Run time of an opted-in Pod without a ``suandian.io/duration`` annotation."""
    pod_default_max_delay: timedelta = timedelta(hours=12)
    """How long an opted-in Pod without a deadline annotation may wait."""
    pod_default_watts: float = 0.0
    """Power of an opted-in Pod without ``suandian.io/power-watts`` (0: from requests)."""
    api_workers: int = 8
    """Concurrent connections for Kubernetes API calls made outside kopf."""
    api_timeout: float = 30.0
    """Seconds before a Kubernetes API call made outside kopf gives up."""
    retry_delay: float = 5.0
    """Seconds to wait before retrying after a failed Kubernetes API call."""
    mode: str = "native"
    """How decisions are carried out: ``native`` (Suandian suspends and unsuspends child
    Jobs itself), ``kueue`` (Kueue admits them: Suandian holds each behind its value in
    ``kueue.x-k8s.io/admission-gated-by`` until the start, and plans on Kueue's quota) or
    ``karmada`` (the operator runs on a Karmada control plane: each child Job goes to the
    chosen member cluster through a PropagationPolicy of its own, its dispatch held until
    the start; capacity is what Karmada reports of each member)."""
    kueue_queue: str = "default"
    """Kueue mode: the LocalQueue of child Jobs whose template names none
    (``kueue.x-k8s.io/queue-name``)."""
    admission_timeout: timedelta = timedelta(minutes=2)
    """Kueue mode: how long a released job may wait for admission before it is re-planned
    and a ``NotAdmitted`` event says what Kueue said."""
    full_rounds: str = "process"
    """Where full planning rounds are computed: ``process`` (a planner process beside the
    operator, so its event loop keeps a core to itself and arrivals are decided at once
    while a round of thousands computes) or ``thread`` (a worker thread of the operator
    itself: one process, sharing its core with the event loop)."""
    measure_url: str = ""
    """Prometheus holding Kepler or DCGM-exporter series (e.g.
    ``http://prometheus.monitoring:9090``): finished jobs' energy is read from it
    (docs/measurement.md). Empty: every figure is modelled."""
    measure_exporters: str = "kepler,dcgm"
    """Which exporters to read: ``kepler``, ``dcgm`` or ``kepler,dcgm``."""
    measure_kepler_metrics: str = "pod"
    """Kepler's metric family: ``pod`` (Kepler 0.10 and later, ``kepler_pod_cpu_joules_total``)
    or ``container`` (Kepler 0.7 and earlier, ``kepler_container_joules_total``)."""
    measure_interval: timedelta = timedelta(seconds=30)
    """The exporters' scrape interval: samples more than three intervals apart are not
    joined (that stretch is modelled, and the status says so)."""
    measure_timeout: float = 10.0
    """Seconds before a Prometheus query gives up (the job is then accounted modelled)."""
    measure_token: str = field(default="", repr=False)  # never in logs
    """Bearer token for that Prometheus (the chart sets it from a Secret)."""
    measure_username: str = ""
    """Basic-auth user for that Prometheus (the chart sets it from a Secret)."""
    measure_password: str = field(default="", repr=False)  # never in logs
    """Basic-auth password for that Prometheus (the chart sets it from a Secret)."""
    tariff_weight_g_per_unit: float = 10_000.0
    """Grams of CO2 one unit of a tariff's currency weighs against carbon when a Price
    GridEvent is planned (10,000: a carbon price of 100 per tonne, about China's national
    market in yuan; 0: tariffs change nothing)."""
    openadr_vtn_url: str = ""
    """The utility's OpenADR 2.0b VTN (e.g. ``https://vtn.example.com/OpenADR2/Simple/2.0b``):
    the operator registers as a VEN, turns its events into GridEvents, opts in or out as
    the plan can deliver, and reports what the sites deliver (docs/grid-events.md).
    Empty: no VEN."""
    openadr_ven_name: str = "suandian"
    """The VEN's name at the VTN."""
    openadr_sites: str = ""
    """Comma list of the PowerSites an event concerns when it targets no resource by name
    (an event's ``resource_id`` targets name PowerSites)."""
    openadr_mandatory: bool = False
    """Whether the VTN's events are mandatory (met as far as deadlines allow) or voluntary
    (declined, and opted out of, when the plan cannot meet them whole)."""
    openadr_simple_levels: str = DEFAULT_SIMPLE_LEVELS
    """What each OpenADR ``SIMPLE`` level (1 moderate, 2 high, 3 special) sheds, as
    ``level=percent`` of the site's import without the event."""
    openadr_cert: str = ""
    """The VEN's TLS client certificate (PEM file), with ``openadr_key``; empty: none."""
    openadr_key: str = ""
    """The VEN's TLS client key (PEM file)."""
    openadr_ca: str = ""
    """The CA bundle that signed the VTN's certificate (PEM file); empty: the system's."""
    openadr_vtn_fingerprint: str = ""
    """The fingerprint of the certificate the VTN signs its messages with (OpenADR's form,
    ``AB:CD:…``, ten pairs, as the VTN prints it): messages signed otherwise are ignored.
    Empty: the VTN's signatures are not checked (TLS still authenticates its server)."""
    openadr_answer_timeout: timedelta = timedelta(seconds=30)
    """How long an OpenADR event waits for the plan's answer before the VEN opts out."""
    openadr_report_interval: timedelta = timedelta(minutes=1)
    """How often the VEN reports the delivered power to the VTN."""
    power_model_templates: int = 1024
    """How many job templates the learned power model remembers (least recently used
    forgotten first)."""
    peering_lifetime: int = 60
    """Seconds a replica's peering entry counts as alive unrenewed: when the active
    replica dies without a word (kill -9, a lost node), the standby takes over after about
    this long. Lower fails over sooner and renews more often (every 5 to 10 s less)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``SUANDIAN_*`` variables; InvalidSpecError names each bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for f in fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name not in env:
                continue
            try:
                values[f.name] = _convert(f.type, env[name])
            except ValueError as exc:
                errors.append(FieldError(name, str(exc)))
        if errors:
            raise InvalidSpecError("settings", errors)
        settings = cls(**values)
        problems = settings.problems()
        if problems:
            raise InvalidSpecError("settings", problems)
        return settings

    def problems(self) -> list[FieldError]:
        """What is out of range (an empty list when all is well)."""
        out = []
        if not 0 <= self.plan_batch_window <= 10:
            out.append(FieldError(_variable("plan_batch_window"), "must be within 0..10 seconds"))
        if not 0 <= self.risk_aversion <= 1:
            out.append(FieldError(_variable("risk_aversion"), "must be within 0..1"))
        if self.move_threshold_g < 0:
            out.append(FieldError(_variable("move_threshold_g"), "must not be negative"))
        if not 0 <= self.move_threshold_share <= 1:
            out.append(FieldError(_variable("move_threshold_share"), "must be within 0..1"))
        if not 0 <= self.delay_penalty_share_h <= 1:
            out.append(FieldError(_variable("delay_penalty_share_h"),
                                  "must be within 0..1 (a share of the cost spread an hour)"))
        for name in ("repair_work", "repair_jobs"):
            if getattr(self, name) < 0:
                out.append(FieldError(_variable(name), "must not be negative (0: no repair)"))
        if not 1 <= self.horizon_slots <= 2000:
            out.append(FieldError(_variable("horizon_slots"), "must be within 1..2000"))
        if self.mode not in MODES:
            out.append(FieldError(_variable("mode"), f"{self.mode!r} is not one of "
                                                     f"{', '.join(MODES)}"))
        if self.full_rounds not in FULL_ROUNDS:
            out.append(FieldError(_variable("full_rounds"), f"{self.full_rounds!r} is not "
                                                            f"one of {', '.join(FULL_ROUNDS)}"))
        if not self.kueue_queue:
            out.append(FieldError(_variable("kueue_queue"), "name a LocalQueue"))
        if not 10 <= self.peering_lifetime <= 3600:
            out.append(FieldError(_variable("peering_lifetime"), "must be within 10..3600 seconds"))
        try:
            simple_levels(self.openadr_simple_levels)
        except ValueError as exc:
            out.append(FieldError(_variable("openadr_simple_levels"), str(exc)))
        out += self._data_problems()
        out += self._measure_problems()
        if self.api_workers < 1:
            out.append(FieldError(_variable("api_workers"), "must be at least 1"))
        for name in ("replan_interval", "pod_default_duration", "pod_default_max_delay",
                     "admission_timeout"):
            if getattr(self, name) <= timedelta(0):
                out.append(FieldError(_variable(name), "must be longer than zero"))
        return out

    def _data_problems(self) -> list[FieldError]:
        out = []
        if not 0 < self.data_bandwidth_gbps <= 1e6:
            out.append(FieldError(_variable("data_bandwidth_gbps"),
                                  "must be within 0..1e6 Gbit/s (more than 0), e.g. 10"))
        if not 0 <= self.data_kwh_per_gb <= 100:
            out.append(FieldError(_variable("data_kwh_per_gb"),
                                  "must be within 0..100 kWh per GB, e.g. 0.06"))
        try:
            parse_link_text(self.data_links)
        except ValueError as exc:
            out.append(FieldError(_variable("data_links"), str(exc)))
        return out

    @property
    def measure_exporter_names(self) -> tuple[str, ...]:
        """``measure_exporters`` as names (``"kepler, dcgm"`` → ``("kepler", "dcgm")``)."""
        return tuple(n.strip() for n in self.measure_exporters.split(",") if n.strip())

    def _measure_problems(self) -> list[FieldError]:
        out = []
        if self.measure_url and not self.measure_url.startswith(("http://", "https://")):
            out.append(FieldError(_variable("measure_url"),
                                  f"{self.measure_url!r} is no http:// or https:// URL"))
        names = self.measure_exporter_names
        wrong = [n for n in names if n not in MEASURE_EXPORTERS]
        if wrong or not names:
            out.append(FieldError(_variable("measure_exporters"),
                                  "name kepler, dcgm or kepler,dcgm"
                                  + (f", not {', '.join(wrong)}" if wrong else "")))
        if self.measure_kepler_metrics not in KEPLER_METRICS:
            out.append(FieldError(_variable("measure_kepler_metrics"),
                                  f"{self.measure_kepler_metrics!r} is not pod or container"))
        if self.measure_interval <= timedelta(0):
            out.append(FieldError(_variable("measure_interval"), "must be longer than zero"))
        if not 0 < self.measure_timeout <= 300:
            out.append(FieldError(_variable("measure_timeout"), "must be within 0..300 seconds"))
        if self.measure_token and self.measure_username:
            out.append(FieldError(_variable("measure_token"),
                                  "set a bearer token or a basic-auth user, not both"))
        if self.power_model_templates < 1:
            out.append(FieldError(_variable("power_model_templates"), "must be at least 1"))
        return out

    @classmethod
    def describe(cls) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) of every setting, for ``--help`` and the docs."""
        import inspect

        source = inspect.getsource(cls)
        out = []
        for f in fields(cls):
            doc = ""
            marker = f"    {f.name}:"
            if marker in source:
                after = source.split(marker, 1)[1].split('"""')
                doc = after[1].strip() if len(after) > 1 else ""
            default = f.default
            shown = _show(default)
            out.append((ENV_PREFIX + f.name.upper(), shown, " ".join(doc.split())))
        return out


def _variable(field: str) -> str:
    """The environment variable of a setting (what the user set, and must change)."""
    return ENV_PREFIX + field.upper()


def _convert(kind: Any, raw: str) -> Any:
    text = raw.strip()
    if kind in (timedelta, "timedelta"):
        try:
            return timedelta(seconds=float(text))
        except ValueError:
            return parse_duration(text)
    if kind in (float, "float"):
        try:
            return float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if kind in (str, "str"):
        return text
    if kind in (int, "int"):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a whole number") from None
    if kind in (bool, "bool"):
        if text.lower() in ("true", "1", "yes", "on"):
            return True
        if text.lower() in ("false", "0", "no", "off"):
            return False
        raise ValueError(f"{raw!r} is not true or false")
    raise ValueError(f"unsupported setting type {kind!r}")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, timedelta):
        seconds = int(value.total_seconds())
        if seconds % 3600 == 0:
            return f"{seconds // 3600}h"
        if seconds % 60 == 0:
            return f"{seconds // 60}m"
        return f"{seconds}s"
    return str(value)
