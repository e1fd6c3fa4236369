"""The chart rendered by real Helm with realistic values: every object valid, secure and
least-privileged; bad values refused by values.schema.json with a message naming the key."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from chart.chartkit import (
    CHART,
    NAMESPACE,
    OLDEST_K8S_VERSION,
    ROOT,
    Obj,
    find,
    one,
    operator_roles,
    problems,
)

Render = Any

CA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
EXAMPLE_SITES = [yaml.safe_load(p.read_text(encoding="utf-8"))
                 for p in sorted((ROOT / "examples" / "powersites").glob("*.yaml"))[:2]]

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"operator": {"watchNamespaces": ["team-a", "team-b"]},
                   "rbac": {"configMapNamespaces": ["forecasts"]}},
    "no-cert-manager": {"webhook": {"certManager": {"enabled": False},
                                    "tls": {"secretName": "suandian-webhook-tls",
                                            "caBundle": CA}}},
    "full-monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "webhook": {"certManager": {"issuerRef": {"name": "ca", "kind": "ClusterIssuer"}}},
        "powerSites": [{"name": s["metadata"]["name"], "labels": s["metadata"]["labels"],
                        "spec": s["spec"]} for s in EXAMPLE_SITES],
        "image": {"repository": "registry.example.cn/suandian/suandian", "tag": "0.1.0-rc1"},
        "imagePullSecrets": [{"name": "regcred"}],
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                         "operator": "Exists", "effect": "NoSchedule"}],
        "priorityClassName": "system-cluster-critical",
    },
    "openadr": {"openadr": {"vtnUrl": "https://vtn.grid.example.cn/OpenADR2/Simple/2.0b",
                            "venName": "dc-shanghai-1", "sites": ["yangtze-delta"],
                            "tlsSecret": "suandian-ven-tls", "reportInterval": "30s",
                            "simpleLevels": "1=30,2=60,3=90",
                            "vtnFingerprint": "AB:CD:EF:01:23:45:67:89:AB:CD"}},
    "single-replica-no-webhook": {"replicaCount": 1, "operator": {"peering": {"priority": 100}},
                                  "webhook": {"enabled": False},
                                  "dashboards": {"enabled": False}},
    "kueue": {"operator": {"mode": "kueue", "kueue": {"queue": "batch",
                                                      "admissionTimeout": "90s"}}},
    "measured": {"measurement": {
        "prometheus": {"url": "http://prometheus-operated.monitoring:9090",
                       "bearerTokenSecret": {"name": "prom-reader", "key": "token"}},
        "exporters": ["kepler", "dcgm"], "interval": "15s"}},
}


@pytest.fixture(scope="module", params=sorted(SCENARIOS))
def rendered(request: pytest.FixtureRequest, render: Render) -> tuple[str, list[Obj]]:
    return request.param, render(SCENARIOS[request.param])


def containers(objects: list[Obj]) -> list[Obj]:
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]  # type: ignore[no-any-return]


def test_every_object_is_valid_for_kubernetes(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    invalid = {f"{o['kind']}/{o['metadata']['name']}": problems(o) for o in objects}
    assert {k: v for k, v in invalid.items() if v} == {}


def test_every_object_is_valid_for_the_oldest_supported_kubernetes(render: Render) -> None:
    for scenario in ("full-monitoring", "namespaced"):
        invalid = {f"{o['kind']}/{o['metadata']['name']}": problems(o, OLDEST_K8S_VERSION)
                   for o in render(SCENARIOS[scenario])}
        assert {k: v for k, v in invalid.items() if v} == {}


def test_every_namespaced_object_lands_in_the_release_namespace(
    rendered: tuple[str, list[Obj]],
) -> None:
    name, objects = rendered
    watched = set(SCENARIOS[name].get("operator", {}).get("watchNamespaces", []))
    watched |= set(SCENARIOS[name].get("rbac", {}).get("configMapNamespaces", []))
    cluster_kinds = {"ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration",
                     "ClusterKopfPeering", "PowerSite"}
    for obj in objects:
        if obj["kind"] in cluster_kinds:
            assert "namespace" not in obj["metadata"], obj["kind"]
        else:
            assert obj["metadata"]["namespace"] in {NAMESPACE} | watched, obj["kind"]


def test_pod_security(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in v for v in pod["volumes"])
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["privileged"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            assert container[probe]["httpGet"]["path"] == "/healthz"
        assert {"/tmp"} <= {m["mountPath"] for m in container["volumeMounts"]}


def test_rbac_is_least_privilege(rendered: tuple[str, list[Obj]]) -> None:
    name, objects = rendered
    granted: dict[tuple[str, str], set[str]] = {}
    for role in operator_roles(objects):
        for rule in role["rules"]:
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[field], f"wildcard in {role['metadata']['name']}"
            assert not rule.get("resourceNames") or rule["resources"] != ["secrets"]
            assert not {"escalate", "bind", "impersonate", "deletecollection"} & set(rule["verbs"])
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    granted.setdefault((group, resource), set()).update(rule["verbs"])
    watched = {"list", "watch", "patch"}  # kopf watches and merge-patches; never get/update
    expected = {
        ("suandian.io", "powersites"): watched, ("suandian.io", "powersites/status"): {"patch"},
        ("suandian.io", "gridevents"): watched, ("suandian.io", "gridevents/status"): {"patch"},
        ("suandian.io", "computejobs"): watched, ("suandian.io", "computejobs/status"): {"patch"},
        # the API server asks it of blockOwnerDeletion under OwnerReferencesPermissionEnforcement
        ("suandian.io", "computejobs/finalizers"): {"update"},
        ("batch", "jobs"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "pods"): {"list", "watch", "patch"},
        ("", "nodes"): {"list", "watch"},
        ("", "namespaces"): {"list", "watch"},
        ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"},
        ("", "events"): {"create"},
        ("", "secrets"): {"get"}, ("", "configmaps"): {"get"},
    }
    if name == "openadr":  # the VEN makes the VTN's events GridEvents, and removes them
        expected[("suandian.io", "gridevents")] = watched | {"create", "delete"}
    if name == "kueue":  # the quota it plans on, and what Kueue says of a waiting job
        expected.update({("kueue.x-k8s.io", "resourceflavors"): {"list", "watch"},
                         ("kueue.x-k8s.io", "clusterqueues"): {"list", "watch"},
                         ("kueue.x-k8s.io", "workloads"): {"list"}})
    peering = {"list", "watch", "patch"}
    assert {k: v for k, v in granted.items() if k[0] != "kopf.dev"} == expected
    assert [v for k, v in granted.items() if k[0] == "kopf.dev"] == [peering]


def test_secrets_are_readable_only_in_the_release_namespace(
    rendered: tuple[str, list[Obj]],
) -> None:
    _, objects = rendered
    for role in find(objects, "ClusterRole"):
        assert all("secrets" not in r["resources"] for r in role["rules"])
    holders = [r for r in find(objects, "Role")
               if any("secrets" in rule["resources"] for rule in r["rules"])]
    assert [r["metadata"]["namespace"] for r in holders] == [NAMESPACE]


def test_bindings_point_at_the_service_account(rendered: tuple[str, list[Obj]]) -> None:
    _, objects = rendered
    sa = one(objects, "ServiceAccount")["metadata"]["name"]
    roles = {r["metadata"]["name"] for r in find(objects, "ClusterRole") + find(objects, "Role")}
    for binding in find(objects, "ClusterRoleBinding") + find(objects, "RoleBinding"):
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": sa,
                                        "namespace": NAMESPACE}]
        assert binding["roleRef"]["name"] in roles


def test_defaults_run_two_replicas_with_random_kopf_priorities(render: Render) -> None:
    objects = render()
    deployment = one(objects, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    operator = containers(objects)[0]
    script = operator["command"][2]
    assert operator["command"][:2] == ["/bin/sh", "-c"]
    assert script.startswith("exec suandian run --priority=") and "/dev/urandom" in script
    assert script.endswith('"$@"')
    args = operator["args"]
    assert "--peering=suandian" in args
    assert "--all-namespaces" in args
    assert "--liveness=http://0.0.0.0:8080/healthz" in args
    assert one(objects, "ClusterKopfPeering")["metadata"]["name"] == "suandian"
    assert one(objects, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"][
        "topologyKey"] == "kubernetes.io/hostname"


def test_a_pinned_priority_runs_without_a_shell(render: Render) -> None:
    objects = render(SCENARIOS["single-replica-no-webhook"])
    operator = containers(objects)[0]
    assert operator["command"] == ["suandian", "run", "--priority=100"]
    assert not find(objects, "PodDisruptionBudget")
    assert not find(objects, "MutatingWebhookConfiguration")
    assert not find(objects, "ConfigMap")
    assert "webhook" not in {p["name"] for p in operator["ports"]}


def test_namespaced_mode_binds_work_per_namespace(render: Render) -> None:
    objects = render(SCENARIOS["namespaced"])
    args = containers(objects)[0]["args"]
    assert "--namespace=team-a" in args and "--namespace=team-b" in args
    assert "--all-namespaces" not in args
    jobs_bindings = [b for b in find(objects, "RoleBinding")
                     if b["roleRef"]["name"].endswith("-jobs")]
    assert sorted(b["metadata"]["namespace"] for b in jobs_bindings) == ["team-a", "team-b"]
    assert not [b for b in find(objects, "ClusterRoleBinding")
                if b["roleRef"]["name"].endswith("-jobs")]
    assert sorted(p["metadata"]["namespace"] for p in find(objects, "KopfPeering")) == [
        "team-a", "team-b"]
    assert not find(objects, "ClusterKopfPeering")
    configmaps = [r for r in find(objects, "Role") if r["metadata"]["namespace"] == "forecasts"]
    assert [r["rules"] for r in configmaps] == [[{"apiGroups": [""], "resources": ["configmaps"],
                                                   "verbs": ["get"]}]]


def test_webhook_gates_only_labelled_pods_with_cert_manager_tls(render: Render) -> None:
    objects = render()
    config = one(objects, "MutatingWebhookConfiguration")
    (hook,) = config["webhooks"]
    assert hook["objectSelector"] == {"matchLabels": {"suandian.io/managed": "true"}}
    assert hook["rules"] == [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                              "resources": ["pods"], "scope": "Namespaced"}]
    assert hook["sideEffects"] == "None" and hook["failurePolicy"] == "Ignore"
    service = hook["clientConfig"]["service"]
    assert one(objects, "Service", service["name"])["spec"]["ports"][0]["targetPort"] == "webhook"
    certificate = one(objects, "Certificate")
    assert f"{service['name']}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{certificate['metadata']['name']}")
    assert one(objects, "Issuer")["spec"] == {"selfSigned": {}}
    volume = [v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
              if v["name"] == "webhook-tls"]
    assert volume[0]["secret"]["secretName"] == certificate["spec"]["secretName"]


def test_webhook_without_cert_manager_uses_the_given_secret_and_ca(render: Render) -> None:
    objects = render(SCENARIOS["no-cert-manager"])
    (hook,) = one(objects, "MutatingWebhookConfiguration")["webhooks"]
    assert hook["clientConfig"]["caBundle"] == CA
    assert not find(objects, "Certificate") and not find(objects, "Issuer")
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert {"name": "webhook-tls", "secret": {"secretName": "suandian-webhook-tls",
                                              "defaultMode": 0o440}} in volumes


def test_an_external_issuer_replaces_the_self_signed_one(render: Render) -> None:
    objects = render(SCENARIOS["full-monitoring"])
    assert not find(objects, "Issuer")
    assert one(objects, "Certificate")["spec"]["issuerRef"] == {"name": "ca",
                                                                "kind": "ClusterIssuer"}


def test_monitoring_objects(render: Render) -> None:
    objects = render(SCENARIOS["full-monitoring"])
    monitor = one(objects, "ServiceMonitor")
    metrics_service = one(objects, "Service", "suandian-metrics")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    for key, value in monitor["spec"]["selector"]["matchLabels"].items():
        assert metrics_service["metadata"]["labels"][key] == value
    assert metrics_service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "suandian"
    groups = [group for name in ("suandian.rules.yaml", "suandian.ledger.rules.yaml")
              for group in yaml.safe_load((CHART / "alerts" / name).read_text(
                  encoding="utf-8"))["groups"]]
    assert one(objects, "PrometheusRule")["spec"]["groups"] == groups


def test_dashboards_are_configmaps_for_the_grafana_sidecar(render: Render) -> None:
    maps = find(render(), "ConfigMap")
    assert len(maps) == len(list((CHART / "dashboards").glob("*.json"))) == 3
    for cm in maps:
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        ((filename, text),) = cm["data"].items()
        assert json.loads(text) == json.loads(
            (CHART / "dashboards" / filename).read_text(encoding="utf-8"))


def test_power_sites_from_values_are_valid_power_sites(render: Render) -> None:
    sites = find(render(SCENARIOS["full-monitoring"]), "PowerSite")
    assert [s["metadata"]["name"] for s in sites] == [
        s["metadata"]["name"] for s in EXAMPLE_SITES]
    from suandian.api.validation import parse_powersite

    for site in sites:
        parse_powersite(site)


def test_image_defaults_to_the_app_version(render: Render, chart: helm_python.Chart) -> None:
    image = containers(render())[0]["image"]
    assert image == f"ghcr.io/suandian/suandian:{chart.metadata['appVersion']}"


def test_notes_render(chart: helm_python.Chart) -> None:
    notes = chart.render({}, name="suandian", namespace=NAMESPACE, is_install=True)[
        "suandian/templates/NOTES.txt"]
    assert "kubectl get computejobs -A" in notes
    assert "suandian-metrics.suandian-system.svc:8081/metrics" in notes


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
    ({"operator": {"peering": {"priority": 7}}},
     "at '/operator/peering/priority': got number, want null"),
    ({"webhook": {"certManager": {"enabled": False}}}, "at '/webhook/tls/caBundle'"),
    ({"webhook": {"failurePolicy": "Sometimes"}}, "value must be one of 'Ignore', 'Fail'"),
    ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ({"operator": {"watchNamespaces": ["Team_A"]}}, "at '/operator/watchNamespaces/0'"),
    ({"operator": {"logFormat": "xml"}}, "at '/operator/logFormat'"),
    ({"resources": {"limits": {"memory": "lots"}}}, "at '/resources/limits/memory'"),
    ({"powerSites": [{"name": "gansu", "spec": {"location": {}}}]}, "missing propert"),
    ({"image": {"repository": ""}}, "at '/image/repository'"),
    ({"serviceMonitor": {"interval": "soon"}}, "at '/serviceMonitor/interval'"),
])
def test_bad_values_are_refused_with_a_clear_message(
    render: Render, values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm_python.HelmValuesError) as caught:
        render(values)
    assert message in str(caught.value)


def test_the_schema_is_valid_json_schema() -> None:
    import jsonschema

    schema = json.loads(Path(CHART / "values.schema.json").read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    defaults = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert list(jsonschema.Draft7Validator(schema).iter_errors(defaults)) == []


def test_the_validator_refuses_what_the_api_server_would(render: Render) -> None:
    objects = render(SCENARIOS["full-monitoring"])
    deployment = json.loads(json.dumps(one(objects, "Deployment")))
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    assert problems(deployment)
    site = json.loads(json.dumps(find(objects, "PowerSite")[0]))
    site["spec"]["grid"]["carbonIntensity"] = -1
    assert problems(site)
    monitor = json.loads(json.dumps(one(objects, "ServiceMonitor")))
    del monitor["spec"]["endpoints"]
    assert problems(monitor)
    peering = json.loads(json.dumps(one(objects, "ClusterKopfPeering")))
    peering["spec"] = {"priority": 1}
    assert problems(peering)


def test_the_rendered_command_gives_each_pod_its_own_integer_priority(
    render: Render, tmp_path: Path
) -> None:
    import os
    import subprocess

    fake = tmp_path / "suandian"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    operator = containers(render())[0]
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    runs = [subprocess.run(operator["command"] + operator["args"], env=env, capture_output=True,
                           text=True, check=True, timeout=30).stdout.splitlines()
            for _ in range(3)]
    priorities = set()
    for argv in runs:
        assert argv[0] == "run"
        assert argv[2:] == operator["args"]
        flag, _, value = argv[1].partition("=")
        assert flag == "--priority" and value.isdigit()
        priorities.add(int(value))
    assert len(priorities) == 3


def test_webhook_path_is_the_operators_mutating_handler(render: Render) -> None:
    """kopf serves each admission handler at /<handler id>: the chart must call that path."""
    import re

    source = (ROOT / "operator" / "suandian" / "controllers" / "pod.py").read_text(
        encoding="utf-8")
    ids = re.findall(r"@kopf\.on\.mutate\([^)]*\bid=\"([^\"]+)\"", source, re.S)
    assert len(ids) == 1, "expected one mutating handler with an explicit id"
    (hook,) = one(render(), "MutatingWebhookConfiguration")["webhooks"]
    assert hook["clientConfig"]["service"]["path"] == f"/{ids[0]}"


def test_the_user_roles_join_the_default_roles_and_never_write_status(
    rendered: tuple[str, list[Obj]],
) -> None:
    """ComputeJobs in Kubernetes' view / edit / admin by aggregation; GridEvents for the
    grid-requester role alone; no user role writes a status (that is the operator's)."""
    _, objects = rendered
    mine = {r["metadata"]["name"] for r in operator_roles(objects)}
    users = {r["metadata"]["name"]: r for r in find(objects, "ClusterRole")
             if r["metadata"]["name"] not in mine}
    assert set(users) == {"suandian-view", "suandian-edit", "suandian-grid-requester"}
    aggregate = "rbac.authorization.k8s.io/aggregate-to-"
    labels = {n: {k.removeprefix(aggregate) for k, v in r["metadata"]["labels"].items()
                  if k.startswith(aggregate) and v == "true"} for n, r in users.items()}
    assert labels == {"suandian-view": {"view", "edit", "admin"},
                      "suandian-edit": {"edit", "admin"}, "suandian-grid-requester": set()}
    writes = {"create", "update", "patch", "delete", "deletecollection"}
    for name, role in users.items():
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"]
            if any(r.endswith("/status") for r in rule["resources"]):
                assert not writes & set(rule["verbs"]), name
    edit = {r for rule in users["suandian-edit"]["rules"] for r in rule["resources"]}
    assert edit == {"computejobs"}
    grid = {(r, v) for rule in users["suandian-grid-requester"]["rules"]
            for r in rule["resources"] for v in rule["verbs"]}
    assert ("gridevents", "create") in grid and ("powersites", "create") not in grid
