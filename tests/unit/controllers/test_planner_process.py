"""Full rounds in the planner process: the same decisions and ledger as in a thread, only
what changed crosses the pipe, a dead process costs one round, its errors come back."""

from __future__ import annotations

import dataclasses
import gc
import io
import pickle
import subprocess
import sys
import threading
from datetime import timedelta
from multiprocessing import Pipe
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.unit.controllers.test_commitments import SLOT, T0, demand, service

from suandian.controllers.planning import PlanningService
from suandian.errors import PlanningError
from suandian.planner import PlanParams
from suandian.planning import process as worker
from suandian.planning import rounds
from suandian.planning.rounds import ClusterInputs


def decisions(planning: PlanningService) -> dict[str, Any]:
    return {k: (d.site, d.windows) for k, d in planning._decisions.items()}


def ledger(planning: PlanningService) -> np.ndarray:
    load, held = planning._commitments.window("s", rounds.absolute_slot(T0, SLOT), 8)
    return np.concatenate([load, held.ravel()])


def with_green(planning: PlanningService, green: np.ndarray) -> None:
    entry = planning._sites()["s"]
    f = entry.forecast
    new = dataclasses.replace(f, green_kw={"wind": green}, green_total_kw=green,
                              green_p10_kw=green, green_p90_kw=green)
    sites = {"s": type(entry)(entry.site, new)}
    planning._sites = lambda: sites
    planning.replan()


@pytest.fixture
def pair() -> Any:
    """The same service twice: full rounds in a thread, and in the planner process."""
    thread, process = service(), service(full_rounds="process")
    yield thread, process
    assert process._planner is not None
    process._planner.close()


async def both(pair: Any, jobs: int = 0) -> None:
    """``jobs`` more demands for each service of the pair, then a round of each."""
    for planning in pair:
        for i in range(jobs):
            planning.upsert(demand(f"job-{i}"))
        await planning.run_round()


async def test_the_process_decides_and_accounts_as_the_thread_does(pair: Any) -> None:
    thread, process = pair
    await both(pair, jobs=12)
    assert decisions(process) == decisions(thread) and len(decisions(thread)) == 12
    assert np.array_equal(ledger(process), ledger(thread)) and ledger(thread).any()
    assert process._planner is not None and len(process._planner._mirror) == 12
    # arrivals (in this process either way), then a forecast that moves everyone
    for planning in pair:
        planning.upsert(demand("late"))
    await both(pair)
    green = np.zeros(8)
    green[6:8] = 400.0
    for planning in pair:
        with_green(planning, green)
    await both(pair)
    assert decisions(process) == decisions(thread)
    assert np.array_equal(ledger(process), ledger(thread))
    assert len(process._planner._mirror) == 13


async def test_only_the_changed_decisions_come_back(pair: Any, monkeypatch: Any) -> None:
    _, process = pair
    for i in range(12):
        process.upsert(demand(f"job-{i}"))
    await process.run_round()
    answers: list[worker.RemoteRound] = []
    real = worker.PlannerProcess.compute

    async def spy(self: Any, inputs: Any, params: Any) -> Any:
        answers.append(await real(self, inputs, params))
        return answers[-1]

    monkeypatch.setattr(worker.PlannerProcess, "compute", spy)
    process.replan()  # only the clock would have moved: nothing changes
    await process.run_round()
    assert answers[-1].decided == 12 and answers[-1].changed == []
    with_green(process, np.full(8, 500.0))  # green everywhere: each starts at once
    await process.run_round()
    assert 0 < len(answers[-1].changed) <= 12
    assert all(take is not None for _, take in answers[-1].changed)


async def test_a_dead_planner_process_costs_one_round(pair: Any) -> None:
    thread, process = pair
    await both(pair, jobs=10)
    planner = process._planner
    assert planner is not None
    dead = planner._process
    dead.kill()  # between rounds: the next one starts it again, and plans as before
    dead.join()
    process.replan()
    await process.run_round()
    assert planner.alive and planner._process is not dead and len(planner._mirror) == 10
    assert decisions(process) == decisions(thread)

    class Zombie:  # dies while a round is under way: the pipe breaks under it
        def __init__(self, real: Any) -> None:
            self.real, self.pid = real, real.pid

        def is_alive(self) -> bool:
            return True

        def join(self, timeout: float | None = None) -> None:
            self.real.join(timeout)

        def kill(self) -> None:
            self.real.kill()

    planner._process.kill()
    planner._process.join()
    planner._process = Zombie(planner._process)
    process.replan()
    with pytest.raises(PlanningError, match="the planner process died"):
        await process.run_round()
    assert process.pending("job-0") is False  # it keeps its decision meanwhile
    await process.run_round()  # the failed round's retry: a new process, a new mirror
    thread.replan()
    await thread.run_round()
    assert decisions(process) == decisions(thread)
    assert planner.alive and len(planner._mirror) == 10


