"""The chart against what the operator really does: the Deployment's command line is one
``suandian run`` accepts (click's real parser, the real ``run`` callback), every variable
it sets is read by someone, and the probes, metrics and webhook ports and paths are the
ones the parsed flags make the operator serve.

The RBAC rules are checked against the API calls the operator makes in
``tests/integration/prometheus/test_operator_live.py`` (it runs the real operator).
"""

from __future__ import annotations

import inspect
import os
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from kopf._core.engines import peering

from chart.chartkit import Obj, find, one
from chart.test_render import SCENARIOS
from suandian import cli
from suandian.config import ENV_PREFIX, Settings

Render = Any
CERT_DIR = "/etc/suandian/webhook"
WITH_EXTRA_ENV = {"operator": {"extraEnv": [
    {"name": "SUANDIAN_REPLAN_INTERVAL", "value": "2m"},
    {"name": "SUANDIAN_RISK_AVERSION", "value": "0.8"}],
    "extraArgs": ["--verbose"]}}
ALL_SCENARIOS = {**SCENARIOS, "extra-env-and-args": WITH_EXTRA_ENV}


def operator_container(objects: list[Obj]) -> Obj:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def argv_of(container: Obj, tmp_path: Path) -> list[str]:
    """What the container's entrypoint hands to `suandian` (the shell run for real)."""
    fake = tmp_path / "suandian"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf "%s\\n" "$a"; done\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    done = subprocess.run(container["command"] + container.get("args", []), env=env,
                          capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.splitlines()


def parsed_run(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
               ) -> dict[str, Any]:
    """The keyword arguments `suandian run` passes to run_operator for ``argv``.

    The webhook certificate paths are the Secret's mount point; click checks the files
    exist, so they are mapped to a directory holding the Secret's two keys."""
    certs = tmp_path / "certs"
    certs.mkdir(exist_ok=True)
    for key in ("tls.crt", "tls.key"):
        (certs / key).write_text("PEM\n")
    local = [a.replace(CERT_DIR, str(certs)) for a in argv]
    seen: dict[str, Any] = {}

    def fake_run_operator(**kwargs: Any) -> None:
        seen.update(kwargs)

    monkeypatch.setattr("suandian.controllers.main.run_operator", fake_run_operator)
    cli.cli.main(local, prog_name="suandian", standalone_mode=False)
    assert seen, f"suandian {' '.join(local)} did not reach run_operator"
    for key in ("webhook_cert", "webhook_key"):
        if seen.get(key):
            seen[key] = seen[key].replace(str(certs), CERT_DIR)
    return seen


@pytest.fixture(params=sorted(ALL_SCENARIOS))
def scenario(request: pytest.FixtureRequest, render: Render) -> tuple[str, list[Obj]]:
    return request.param, render(ALL_SCENARIOS[request.param])


def port_named(container: Obj, name: str) -> int:
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == name]
    return int(port)


