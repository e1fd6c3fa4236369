"""A PowerSite's ConfigMap and Secret inputs: read before each refresh, last good kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from suandian.api.powersite import SecretKeyRef
from suandian.api.validation import parse_powersite
from suandian.errors import KubeApiError, ProviderResponseError
from suandian.forecast import ForecastKeeper, SiteInputs, TimeGrid
from suandian.k8s.client import KubeApi
from suandian.k8s.inputs import read_site_inputs


class FakeApi:
    namespace = "suandian-system"

    def __init__(self) -> None:
        self.configmaps: dict[tuple[str, str], Any] = {}
        self.secrets: dict[tuple[str, str], Any] = {}

    async def get_configmap(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._answer(self.configmaps.get((namespace, name)))

    async def get_secret(self, namespace: str, name: str) -> dict[str, str] | None:
        return self._answer(self.secrets.get((namespace, name)))

    @staticmethod
    def _answer(value: Any) -> dict[str, str] | None:
        if isinstance(value, Exception):
            raise value
        return value  # type: ignore[no-any-return]


def site() -> Any:
    def csv(signal: str, key: str, **ref: str) -> dict[str, Any]:
        return {"provider": "csv", "csv": {"signals": {signal: {"name": "fc", "key": key,
                                                                **ref}}}}

    return parse_powersite({
        "apiVersion": "suandian.io/v1alpha1", "kind": "PowerSite",
        "metadata": {"name": "gansu"},
        "spec": {"nodeSelector": {"region": "gansu"},
                 "location": {"latitude": 36, "longitude": 105, "timeZone": "Asia/Shanghai"},
                 "supply": [{"type": "solar", "capacityKW": 100}],
                 "grid": {"importLimitKW": 100, "carbonIntensity": 500},
                 "forecast": {"supply": csv("solar", "gansu-solar"),
                              "carbon": {"provider": "electricityMaps", "electricityMaps": {
                                  "zone": "CN", "tokenSecretRef": {"name": "em",
                                                                   "key": "token"}}}}}})


async def test_inputs_are_read_into_the_site_and_kept_when_unreadable() -> None:
    api, inputs, ref = FakeApi(), SiteInputs(), SecretKeyRef(name="em", key="token")
    api.configmaps["suandian-system", "fc"] = {"gansu-solar": "time,value\n"}
    api.secrets["suandian-system", "em"] = {"token": "s3cret"}
    assert await read_site_inputs(api, site(), inputs) == []  # type: ignore[arg-type]
    assert inputs.csv_texts == {"solar": "time,value\n"}
    assert inputs.credentials.get("em", ref) == SecretStr("s3cret")

    api.configmaps["suandian-system", "fc"] = KubeApiError(403, "Forbidden", "no")
    api.secrets["suandian-system", "em"] = KubeApiError(503, "ServiceUnavailable", "down")
    problems = await read_site_inputs(api, site(), inputs)  # type: ignore[arg-type]
    assert [p.split(":")[0] for p in problems] == [
        "cannot read ConfigMap suandian-system/fc", "cannot read Secret suandian-system/em"]
    assert inputs.csv_texts == {"solar": "time,value\n"}  # the last good, kept
    assert inputs.credentials.get("em", ref) == SecretStr("s3cret")

    api.configmaps["suandian-system", "fc"] = {"other": "x"}
    problems = await read_site_inputs(api, site(), inputs)  # type: ignore[arg-type]
    assert "has no key gansu-solar (signal solar)" in problems[0]
    assert inputs.csv_texts == {}  # the key is gone from a ConfigMap that was read


async def test_a_missing_configmap_is_named_by_the_provider() -> None:
    inputs = SiteInputs()
    problems = await read_site_inputs(FakeApi(), site(), inputs)  # type: ignore[arg-type]
    assert problems[0] == "ConfigMap suandian-system/fc does not exist"
    keeper = ForecastKeeper.from_inputs(site(), inputs)
    now = datetime(2026, 6, 21, tzinfo=UTC)
    with pytest.raises(ProviderResponseError, match="no CSV from ConfigMap fc key gansu-solar"):
        keeper.supply.read(TimeGrid.covering(now, slots=8), now)  # type: ignore[attr-defined]


def test_the_operator_namespace_is_the_kubeconfig_contexts(tmp_path: Path) -> None:
    """Outside a pod, ConfigMaps and Secrets named without a namespace are read where
    kubectl would look: the current (or the chosen) context's namespace."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "a",
              "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "a", "context": {"cluster": "c", "user": "u",
                                                     "namespace": "suandian-system"}},
                           {"name": "b", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    assert KubeApi.from_environment(kubeconfig=str(path)).namespace == "suandian-system"
    assert KubeApi.from_environment(kubeconfig=str(path), context="b").namespace == "default"
