"""The operator's own connection resolver (``k8s/connection.py``, no ``kubernetes``
package) against a real kube-apiserver: ``suandian run`` on a kubeconfig whose user is
an exec plugin (kopf and our client both authenticate with what it prints), and the
pod's service account from the environment and mounted files, a rotated token taken up
after the server's 401."""

from __future__ import annotations

import json
import stat
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from tests.envtest import envkit
from tests.envtest.envkit import child_of, status_of
from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube, wait_for
from tests.support.objects import computejob
from tests.support.process import OperatorProcess

from suandian.k8s.client import KubeApi
from suandian.k8s.connection import TokenFile, resolve

NS = "envtest-connection"
SA_USER = f"system:serviceaccount:{envkit.NAMESPACE}:{envkit.SERVICE_ACCOUNT}"


def test_suandian_run_on_an_exec_plugin_kubeconfig(control_plane: ControlPlane, kube: Kube,
                                                   tmp_path: Path) -> None:
    """Both of the operator's clients (kopf's watches and status patches, our child Job
    creation) authenticate with the plugin's token, and nothing is refused."""
    token = kube.service_account_token(envkit.NAMESPACE, envkit.SERVICE_ACCOUNT, seconds=3600)
    expires = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = tmp_path / "runs.log"
    plugin = tmp_path / "bin" / "sa-token-plugin"
    plugin.parent.mkdir()
    plugin.write_text(f"#!{sys.executable}\nimport json, os\n"
                      f"open({str(runs)!r}, 'a').write(os.environ['KUBERNETES_EXEC_INFO'] "
                      "+ '\\n')\n"
                      "print(json.dumps({'apiVersion': 'client.authentication.k8s.io/v1', "
                      "'kind': 'ExecCredential', 'status': {'token': os.environ['SA_TOKEN'], "
                      f"'expirationTimestamp': {expires!r}}}}}))\n")
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "envtest", "cluster": {
            "server": control_plane.url, "certificate-authority": str(control_plane.ca_file)}}],
        "users": [{"name": "sa", "user": {"exec": {
            "apiVersion": "client.authentication.k8s.io/v1", "command": "./bin/sa-token-plugin",
            "env": [{"name": "SA_TOKEN", "value": token}], "interactiveMode": "Never",
            "provideClusterInfo": True}}}],
        "contexts": [{"name": "sa", "context": {"cluster": "envtest", "user": "sa",
                                                "namespace": envkit.NAMESPACE}}]}))
    envkit.namespace(kube, NS)
    started = datetime.now(UTC) - timedelta(seconds=1)
    with OperatorProcess(kubeconfig, tmp_path, env={"SUANDIAN_RETRY_DELAY": "1"}):
        cj = kube.create(computejob("by-exec", namespace=NS, sites=["gansu"]))
        wait_for(lambda: status_of(kube, cj).get("phase") == "Running", timeout=60,
                 what="the job Running")
        assert child_of(kube, cj) is not None  # made by our client
    infos = [json.loads(line) for line in runs.read_text().splitlines()]
    assert len(infos) >= 2  # our client's first request, then kopf's login
    assert infos[0]["spec"]["interactive"] is False
    assert infos[0]["spec"]["cluster"]["server"] == control_plane.url
    ours = [e for e in control_plane.audit_events()
            if e["user"]["username"] == SA_USER
            and datetime.fromisoformat(e["requestReceivedTimestamp"].replace("Z", "+00:00"))
            >= started]
    agents = {e.get("userAgent", "").split("/")[0] for e in ours}
    assert {"kopf", "Python"} <= agents, agents  # kopf's client and aiohttp's (ours)
    assert [e["objectRef"] for e in ours if e["responseStatus"].get("code") in (401, 403)] == []


async def test_the_pods_service_account_reaches_the_server(control_plane: ControlPlane,
                                                           kube: Kube, tmp_path: Path) -> None:
    """KUBERNETES_SERVICE_HOST/PORT and the mounted token, CA and namespace, as a pod has
    them; the kubelet rotates the token: the next 401 reads the file again."""
    mount = tmp_path / "serviceaccount"
    mount.mkdir()
    (mount / "token").write_text("not-a-token-any-more")
    (mount / "ca.crt").write_bytes(control_plane.ca_file.read_bytes())
    (mount / "namespace").write_text(envkit.NAMESPACE)
    host, port = control_plane.url.removeprefix("https://").rsplit(":", 1)
    env = {"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}
    connection = resolve(env=env, service_account=mount)
    assert (connection.server, connection.namespace) == (control_plane.url, envkit.NAMESPACE)
    assert isinstance(connection.auth, TokenFile)
    api = KubeApi(connection)
    try:
        (mount / "token").write_text(
            kube.service_account_token(envkit.NAMESPACE, envkit.SERVICE_ACCOUNT))
        found = await api.request("GET", "/apis/suandian.io/v1alpha1/powersites")
        assert {s["metadata"]["name"] for s in found["items"]} >= set(envkit.SITES)
    finally:
        await api.aclose()
