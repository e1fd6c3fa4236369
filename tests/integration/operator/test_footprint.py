"""What ``suandian run`` carries: the real command, in its own process, against the
emulator, through a decision on a PowerSite with the built-in forecast models, with the
``kubernetes`` package absent (as in the image). Afterwards nothing of the simulator's
plotting or MILP stack (matplotlib, scipy, highspy, pulp) and nothing of ``kubernetes``
may be in ``sys.modules``, and only kopf may even have tried to import ``kubernetes``
(its optional support for the client's models). Its helper processes (the planner
process, multiprocessing's resource tracker) may have mapped no compiled part of those
packages either. The processes' resident memory is printed for the record."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import yaml
from tests.support.cluster import ClusterSim
from tests.support.emulator import ApiEmulator
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import free_port

from conftest import ROOT

HEAVY = ("kubernetes", "kubernetes_asyncio", "pykube", "matplotlib", "scipy", "highspy",
         "pulp", "PIL")
"""Top-level packages the operator must not load."""
SIMULATOR = ("suandian.sim", "suandian.planner.oracle", "suandian.forecast.report")
"""Our own modules only the simulator and the plots need."""

PROBE = """\
import atexit, importlib.abc, json, os, sys

ABSENT = ("kubernetes", "kubernetes_asyncio", "pykube")
tried = []

class Absent(importlib.abc.MetaPathFinder):
    # as in the operator image, where these are not installed; notes who asked
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ABSENT:
            frame = sys._getframe(1)
            while frame and frame.f_globals.get("__name__", "").startswith(
                    ("importlib", "_frozen_importlib")):
                frame = frame.f_back
            tried.append([name, frame.f_globals.get("__name__", "?") if frame else "?"])
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())

def dump():
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    with open(os.environ["FOOTPRINT_OUT"], "w") as out:
        json.dump({"modules": sorted(sys.modules), "tried": tried,
                   "rss_kb": int(status["VmRSS"].split()[0]),
                   "hwm_kb": int(status["VmHWM"].split()[0])}, out)

atexit.register(dump)
from suandian.cli import main
sys.argv = ["suandian", *sys.argv[1:]]
main()
"""


async def test_suandian_run_carries_no_simulator_stack_and_no_kubernetes_client(
        api: ApiEmulator, cluster: ClusterSim, tmp_path: Path) -> None:
    api.clock = lambda: datetime.now(UTC)  # the operator's clock is the wall clock
    site = yaml.safe_load((ROOT / "examples/powersites/gansu.yaml").read_text())
    api.create(PSITES, site)  # forecasts from the built-in models
    cluster.add_node("gansu-1", {"topology.kubernetes.io/region": "gansu"})
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": str(api.url).rstrip("/")}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator"}}]}))
    out = tmp_path / "footprint.json"
    log = (tmp_path / "operator.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", PROBE, "run", "--kubeconfig", str(kubeconfig), "--standalone",
         "--metrics-port", "0", "--liveness", f"http://127.0.0.1:{free_port()}/healthz",
         "--log-format", "plain"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        env={**os.environ, "FOOTPRINT_OUT": str(out), "SUANDIAN_RETRY_DELAY": "1"})
    try:
        api.create(CJ, computejob("probe", sites=["gansu"]))
        await eventually(lambda: (api.read(CJ, "batch", "probe") or {}).get("status", {})
                         .get("phase"), timeout=90, what="a decision")
        helpers = {pid: _maps(pid) for pid in _children(proc.pid)}  # the planner process
    finally:
        proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.1)
        else:
            proc.kill()
        log.close()
    assert out.exists(), (tmp_path / "operator.log").read_text()[-3000:]
    found = json.loads(out.read_text())
    modules = set(found["modules"])
    assert "suandian.forecast.solar" in modules and "kopf" in modules  # it really ran
    loaded = sorted(m for m in modules
                    if m.split(".")[0] in HEAVY or m.startswith(SIMULATOR))
    assert loaded == []
    askers = {who.split(".")[0] for _, who in found["tried"]}
    assert askers <= {"kopf"}, found["tried"]
    print(f"suandian run after a decision: RSS {found['rss_kb'] / 1024:.1f} MB, "
          f"peak {found['hwm_kb'] / 1024:.1f} MB, {len(modules)} modules")
    for pid, (libraries, rss_kb) in helpers.items():  # compiled parts show in its maps
        heavy = sorted({lib for lib in libraries
                        if any(f"/{name}" in lib for name in HEAVY if name != "pulp")})
        assert heavy == [], f"process {pid} loaded {heavy}"
        print(f"its process {pid}: RSS {rss_kb / 1024:.1f} MB")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _maps(pid: int) -> tuple[set[str], int]:
    """The files mapped into a process (its shared libraries) and its RSS (kB)."""
    try:
        maps = (Path("/proc") / str(pid) / "maps").read_text().splitlines()
        status = (Path("/proc") / str(pid) / "status").read_text().splitlines()
    except OSError:
        return set(), 0
    rss = next((int(line.split()[1]) for line in status if line.startswith("VmRSS")), 0)
    return {line.split()[-1] for line in maps if len(line.split()) >= 6}, rss