def test_the_command_line_is_accepted_by_suandian_run(
    scenario: tuple[str, list[Obj]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, objects = scenario
    values = ALL_SCENARIOS[name]
    container = operator_container(objects)
    argv = argv_of(container, tmp_path)
    assert argv[0] == "run"
    kwargs = parsed_run(argv, tmp_path, monkeypatch)
    assert kwargs["standalone"] is False
    assert kwargs["peering_name"] == "suandian"
    pinned = values.get("operator", {}).get("peering", {}).get("priority")
    assert kwargs["priority"] == pinned if pinned is not None else kwargs["priority"] >= 0
    assert kwargs["log_format"] == "json"
    watched = values.get("operator", {}).get("watchNamespaces", [])
    assert tuple(kwargs["namespaces"]) == tuple(watched)
    assert kwargs["verbose"] is ("--verbose" in values.get("operator", {}).get("extraArgs", []))
    assert kwargs["kubeconfig"] is None  # in-cluster service account


def test_probes_metrics_and_webhook_ports_are_what_the_operator_serves(
    scenario: tuple[str, list[Obj]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    name, objects = scenario
    container = operator_container(objects)
    kwargs = parsed_run(argv_of(container, tmp_path), tmp_path, monkeypatch)

    liveness = urlsplit(kwargs["liveness_endpoint"])
    assert liveness.hostname == "0.0.0.0"  # reachable by the kubelet, not loopback only
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == liveness.path, probe
        assert port_named(container, get["port"]) == liveness.port, probe

    assert kwargs["metrics_port"] == port_named(container, "metrics")
    service = next(s for s in find(objects, "Service")
                   if s["spec"]["ports"][0]["name"] == "metrics")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    for monitor in find(objects, "ServiceMonitor"):
        assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
        assert monitor["spec"]["endpoints"][0].get("path", "/metrics") == "/metrics"

    if not find(objects, "MutatingWebhookConfiguration"):
        assert kwargs["webhook_port"] is None, name
        return
    assert kwargs["webhook_port"] == port_named(container, "webhook")
    assert kwargs["webhook_addr"] == "0.0.0.0"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["webhook-tls"] == CERT_DIR
    assert kwargs["webhook_cert"] == f"{CERT_DIR}/tls.crt"
    assert kwargs["webhook_key"] == f"{CERT_DIR}/tls.key"
    (hook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    target = hook["clientConfig"]["service"]
    webhook_service = one(objects, "Service", target["name"])
    (port,) = [p for p in webhook_service["spec"]["ports"] if p["port"] == target["port"]]
    assert port["targetPort"] == "webhook"


def test_every_environment_variable_is_read_by_the_operator(
    scenario: tuple[str, list[Obj]],
) -> None:
    """SUANDIAN_* must be Settings fields with acceptable values; others must be kopf's."""
    _, objects = scenario
    env = operator_container(objects).get("env", [])
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), names
    known = {variable for variable, _, _ in Settings.describe()}
    ours = {e["name"]: e["value"] for e in env if e["name"].startswith(ENV_PREFIX)
            and "value" in e}
    secret = {e["name"]: e["valueFrom"] for e in env if e["name"].startswith(ENV_PREFIX)
              and "valueFrom" in e}
    assert all(set(v) == {"secretKeyRef"} for v in secret.values()), secret  # credentials
    assert set(ours) | set(secret) <= known, (
        f"not read by Settings.from_env(): {(set(ours) | set(secret)) - known}")
    Settings.from_env(ours)  # raises InvalidSpecError naming a bad value
    others = {e["name"]: e for e in env if not e["name"].startswith(ENV_PREFIX)}
    assert set(others) == {"POD_ID"}
    assert "'POD_ID'" in inspect.getsource(peering.detect_own_id)
    assert others["POD_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_extra_env_reaches_the_settings(render: Render) -> None:
    env = operator_container(render(WITH_EXTRA_ENV))["env"]
    settings = Settings.from_env({e["name"]: e["value"] for e in env if "value" in e})
    assert settings.replan_interval.total_seconds() == 120
    assert settings.risk_aversion == 0.8


def release_hook(objects: list[Obj]) -> Obj | None:
    hooks = [o for o in find(objects, "Job")
             if (o["metadata"].get("annotations") or {}).get("helm.sh/hook") == "pre-delete"]
    assert len(hooks) <= 1
    return hooks[0] if hooks else None


def test_uninstall_runs_suandian_release_as_the_operator(
    scenario: tuple[str, list[Obj]], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The pre-delete hook's command line is one `suandian release` accepts, with the
    operator's peering and namespaces, its ServiceAccount, image and pod security."""
    name, objects = scenario
    hook = release_hook(objects)
    assert hook is not None, name
    annotations = hook["metadata"]["annotations"]
    assert "hook-succeeded" in annotations["helm.sh/hook-delete-policy"]
    pod = hook["spec"]["template"]["spec"]
    deployment = one(objects, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == deployment["serviceAccountName"]
    assert container["image"] == operator_container(objects)["image"]
    assert pod["securityContext"] == deployment["securityContext"]
    assert container["securityContext"] == operator_container(objects)["securityContext"]
    assert pod["restartPolicy"] == "Never"
    argv = container["command"] + container.get("args", [])
    assert argv[:2] == ["suandian", "release"]
    seen: dict[str, Any] = {}

    async def fake_release(api: Any, **kwargs: Any) -> Any:
        seen.update(kwargs)
        from suandian.k8s.release import Released

        return Released()

    monkeypatch.setattr("suandian.k8s.release.release", fake_release)
    monkeypatch.setattr("suandian.k8s.client.KubeApi.from_environment",
                        classmethod(lambda cls, **_: cls.for_server("http://127.0.0.1:1")))
    cli.cli.main(argv[1:], prog_name="suandian", standalone_mode=False)
    values = ALL_SCENARIOS[name]
    assert seen["peering"] == values.get("operator", {}).get("peering", {}).get(
        "name", "suandian")
    watched = values.get("operator", {}).get("watchNamespaces", [])
    assert tuple(seen["namespaces"]) == tuple(watched)
    assert seen["dry_run"] is False


def test_uninstall_can_keep_the_deferrals(render: Render) -> None:
    assert release_hook(render({"uninstall": {"release": False}})) is None
