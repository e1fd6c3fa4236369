"""What a ComputeJob's step does next, as a table: a row per situation.

Each row: what the step observed (the job, its child Job, the backend), what the
planning rounds answered (None: not consulted yet), the clock, and the one action
:func:`next_action` must choose. Times are minutes from noon; the default decision
starts the job at 13:00 at ningxia and must start it by 15:00.
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from suandian.controllers import actions
from suandian.controllers import next_action as decider
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
from suandian.controllers.next_action import (
    KEPT,
    NO_SITES,
    QUARTER,
    UNREADABLE,
    Answer,
    Child,
    Observed,
    Refusal,
    Unplaced,
    after_refusal,
    next_action,
)
from suandian.k8s.decision import Decision, format_time

NOON = datetime(2026, 6, 21, 12, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return NOON + timedelta(minutes=minutes)


def mins(n: float) -> timedelta:
    return timedelta(minutes=n)


def decided(start: float = 60, latest: float = 180, site: str = "ningxia",
            windows: tuple[tuple[float, float], ...] = ()) -> Decision:
    return Decision(site=site, planned_start=at(start), latest_start=at(latest),
                    reason="greenest at 13:00",
                    windows=tuple((at(a), at(b)) for a, b in windows))


D = decided()
W = decided(start=0, latest=120, windows=((0, 30), (60, 90)))  # interruptible: two windows
LONG = decided(start=-10, latest=120, windows=((-10, 50),))  # interruptible: one window


def held(site: str | None = "ningxia") -> Child:
    """Created suspended, never let go."""
    return Child("Suspended", site)


def running(since: float = -10, site: str | None = "ningxia", ran_s: float = 0.0) -> Child:
    return Child("Running", site, started=True, released=True, resumed_at=at(since),
                 ran_s=ran_s, running_since=at(since))


def paused(ran_s: float, site: str = "ningxia") -> Child:
    """An interruptible job suspended between windows (it has run: it may not move)."""
    return Child("Suspended", site, started=True, ran_s=ran_s)


def gated_off(released: float | None) -> Child:
    """Kueue: Suandian's gate removed at ``released``, not admitted yet (still suspended)."""
    return Child("Suspended", "ningxia", released=True,
                 resumed_at=None if released is None else at(released))


def job(**fields: Any) -> Observed:
    base: dict[str, Any] = {"created": at(-120), "generation": 1, "observed_generation": 1,
                            "sites": frozenset({"ningxia", "gansu"})}
    return Observed(**{**base, **fields})


def kueue(**fields: Any) -> Observed:
    return job(can_suspend=False, admits=True, **fields)


def deferred(**fields: Any) -> Observed:
    """Held at ningxia with decision D written: the status is in step."""
    return job(**{"child": held(), "phase": "Deferred", "stored": D, **fields})


def placed(decision: Decision = D) -> Answer:
    return Answer(planned=decision)


WAITING = Answer(waiting=True)
GONE = Answer(gone=True)


def nowhere(latest: float = 60) -> Answer:
    return Answer(nowhere=Unplaced("no site has room", at(latest)))


AT_RISK = f"deadline at risk: not placed by its latest start {format_time(at(60))}: " \
          "no site has room"


def row(id: str, seen: Observed, answer: Answer | None, now: datetime,
        expected: Action) -> Any:
    return pytest.param(seen, answer, now, expected, id=id)


