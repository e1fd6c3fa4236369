"""The API server itself admits our resources: CRDs, examples, the invalid catalogue,
short names, printer columns' home. No operator runs here: this is admission alone.

The unit tier checks the same manifests with jsonschema and cel-python
(``tests/unit/api/test_invalid_manifests.py``); here the real kube-apiserver decides,
with strict field validation as kubectl asks for it, so where the two disagree the CRD
or the checker is wrong.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from tests.envtest import envkit
from tests.support.invalid import REFUSED_BY_BOTH, REFUSED_BY_MODELS_ONLY, Bad
from tests.support.kube import Kube, KubeError

from conftest import ROOT, load_yaml

EXAMPLES = sorted((ROOT / "examples").rglob("*.yaml"))
OURS = {"computejobs.suandian.io", "powersites.suandian.io", "gridevents.suandian.io"}


def _admit(kube: Kube, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` in a dry run (renamed: the session's own PowerSites use the names)."""
    obj = copy.deepcopy(obj)
    obj["metadata"]["name"] = "dry-run-" + obj["metadata"]["name"]
    if obj["kind"] == "ComputeJob":
        envkit.namespace(kube, obj["metadata"].get("namespace") or "default")
    return kube.create(obj, dry_run=True)


def test_the_crds_are_established_with_their_names(kube: Kube) -> None:
    for name in OURS | {"clusterkopfpeerings.kopf.dev"}:
        crd = kube.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        assert crd is not None
        conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
        assert conditions.get("Established") == "True", (name, conditions)
        assert conditions.get("NamesAccepted") == "True", (name, conditions)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_is_admitted_strictly(kube: Kube, path: Path) -> None:
    admitted = _admit(kube, load_yaml(path))
    assert admitted["metadata"]["name"] == "dry-run-" + load_yaml(path)["metadata"]["name"]
    if admitted["kind"] == "ComputeJob":  # the server applied the schema's defaults
        assert admitted["spec"]["policy"] in ("Optimize", "PlaceOnly", "RunNow")


@pytest.mark.parametrize("bad", REFUSED_BY_BOTH, ids=[b.name for b in REFUSED_BY_BOTH])
def test_the_server_refuses_each_invalid_manifest_naming_the_field(kube: Kube,
                                                                    bad: Bad) -> None:
    with pytest.raises(KubeError) as refused:
        _admit(kube, bad.manifest())
    assert refused.value.status in (400, 422), refused.value
    leaf = bad.field.rsplit(".", 1)[-1].split("[")[0]
    assert leaf in refused.value.message, refused.value.message


_SCHEMA_BLIND = [b for b in REFUSED_BY_MODELS_ONLY if b.field != "apiVersion"]


@pytest.mark.parametrize("bad", _SCHEMA_BLIND, ids=[b.name for b in _SCHEMA_BLIND])
def test_rules_no_crd_can_see_are_left_to_the_operator(kube: Kube, bad: Bad) -> None:
    """The server admits these (they need the creation time or a zone database): the
    operator refuses them with Valid=False (see test_computejobs.py)."""
    assert _admit(kube, bad.manifest())["kind"] == bad.base["kind"]


def test_an_unserved_api_version_is_refused_by_routing(kube: Kube) -> None:
    (bad,) = [b for b in REFUSED_BY_MODELS_ONLY if b.field == "apiVersion"]
    with pytest.raises(KeyError):  # no such kind: the client cannot even route it
        _admit(kube, bad.manifest())
    with pytest.raises(KubeError) as refused:
        kube.raw("POST", "/apis/suandian.io/v1/powersites", bad.manifest())
    assert refused.value.status == 404


def _discovery(kube: Kube) -> list[tuple[str, dict[str, Any]]]:
    """(group/version, resource) of every resource the server serves."""
    out = [("v1", r) for r in kube.raw("GET", "/api/v1")["resources"]]
    for group in kube.raw("GET", "/apis")["groups"]:
        for version in group["versions"]:
            listing = kube.raw("GET", f"/apis/{version['groupVersion']}")
            out += [(version["groupVersion"], r) for r in listing["resources"]]
    return [(gv, r) for gv, r in out if "/" not in r["name"]]  # no subresources


def test_our_short_names_collide_with_nothing_the_server_serves(kube: Kube) -> None:
    """kubectl resolves a short name to the first match by group priority: ``cj`` was
    CronJob's, and ``kubectl get cj`` listed CronJobs. Ours must be nobody else's."""
    resources = _discovery(kube)
    ours = {r["name"]: r for gv, r in resources if gv.startswith("suandian.io/")}
    assert set(ours) == {"computejobs", "powersites", "gridevents"}
    taken: dict[str, str] = {}
    for gv, r in resources:
        if gv.startswith("suandian.io/"):
            continue
        for word in (r["name"], r.get("singularName") or "", *(r.get("shortNames") or ())):
            if word:
                taken[word] = f"{r['name']} ({gv})"
    for name, r in ours.items():
        for short in r.get("shortNames") or ():
            assert short not in taken, f"{name}: short name {short} is also {taken[short]}"
        assert r.get("shortNames"), name