async def test_a_planning_error_in_the_process_is_raised_here(pair: Any) -> None:
    _, process = pair
    for i in range(10):
        process.upsert(demand(f"job-{i}"))
    await process.run_round()
    entry = process._sites()["s"]
    other = dataclasses.replace(
        entry.forecast, grid=dataclasses.replace(entry.forecast.grid,
                                                 slot=timedelta(minutes=30)))
    sites = {"s": entry, "t": type(entry)(entry.site.model_copy(
        update={"metadata": entry.site.metadata.model_copy(update={"name": "t"})}), other)}
    process._sites = lambda: sites
    process.replan()
    with pytest.raises(PlanningError, match="in the planner process: sites forecast on "
                                            "different slot lengths"):
        await process.run_round()


def serve_in_thread(sync: worker.Sync, *asks: worker.Ask) -> list[Any]:
    """``serve`` as the process runs it, here in a thread: ``sync``, then each ask, and
    the answer to each; the loop has ended once the pipe is closed."""
    ours, theirs = Pipe()
    served = threading.Thread(target=worker.serve, args=(theirs,))
    served.start()
    ours.send(sync)
    for ask in asks:
        ours.send(ask)
    answers = [ours.recv() for _ in asks]
    ours.close()
    served.join(timeout=5)
    assert not served.is_alive()
    return answers


def ask(**fields: Any) -> worker.Ask:
    """A full round of nothing but its demands at ``T0``, over 8 slots."""
    return worker.Ask(T0, {}, (), (), {}, 8, PlanParams(), **fields)


def test_a_bug_in_the_process_comes_back_with_its_type_and_traceback(monkeypatch: Any) -> None:
    """The planner made to fail in the process's loop."""
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise IndexError("index 7 is out of bounds")

    monkeypatch.setattr(worker, "compute", broken)
    (failed,) = serve_in_thread(worker.Sync((demand("a"),), ()), ask())
    assert isinstance(failed, worker.Failed)
    assert (failed.kind, failed.message, failed.planning) == (
        "IndexError", "index 7 is out of bounds", False)
    assert "Traceback" in failed.trace and "broken" in failed.trace


def test_differs_is_news_only_for_another_site_or_windows_a_minute_apart() -> None:
    held = ("s", ((T0, T0 + SLOT),))
    d = dataclasses.replace  # JobDecision is frozen
    base = rounds_decision()
    assert not worker.differs(held, base)
    assert not worker.differs(held, d(base, windows=((T0 + timedelta(seconds=59),
                                                       T0 + SLOT),)))
    assert worker.differs(held, d(base, windows=((T0 + timedelta(minutes=1), T0 + SLOT),)))
    assert worker.differs(held, d(base, site="t"))
    assert worker.differs(None, base)
    assert worker.differs(held, d(base, windows=((T0, T0 + SLOT), (T0 + 2 * SLOT,
                                                                  T0 + 3 * SLOT))))


def rounds_decision() -> Any:
    from suandian.planner import JobDecision
    return JobDecision(key="k", site="s", site_index=0, start_slot=0, planned_start=T0,
                       latest_start=T0, slots=(0,), windows=((T0, T0 + SLOT),),
                       start_now=True, node_preferences=(), expected_emissions_g=0.0,
                       run_now_emissions_g=0.0, expected_green_fraction=0.0,
                       energy_kwh=1.0, reason="r")


def test_nodes_cross_the_pipe_only_when_they_changed() -> None:
    from suandian.controllers.view import NodeRecord
    a = NodeRecord("a", {}, {}, True)
    same = ((0, a),)
    assert worker.same_nodes(same, ((0, a),))
    assert not worker.same_nodes(same, None)
    assert not worker.same_nodes(same, ((1, a),))
    assert not worker.same_nodes(same, ((0, NodeRecord("a", {}, {}, True)),))
    assert ClusterInputs(same, {}).nodes is same


async def test_the_planner_process_exits_when_the_operator_goes(pair: Any) -> None:
    """A killed operator closes its end of the pipe (the kernel does, at kill -9): the
    planner process sees the end of its input and exits; nothing is left behind."""
    _, process = pair
    for i in range(10):
        process.upsert(demand(f"job-{i}"))
    await process.run_round()
    planner = process._planner
    assert planner is not None and planner.alive
    child = planner._process
    assert planner._conn is not None
    planner._conn.close()  # no goodbye: as the kernel closes a killed process's pipe
    child.join(timeout=10)
    assert not child.is_alive() and child.exitcode == 0