ROWS = [
    # -- finished, invalid, rebuilt: decided before planning is consulted ----------------
    row("a succeeded job rests", job(phase="Succeeded", child=running()), None, NOON,
        Wait(None)),
    row("a failed job rests, even with a spec invalid since",
        job(phase="Failed", invalid="spec.x: bad"), None, NOON, Wait(None)),
    row("an invalid spec is said", job(invalid="spec.x: bad"), None, NOON,
        MarkInvalid("spec.x: bad")),
    row("an invalid spec said for this generation is not said again",
        job(invalid="spec.x: bad", said_invalid=True), None, NOON, Wait(None)),
    row("an invalid spec said for an earlier generation is said again",
        job(invalid="spec.x: bad", said_invalid=True, generation=2), None, NOON,
        MarkInvalid("spec.x: bad")),
    row("a spec fixed since it was said invalid is cleared first",
        job(said_invalid=True, child=Child("Complete", "ningxia", started=True)), None,
        NOON, ClearInvalid()),
    row("a completed child is accounted", job(child=Child("Complete", started=True)), None,
        NOON, Finish(succeeded=True)),
    row("a failed child is accounted", job(child=Child("Failed", started=True)), None,
        NOON, Finish(succeeded=False)),
    row("a spec edited before the start rebuilds the child",
        job(child=held(), generation=2), None, NOON, Rebuild()),
    row("a spec edited after the start does not rebuild",
        job(child=running(), generation=2, stored=D), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    row("a status that names no generation yet does not rebuild",
        job(child=held(), observed_generation=None), None, NOON, ConsultPlanner(Ask())),
    # -- what planning is told -----------------------------------------------------------
    row("a job without a child is planned", job(), None, NOON, ConsultPlanner(Ask("plan"))),
    row("a held child is planned afresh (it may move)", deferred(), None, NOON,
        ConsultPlanner(Ask("plan"))),
    row("a running job takes supply for what is left, to the quarter (50 min: 1 h)",
        job(child=running(since=-10), stored=D), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    row("45 min left is three quarters exactly", job(child=running(since=-15), stored=D),
        None, NOON, ConsultPlanner(Ask("supply", "ningxia", mins(45)))),
    row("a job past its duration still takes a quarter",
        job(child=running(since=-90), stored=D), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", QUARTER))),
    row("an interruptible job between windows is re-planned at its site",
        job(child=paused(ran_s=1200), interruptible=True, stored=W), None, NOON,
        ConsultPlanner(Ask("plan", "ningxia", mins(40)))),
    row("a job still running after its window ended is planned again, to the quarter",
        job(child=running(since=25), interruptible=True, stored=W), None, at(35),
        ConsultPlanner(Ask("plan", "ningxia", mins(60)))),
    row("a running interruptible job takes supply to the end of its window",
        job(child=running(since=-10), interruptible=True, stored=W), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(30), until=at(30)))),
    row("... but is planned again when a shed at its site falls in that window",
        job(child=running(since=-10), interruptible=True, stored=W,
            sheds=(("ningxia", at(15), at(45)),)), None, NOON,
        ConsultPlanner(Ask("plan", "ningxia", mins(60), running=True))),
    row("... not for a shed after its window, nor for one at another site",
        job(child=running(since=-10), interruptible=True, stored=W,
            sheds=(("ningxia", at(40), at(50)), ("gansu", at(0), at(60)))), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(30), until=at(30)))),
    row("a running interruptible job in one long window is planned again for a shed",
        job(child=running(since=-10), interruptible=True, stored=LONG,
            sheds=(("ningxia", at(20), at(30)),)), None, NOON,
        ConsultPlanner(Ask("plan", "ningxia", mins(60), running=True))),
    row("... and without one takes supply for what is left",
        job(child=running(since=-10), interruptible=True, stored=LONG), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    row("a running job that cannot be suspended runs on through a shed",
        job(child=running(since=-10), stored=D, sheds=(("ningxia", at(20), at(30)),)),
        None, NOON, ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    row("an interruptible job whose time is up only takes supply",
        job(child=paused(ran_s=3600), interruptible=True, stored=W), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", QUARTER))),
    row("a started child without a site label takes the status's site",
        job(child=running(site=None), stored=D), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    row("a started child no label or status places asks nothing",
        job(child=running(site=None), reason=UNREADABLE), None, NOON,
        ConsultPlanner(Ask("nothing"))),
    # -- a started child, its status write lost: the decision is read back from it -------
    row("a running child and no decision in the status: read back from the child",
        job(child=running(), observed_generation=None), None, NOON, ReadBack()),
    row("read back whatever the rounds answer (a started job only takes supply)",
        job(child=running(), observed_generation=None), KEPT, NOON, ReadBack()),
    row("an interruptible child between windows, no decision: read back",
        job(child=paused(ran_s=1200), interruptible=True), None, NOON, ReadBack()),
    row("a held child and no decision is planned again, not read back",
        job(child=held(), observed_generation=None, phase=None), None, NOON,
        ConsultPlanner(Ask("plan"))),
    row("a running child whose decision could not be read is not read again",
        job(child=running(), reason=UNREADABLE, phase="Running"), None, NOON,
        ConsultPlanner(Ask("supply", "ningxia", mins(60)))),
    # -- no decision ---------------------------------------------------------------------
    row("waiting for the round: look again after the re-plan interval", job(), WAITING,
        NOON, Wait(at(15))),
    row("no PowerSite known: said in the status", job(sites=frozenset()), WAITING, NOON,
        ReportNoSites(at(15))),
    row("no PowerSite known, said already", job(sites=frozenset(), reason=NO_SITES),
        WAITING, NOON, Wait(at(15))),
    row("placed nowhere: why, looking again at the re-plan interval",
        job(), nowhere(latest=60), NOON,
        ReportUnplaced("no site has room", at(60), warn=False, until=at(15))),
    row("placed nowhere, its latest start sooner than the re-plan interval",
        job(), nowhere(latest=10), NOON,
        ReportUnplaced("no site has room", at(10), warn=False, until=at(10))),
    row("placed nowhere at exactly its latest start: deadline at risk, warned",
        job(), nowhere(latest=60), at(60),
        ReportUnplaced(AT_RISK, at(60), warn=True, until=at(75))),
    row("placed nowhere, said already", job(phase="Pending", reason="no site has room",
                                             latest_start=format_time(at(60))),
        nowhere(latest=60), NOON, Wait(at(15))),
    row("deadline at risk said already: rewritten for a new latest start, not warned",
        job(phase="Pending", reason=AT_RISK, latest_start=format_time(at(50))),
        nowhere(latest=60), at(61), ReportUnplaced(AT_RISK, at(60), False, at(76))),
    row("deleted while the step waited: nothing to act on, even with a child",
        deferred(), GONE, NOON, Wait(at(15))),
    row("a started job whose decision could not be read waits, said once",
        job(child=running(site=None), reason=UNREADABLE), KEPT, NOON, Wait(at(15))),
    # -- making the child ----------------------------------------------------------------
    row("placed for later: created held", job(), placed(), NOON,
        Create(D, due=False, phase="Deferred")),
    row("a second before its planned start: still held", job(), placed(),
        at(60) - timedelta(seconds=1), Create(D, due=False, phase="Deferred")),
    row("at exactly its planned start: created free to run", job(), placed(), at(60),
        Create(D, due=True, phase="Running")),
    row("planned past its latest start: due at the latest start",
        job(), placed(decided(start=240, latest=180)), at(180),
        Create(decided(start=240, latest=180), due=True, phase="Running")),
    row("Kueue, due: created free to run, admitting", kueue(), placed(), at(60),
        Create(D, due=True, phase="Admitting")),
    row("Kueue, not due: created gated", kueue(), placed(), NOON,
        Create(D, due=False, phase="Deferred")),
    row("refused before: the creation says it is solved",
        job(refusal=Refusal(at(-5), "bad template")), placed(), NOON,
        Create(D, due=False, phase="Deferred", solves_refusal=True)),
    row("its site vanished: the step fails and is retried",
        job(), placed(decided(site="guizhou")), NOON, Retry("site guizhou vanished")),
    row("the template is gone and it never ran: look for the child",
        job(template_kept=False), placed(), NOON, LookForChild(ran=False)),
    row("the template is gone and it ran (startedAt)",
        job(template_kept=False, started_at=True), placed(), NOON, LookForChild(ran=True)),
    row("the template is gone and it ran (phase Suspended)",
        job(template_kept=False, phase="Suspended"), placed(), NOON,
        LookForChild(ran=True)),
    row("interruptible, due but between windows: created held",
        job(interruptible=True), placed(W), at(45), Create(W, due=False, phase="Deferred")),
    row("interruptible, due in a window: created free to run",
        job(interruptible=True), placed(W), at(60), Create(W, due=True, phase="Running")),
    row("interruptible on a backend that cannot suspend: runs through, due now",
        kueue(interruptible=True), placed(W), at(45),
        Create(W, due=True, phase="Admitting")),
    row("without a child, a pending re-plan leaves nothing to act on", job(stored=D),
        WAITING, NOON, Wait(at(15))),
    # -- moving --------------------------------------------------------------------------
    row("a held child at another site moves", deferred(child=held("gansu")), placed(),
        NOON, Move(D, from_site="gansu")),
    row("a held child does not move to a site no longer known",
        deferred(child=held("gansu"), stored=None), placed(decided(site="guizhou")), NOON,
        SyncStatus(decided(site="guizhou"), "Deferred", at(60), announce=False)),
    row("a started job never moves", job(child=running(site="gansu"), started_at=True,
                                         phase="Running", stored=D), KEPT, NOON, Wait(None)),
    # -- waiting for the start -----------------------------------------------------------
    row("deferred and in step: sleep until the start", deferred(), placed(), NOON,
        Wait(at(60))),
    row("a pending re-plan: a child keeps to the status's decision", deferred(), WAITING,
        NOON, Wait(at(60))),
    row("first time deferred: written and announced", deferred(phase=None), placed(), NOON,
        SyncStatus(D, "Deferred", at(60), announce=True)),
    row("a re-plan a minute later is a new decision: written, not announced", deferred(),
        placed(decided(start=61)), NOON,
        SyncStatus(decided(start=61), "Deferred", at(61))),
    row("a re-plan 59 s later is the same decision", deferred(),
        placed(replace(D, planned_start=at(60) + timedelta(seconds=59))), NOON,
        Wait(at(60) + timedelta(seconds=59))),
    row("a second before its planned start: not yet", deferred(), placed(),
        at(60) - timedelta(seconds=1), Wait(at(60))),
    # -- starting ------------------------------------------------------------------------
    row("at exactly its planned start: started (planned)", deferred(), placed(), at(60),
        Start(D, "planned", None)),
    row("planned past its latest start: started at the latest start (deadline)",
        deferred(stored=decided(240)), placed(decided(240)), at(180),
        Start(decided(240), "deadline", None)),
    row("planned at exactly its latest start: a planned start, not a deadline one",
        deferred(stored=decided(180)), placed(decided(180)), at(180),
        Start(decided(180), "planned", None)),
    row("planned at its creation: an immediate start", deferred(stored=decided(-120)),
        placed(decided(-120)), NOON, Start(decided(-120), "immediate", None)),
    row("planned a second after its creation: a planned start",
        deferred(created=at(-120) - timedelta(seconds=1), stored=decided(-120)),
        placed(decided(-120)), NOON, Start(decided(-120), "planned", None)),
    row("Kueue: released at the start, looked at again after the admission timeout",
        kueue(child=held(), phase="Deferred", stored=D), placed(), at(60),
        Start(D, "planned", at(70))),
    # -- running -------------------------------------------------------------------------
    row("running and in step: the watch says when it ends",
        job(child=running(), started_at=True, phase="Running", stored=D), KEPT, NOON,
        Wait(None)),
    row("unsuspended, no pod yet, counts as running",
        job(child=Child("Pending", "ningxia", started=True, released=True),
            started_at=True, phase="Running", stored=D), KEPT, NOON, Wait(None)),
    row("running, the status says otherwise: written",
        job(child=running(), started_at=True, phase="Admitting", stored=D), KEPT, NOON,
        SyncStatus(D, "Running", None)),
    row("released before, running since: the start is recorded",
        job(child=running(), phase="Admitting", stored=D), KEPT, NOON,
        MarkStarted(D, "planned", admitted=False)),
    row("admitted after it waited: the start and Admitted=True, with the release's trigger",
        kueue(child=running(), phase="Admitting", stored=D, released_for="deadline",
              not_admitted=True), KEPT, NOON, MarkStarted(D, "deadline", admitted=True)),
    # -- admission (Kueue) ---------------------------------------------------------------
    row("just released: Admitting, looked at again at the timeout",
        kueue(child=gated_off(-1), phase="Deferred", stored=D), placed(), NOON,
        AwaitAdmission(D, at(-1), set_phase=True, overdue=False, at_risk=False,
                       until=at(9))),
    row("admitting, before the timeout: nothing to say",
        kueue(child=gated_off(-1), phase="Admitting", stored=D), placed(), NOON,
        Wait(at(9))),
    row("admitting, a second before the timeout",
        kueue(child=gated_off(-10), phase="Admitting", stored=D), placed(),
        NOON - timedelta(seconds=1), Wait(NOON)),
    row("admitting, at exactly the timeout: say who holds it",
        kueue(child=gated_off(-10), phase="Admitting", stored=D), placed(), NOON,
        AwaitAdmission(D, at(-10), set_phase=False, overdue=True, at_risk=False,
                       until=at(10))),
    row("admitting, the timeout after its latest start: looked at again by then",
        kueue(child=gated_off(-1), phase="Admitting", stored=decided(-30, latest=5)),
        placed(decided(-30, latest=5)), NOON, Wait(at(5))),
    row("admitting at its latest start: the deadline is at risk",
        kueue(child=gated_off(-20), phase="Admitting", stored=decided(-30, latest=0)),
        placed(decided(-30, latest=0)), NOON,
        AwaitAdmission(decided(-30, latest=0), at(-20), set_phase=False, overdue=True,
                       at_risk=True, until=at(10))),
    row("released with no time recorded: counted from now",
        kueue(child=gated_off(None), phase="Deferred", stored=D), placed(), NOON,
        AwaitAdmission(D, NOON, set_phase=True, overdue=False, at_risk=False,
                       until=at(10))),
    # -- interruptible jobs (windows 12:00-12:30 and 13:00-13:30, latest 14:00) -----------
    row("in a window and in step: until its end",
        job(interruptible=True, child=running(since=0), started_at=True, phase="Running",
            stored=W), KEPT, at(10), Wait(at(30))),
    row("in a window, the status says otherwise: written",
        job(interruptible=True, child=running(since=0), started_at=True,
            phase="Suspended", stored=W), KEPT, at(10), SyncStatus(W, "Running", at(30))),
    row("a second before the window ends: runs on",
        job(interruptible=True, child=running(since=0), started_at=True, phase="Running",
            stored=W), KEPT, at(30) - timedelta(seconds=1), Wait(at(30))),
    row("at exactly the window's end: suspended until the next",
        job(interruptible=True, child=running(since=0), started_at=True, phase="Running",
            stored=W), KEPT, at(30), Suspend(W, ran_s=1800.0, until=at(60))),
    row("outside its windows with none to come: runs on for what is left",
        job(interruptible=True, child=running(since=-20), started_at=True,
            phase="Running", stored=decided(-60, 120, windows=((-60, -30),))), KEPT, NOON,
        Wait(at(40))),
    row("outside its windows past its latest start: runs on",
        job(interruptible=True, child=running(since=0), started_at=True, phase="Running",
            stored=replace(W, latest_start=at(40))), KEPT, at(45), Wait(at(60))),
    row("its time is up: wait for the child to complete",
        job(interruptible=True, child=running(since=-60), started_at=True,
            phase="Running", stored=W), KEPT, NOON, Wait(None)),
    row("between windows and in step: until the next",
        job(interruptible=True, child=paused(1800), started_at=True, phase="Suspended",
            stored=W), placed(W), at(45), Wait(at(60))),
    row("at exactly the next window's start: resumed until its end",
        job(interruptible=True, child=paused(1800), started_at=True, phase="Suspended",
            stored=W), placed(W), at(60), Start(W, "resumed", at(90))),
    row("held at its latest start between windows: resumed for good",
        job(interruptible=True, child=paused(1800), started_at=True, phase="Suspended",
            stored=replace(W, latest_start=at(40))), placed(replace(W, latest_start=at(40))),
        at(40), Start(replace(W, latest_start=at(40)), "resumed", None)),
    row("held with no windows planned: resumed for good",
        job(interruptible=True, child=paused(1800), started_at=True, phase="Suspended",
            stored=decided(0, 120)), placed(decided(0, 120)), at(45),
        Start(decided(0, 120), "resumed", None)),
    row("held after its last window: until its latest start (not its past start: a "
        "step again at once, and again)",
        job(interruptible=True, child=paused(1800), started_at=True, phase="Suspended",
            stored=W), WAITING, at(95), Wait(at(120))),
    row("interruptible, never started: starts at its first window as planned",
        job(interruptible=True, child=held(), phase="Deferred", stored=W), placed(W),
        NOON, Start(W, "planned", None)),
    row("interruptible on Kueue (no suspending): runs through like any job",
        kueue(interruptible=True, child=running(since=0), started_at=True,
              phase="Running", stored=W), KEPT, at(45), Wait(None)),
    # -- the place a released child was sent to cannot be reached (Karmada: its member) --
    row("running where the backend says it cannot be reached: said once",
        job(child=running(), started_at=True, phase="Running", stored=D,
            trouble=("MemberNotReady", "member m1 is not Ready")), KEPT, NOON,
        ReportTrouble("MemberNotReady", "member m1 is not Ready")),
    row("unreachable and said so: carries on as a running job",
        job(child=running(), started_at=True, phase="Running", stored=D,
            trouble=("MemberNotReady", "member m1 is not Ready"),
            said_trouble="member m1 is not Ready"), KEPT, NOON, Wait(None)),
    row("unreachable for another reason since: said again",
        job(child=running(), started_at=True, phase="Running", stored=D,
            trouble=("MemberUnknown", "member m1 is gone"),
            said_trouble="member m1 is not Ready"), KEPT, NOON,
        ReportTrouble("MemberUnknown", "member m1 is gone")),
    row("reachable again: said so",
        job(child=running(), started_at=True, phase="Running", stored=D,
            said_trouble="member m1 is not Ready"), KEPT, NOON,
        ReportTrouble(None, "the place it was sent to is reachable again")),
    row("a held child's trouble is no trouble: nothing of it was sent anywhere",
        deferred(trouble=("MemberNotReady", "member m1 is not Ready")), KEPT, NOON,
        Wait(at(60))),
]


@pytest.mark.parametrize(("seen", "answer", "now", "expected"), ROWS)
def test_next_action(seen: Observed, answer: Answer | None, now: datetime,
                     expected: Action) -> None:
    assert next_action(seen, answer, now) == expected


REFUSED = "the API server refused the child Job (422 Invalid): ..."


@pytest.mark.parametrize(("refusal", "message", "now", "expected"), [
    pytest.param(None, REFUSED, NOON, (True, NOON + timedelta(seconds=10)), id="first"),
    pytest.param(Refusal(at(-5), REFUSED), REFUSED, NOON, (False, at(5)),
                 id="the same again: not said, the backoff doubles"),
    pytest.param(Refusal(at(-30), REFUSED), REFUSED, NOON, (False, at(10)),
                 id="the backoff stops at 10 min"),
    pytest.param(Refusal(NOON - timedelta(seconds=3), REFUSED), REFUSED, NOON,
                 (False, NOON + timedelta(seconds=10)), id="the backoff starts at 10 s"),
    pytest.param(Refusal(at(-5), "another"), REFUSED, NOON, (True, at(5)),
                 id="a new refusal is said"),
    pytest.param(Refusal(None, REFUSED), REFUSED, NOON,
                 (False, NOON + timedelta(seconds=10)), id="no transition time: from now"),
])
def test_after_refusal(refusal: Refusal | None, message: str, now: datetime,
                       expected: tuple[bool, datetime]) -> None:
    assert after_refusal(refusal, message, now) == expected


def test_every_action_has_a_row() -> None:
    kinds = {type(p.values[3]) for p in ROWS}
    assert kinds == set(Action.__args__)  # type: ignore[attr-defined]


def test_what_decides_does_no_io() -> None:
    """No kopf, asyncio, client, events or metrics where the step decides."""
    allowed = {"__future__", "dataclasses", "datetime", "suandian.controllers.actions",
               "suandian.k8s.decision"}
    for module in (decider, actions):
        tree = ast.parse(inspect.getsource(module))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                    for a in n.names}
        imported |= {n.module for n in ast.walk(tree)
                     if isinstance(n, ast.ImportFrom) and n.module}
        assert imported <= allowed, (module.__name__, imported - allowed)
