"""An OpenADR event modified at the VTN, applied to its GridEvent on the real API server.

The VEN creates a GridEvent per VTN event and, when the VTN modifies it, applies the new
spec over the old (:meth:`KubeApi.apply_gridevent`). A Shed that becomes an Absorb must
lose its ``shed`` block: with a merge patch it stays, and the CRD's CEL rule (the block
of the type, and only it) refuses the update.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.controlplane import ControlPlane
from tests.support.kube import Kube

from suandian.k8s.client import KubeApi
from suandian.k8s.connection import resolve
from suandian.k8s.decision import format_time

NAME = "oadr-modified-1"


def _event(spec: dict[str, Any], labels: dict[str, str]) -> dict[str, Any]:
    start = datetime(2030, 6, 1, 10, tzinfo=UTC)
    return {"apiVersion": "suandian.io/v1alpha1", "kind": "GridEvent",
            "metadata": {"name": NAME, "labels": labels},
            "spec": {"sites": ["jiangsu"], "start": format_time(start),
                     "end": format_time(start + timedelta(hours=2)), "source": "OpenADR",
                     "sourceRef": "modified-1", **spec}}


async def test_a_modified_event_replaces_the_spec_and_keeps_others_labels(
        control_plane: ControlPlane, kube: Kube, tmp_path: Path) -> None:
    api = KubeApi(resolve(str(control_plane.kubeconfig(tmp_path / "admin.kubeconfig"))))
    path = f"/apis/suandian.io/v1alpha1/gridevents/{NAME}"
    try:
        await api.apply_gridevent(_event({"type": "Shed", "shed": {"ceilingKW": 0.0}},
                                         {"suandian.io/source": "openadr"}))
        kube.patch(path, {"metadata": {"labels": {"team": "grid-ops"}}})
        applied = await api.apply_gridevent(_event(
            {"type": "Absorb", "absorb": {"powerKW": 500.0}}, {"suandian.io/source": "openadr"}))
        assert applied["spec"]["type"] == "Absorb" and "shed" not in applied["spec"]
        stored = kube.get(path)
        assert stored is not None and stored["spec"]["absorb"] == {"powerKW": 500.0}
        assert "shed" not in stored["spec"]
        assert stored["metadata"]["labels"] == {"suandian.io/source": "openadr",
                                                "team": "grid-ops"}
    finally:
        kube.delete(path)
        await api.aclose()
