"""Job records: compact, parsed once per generation, the template only until the child
exists, and our own unechoed status writes overlaid."""

from __future__ import annotations

from datetime import timedelta

from tests.support.memory import deep_size
from tests.support.objects import computejob

from suandian.api.validation import parse_computejob
from suandian.controllers.book import JobBook, record_from_body


def body(generation: int = 1, status: dict | None = None,  # type: ignore[type-arg]
         duration: str = "2h") -> dict:  # type: ignore[type-arg]
    manifest = computejob("train", duration=duration, max_delay="12h")
    manifest["metadata"].update(uid="u1", generation=generation,
                                creationTimestamp="2026-06-21T00:00:00Z")
    manifest["status"] = status or {}
    return manifest


def test_a_record_holds_the_terms_the_identity_and_the_read_status_fields() -> None:
    record = record_from_body(body(status={"phase": "Deferred", "site": "gansu",
                                           "greenPercent": 80}))
    assert (record.uid, record.namespace, record.name, record.generation) == (
        "u1", "batch", "train", 1)
    assert record.terms is not None and record.terms.duration == timedelta(hours=2)
    assert record.terms.power_w == 50_000.0 and record.problem is None
    assert record.status == {"phase": "Deferred", "site": "gansu"}  # only what it reads
    assert record.manifest()["spec"]["template"]["spec"]["template"]["spec"]["containers"]


def test_the_template_is_dropped_once_the_child_exists_for_this_generation() -> None:
    made = {"jobName": "train", "observedGeneration": 1, "phase": "Deferred"}
    assert record_from_body(body(status=made)).template is None
    # an edited spec (generation 2) needs the new template to rebuild the child
    assert record_from_body(body(generation=2, status=made)).template is not None


def test_a_deferred_record_is_a_small_fraction_of_the_parsed_model() -> None:
    made = {"jobName": "train", "observedGeneration": 1, "phase": "Deferred",
            "site": "gansu", "plannedStart": "2026-06-21T10:00:00Z",
            "latestStart": "2026-06-21T20:00:00Z", "reason": "waits for the wind"}
    record = record_from_body(body(status=made))
    model = parse_computejob(body(status=made))
    assert deep_size(record) < deep_size(model) / 2
    assert deep_size(record) < 4096


def test_the_spec_is_parsed_once_per_generation() -> None:
    book = JobBook()
    first = book.observe(body())
    again = book.observe(body(status={"phase": "Deferred"}))
    assert again.terms is first.terms  # same generation: not parsed again
    edited = book.observe(body(generation=2, duration="3h"))
    assert edited.terms is not None and edited.terms.duration == timedelta(hours=3)


def test_an_invalid_spec_is_recorded_with_the_fields_named_not_raised() -> None:
    bad = body()
    bad["spec"]["deadline"] = {"maxDelay": "0h"}
    record = record_from_body(bad)
    assert record.terms is None
    assert record.problem is not None and "spec.deadline.maxDelay" in record.problem


def test_unechoed_writes_are_overlaid_until_the_watch_shows_them() -> None:
    book = JobBook()
    record = book.observe(body(status={"phase": "Pending", "reason": "x"}))
    record.wrote({"phase": "Deferred", "plannedStart": "t", "greenPercent": 80})
    assert record.status == {"phase": "Deferred", "plannedStart": "t", "reason": "x"}
    # an event from before the write arrives: the write still shows
    record = book.observe(body(status={"phase": "Pending", "reason": "x"}))
    assert record.status["phase"] == "Deferred"
    # the echo: caught up, nothing overlaid any more
    record = book.observe(body(status={"phase": "Deferred", "plannedStart": "t",
                                       "reason": "x"}))
    assert record.status == {"phase": "Deferred", "plannedStart": "t", "reason": "x"}
    assert record.written == {}
    record = book.observe(body(status={"phase": "Running", "plannedStart": "t"}))
    assert record.status["phase"] == "Running"  # later news wins


def test_a_write_whose_echo_came_first_is_not_kept() -> None:
    book = JobBook()
    # the watch showed the new status before the PATCH's own answer came back
    record = book.observe(body(status={"phase": "Deferred", "plannedStart": "t"}))
    record.wrote({"phase": "Deferred", "plannedStart": "t"})
    assert record.written == {}  # nothing to overlay, nothing kept for ten thousand jobs


def test_jobs_from_one_template_share_their_terms() -> None:
    book = JobBook()
    first = book.observe(body())
    other = body()
    other["metadata"].update(uid="u2", name="train-2")
    second = book.observe(other)
    assert second.terms is first.terms  # one object for equal terms
    longer = body(duration="3h")
    longer["metadata"].update(uid="u3", name="train-3")
    assert book.observe(longer).terms is not first.terms
