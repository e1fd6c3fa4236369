"""The OpenADR 2.0b VEN: the utility's VTN asks, GridEvents carry it, the plan answers.

With ``SUANDIAN_OPENADR_VTN_URL`` set, the active replica registers with the VTN as a VEN
(``openleadr``'s client: registration, polling, XML signatures, TLS), and for each event
it receives:

1. turns it into a GridEvent (:func:`suandian.openadr.grid_event_of`: ``source:
   OpenADR``, ``sourceRef`` the event id) and creates or updates it; a cancelled event's
   GridEvent is deleted;
2. waits for a full planning round to answer it (at most
   ``SUANDIAN_OPENADR_ANSWER_TIMEOUT``) and opts **in** when the plan accepts it at every
   site, else **out** (a declined voluntary request, an event it cannot plan, no answer
   in time): a VEN promises only what the plan can deliver;
3. reports, every ``SUANDIAN_OPENADR_REPORT_INTERVAL``, the power each site delivers
   against the VTN's events (measured as the GridEvent status is: its module doc), one
   report per site (``resource_id`` the PowerSite).

A standby replica runs no VEN: the operator starts it when kopf starts the replica's
handlers and stops it when the replica pauses (:meth:`Ven.activate`). While it runs it
stays registered: a VTN that is down, refuses it or cancels it is tried again, with
backoff (:class:`Ven`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from suandian import metrics
from suandian.controllers.context import Context
from suandian.errors import KubeApiError
from suandian.gridasks import ask_key
from suandian.openadr import Unplannable, event_name, grid_event_of, simple_levels

__all__ = ["OPT_IN", "OPT_OUT", "NotRegistered", "Ven", "opt_for"]

log = logging.getLogger(__name__)

OPT_IN, OPT_OUT = "optIn", "optOut"
POLL_S = 0.5
"""How often an event waiting for its answer looks for it, seconds."""


def opt_for(ctx: Context, name: str, sites: list[str]) -> str | None:
    """``optIn`` when the last full round accepted the event at every site, ``optOut``
    when it declined it anywhere, None while some site has no answer yet."""
    answers = [ctx.planning.answers.get(ask_key(name, s)) for s in sites]
    if any(a is not None and not a.accepted for a in answers):
        return OPT_OUT
    if any(a is None for a in answers):
        return None
    return OPT_IN


class NotRegistered(Exception):
    """The VTN gave the VEN no registration (down, refusing it, or not a VTN)."""


class Ven:
    """One operator's VEN (see the module docstring).

    While this replica acts, a supervisor keeps it registered: openleadr's client gives
    up quietly when its registration fails (``run()`` returns with no registration id)
    and stops polling when the VTN cancels it, so the supervisor checks every
    ``WATCH_S`` and registers again after ``RETRY_MIN_S``, doubling to ``RETRY_MAX_S``
    while the VTN keeps failing (a VTN that forgets the VEN asks it to re-register,
    which openleadr does itself). ``suandian_openadr_registered`` says where it stands.
    """

    WATCH_S = 5.0
    RETRY_MIN_S, RETRY_MAX_S = 5.0, 300.0

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client: Any = None
        self.opted: dict[str, str] = {}  # by GridEvent name, as last answered
        self._task: asyncio.Task[None] | None = None  # the supervisor, while acting
        self._acting = False  # what the replica wants: the supervisor follows it
        self._closed = False

    @property
    def registered(self) -> bool:
        return self.client is not None and self.client.registration_id is not None

    def activate(self, acting: bool) -> None:
        """Run the VEN while this replica acts (:attr:`Context.activity`). A supervisor
        still winding down when the replica acts again is followed by a new one."""
        self._acting = acting
        task = self._task
        if acting and (task is None or task.done()):
            self._spawn()
        elif not acting and task is not None and not task.done() and not task.cancelling():
            task.cancel()  # it stops the client as it ends

    def _spawn(self) -> None:
        if self._closed:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._supervise(), name="suandian-openadr")
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:  # (a bug: logged)
            log.error("the OpenADR VEN's supervisor ended", exc_info=task.exception())
        if task is self._task and self._acting:  # acting again while it wound down
            self._spawn()

    async def close(self) -> None:
        """Stop the supervisor and the client, for good (the operator's cleanup)."""
        self._closed, self._acting = True, False
        task = self._task
        if task is not None:
            if not task.cancelling():
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.stop()

    async def _supervise(self) -> None:
        delay, failures = self.RETRY_MIN_S, 0
        url = self.ctx.settings.openadr_vtn_url
        try:
            while self._acting:
                try:
                    await self.start()
                    delay, failures = self.RETRY_MIN_S, 0
                    while self.registered:
                        await asyncio.sleep(self.WATCH_S)
                    raise NotRegistered("the VTN cancelled the registration")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the VTN down, refusing or cancelling: again
                    failures += 1
                    metrics.record_ven(False, failed=True)
                    # the first failure of a streak with its traceback, the rest in a line
                    log.warning("OpenADR VEN not registered with %s (%s); again in %.0f s",
                                url, exc, delay, exc_info=failures == 1
                                and not isinstance(exc, NotRegistered))
                await self.stop()
                await asyncio.sleep(delay)
                delay = min(2 * delay, self.RETRY_MAX_S)
        finally:
            await asyncio.shield(self.stop())  # a second cancel does not cut the close

    async def start(self) -> None:
        """Register with the VTN and poll it; :class:`NotRegistered` when it refuses."""
        from openleadr import OpenADRClient  # only where a VTN is configured

        s = self.ctx.settings
        self.client = OpenADRClient(
            ven_name=s.openadr_ven_name, vtn_url=s.openadr_vtn_url,
            cert=s.openadr_cert or None, key=s.openadr_key or None,
            ca_file=s.openadr_ca or None, disable_signature=not s.openadr_cert,
            vtn_fingerprint=s.openadr_vtn_fingerprint or None,
            show_fingerprint=False)
        self.client.add_handler("on_event", self.on_event)
        self.client.add_handler("on_update_event", self.on_event)
        for site in self.sites():
            self.client.add_report(
                callback=lambda site=site: self.delivered_kw(site), resource_id=site,
                measurement="power", unit="W", scale="k",
                sampling_rate=s.openadr_report_interval,
                report_duration=s.openadr_report_interval)
        await self.client.run()
        if not self.registered:
            raise NotRegistered("no registration id in the VTN's answer")
        metrics.record_ven(True)
        log.info("OpenADR VEN %s registered with %s", s.openadr_ven_name, s.openadr_vtn_url)

    async def stop(self) -> None:
        """Close the client (never raises: a client that fails to close is logged)."""
        client, self.client = self.client, None
        if client is None:
            return
        metrics.record_ven(False)
        if client.client_session is None:  # it never reached the VTN
            return
        try:
            await client.stop()
        except Exception:  # its HTTP session or scheduler: nothing more to stop
            log.exception("the OpenADR client did not close cleanly")

    def configured_sites(self) -> list[str]:
        """``SUANDIAN_OPENADR_SITES``: the sites of an event that targets none."""
        return [s.strip() for s in self.ctx.settings.openadr_sites.split(",") if s.strip()]

    def sites(self) -> list[str]:
        """The sites reported: the configured ones and every PowerSite known now."""
        return sorted(set(self.configured_sites()) | set(self.ctx.site_names))

    def delivered_kw(self, site: str) -> float:
        """What ``site`` delivers now against the VTN's events, kW."""
        ours = {n for n, e in self.ctx.grid.events.items() if e.spec.source.value == "OpenADR"}
        return round(self.ctx.grid.delivered_kw(site, ours), 3)

    async def on_event(self, event: Mapping[str, Any]) -> str:
        """An event from the VTN: applied as a GridEvent, answered by the plan."""
        descriptor = event.get("event_descriptor") or {}
        event_id = str(descriptor.get("event_id") or "")
        name = event_name(event_id)
        if descriptor.get("event_status") == "cancelled":
            await self.ctx.api.delete_gridevent(name)
            return self.opted.pop(name, OPT_IN)
        s = self.ctx.settings
        try:
            manifest = grid_event_of(event, self.configured_sites(), s.openadr_mandatory,
                                     simple_levels(s.openadr_simple_levels))
        except Unplannable as exc:
            log.warning("OpenADR event %s: opting out: %s", event_id, exc)
            return OPT_OUT
        if manifest is None:  # asks nothing: there is nothing to promise or break
            log.info("OpenADR event %s asks nothing (SIMPLE level 0): opting in", event_id)
            await self.ctx.api.delete_gridevent(name)  # a level-0 update ends the ask
            self.opted.pop(name, None)
            return OPT_IN
        try:
            await self.ctx.api.apply_gridevent(manifest)
        except KubeApiError as exc:
            log.warning("OpenADR event %s: opting out: its GridEvent %s was refused: %s",
                        event_id, name, exc)
            return OPT_OUT
        opt = await self._answer(name, manifest["spec"]["sites"])
        self.opted[name] = opt
        log.info("OpenADR event %s (GridEvent %s): %s", event_id, name, opt)
        return opt

    async def _answer(self, name: str, sites: list[str]) -> str:
        """The plan's answer, once a full round made after the event came has one."""
        ctx = self.ctx
        deadline = ctx.clock.now() + ctx.settings.openadr_answer_timeout
        while ctx.clock.now() < deadline:
            opt = opt_for(ctx, name, sites) if name in ctx.grid.events else None
            if opt is not None:
                return opt
            await asyncio.sleep(POLL_S)
        log.warning("GridEvent %s: no plan answered it within %s: opting out", name,
                    ctx.settings.openadr_answer_timeout)
        return OPT_OUT
