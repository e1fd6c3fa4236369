"""The operator's compact memory of each ComputeJob: what acting on it needs, no more.

The watch handler turns every ComputeJob event into a :class:`JobRecord` (the scheduler
steps records, not bodies). Ten thousand deferred jobs must fit in a small pod: a
ComputeJob body as parsed JSON is some 10 KB and the parsed pydantic model another 8 KB,
while a record is the planner's :class:`~suandian.planner.JobTerms`, the few status
fields the controller reads, and identity. The pod template (the bulk of a ComputeJob)
is kept only until the child Job exists; after that, moving a job needs only the user's
node affinity, which is kept on its own.

The API objects stay the truth: a record is rebuilt from every event, and the status
fields the controller wrote but the watch has not echoed yet are overlaid until it does
(so a step between a write and its echo neither writes nor announces twice).

The book is also where a job's power estimate is chosen (:func:`power_estimate`): a job
without ``spec.power`` whose template the learned model knows is planned at the watts
measured for it (:mod:`suandian.measure.learned`), and finished jobs' measurements teach
the model as they are watched, so a restarted operator relearns from the listing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import MappingProxyType
from typing import Any, cast

from suandian.api.validation import parse_computejob
from suandian.errors import InvalidSpecError
from suandian.measure.learned import Estimate, PowerModel, template_key
from suandian.planner import JobTerms
from suandian.units import parse_time

__all__ = ["STATUS_KEYS", "JobBook", "JobRecord", "record_from_body"]

API_VERSION = "suandian.io/v1alpha1"
KIND = "ComputeJob"

STATUS_KEYS = frozenset({
    "phase", "site", "plannedStart", "latestStart", "windows", "reason", "startedAt",
    "observedGeneration", "conditions", "emissions", "expectedGreenFraction", "energyKWh",
    "jobName", "powerEstimate", "deadlineMissed",
})
"""The ``status`` fields the controller reads back (everything else it only writes)."""

NOTHING_WRITTEN: Mapping[str, Any] = MappingProxyType({})
"""``JobRecord.written`` when every write was echoed: one shared empty mapping, not an
empty dict per record (64 bytes each, on ten thousand records that wait)."""


@dataclass(slots=True, eq=False)
class JobRecord:
    """One ComputeJob as the controller needs it (see the module docstring).

    ``terms`` is None when the spec is invalid (``problem`` says why, naming fields);
    ``template`` is ``spec.template`` until the child Job exists; ``written`` holds the
    status fields written but not yet seen back from the watch.
    """

    uid: str
    namespace: str
    name: str
    created: datetime
    generation: int | None
    terms: JobTerms | None
    problem: str | None
    template: Mapping[str, Any] | None
    user_affinity: Mapping[str, Any] | None
    observed_text: str  # the read status fields as compact JSON (see ``observed``)
    written: Mapping[str, Any] = field(default_factory=lambda: NOTHING_WRITTEN)
    power: Estimate | None = None  # the power the plan uses and where it came from

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def observed(self) -> dict[str, Any]:
        """The status fields in :data:`STATUS_KEYS` as last watched (a fresh dict).

        Kept as text: as decoded JSON every key and value is an object of its own, some
        3 KB a job; as text some 700 bytes, decoded in microseconds when a step reads it.
        """
        return cast(dict[str, Any], json.loads(self.observed_text))

    @property
    def status(self) -> dict[str, Any]:
        """The status as last watched, with our unechoed writes on top."""
        observed = self.observed
        if self.written:
            if all(observed.get(k) == v for k, v in self.written.items()):
                self.written = NOTHING_WRITTEN  # the watch has caught up
            else:
                return {**observed, **self.written}
        return observed

    def wrote(self, fields: Mapping[str, Any]) -> None:
        """Remember status fields just written, until the watch shows them (it may have
        already: the echo can come before the write's own answer)."""
        observed = self.observed
        merged = {**self.written, **{k: v for k, v in fields.items() if k in STATUS_KEYS}}
        self.written = {k: v for k, v in merged.items()
                        if observed.get(k) != v} or NOTHING_WRITTEN

    def ref(self) -> dict[str, Any]:
        """The smallest body events and owner references are built from."""
        return {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"name": self.name, "namespace": self.namespace, "uid": self.uid}}

    def manifest(self) -> dict[str, Any]:
        """A ComputeJob manifest with the template (for building the child Job)."""
        if self.template is None:
            raise LookupError(f"the template of {self.key} is not kept")
        return {**self.ref(), "spec": {"template": self.template}}


def terms_key(terms: JobTerms) -> tuple[Any, ...]:
    """A hashable key equal for equal terms (their dicts as sorted item tuples)."""
    return (terms.power_w, terms.duration, terms.complete_by, terms.max_delay,
            terms.not_before, tuple(sorted(terms.total.items())),
            tuple(sorted(terms.per_pod.items())), terms.interruptible, terms.sites,
            tuple(sorted(terms.site_labels.items())) if terms.site_labels else None,
            terms.min_green_fraction, terms.priority, terms.policy, terms.gpu_model)


Estimator = Callable[[Mapping[str, Any], JobTerms], tuple[JobTerms, Estimate]]


