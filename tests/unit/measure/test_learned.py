"""The power model that learns: templates, bounded memory, convergence, the book's edge."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest
from tests.support.objects import computejob

from suandian.controllers.book import JobBook
from suandian.measure.learned import Estimate, PowerModel, template_key
from suandian.planner import estimate_power_w


def body(name: str, uid: str, *, watts: float | None = None, image: str = "train:1",
         gpus: int = 0, namespace: str = "batch", **status: Any) -> dict[str, Any]:
    b = computejob(name, namespace=namespace)
    b["metadata"].update(uid=uid, generation=1, creationTimestamp="2026-06-21T00:00:00Z")
    container = b["spec"]["template"]["spec"]["template"]["spec"]["containers"][0]
    container["image"] = image
    if gpus:
        container["resources"]["requests"]["nvidia.com/gpu"] = str(gpus)
    if watts is None:
        del b["spec"]["power"]
    else:
        b["spec"]["power"] = {"watts": watts}
    if status:
        b["status"] = status
    return b


def finished(name: str, uid: str, template: str, watts: float, share: float = 1.0,
             **kw: Any) -> dict[str, Any]:
    return body(name, uid, phase="Succeeded", measurement={
        "provenance": "measured", "measuredShare": share, "itEnergyKWh": 1.0, "pue": 1.2,
        "measuredWatts": watts, "template": template}, **kw)


def test_the_template_key_is_namespace_images_requests_and_pods() -> None:
    c = [{"image": "a:1"}, {"image": "b:2"}]
    key = template_key("ml", c, {"cpu": 4.0, "memory": 16.0}, 2)
    assert key.startswith("ml/") and len(key) == 3 + 12
    assert key == template_key("ml", list(reversed(c)), {"memory": 16.0, "cpu": 4.0}, 2)
    assert key != template_key("other", c, {"cpu": 4.0, "memory": 16.0}, 2)
    assert key != template_key("ml", [{"image": "a:2"}, {"image": "b:2"}],
                               {"cpu": 4.0, "memory": 16.0}, 2)
    assert key != template_key("ml", c, {"cpu": 8.0, "memory": 16.0}, 2)
    assert key != template_key("ml", c, {"cpu": 4.0, "memory": 16.0}, 3)


def test_the_estimate_converges_for_a_repeated_template() -> None:
    model, rng = PowerModel(runs_kept=10), random.Random(7)
    errors = []
    for run in range(30):
        model.learn("ml/x", f"u{run}", 800.0 + rng.uniform(-40, 40))
        watts, runs = model.estimate("ml/x") or (0.0, 0)
        errors.append(abs(watts - 800.0))
        assert runs == min(run + 1, 10)
    assert max(errors[10:]) < 20.0  # the mean of 10 runs within ±40 W noise
    # a run seen again (a re-listing) counts once
    model.learn("ml/x", "u29", 10_000.0)
    assert model.estimate("ml/x") is not None and model.estimate("ml/x")[1] == 10  # type: ignore[index]


def test_memory_is_an_lru_of_templates() -> None:
    model = PowerModel(capacity=2)
    model.learn("a", "1", 100.0)
    model.learn("b", "2", 200.0)
    assert model.estimate("a") == (100.0, 1)  # a used: b is now the least recent
    model.learn("c", "3", 300.0)
    assert len(model) == 2 and model.estimate("b") is None and model.estimate("a")
    model.learn("d", "4", 0.0)  # nothing measured teaches nothing
    assert model.estimate("d") is None
    with pytest.raises(ValueError, match="at least 1"):
        PowerModel(capacity=0)


def test_only_finished_runs_measured_for_half_their_time_teach() -> None:
    model = PowerModel()
    assert model.learn_from_status("u1", {"phase": "Succeeded", "measurement": {
        "measuredWatts": 500.0, "template": "t", "measuredShare": 0.6}})
    assert not model.learn_from_status("u2", {"phase": "Succeeded", "measurement": {
        "measuredWatts": 9000.0, "template": "t", "measuredShare": 0.4}})
    assert not model.learn_from_status("u3", {"phase": "Running", "measurement": {
        "measuredWatts": 9000.0, "template": "t", "measuredShare": 1.0}})
    assert model.estimate("t") == (500.0, 1)


def test_the_book_plans_a_job_at_its_template_s_learned_watts() -> None:
    book = JobBook(PowerModel())
    first = book.observe(body("a", "u1"))
    assert first.power is not None and first.power.source == "default"
    assert first.terms is not None
    assert first.terms.power_w == pytest.approx(estimate_power_w({"cpu": 4, "memory": 1}))
    template = first.power.template
    for i, watts in enumerate([300.0, 340.0, 320.0]):
        book.observe(finished(f"done{i}", f"d{i}", template, watts))
    later = book.observe(body("b", "u2"))
    assert later.power == Estimate("learned", 320.0, 3, template)
    assert later.terms is not None and later.terms.power_w == pytest.approx(320.0)
    assert later.power.status() == {"source": "learned", "watts": 320.0, "runs": 3,
                                    "template": template}
    declared = book.observe(body("c", "u3", watts=5000.0))
    assert declared.power is not None and declared.power.source == "declared"
    assert declared.terms is not None and declared.terms.power_w == 5000.0
    # the same generation keeps the estimate it was planned with
    again = book.observe(copy.deepcopy(body("a", "u1")))
    assert again.power is not None and again.power.source == "default"


def test_a_gpu_job_gets_its_shape_s_measured_watts_not_a_constant_per_gpu() -> None:
    book = JobBook(PowerModel())
    gpu = book.observe(body("g", "u1", gpus=8))
    assert gpu.terms is not None and gpu.terms.power_w >= 8 * 400  # the table's constant
    assert gpu.power is not None
    book.observe(finished("g0", "d0", gpu.power.template, 2450.0, gpus=8))
    next_gpu = book.observe(body("g2", "u2", gpus=8))
    assert next_gpu.terms is not None and next_gpu.terms.power_w == pytest.approx(2450.0)
    other = book.observe(body("g3", "u3", gpus=4))  # another shape: not learned yet
    assert other.power is not None and other.power.source == "default"
