"""The planner process: full rounds computed beside the operator, not inside it.

A worker thread keeps a full round off the event loop but not off the loop's core: the
planner is Python and holds the GIL, so while it computes (a second or more for ten
thousand jobs) the loop gets a share of one core, and a burst of arrivals queues behind
it (measured: p99 1.1 s at 200 arrivals/s, against 0.12 s without the round). A process
has its own interpreter and, on a machine of two cores or more, its own core.

What crosses the pipe is kept small, since pickling runs on the operator's side too:

- the process keeps a **mirror of the demands**; before each round the operator sends
  only those that changed since the last (``Sync``, 500 to a message: ten thousand new
  ones at start-up are twenty messages of a few milliseconds, not one of 170 ms);
- the nodes only when they changed; the sites, free capacity and held decisions with
  every round (``Ask``);
- back come only the decisions that **differ** from what each job holds (or that it
  had none), each with what it takes, and what the running jobs take (``Part``, 500 to a
  message), then ``Done`` (or ``Failed``, with the error's type, text and traceback).

The process is started on the first round and again after it dies (the mirror is
rebuilt from scratch then): a dead planner process costs one failed round, retried.
It reads its pipe only; it ends when the pipe closes, as when the operator is killed.

Its memory counts in the pod's, so it carries only the planner:

- it is a fresh interpreter running :func:`main` (``subprocess``, a socket pair for the
  pipe), not a ``multiprocessing`` spawn, which runs the parent's ``__main__`` again in
  the child: for ``suandian run`` that is the console script, whose ``suandian.cli``
  brings the metrics server, aiohttp and prometheus_client (14 MB);
- what crosses the pipe is built of the planner's and this package's types only: the
  nodes go as :class:`PlainNode`, not as the view's records, whose unpickling imported
  ``suandian.controllers`` and with it kopf, aiohttp and the client (31 MB);
- after each round the freed heap is given back to the system (``malloc_trim``, glibc),
  so that between rounds the process holds its mirror, not its last round's peak.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, NamedTuple, TypeVar

from suandian.errors import PlanningError
from suandian.planner import JobDecision, NodeInfo, PlanParams
from suandian.planner.grid import AskAnswer, GridAsk
from suandian.planning.commitments import Commitment
from suandian.planning.rounds import (
    SHARED,
    ClusterInputs,
    Demand,
    Held,
    PlainSite,
    RoundInputs,
    commitments_of,
    compute,
    moved,
    node_infos,
)

__all__ = ["CHUNK", "PlainNode", "PlannerProcess", "RemoteBug", "RemoteRound", "plain_nodes",
           "same_nodes"]

log = logging.getLogger(__name__)

CHUNK = 500
"""Demands or decisions per message across the pipe."""

T = TypeVar("T")

class PlainNode(NamedTuple):
    """A node as it crosses the pipe: what :func:`.rounds.node_infos` reads of the view's
    record, in types the planner process has loaded anyway."""

    name: str
    labels: Mapping[str, str]
    allocatable: Mapping[str, float]


def plain_nodes(nodes: Sequence[tuple[int, Any]]) -> tuple[tuple[int, PlainNode], ...]:
    """``(site index, node record)`` pairs as :class:`PlainNode` pairs (the records'
    dictionaries are shared, not copied)."""
    return tuple((i, PlainNode(n.name, n.labels, n.allocatable)) for i, n in nodes)


@dataclass(frozen=True)
class Sync:
    upserts: tuple[Demand, ...]
    removed: tuple[str, ...]
    arrivals: tuple[Demand, ...] = ()  # the operator's arrival log, entries not sent yet


@dataclass(frozen=True)
class Ask:
    now: datetime
    held: Held
    sites: tuple[PlainSite, ...]
    nodes: tuple[tuple[int, PlainNode], ...] | None  # None: as in the last round
    free: Mapping[str, Mapping[str, float]]
    horizon_slots: int
    params: PlanParams
    recurring: tuple[str, ...] = ()  # the keys of the log's entries this round plans
    arrivals_complete: bool = False  # they are all the work forecast (RoundInputs)
    asks: tuple[GridAsk, ...] = ()  # the grid's requests (RoundInputs.asks)


@dataclass(frozen=True)
class Part:
    changed: tuple[tuple[JobDecision, Commitment | None], ...]
    running: tuple[tuple[str, Commitment], ...]


@dataclass(frozen=True)
class Done:
    decided: int
    seconds: float
    answers: tuple[AskAnswer, ...] = ()


@dataclass(frozen=True)
class Failed:
    kind: str
    message: str
    planning: bool  # a PlanningError or ValueError (the snapshot explains it), not a bug
    trace: str


@dataclass(frozen=True)
class RemoteRound:
    """A full round computed in the planner process: the decisions that changed (with
    their takes), the running jobs' takes, how many decisions the plan had."""

    changed: list[tuple[JobDecision, Commitment | None]]
    running: list[tuple[str, Commitment]]
    decided: int
    seconds: float
    answers: tuple[AskAnswer, ...] = ()  # to the grid's requests (RoundResult.answers)