def power_estimate(model: PowerModel, body: Mapping[str, Any], terms: JobTerms
                   ) -> tuple[JobTerms, Estimate]:
    """The terms a job is planned with and its estimate: ``declared`` (``spec.power``),
    ``learned`` (the model knows its template: its measured watts replace the estimate
    from requests, GPU jobs included) or ``default`` (from its requests)."""
    spec = body.get("spec") or {}
    job = (spec.get("template") or {}).get("spec") or {}
    containers = ((job.get("template") or {}).get("spec") or {}).get("containers") or []
    namespace = str((body.get("metadata") or {}).get("namespace") or "default")
    key = template_key(namespace, [c for c in containers if isinstance(c, Mapping)],
                       terms.per_pod, int(job.get("parallelism") or 1))
    if spec.get("power") is not None:
        return terms, Estimate("declared", terms.power_w, template=key)
    learned = model.estimate(key)
    if learned is None:
        return terms, Estimate("default", terms.power_w, template=key)
    watts, runs = learned
    return replace(terms, power_w=watts), Estimate("learned", watts, runs, key)


def record_from_body(body: Mapping[str, Any], previous: JobRecord | None = None,
                     share: Callable[[JobTerms], JobTerms] | None = None,
                     estimate: Estimator | None = None) -> JobRecord:
    """A record from a watched ComputeJob body (parsing the spec once per generation).

    Raises ``KeyError``/``ValueError`` only for a body the API server would not serve
    (no uid, no creation time); an invalid spec is recorded, not raised.
    """
    meta = body["metadata"]
    generation = meta.get("generation")
    created = parse_time(meta["creationTimestamp"])
    raw_status = body.get("status") or {}
    observed = {k: v for k, v in raw_status.items() if k in STATUS_KEYS}
    spec = body.get("spec") or {}
    template = spec.get("template") if isinstance(spec.get("template"), Mapping) else None
    pod_spec = (((template or {}).get("spec") or {}).get("template") or {}).get("spec") or {}
    terms: JobTerms | None
    problem: str | None = None
    power: Estimate | None = None
    if previous is not None and previous.generation == generation and (
            previous.terms is not None or previous.problem is not None):
        terms, problem, power = previous.terms, previous.problem, previous.power
    else:
        try:
            terms = JobTerms.from_computejob(parse_computejob(dict(body), created=created))
            if estimate is not None:
                terms, power = estimate(body, terms)
            if share is not None:
                terms = share(terms)
        except InvalidSpecError as exc:
            terms = None
            problem = "; ".join(str(e) for e in exc.errors) or str(exc)
    child_made = bool(observed.get("jobName")) and observed.get("observedGeneration") == generation
    record = JobRecord(
        uid=str(meta["uid"]), namespace=sys.intern(str(meta.get("namespace") or "default")),
        name=str(meta["name"]), created=created, generation=generation, terms=terms,
        problem=problem, template=None if child_made else template,
        user_affinity=pod_spec.get("affinity") if isinstance(pod_spec, Mapping) else None,
        observed_text=json.dumps(observed, separators=(",", ":")), power=power,
    )
    # our writes not seen yet stay on top; once the watch shows them, they go
    if previous is not None and any(observed.get(k) != v
                                    for k, v in previous.written.items()):
        record.written = previous.written
    return record


class JobBook:
    """Records by ComputeJob uid."""

    SHARED_TERMS = 4096  # distinct terms kept for sharing (then the cache starts over)

    def __init__(self, power_model: PowerModel | None = None) -> None:
        self._records: dict[str, JobRecord] = {}
        self._terms: dict[tuple[Any, ...], JobTerms] = {}
        self._estimates: dict[Estimate, Estimate] = {}
        self.power_model = power_model

    def estimate(self, body: Mapping[str, Any], terms: JobTerms
                 ) -> tuple[JobTerms, Estimate]:
        """:func:`power_estimate` with the book's model, estimates shared like terms."""
        assert self.power_model is not None
        terms, found = power_estimate(self.power_model, body, terms)
        if found not in self._estimates and len(self._estimates) >= self.SHARED_TERMS:
            self._estimates.clear()
        return terms, self._estimates.setdefault(found, found)

    def share(self, terms: JobTerms) -> JobTerms:
        """The one object for terms equal to these: jobs made from one template (arrays
        of jobs, a pipeline's runs) share their terms instead of holding a copy each."""
        key = terms_key(terms)
        if key not in self._terms and len(self._terms) >= self.SHARED_TERMS:
            self._terms.clear()
        return self._terms.setdefault(key, terms)

    def get(self, uid: str) -> JobRecord | None:
        return self._records.get(uid)

    def observe(self, body: Mapping[str, Any]) -> JobRecord:
        """Record a watched body (replacing what was known of that job)."""
        uid = str(body["metadata"]["uid"])
        if self.power_model is not None:
            self.power_model.learn_from_status(uid, body.get("status") or {})
        learner = self.estimate if self.power_model is not None else None
        record = record_from_body(body, self._records.get(uid), share=self.share,
                                  estimate=learner)
        self._records[uid] = record
        return record

    def uids_named(self, names: Collection[str]) -> list[str]:
        """The uids of the jobs named ``namespace/name`` in ``names`` (a scan: for the
        few names a status keeps, not for every step)."""
        return [r.uid for r in self._records.values() if r.key in names]

    def forget(self, uid: str) -> None:
        self._records.pop(uid, None)

    def clear(self) -> None:
        self._records.clear()
