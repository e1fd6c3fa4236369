"""What a ComputeJob's step may do: a small closed set of actions, each a frozen value.

:func:`~suandian.controllers.next_action.next_action` picks one (it decides); the
driver in :mod:`.computejob` performs it (API calls, events, metrics, status writes).
An action carries what performing it needs and, where the decision fixes it, ``until``:
when the job is to be looked at next (None: when something wakes it). ``ClearInvalid``,
``ReadBack``, ``MarkStarted``, a ``Move`` patched in place and ``ConsultPlanner`` are
followed by another action in the same step.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from suandian.k8s.decision import Decision

__all__ = ["Action", "Ask", "AwaitAdmission", "ClearInvalid", "ConsultPlanner", "Create", "Finish",
           "LookForChild", "MarkInvalid", "MarkStarted", "Move", "ReadBack", "Rebuild",
           "ReportNoSites", "ReportTrouble", "ReportUnplaced", "Retry", "Start", "Suspend",
           "SyncStatus", "Wait"]


@dataclass(frozen=True)
class Ask:
    """What to tell the planning rounds: ``plan`` (where and when; ``site``: only there,
    a started job between windows), ``supply`` (it runs at ``site``: it only takes supply
    for ``remaining``, or until ``until`` when given: the end of its run window) or
    ``nothing`` (started where no label or status says)."""

    kind: str = "plan"
    site: str | None = None
    remaining: timedelta | None = None
    until: datetime | None = None
    running: bool = False  # ``plan``: it runs at ``site`` now (a shed ahead: .next_action)


@dataclass(frozen=True)
class Wait:
    """Nothing to do now: look again at ``until`` (None: when something wakes the job)."""

    until: datetime | None


@dataclass(frozen=True)
class MarkInvalid:
    """``Valid=False`` naming the bad fields, a Warning; nothing is made."""

    message: str


@dataclass(frozen=True)
class ClearInvalid:
    """The spec was invalid and is fixed since: ``Valid=True``, then carry on."""


@dataclass(frozen=True)
class Finish:
    """The child Job finished: account the run; phase ``Succeeded`` or ``Failed``."""

    succeeded: bool


@dataclass(frozen=True)
class Rebuild:
    """The spec changed while the job waited: delete the child, re-plan, make it anew."""


@dataclass(frozen=True)
class ConsultPlanner:
    """Tell the planning rounds what the job needs now, and read their answer."""

    ask: Ask


@dataclass(frozen=True)
class ReportUnplaced:
    """Placed nowhere: say why in the status (a warning once its latest start came)."""

    reason: str
    latest_start: datetime
    warn: bool
    until: datetime


@dataclass(frozen=True)
class ReportNoSites:
    """No PowerSite is known: say so in the status, and look again."""

    until: datetime


@dataclass(frozen=True)
class Retry:
    """The decision cannot be carried out now: fail the step (the scheduler retries)."""

    message: str


@dataclass(frozen=True)
class LookForChild:
    """The status names a child this replica has not seen (the template is gone): find
    it; if it is gone, the job fails when it ``ran`` (never run the work twice), else
    the child is forgotten and made again."""

    ran: bool


@dataclass(frozen=True)
class ReadBack:
    """The child Job has started and the status holds no decision: the status write that
    follows the child's creation was lost (the process died between the two requests, or
    the write failed), or another replica's creation answered ours. A started job is
    never planned again (it only takes supply), so no round would ever give it one: read
    the decision back from the child's annotations, which the same creation wrote, into
    the status; if the child is gone, it ran and is not made again."""


@dataclass(frozen=True)
class Create:
    """Create the child Job: held until its start, or free to run when ``due``;
    ``phase`` is the status it gets; ``solves_refusal``: it was refused before."""

    decision: Decision
    due: bool
    phase: str
    solves_refusal: bool = False


@dataclass(frozen=True)
class Move:
    """A re-plan picked another site for a child that never started: take it there."""

    decision: Decision
    from_site: str | None


@dataclass(frozen=True)
class Start:
    """Let the child go (``trigger``: why now); where another controller admits, it is
    ``Admitting`` until that one lets it run."""

    decision: Decision
    trigger: str
    until: datetime | None


@dataclass(frozen=True)
class MarkStarted:
    """Released before, running since (admitted): record the start, then carry on."""

    decision: Decision
    trigger: str
    admitted: bool  # it waited for admission (Admitted=False): now Admitted=True


@dataclass(frozen=True)
class SyncStatus:
    """Write the decision and ``phase`` into the status (``announce``: a Deferred event)."""

    decision: Decision
    phase: str
    until: datetime | None
    announce: bool = False


@dataclass(frozen=True)
class Suspend:
    """An interruptible job's window ended: hold it (``ran_s`` so far) until ``until``."""

    decision: Decision
    ran_s: float
    until: datetime


@dataclass(frozen=True)
class AwaitAdmission:
    """Released, not running: someone else holds it. ``overdue``: it waited the admission
    timeout (say who, once, and re-plan); ``at_risk``: its latest start came."""

    decision: Decision
    released_at: datetime
    set_phase: bool
    overdue: bool
    at_risk: bool
    until: datetime


@dataclass(frozen=True)
class ReportTrouble:
    """The place a released child was sent to cannot be reached (the backend says why:
    ``reason``, ``message``): condition ``Reachable=False`` and a Warning, once; with
    ``reason`` None it is reachable again (``Reachable=True``). Then carry on."""

    reason: str | None
    message: str


Action = (Wait | MarkInvalid | ClearInvalid | Finish | Rebuild | ConsultPlanner
          | ReportUnplaced | ReportNoSites | Retry | LookForChild | ReadBack | Create | Move
          | Start | MarkStarted | SyncStatus | Suspend | AwaitAdmission | ReportTrouble)
