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
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import os
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from suandian.errors import PlanningError
from suandian.planner import JobDecision, PlanParams
from suandian.planning.commitments import Commitment
from suandian.planning.rounds import (
    ClusterInputs,
    Demand,
    Held,
    RoundInputs,
    SiteEntry,
    compute,
    moved,
)

__all__ = ["CHUNK", "PlannerProcess", "RemoteBug", "RemoteRound", "same_nodes"]

log = logging.getLogger(__name__)

CHUNK = 500
"""Demands or decisions per message across the pipe."""

@dataclass(frozen=True)
class Sync:
    upserts: tuple[Demand, ...]
    removed: tuple[str, ...]
    arrivals: tuple[Demand, ...] = ()  # the operator's arrival log, entries not sent yet


@dataclass(frozen=True)
class Ask:
    now: datetime
    held: Held
    sites: tuple[SiteEntry, ...]
    nodes: tuple[tuple[int, Any], ...] | None  # None: as in the last round
    free: Mapping[str, Mapping[str, float]]
    horizon_slots: int
    params: PlanParams
    recurring: tuple[str, ...] = ()  # the keys of the log's entries this round plans


@dataclass(frozen=True)
class Part:
    changed: tuple[tuple[JobDecision, Commitment | None], ...]
    running: tuple[tuple[str, Commitment], ...]


@dataclass(frozen=True)
class Done:
    decided: int
    seconds: float


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
        ctx = mp.get_context("spawn")  # nothing of the operator's state, threads or loop
        ours, theirs = ctx.Pipe()
        self._process = ctx.Process(target=serve, args=(theirs,), name="suandian-planner",
                                    daemon=True)
        self._process.start()
        theirs.close()
        self._conn, self._mirror, self._nodes, self._sent = ours, {}, None, set()
        log.info("planner process started (pid %s)", self._process.pid)
        return ours

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
            await asyncio.to_thread(conn.send, Sync(tuple(upserts[i:i + CHUNK]), ()))
        if removed:
            await asyncio.to_thread(conn.send, Sync((), removed))
        arrivals = [d for d in inputs.recurring if d.key not in self._sent]
        for i in range(0, len(arrivals), CHUNK):
            await asyncio.to_thread(conn.send, Sync((), (), tuple(arrivals[i:i + CHUNK])))
        self._sent = {d.key for d in inputs.recurring}  # what it keeps (it prunes alike)
        cluster = inputs.cluster or ClusterInputs((), {})
        nodes = None if same_nodes(cluster.nodes, self._nodes) else cluster.nodes
        held = await asyncio.to_thread(lambda: inputs.held)  # O(demands): off the loop
        await asyncio.to_thread(conn.send, Ask(
            inputs.now, held, inputs.sites, nodes, cluster.free, inputs.horizon_slots, params,
            tuple(d.key for d in inputs.recurring)))
        self._nodes = cluster.nodes
        changed: list[tuple[JobDecision, Commitment | None]] = []
        running: list[tuple[str, Commitment]] = []
        while True:
            message = await asyncio.to_thread(conn.recv)
            if isinstance(message, Part):
                changed.extend(message.changed)
                running.extend(message.running)
            elif isinstance(message, Done):
                self._mirror = target
                return RemoteRound(changed, running, message.decided, message.seconds)
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
            self._process = None


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


def serve(conn: Connection) -> None:
    """The planner process's loop: apply syncs, answer asks, until the pipe closes."""
    try:
        os.nice(NICENESS)
    except OSError as exc:  # not allowed here (a policy, a platform): run as we are
        log.debug("the planner process keeps its priority: %s", exc)
    demands: dict[str, Demand] = {}
    arrivals: dict[str, Demand] = {}  # the operator's arrival-log entries, as sent
    nodes: tuple[tuple[int, Any], ...] = ()
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
                nodes = message.nodes
            try:
                try:
                    answer(conn, message, tuple(demands.values()), nodes, arrivals)
                except (BrokenPipeError, ConnectionError):
                    raise
                except Exception as exc:  # noqa: BLE001 (sent to the operator, which raises it)
                    conn.send(Failed(type(exc).__name__, str(exc),
                                     isinstance(exc, PlanningError | ValueError),
                                     traceback.format_exc()))
            except (BrokenPipeError, ConnectionError):
                return  # the operator is gone (or closed the pipe): nobody to answer


def answer(conn: Connection, ask: Ask, demands: tuple[Demand, ...],
           nodes: tuple[tuple[int, Any], ...], arrivals: dict[str, Demand] | None = None
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
                         sites=ask.sites, cluster=ClusterInputs(nodes, ask.free),
                         horizon_slots=ask.horizon_slots, recurring=recurring)
    result = compute(inputs, ask.params)
    if result is None:
        conn.send(Done(0, 0.0))
        return
    takes = dict(result.commitments.items())
    changed = [(d, takes.get(d.key)) for d in result.plan.decisions
               if differs(ask.held.get(d.key), d)]
    running = [(j.key, takes[j.key]) for j in result.snapshot.jobs
               if j.running_site is not None and j.key in takes]
    for i in range(0, max(len(changed), len(running)), CHUNK):
        conn.send(Part(tuple(changed[i:i + CHUNK]), tuple(running[i:i + CHUNK])))
    conn.send(Done(len(result.plan.decisions), result.seconds))


def differs(held: tuple[str, tuple[tuple[datetime, datetime], ...]] | None,
            decision: JobDecision) -> bool:
    """Whether a decision is news to the job holding ``held`` (:func:`.rounds.moved`)."""
    if held is None:
        return True
    site, windows = held
    return moved(site, windows[0][0] if windows else None, windows, decision)