async def off_loop(fn: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread``, asyncio imported here: the planner process imports this
    module and never needs it (with what it brings, some 3 MB)."""
    import asyncio

    return await asyncio.to_thread(fn, *args)


class PlannerProcess:
    """The operator's side of the planner process (see the module docstring)."""

    def __init__(self) -> None:
        self._process: Any = None
        self._conn: Connection | None = None
        self._mirror: dict[str, Demand] = {}
        self._nodes: tuple[tuple[int, Any], ...] | None = None
        self._sent: set[str] = set()  # arrival-log entries the process has

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def _start(self) -> Connection:
        self.close()
        self._process = child = Child.start()
        self._conn, self._mirror, self._nodes, self._sent = child.conn, {}, None, set()
        log.info("planner process started (pid %s)", child.pid)
        return child.conn

    async def compute(self, inputs: RoundInputs, params: PlanParams) -> RemoteRound:
        """A full round of ``inputs`` in the process. Raises PlanningError when the
        process died (it is started again for the next round) and the round's own error
        when it failed there."""
        conn = self._conn if self.alive and self._conn is not None else self._start()
        try:
            return await self._round(conn, inputs, params)
        except (EOFError, BrokenPipeError, ConnectionError, OSError) as exc:
            self.close()
            raise PlanningError(f"the planner process died ({type(exc).__name__}); "
                                "started again for the next round") from exc

    async def _round(self, conn: Connection, inputs: RoundInputs, params: PlanParams
                     ) -> RemoteRound:
        target = {d.key: d for d in inputs.demands}
        upserts = [d for k, d in target.items() if self._mirror.get(k) is not d]
        removed = tuple(k for k in self._mirror if k not in target)
        self._mirror = {}  # until the process has all of it (a failure restarts it)
        for i in range(0, len(upserts), CHUNK):
            await off_loop(conn.send, Sync(tuple(upserts[i:i + CHUNK]), ()))
        if removed:
            await off_loop(conn.send, Sync((), removed))
        arrivals = [d for d in inputs.recurring if d.key not in self._sent]
        for i in range(0, len(arrivals), CHUNK):
            await off_loop(conn.send, Sync((), (), tuple(arrivals[i:i + CHUNK])))
        self._sent = {d.key for d in inputs.recurring}  # what it keeps (it prunes alike)
        cluster = inputs.cluster or ClusterInputs((), {})
        nodes = None
        if not same_nodes(cluster.nodes, self._nodes):
            nodes = await off_loop(plain_nodes, cluster.nodes)
        held = await off_loop(lambda: inputs.held)  # O(demands): off the loop
        await off_loop(conn.send, Ask(
            inputs.now, held, tuple(e.plain() for e in inputs.sites), nodes, cluster.free,
            inputs.horizon_slots, params, tuple(d.key for d in inputs.recurring),
            inputs.arrivals_complete, inputs.asks))
        self._nodes = cluster.nodes
        changed: list[tuple[JobDecision, Commitment | None]] = []
        running: list[tuple[str, Commitment]] = []
        while True:
            message = await off_loop(lambda: shared(conn.recv(), target))
            if isinstance(message, Part):
                changed.extend(message.changed)
                running.extend(message.running)
            elif isinstance(message, Done):
                self._mirror = target
                return RemoteRound(changed, running, message.decided, message.seconds,
                                   message.answers)
            elif isinstance(message, Failed):
                self._mirror = target
                log.debug("the planner process's traceback:\n%s", message.trace)
                error = PlanningError if message.planning else RemoteBug
                raise error(f"{message.kind} in the planner process: {message.message}")
            else:
                raise PlanningError(f"unexpected message from the planner process: "
                                    f"{type(message).__name__}")

    def close(self) -> None:
        """End the process (its pipe closes; it exits on its own, or is killed)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(timeout=1.0)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(timeout=1.0)  # reaped: no zombie left behind
            self._process = None


def shared(message: Any, demands: Mapping[str, Demand]) -> Any:
    """A :class:`Part` as kept here: its decisions and takes through :data:`.rounds.SHARED`
    (with what the operator's other decisions hold), each key the operator's own string;
    any other message as it is."""
    if not isinstance(message, Part):
        return message

    def key(k: str) -> str:
        demand = demands.get(k)
        return demand.key if demand is not None else k

    return Part(
        tuple((SHARED.decision(d, key(d.key)), None if c is None else SHARED.commitment(c))
              for d, c in message.changed),
        tuple((key(k), SHARED.commitment(c)) for k, c in message.running))


class Child:
    """The planner process: ``python -c`` running :func:`main` with one end of a socket
    pair (what ``multiprocessing.Pipe`` is on POSIX) and this interpreter's ``sys.path``;
    ``is_alive``, ``join``, ``kill``, ``pid`` and ``exitcode`` as a ``multiprocessing``
    process has them."""

    CODE = ("import sys, json; sys.path[:] = json.loads(sys.argv[2]); "
            "from suandian.planning.process import main; main(int(sys.argv[1]))")

    def __init__(self, popen: subprocess.Popen[bytes], conn: Connection) -> None:
        self.popen, self.conn = popen, conn

    @classmethod
    def start(cls) -> Child:
        ours, theirs = socket.socketpair()
        try:
            popen = subprocess.Popen(
                [sys.executable, "-c", cls.CODE, str(theirs.fileno()), json.dumps(sys.path)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        return cls(popen, Connection(ours.detach()))

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def exitcode(self) -> int | None:
        return self.popen.poll()

    def is_alive(self) -> bool:
        return self.popen.poll() is None

    def join(self, timeout: float | None = None) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout)

    def kill(self) -> None:
        self.popen.kill()


class RemoteBug(RuntimeError):
    """An unexpected error (a bug) raised in the planner process, by name and message."""


def same_nodes(a: Sequence[tuple[int, Any]], b: Sequence[tuple[int, Any]] | None) -> bool:
    """The same nodes, object for object (the view hands out the records it keeps)."""
    return b is not None and len(a) == len(b) and all(
        x[0] == y[0] and x[1] is y[1] for x, y in zip(a, b, strict=True))


# -- the process's side ---------------------------------------------------------------------

NICENESS = 10
"""The planner process's ``nice`` increment: a full round is background work, and where
cores are short the operator's event loop (arrivals, steps, probes) should win them."""


def main(fd: int) -> None:
    """The planner process (:class:`Child`): serve the pipe on ``fd`` until it closes.
    A Ctrl-C at a terminal reaches the whole process group: the operator handles it,
    and this process ends when the operator's end of the pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with Connection(fd) as conn:
        serve(conn)


def serve(conn: Connection) -> None:
    """The planner process's loop: apply syncs, answer asks, until the pipe closes."""
    try:
        os.nice(NICENESS)
    except OSError as exc:  # not allowed here (a policy, a platform): run as we are
        log.debug("the planner process keeps its priority: %s", exc)
    demands: dict[str, Demand] = {}
    arrivals: dict[str, Demand] = {}  # the operator's arrival-log entries, as sent
    nodes: tuple[NodeInfo, ...] = ()  # the planner's nodes, made once per change
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, Sync):
            for d in message.upserts:
                demands[d.key] = d
            for d in message.arrivals:
                arrivals[d.key] = d
            for key in message.removed:
                demands.pop(key, None)
        elif isinstance(message, Ask):
            if message.nodes is not None:
                nodes = ()  # the old ones go first
                nodes = node_infos(ClusterInputs(message.nodes, {}))
                message = replace(message, nodes=None)  # only the planner's are kept
            try:
                try:
                    with collector_paused():
                        answer(conn, message, tuple(demands.values()), nodes, arrivals)
                    gc.collect()  # the round's cycles, if any, once it is answered
                    trim()
                except (BrokenPipeError, ConnectionError):
                    raise
                except Exception as exc:  # noqa: BLE001 (sent to the operator, which raises it)
                    conn.send(Failed(type(exc).__name__, str(exc),
                                     isinstance(exc, PlanningError | ValueError),
                                     traceback.format_exc()))
            except (BrokenPipeError, ConnectionError):
                return  # the operator is gone (or closed the pipe): nobody to answer


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cycle collector off while a round is computed. A round makes some
    hundreds of thousands of small objects (terms, decisions, reasons, each freed by its
    count), and the collector walked the live ones again every few thousand: 4-8% of
    ``plan()`` at 10,000 jobs (0.519 s of CPU with it, 0.497 s without, best of 8 in
    turns, load 0.9). The process does nothing else meanwhile."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _libc_trim() -> Any:
    """glibc's ``malloc_trim``, or None (another C library, or none to be found)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


_TRIM: Any = None


def trim() -> None:
    """Give the heap that a round freed back to the system (glibc's ``malloc_trim``:
    freed pages inside the heap too, not only its top); nothing where it is missing."""
    global _TRIM
    if _TRIM is None:
        _TRIM = _libc_trim() or (lambda pad: 0)
    _TRIM(0)


def answer(conn: Connection, ask: Ask, demands: tuple[Demand, ...],
           nodes: tuple[NodeInfo, ...], arrivals: dict[str, Demand] | None = None
           ) -> None:
    """Compute one full round and send what changed; ``arrivals``: the arrival-log
    entries sent so far, of which the round plans those the operator names (and keeps
    only those: the log's window moves on, and what left it never comes back)."""
    recurring: tuple[Demand, ...] = ()
    if arrivals is not None:
        recurring = tuple(arrivals[k] for k in ask.recurring if k in arrivals)
        for key in set(arrivals) - set(ask.recurring):
            del arrivals[key]
    inputs = RoundInputs(now=ask.now, full=True, demands=demands, given_held=ask.held,
                         sites=ask.sites, cluster=ClusterInputs((), ask.free),
                         horizon_slots=ask.horizon_slots, nodes=nodes, recurring=recurring,
                         arrivals_complete=ask.arrivals_complete, asks=ask.asks)
    result = compute(inputs, ask.params, account=False)
    if result is None:
        conn.send(Done(0, 0.0))
        return
    news = [d for d in result.plan.decisions if differs(ask.held.get(d.key), d)]
    # the takes of what is sent only: an unchanged decision takes what it took
    keys = {d.key for d in news}.union(j.key for j in result.snapshot.jobs
                                       if j.running_site is not None)
    takes = dict(commitments_of(result.snapshot, result.plan, keys=keys).items())
    changed = [(d, takes.get(d.key)) for d in news]
    running = [(j.key, takes[j.key]) for j in result.snapshot.jobs
               if j.running_site is not None and j.key in takes]
    for i in range(0, max(len(changed), len(running)), CHUNK):
        conn.send(Part(tuple(changed[i:i + CHUNK]), tuple(running[i:i + CHUNK])))
    conn.send(Done(len(result.plan.decisions), result.seconds, result.answers))


def differs(held: tuple[str, tuple[tuple[datetime, datetime], ...]] | None,
            decision: JobDecision) -> bool:
    """Whether a decision is news to the job holding ``held`` (:func:`.rounds.moved`)."""
    if held is None:
        return True
    site, windows = held
    return moved(site, windows[0][0] if windows else None, windows, decision)