class Recorder:
    """A pipe end that keeps what it sends, pickled."""

    def __init__(self, conn: Any) -> None:
        self.conn, self.sent = conn, []

    def send(self, message: Any) -> None:
        self.sent.append(pickle.dumps(message))
        self.conn.send(message)

    def recv(self) -> Any:
        return self.conn.recv()

    def close(self) -> None:
        self.conn.close()


PLANNER_TYPES = ("builtins", "copyreg", "collections", "datetime", "numpy",
                 "suandian.planner", "suandian.planning")
"""Where the types of what the operator sends the planner process may come from."""


async def test_what_crosses_the_pipe_is_of_the_planners_types_only(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unpickling a message imports the modules of its types. Nodes used to go as the
    view's records, and the process loaded ``suandian.controllers`` (kopf, aiohttp, the
    client: 31 MB) for them; forecasts as ``SiteForecast`` (the forecast layer, asyncio,
    yaml: 5 MB); sites as PowerSites (pydantic and the API models: 16 MB)."""
    recorders: list[Recorder] = []
    real = worker.Child.start

    def start(cls: type[worker.Child]) -> worker.Child:
        child = real()
        recorders.append(Recorder(child.conn))
        child.conn = recorders[-1]  # type: ignore[assignment]
        return child

    monkeypatch.setattr(worker.Child, "start", classmethod(start))
    planning = service(full_rounds="process")
    try:
        for i in range(5):
            planning.upsert(demand(f"job-{i}"))
        await planning.run_round()
        assert len(decisions(planning)) == 5
    finally:
        assert planning._planner is not None
        planning._planner.close()
    found: set[str] = set()

    class Spy(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            found.add(module)
            return super().find_class(module, name)

    sent = [m for r in recorders for m in r.sent]
    messages = [Spy(io.BytesIO(m)).load() for m in sent]
    ask = next(m for m in messages if isinstance(m, worker.Ask))
    assert ask.nodes and ask.sites  # the nodes and the sites' forecasts went too
    assert {"suandian.planning.process", "suandian.planner.build"} <= found  # SiteTerms
    assert sorted(m for m in found if not any(
        m == allowed or m.startswith(allowed + ".") for allowed in PLANNER_TYPES)) == []


def test_the_planner_process_does_not_run_the_operators_main_again(tmp_path: Path) -> None:
    """A ``multiprocessing`` spawn runs the parent's ``__main__`` again in the child (as
    ``__mp_main__``): for ``suandian run``, the console script and with it
    ``suandian.cli``'s imports (the metrics server, aiohttp, prometheus_client: 14 MB);
    and it starts multiprocessing's resource tracker, a third process of 15 MB. The
    script here notes any import of itself under another name; it starts the planner
    process, has a round answered (so the process is fully up) and counts its own
    child processes: the planner process only."""
    mark = tmp_path / "imported-again"
    script = tmp_path / "main.py"
    script.write_text(
        "import os, sys\n"
        "if __name__ != '__main__':\n"
        f"    open({str(mark)!r}, 'w').write(__name__)\n"
        "else:\n"
        "    from datetime import UTC, datetime\n"
        "    from suandian.planner import PlanParams\n"
        "    from suandian.planning import process as worker\n"
        "    planner = worker.PlannerProcess()\n"
        "    conn = planner._start()\n"
        "    conn.send(worker.Ask(datetime.now(UTC), {}, (), (), {}, 8, PlanParams()))\n"
        "    print(type(conn.recv()).__name__)\n"
        "    def parent(pid):\n"
        "        try:\n"
        "            return open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1]\n"
        "        except OSError:  # ended meanwhile\n"
        "            return None\n"
        "    mine = str(os.getpid())\n"
        "    print(sum(1 for p in os.listdir('/proc') if p.isdigit() and parent(p) == mine))\n"
        "    planner.close()\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.split() == ["Done", "1"], out.stdout + out.stderr
    assert not mark.exists(), mark.read_text()


def test_the_planner_process_plans_with_the_cycle_collector_paused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Off while the round is computed (it walked the round's objects again and again),
    on again once it is answered, also when the round fails."""
    seen: list[bool] = []

    def compute(inputs: rounds.RoundInputs, *args: object, **kwargs: object) -> None:
        seen.append(gc.isenabled())
        if len(seen) == 2:
            raise IndexError("7")

    monkeypatch.setattr(worker, "compute", compute)
    done, failed = serve_in_thread(worker.Sync((demand("a"),), ()), ask(), ask())
    assert isinstance(done, worker.Done) and isinstance(failed, worker.Failed)
    assert seen == [False, False] and gc.isenabled()
