"""What the docs tell users to type, typed: every ``kubectl get`` and ``kubectl explain``
in the README, the docs and the chart's NOTES, through the real kubectl against the real
server, with objects whose status the operator wrote.

``kubectl get cj`` once listed CronJobs (``cj`` is theirs, and kubectl warns on stderr
and picks the built-in): a command here passes only with nothing on stderr and our
printer columns in the header.
"""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
from tests.envtest import envkit
from tests.envtest.envkit import status_of
from tests.support.kube import Kube, wait_for
from tests.support.objects import computejob

from conftest import ROOT, load_yaml

NS = "envtest-kubectl"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "helm/suandian/README.md", ROOT / "helm/suandian/templates/NOTES.txt"]
COMMAND = re.compile(r"kubectl (get|explain) ([a-z][\w.-]*)((?: -A| -o wide)*)")
pytestmark = pytest.mark.usefixtures("operator")


def documented() -> list[tuple[str, str, str]]:
    """(verb, resource, flags) of every kubectl get/explain the docs show."""
    found = set()
    for path in DOCS:
        for verb, what, flags in COMMAND.findall(path.read_text(encoding="utf-8")):
            found.add((verb, what, flags.strip()))
    return sorted(found)


@pytest.fixture(scope="module")
def objects(kube: Kube) -> dict[str, Any]:
    """A deferred and a running ComputeJob, once the operator wrote their status, and a
    GridEvent (the example shed)."""
    envkit.namespace(kube, NS)
    event = kube.create(load_yaml(ROOT / "examples/gridevents/evening-peak-shed.yaml"))
    jobs = [kube.create(computejob("waits", namespace=NS, sites=["ningxia"], max_delay="20h")),
            kube.create(computejob("runs", namespace=NS, sites=["gansu"]))]
    for cj in jobs:
        wait_for(lambda cj=cj: status_of(kube, cj).get("greenPercent") is not None,
                 timeout=60, what=f"{cj['metadata']['name']} planned")
    wait_for(lambda: all(status_of(kube, {"apiVersion": "suandian.io/v1alpha1",
                                          "kind": "PowerSite", "metadata": {"name": s}}
                                   ).get("nodes") for s in envkit.SITES),
             timeout=60, what="every PowerSite's status")
    return {"jobs": jobs, "event": event}


def run(kubectl: list[str], *args: str) -> tuple[str, str]:
    done = subprocess.run([*kubectl, *args], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout, done.stderr


def columns(kube: Kube, resource: str, wide: bool) -> list[str]:
    crds = kube.list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    (crd,) = [c for c in crds if c["spec"]["group"] == "suandian.io" and resource in {
        c["spec"]["names"]["plural"], c["spec"]["names"]["singular"],
        *c["spec"]["names"].get("shortNames", [])}]
    printed = crd["spec"]["versions"][0]["additionalPrinterColumns"]
    return ["NAME"] + [c["name"].upper() for c in printed if wide or not c.get("priority")]


def cells(line: str) -> list[str]:
    """A kubectl table line's cells (headers may hold one space: ``GREEN KW``)."""
    return re.split(r"\s{2,}", line.strip())


def openapi_v3_works(kube: Kube) -> bool:
    """The test build's OpenAPI v3 serves Go field names instead of schemas (see
    ../shared/kube/README.md on OpenAPI), so kubectl explain finds no resource in it."""
    doc = kube.raw("GET", "/openapi/v3/apis/batch/v1")
    return "properties" in doc["components"]["schemas"]["io.k8s.api.batch.v1.CronJob"]


def explained_by_the_crd(kube: Kube, what: str) -> None:
    """What ``kubectl explain`` prints on a healthy server, read where it comes from:
    the served CRD's schema, each field with its description."""
    kind, *path = what.split(".")
    crds = kube.list("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    (crd,) = [c for c in crds if c["spec"]["names"]["singular"] == kind]
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in path:
        node = node["properties"][part]
    assert node.get("description")
    assert node["properties"] and all(f.get("description")
                                      for f in node["properties"].values())


def test_the_docs_show_both_kinds_and_their_short_names() -> None:
    shown = {what for verb, what, _ in documented() if verb == "get"}
    assert {"psite", "cjob", "powersites", "computejobs"} <= shown, shown


@pytest.mark.parametrize(("verb", "what", "flags"), documented(),
                         ids=[" ".join(c).strip() for c in documented()])
def test_each_documented_command_works_as_shown(kubectl: list[str], kube: Kube,
                                                objects: dict[str, Any], verb: str, what: str,
                                                flags: str) -> None:
    args = [verb, what, *flags.split()]
    if verb == "get" and "-A" not in flags and what in ("cjob", "computejobs"):
        args += ["-n", NS]
    if verb == "explain" and not openapi_v3_works(kube):
        explained_by_the_crd(kube, what)
        return
    out, err = run(kubectl, *args)
    assert err == ""  # no "short name could also match" warning, nothing else
    if verb == "explain":
        assert "FIELDS:" in out and "DESCRIPTION:" in out
        return
    header = cells(out.splitlines()[0])
    want = columns(kube, what, wide="-o wide" in flags)
    if "-A" in flags:
        want = ["NAMESPACE", *want]
    assert header == want
    if what in ("cjob", "computejobs"):
        assert {"waits", "runs"} <= {cells(line)[1 if "-A" in flags else 0]
                                     for line in out.splitlines()[1:]}
    if what in ("gev", "gridevents"):
        assert [cells(line)[:2] for line in out.splitlines()[1:]] == [
            [objects["event"]["metadata"]["name"], "Shed"]]


def test_the_grid_event_table_is_what_kubectl_prints(kubectl: list[str], kube: Kube,
                                                     objects: dict[str, Any]) -> None:
    """docs/grid-events.md's table: the example shed, its status as the operator wrote it
    (its site is no PowerSite here: nothing committed; the phase depends on the date)."""
    doc = (ROOT / "docs" / "grid-events.md").read_text(encoding="utf-8")
    shown = doc.split("$ kubectl get gev\n", 1)[1].splitlines()
    name = objects["event"]["metadata"]["name"]
    wait_for(lambda: status_of(kube, objects["event"]).get("asked"),
             timeout=60, what="the GridEvent's status")
    out, _ = run(kubectl, "get", "gev")
    assert cells(out.splitlines()[0]) == cells(shown[0])
    rows = {cells(line)[0]: cells(line) for line in out.splitlines()[1:]}
    # name, type, sites, window and request: what the date cannot change
    assert rows[name][:6] == cells(shown[1])[:6]


def test_the_readme_table_is_what_kubectl_prints(kubectl: list[str],
                                                 objects: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = readme.split("$ kubectl get cjob\n", 1)[1].splitlines()
    out, _ = run(kubectl, "get", "cjob", "-n", NS)
    assert cells(out.splitlines()[0]) == cells(shown[0])
    rows = {cells(line)[0]: cells(line) for line in out.splitlines()[1:]}
    assert rows["waits"][1:3] == ["Deferred", "ningxia"]
    assert rows["runs"][1:3] == ["Running", "gansu"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", rows["waits"][3])


def test_wide_output_says_why(kubectl: list[str], objects: dict[str, Any]) -> None:
    out, _ = run(kubectl, "get", "cjob", "waits", "-n", NS, "-o", "wide")
    header, row = out.splitlines()[:2]
    assert "REASON" in header.split()
    assert "ningxia" in row[header.index("REASON"):]
