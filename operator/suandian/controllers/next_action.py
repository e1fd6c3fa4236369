"""What a ComputeJob's step does next: a pure function of what it saw and the clock.

A step of :mod:`.computejob` observes the job (its record, its child Job as last
watched, what the backend can do) into an :class:`Observed`, asks :func:`next_action`
what to do, performs that, and asks again until an action says when to look next.
Everything that decides lives here, with no I/O, so it can be tested as a table
(``tests/unit/controllers/test_next_action.py``); the driver only performs.

The planning rounds are consulted once a step, after the checks that need no decision
(finished, invalid, rebuilt): :class:`ConsultPlanner` says what to tell them (a running
job only takes supply; a job between windows is re-planned at its site; any other is
planned afresh), and their :class:`Answer` comes back as the second argument.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from suandian.controllers.actions import (
    Action,
    Ask,
    AwaitAdmission,
    ClearInvalid,
    ConsultPlanner,
    Create,
    Finish,
    LookForChild,
    MarkInvalid,
    MarkStarted,
    Move,
    ReadBack,
    Rebuild,
    ReportNoSites,
    ReportTrouble,
    ReportUnplaced,
    Retry,
    Start,
    Suspend,
    SyncStatus,
    Wait,
)
from suandian.k8s.decision import Decision, format_time

__all__ = ["DEADLINE_GRACE", "KEPT", "NO_SITES", "QUARTER", "UNREADABLE", "Answer", "Child",
           "Observed", "Refusal", "Unplaced", "after_refusal", "next_action", "planning_ask",
           "same_decision"]

TERMINAL = ("Succeeded", "Failed")
NO_SITES = "waiting for a PowerSite: none is known yet"
UNREADABLE = "its child Job runs, and its decision cannot be read from the child's annotations"
"""``status.reason`` once :class:`ReadBack` found no decision on a started child (its
annotations were edited): said once, not read again at every step."""
QUARTER = timedelta(minutes=15)
DEADLINE_GRACE = timedelta(minutes=1)
"""How late a start or finish may be before it counts as a deadline miss: the scheduler
wakes a moment after the time it slept until, and times in objects are written to the
second."""
REFUSAL_BACKOFF = (timedelta(seconds=10), timedelta(minutes=10))


@dataclass(frozen=True)
class Child:
    """The child Job as last watched, as far as deciding goes."""

    state: str  # k8s.jobs.job_state: Complete, Failed, Running, Suspended or Pending
    site: str | None = None  # its suandian.io/site label
    started: bool = False  # ever unsuspended (computejob.has_started): it may not move
    released: bool = False  # the backend let it go (it may wait for an admission queue)
    resumed_at: datetime | None = None  # when it was last let go (annotation)
    ran_s: float = 0.0  # run time before its last suspension
    running_since: datetime | None = None  # when its current run began (None: held)

    def ran(self, now: datetime) -> float:
        """Seconds it has run by ``now``, suspensions left out."""
        if self.running_since is None:
            return self.ran_s
        return self.ran_s + max(0.0, (now - self.running_since).total_seconds())


@dataclass(frozen=True)
class Refusal:
    """The API server refused the child Job (condition ``ChildJobCreated=False``)."""

    since: datetime | None
    message: str | None


@dataclass(frozen=True)
class Observed:
    """What one step reads: the ComputeJob's record and status, its child, the backend's
    capabilities and the settings. ``invalid`` is why the spec is invalid (None: valid)."""

    created: datetime
    generation: int | None = 1
    invalid: str | None = None
    phase: str | None = None
    observed_generation: int | None = None
    said_invalid: bool = False  # condition Valid=False
    reason: str | None = None  # status.reason
    latest_start: str | None = None  # status.latestStart, as written
    started_at: bool = False  # status.startedAt is set
    stored: Decision | None = None  # the decision written into the status
    refusal: Refusal | None = None
    not_admitted: bool = False  # condition Admitted=False
    released_for: str = "planned"  # the trigger a release recorded (Started=False)
    template_kept: bool = True  # the pod template is still known (the child is not made)
    child: Child | None = None
    interruptible: bool = False
    duration: timedelta = timedelta(hours=1)
    sites: frozenset[str] = frozenset()  # the PowerSites known
    can_suspend: bool = True  # the backend may suspend a running child (run windows)
    admits: bool = False  # another controller admits a released child
    replan_interval: timedelta = timedelta(minutes=15)
    admission_timeout: timedelta = timedelta(minutes=10)
    trouble: tuple[str, str] | None = None  # the backend: its child's place is unreachable
    said_trouble: str | None = None  # condition Reachable=False's message
    sheds: tuple[tuple[str, datetime, datetime], ...] = ()  # accepted: (site, start, end)

    def remaining(self, now: datetime) -> timedelta:
        ran = self.child.ran(now) if self.child is not None else 0.0
        return self.duration - timedelta(seconds=ran)


@dataclass(frozen=True)
class Unplaced:
    """The last round placed the job nowhere: why, and the latest start it must keep."""

    reason: str
    latest_start: datetime


@dataclass(frozen=True)
class Answer:
    """What the planning rounds answered: ``kept`` (nothing to re-plan: act on the
    decision in the status), ``waiting`` (asked anew, or a round is pending), ``gone``
    (deleted while the step waited), else ``planned`` (None: placed nowhere).
    ``nowhere``: the last round placed it nowhere and none is pending."""

    kept: bool = False
    waiting: bool = False
    gone: bool = False
    planned: Decision | None = None
    nowhere: Unplaced | None = None


KEPT = Answer(kept=True)


def next_action(seen: Observed, answer: Answer | None, now: datetime) -> Action:
    """The one thing to do next (``answer``: the planning rounds', None until consulted)."""
    if seen.phase in TERMINAL:
        return Wait(None)
    if seen.invalid is not None:
        if seen.observed_generation == seen.generation and seen.said_invalid:
            return Wait(None)  # said already
        return MarkInvalid(seen.invalid)
    if seen.said_invalid:
        return ClearInvalid()
    child = seen.child
    if child is not None and child.state in ("Complete", "Failed"):
        return Finish(succeeded=child.state == "Complete")
    if child is not None and not child.started and seen.observed_generation not in (
            None, seen.generation):
        return Rebuild()
    if child is not None and child.started and seen.stored is None and (
            seen.reason != UNREADABLE):
        return ReadBack()  # its status write was lost: no round would ever give it one
    if answer is None:
        return ConsultPlanner(planning_ask(seen, now))
    decision = _decision(seen, answer)
    if decision is None:
        return _undecided(seen, answer, now)
    if child is None:
        return _create(seen, decision, now)
    return _act(seen, decision, child, now)


def _decision(seen: Observed, answer: Answer) -> Decision | None:
    """The decision to act on: the rounds' when they answered; until a pending round
    answers, a child that exists keeps to the status's (never past its latest start);
    without a child there is nothing to act on."""
    if answer.kept:
        return seen.stored
    if answer.gone:
        return None  # deleted while the step waited: act on nothing
    if answer.waiting:
        return seen.stored if seen.child is not None else None
    return answer.planned


def planning_ask(seen: Observed, now: datetime) -> Ask:
    """A started job cannot move its pods: while it runs (or cannot be suspended, or its
    time is up) it only takes supply for what is left, to the quarter hour (a new round
    only when that changes); between windows it is re-planned at its site.

    A running job that runs in windows takes supply to the end of its window only (it
    is suspended then, and planned again for the rest), and once that window has ended
    it is planned again at once, as it is suspended: counted as running on, it would
    hold the slots after its window, where a grid event may have asked for nothing.
    And when the supply it would take runs into an accepted shed at its site, it is
    planned again at once for what is left (to the quarter hour, as it takes supply):
    the plan may suspend it before the shed (and resume it after) rather than run it on
    through the window, short."""
    child = seen.child
    if not (child is not None and child.started):
        return Ask("plan")
    site = child.site or (seen.stored.site if seen.stored else None)
    if site is None:
        return Ask("nothing")
    remaining = seen.remaining(now)
    stored = seen.stored
    if (child.state == "Running" and _windows_here(seen) and stored is not None
            and now < stored.latest_start and remaining > timedelta(0)):
        window = stored.window_at(now) if stored.windows else (now, now + remaining)
        if window is None:  # its window is over: it is suspended as the answer comes
            return Ask("plan", site, _quarters(remaining))
        end = min(window[1], now + remaining)  # the supply it would take
        if _shed_within(seen, site, now, end):
            return Ask("plan", site, _quarters(remaining), running=True)
        if end < now + remaining:
            return Ask("supply", site, end - now, until=end)
    if child.state == "Running" or not seen.interruptible or remaining <= timedelta(0):
        return Ask("supply", site, _quarters(remaining))
    return Ask("plan", site, remaining)


def _quarters(remaining: timedelta) -> timedelta:
    """What is left of a running job, up to the quarter hour (at least one): the same
    ask for a quarter, so a running job's asks do not make a new round each moment."""
    return QUARTER * max(1, -(-remaining // QUARTER))


def _shed_within(seen: Observed, site: str, start: datetime, end: datetime) -> bool:
    """Whether an accepted shed at ``site`` overlaps ``[start, end)``."""
    return any(s == site and a < end and b > start for s, a, b in seen.sheds)


def _undecided(seen: Observed, answer: Answer, now: datetime) -> Action:
    """No decision: wait for the round (it wakes the job; should that be lost, look again
    after ``replan_interval``); say why when it placed the job nowhere."""
    later = now + seen.replan_interval
    placed = answer.nowhere
    if placed is None:
        if not seen.sites and seen.reason != NO_SITES:
            return ReportNoSites(later)
        return Wait(later)
    reason, warn = placed.reason, False
    if now >= placed.latest_start:  # said once, before the deadline passes
        reason = (f"deadline at risk: not placed by its latest start "
                  f"{format_time(placed.latest_start)}: {placed.reason}")
        warn = seen.reason != reason
    until = min(later, placed.latest_start) if now < placed.latest_start else later
    if (seen.phase, seen.reason, seen.latest_start) != (
            "Pending", reason, format_time(placed.latest_start)):
        return ReportUnplaced(reason, placed.latest_start, warn, until)
    return Wait(until)


def _windows_here(seen: Observed) -> bool:
    """Run windows need a backend that may suspend; elsewhere a job runs through."""
    return seen.interruptible and seen.can_suspend


def _create(seen: Observed, decision: Decision, now: datetime) -> Action:
    if decision.site not in seen.sites:
        return Retry(f"site {decision.site} vanished")
    if not seen.template_kept:
        return LookForChild(ran=seen.started_at or seen.phase in ("Running", "Suspended"))
    # due at once: created free to run (a request and a status write fewer)
    due = now >= decision.start_by() and not (
        _windows_here(seen) and decision.windows and decision.window_at(now) is None)
    phase = "Deferred" if not due else "Admitting" if seen.admits else "Running"
    return Create(decision, due, phase, solves_refusal=seen.refusal is not None)


def _act(seen: Observed, decision: Decision, child: Child, now: datetime) -> Action:
    if not child.started and child.site != decision.site and decision.site in seen.sites:
        return Move(decision, child.site)
    if child.released and seen.trouble is not None and seen.said_trouble != seen.trouble[1]:
        return ReportTrouble(*seen.trouble)
    if seen.said_trouble is not None and seen.trouble is None:
        return ReportTrouble(None, "the place it was sent to is reachable again")
    running = child.state in ("Running", "Pending")
    if _windows_here(seen) and child.started:
        return _windows(seen, decision, child, running, now)
    if running:
        if not seen.started_at:  # released before, admitted since
            return MarkStarted(decision, seen.released_for, admitted=seen.not_admitted)
        return _sync(seen, decision, "Running", None)
    if child.released:  # let go; an admission queue holds it
        return _admission(seen, decision, child, now)
    due = decision.start_by()
    if now >= due:
        trigger = ("deadline" if now >= decision.latest_start
                   and decision.planned_start > decision.latest_start else
                   "immediate" if decision.planned_start <= seen.created else "planned")
        return Start(decision, trigger, now + seen.admission_timeout if seen.admits else None)
    return _sync(seen, decision, "Deferred", due, announce=seen.phase != "Deferred")


def _windows(seen: Observed, decision: Decision, child: Child, running: bool,
             now: datetime) -> Action:
    """An interruptible job runs in its windows, and in any case from its latest start."""
    window = decision.window_at(now)
    remaining = seen.remaining(now)
    must_run = now >= decision.latest_start or not decision.windows
    if running and remaining <= timedelta(0):
        return Wait(None)  # its time is up: wait for the child Job to complete
    if running:
        resume = decision.next_window_start(now)
        if window is None and not must_run and resume:
            return Suspend(decision, child.ran(now), resume)
        return _sync(seen, decision, "Running", window[1] if window else now + remaining)
    if window is not None or must_run:
        return Start(decision, "resumed", window[1] if window else None)
    # no window ahead (a decision kept from before a downtime while the re-plan is
    # pending): by its latest start, when it must run, or when the round answers; not by
    # its planned start, past like its windows: that would step it again at once, on end
    return _sync(seen, decision, "Suspended",
                 decision.next_window_start(now) or decision.latest_start)


def _admission(seen: Observed, decision: Decision, child: Child, now: datetime) -> Action:
    """After the admission timeout say who holds it, and re-plan (quota taken by work
    outside Suandian moves it); by its latest start, warn that the deadline is at risk."""
    released = child.resumed_at or now
    due = released + seen.admission_timeout
    later = due if now < due else now + seen.admission_timeout
    until = min(later, decision.latest_start) if now < decision.latest_start else later
    if seen.phase == "Admitting" and now < due:
        return Wait(until)
    return AwaitAdmission(decision, released, set_phase=seen.phase != "Admitting",
                          overdue=now >= due, at_risk=now >= decision.latest_start,
                          until=until)


def _sync(seen: Observed, decision: Decision, phase: str, until: datetime | None,
          announce: bool = False) -> Action:
    stored = seen.stored
    if seen.phase == phase and stored is not None and same_decision(stored, decision):
        return Wait(until)
    return SyncStatus(decision, phase, until, announce)


def after_refusal(refusal: Refusal | None, message: str,
                  now: datetime) -> tuple[bool, datetime]:
    """Whether to announce a refusal of the child (once per distinct one), and when to
    try again: after the time since the refusals began, from 10 s, at most 10 min."""
    since = (refusal.since or now) if refusal is not None else now
    announce = refusal is None or refusal.message != message[:32768]
    return announce, now + min(REFUSAL_BACKOFF[1], max(REFUSAL_BACKOFF[0], now - since))


def same_decision(a: Decision, b: Decision) -> bool:
    """Same site, and start and windows within a minute (rounds run at different moments)."""
    close = timedelta(minutes=1)
    if a.site != b.site or abs(a.planned_start - b.planned_start) >= close:
        return False
    if len(a.windows) != len(b.windows):
        return False
    return all(abs(w[0] - v[0]) < close and abs(w[1] - v[1]) < close
               for w, v in zip(a.windows, b.windows, strict=True))
