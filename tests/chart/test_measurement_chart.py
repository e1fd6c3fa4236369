"""The chart's `measurement` values reach the operator's settings (docs/measurement.md):
the URL and options as SUANDIAN_MEASURE_*, credentials only from Secrets, bad values
refused by the schema or the template with the field named."""

from __future__ import annotations

from typing import Any

import pytest

from chart.chartkit import Obj, one
from suandian.config import Settings
from suandian.controllers.accounting import meter_from


def env_of(objects: list[Obj]) -> list[dict[str, Any]]:
    deployment = one(objects, "Deployment")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return list(container.get("env", []))


def test_off_by_default_and_the_model_size_is_set(render: Any) -> None:
    env = {e["name"]: e for e in env_of(render({}))}
    assert "SUANDIAN_MEASURE_URL" not in env
    assert env["SUANDIAN_POWER_MODEL_TEMPLATES"]["value"] == "1024"


def test_a_url_and_a_bearer_token_secret_become_settings(render: Any) -> None:
    env = env_of(render({"measurement": {
        "prometheus": {"url": "https://prom.example:9090",
                       "bearerTokenSecret": {"name": "prom-reader", "key": "tok"}},
        "exporters": ["dcgm"], "keplerMetrics": "container", "interval": "15s",
        "timeout": 4}}))
    values = {e["name"]: e["value"] for e in env if "value" in e}
    refs = {e["name"]: e["valueFrom"] for e in env if "valueFrom" in e}
    assert refs["SUANDIAN_MEASURE_TOKEN"] == {
        "secretKeyRef": {"name": "prom-reader", "key": "tok"}}
    assert "SUANDIAN_MEASURE_USERNAME" not in refs
    meter = meter_from(Settings.from_env({k: v for k, v in values.items()
                                          if k.startswith("SUANDIAN_")}))
    assert meter is not None and meter.url == "https://prom.example:9090"
    assert meter.exporters == ("dcgm",) and meter.kepler_metrics == "container"
    assert meter.interval_s == 15.0 and meter.timeout_s == 4.0


def test_basic_auth_comes_from_one_secret(render: Any) -> None:
    env = env_of(render({"measurement": {"prometheus": {
        "url": "http://prom:9090", "basicAuthSecret": "prom-basic"}}}))
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in env
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs["SUANDIAN_MEASURE_USERNAME"] == {"name": "prom-basic", "key": "username"}
    assert refs["SUANDIAN_MEASURE_PASSWORD"] == {"name": "prom-basic", "key": "password"}
    assert "SUANDIAN_MEASURE_TOKEN" not in refs


@pytest.mark.parametrize(("values", "words"), [
    ({"prometheus": {"url": "prom:9090"}}, "url"),
    ({"exporters": ["kepler", "scaphandre"]}, "exporters"),
    ({"exporters": []}, "exporters"),
    ({"keplerMetrics": "process"}, "keplerMetrics"),
    ({"interval": "30"}, "interval"),
    ({"timeout": 0}, "timeout"),
    ({"learnedTemplates": 0}, "learnedTemplates"),
    ({"prometheus": {"url": "http://p:9090", "bearerTokenSecret": {"name": "a"},
                     "basicAuthSecret": "b"}}, "not both"),
])
def test_bad_values_are_refused_naming_the_field(render: Any, values: dict[str, Any],
                                                 words: str) -> None:
    with pytest.raises(Exception, match=words):
        render({"measurement": values})
