"""The OpenADR VEN against a real VTN: openleadr's own server on loopback, in real time.

The VTN asks for a shed at ``jiangsu`` (a LOAD_DISPATCH setpoint of 0 kW for the next
two hours, targeting the site by resource_id); the VEN turns it into a GridEvent, the
plan defers the job that would run in the window, the VEN opts in, and its reports
reach the VTN with the power delivered (the 60 kW the job would have drawn). A SIMPLE
level-2 signal in the same poll becomes a shed of 50% of the site's import, met by the
same deferral (opted in); a BID_LOAD signal, which the planner cannot read, is opted
out of, and a SIMPLE level 0 (normal operation) is opted into with nothing planned.

Then the ways a VTN is reached in the field: down at first and refusing the VEN before
it accepts it (the VEN's supervisor keeps trying), and over mutual TLS from a private CA
with signed messages and the VTN's certificate pinned (right, and wrong).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import free_port, running_operator
from tests.support.pki import Pki, make_pki

from suandian import metrics
from suandian.config import Settings
from suandian.controllers.clock import LoopClock
from suandian.controllers.openadr import Ven

openleadr = pytest.importorskip("openleadr")

GEV = "suandian.io/v1alpha1/gridevents"
REGION = "topology.kubernetes.io/region"


def fingerprint(cert: Path) -> str:
    """OpenADR's fingerprint of a certificate (what a VTN prints and a VEN pins)."""
    from openleadr.utils import certificate_fingerprint

    return str(certificate_fingerprint(cert.read_text(encoding="utf-8")))


@pytest.fixture
def clock() -> LoopClock:
    """Wall-clock time: openleadr's VTN and VEN schedule on it."""
    return LoopClock(datetime.now(UTC))


class Vtn:
    """openleadr's VTN on a loopback port, recording what the VEN answers and reports."""

    def __init__(self, refusals: int = 0, pki: Pki | None = None) -> None:
        self.port = free_port()
        self.refusals = refusals  # registrations refused before one is accepted
        self.registrations = 0
        self.pki = pki
        tls: dict[str, Any] = {}
        if pki is not None:  # mutual TLS, and signed messages both ways
            tls = {"cert": str(pki.server_cert), "key": str(pki.server_key),
                   "http_cert": str(pki.server_cert), "http_key": str(pki.server_key),
                   "http_ca_file": str(pki.ca_cert), "show_fingerprint": False,
                   "fingerprint_lookup": lambda ven_id: fingerprint(pki.client_cert)}
        self.server = openleadr.OpenADRServer(vtn_id="GRID-JIANGSU", http_host="127.0.0.1",
                                              http_port=self.port, requested_poll_freq=
                                              timedelta(seconds=1), **tls)
        self.server.add_handler("on_create_party_registration", self.register)
        self.server.add_handler("on_register_report", self.on_register_report)
        self.opted: dict[str, str] = {}
        self.reports: list[tuple[str, float]] = []

    @property
    def url(self) -> str:
        scheme = "https" if self.pki is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}/OpenADR2/Simple/2.0b"

    async def register(self, info: Any) -> tuple[str, str] | bool:
        self.registrations += 1
        if self.registrations <= self.refusals:
            return False
        return "ven-suandian", "reg-1"

    async def on_register_report(self, ven_id: str, resource_id: str, measurement: str,
                                 unit: str, scale: str, min_sampling_interval: timedelta,
                                 max_sampling_interval: timedelta) -> Any:
        async def receive(data: list[tuple[datetime, float]]) -> None:
            self.reports.extend((resource_id, value) for _, value in data)
        return receive, min_sampling_interval

    async def answered(self, ven_id: str, event_id: str, opt_type: str) -> None:
        self.opted[event_id] = opt_type

    def ask(self, event_id: str, signal: str, kind: str, payload: float, start: datetime
            ) -> None:
        self.server.add_event(
            ven_id="ven-suandian", event_id=event_id, signal_name=signal, signal_type=kind,
            intervals=[{"dtstart": start, "duration": timedelta(hours=2),
                        "signal_payload": payload}],
            targets=[{"resource_id": "jiangsu"}], callback=self.answered)


async def test_the_vtn_asks_a_shed_the_ven_opts_in_and_reports_what_it_delivers(
        api, cluster, clock):
    vtn = Vtn()
    await vtn.server.run()
    cluster.add_node("jiangsu-1", {REGION: "jiangsu"})
    api.create(PSITES, powersite("jiangsu", "jiangsu"))
    # the site's first forecast takes 5 s: no round plans before it, so the first one
    # sees the job and the VTN's event together (else the job would have started)
    providers = {"jiangsu": ScriptedProvider(lambda t: 0.0, delay=5.0)}
    settings = Settings(plan_batch_window=0.02, full_rounds="thread",
                        openadr_vtn_url=vtn.url, openadr_ven_name="suandian-test",
                        openadr_report_interval=timedelta(seconds=1))
    try:
        async with running_operator(api, clock, keeper_factory(providers), settings=settings):
            api.create(CJ, computejob("batch-run", duration="2h", max_delay="12h"))
            now = clock.now().replace(microsecond=0)
            vtn.ask("peak-1", "LOAD_DISPATCH", "setpoint", 0.0, now)
            vtn.ask("levels-1", "SIMPLE", "level", 2.0, now)
            vtn.ask("bid-1", "BID_LOAD", "setpoint", 40.0, now)
            vtn.ask("calm-1", "SIMPLE", "level", 0.0, now)  # normal: asks nothing
            await eventually(lambda: len(vtn.opted) == 4, timeout=60, what="the answers")
            assert vtn.opted == {"peak-1": "optIn", "levels-1": "optIn", "bid-1": "optOut",
                                 "calm-1": "optIn"}
            assert api.read(GEV, None, "oadr-calm-1") is None
            made = api.read(GEV, None, "oadr-peak-1")
            assert made["spec"]["source"] == "OpenADR" and made["spec"]["sourceRef"] == "peak-1"
            assert made["spec"]["shed"] == {"ceilingKW": 0.0}
            assert api.read(GEV, None, "oadr-levels-1")["spec"]["shed"] == {
                "reductionPercent": 50.0}
            assert api.read(GEV, None, "oadr-bid-1") is None  # nothing planned for it
            status = await eventually(lambda: (s := api.read(GEV, None, "oadr-peak-1").get(
                "status")) and s.get("phase") == "Active" and s, timeout=30,
                what="the shed on")
            assert status["affectedJobs"] == ["batch/batch-run"]
            await eventually(lambda: any(v > 0 for _, v in vtn.reports), timeout=60,
                             what="a report of the delivered power")
        assert not cluster.starts  # deferred past the window
    finally:
        await vtn.server.stop()
    delivered = [v for site, v in vtn.reports if site == "jiangsu" and v > 0]
    assert delivered and max(delivered) == pytest.approx(60.0)  # 50 kW x PUE 1.2


async def test_a_vtn_down_then_refusing_is_registered_with_once_it_accepts(
        api, cluster, clock, monkeypatch):
    """The VTN is not up when the operator starts, then refuses two registrations:
    openleadr's client gives up quietly each time; the VEN's supervisor tries again
    (here every 0.2 s) until it is registered, and then answers the VTN's events."""
    _fast_retries(monkeypatch)
    registry = metrics.reset()

    def sample(name: str) -> float:
        return registry.get_sample_value(name) or 0.0

    vtn = Vtn(refusals=2)
    cluster.add_node("jiangsu-1", {REGION: "jiangsu"})
    api.create(PSITES, powersite("jiangsu", "jiangsu"))
    settings = Settings(plan_batch_window=0.02, full_rounds="thread",
                        openadr_vtn_url=vtn.url, openadr_ven_name="suandian-test",
                        openadr_report_interval=timedelta(seconds=1))
    providers = {"jiangsu": ScriptedProvider(lambda t: 0.0)}
    try:
        async with running_operator(api, clock, keeper_factory(providers), settings=settings):
            await eventually(lambda: sample(
                "suandian_openadr_registration_failures_total") >= 1, timeout=30,
                what="a failed registration while the VTN is down")
            assert sample("suandian_openadr_registered") == 0
            await vtn.server.run()
            await eventually(lambda: sample("suandian_openadr_registered") == 1,
                             timeout=30, what="the registration")
            assert vtn.registrations == 3
            assert sample("suandian_openadr_registration_failures_total") >= 3
            vtn.ask("peak-2", "LOAD_DISPATCH", "setpoint", 0.0,
                    clock.now().replace(microsecond=0))
            await eventually(lambda: vtn.opted, timeout=60, what="the answer")
            assert vtn.opted == {"peak-2": "optIn"}  # nothing runs: met
        assert sample("suandian_openadr_registered") == 0  # stopped with the operator
    finally:
        await vtn.server.stop()
        metrics.reset()


def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Ven, "RETRY_MIN_S", 0.2)
    monkeypatch.setattr(Ven, "RETRY_MAX_S", 0.4)
    monkeypatch.setattr(Ven, "WATCH_S", 0.2)


@pytest.mark.parametrize("pinned", ["vtn", "another"])
async def test_over_mutual_tls_with_signed_messages_and_a_pinned_vtn(
        api, cluster, clock, monkeypatch, tmp_path, pinned):
    """The VTN serves HTTPS from a private CA, requires the VEN's client certificate and
    checks its signatures against the fingerprint it knows; the VEN trusts that CA
    (``openadr.tlsSecret``, ``SUANDIAN_OPENADR_CA``) and pins the VTN's signing
    certificate (``openadr.vtnFingerprint``). Pinned right, it registers and opts in;
    pinned to another certificate, it ignores the VTN's answers and never registers."""
    _fast_retries(monkeypatch)
    registry = metrics.reset()
    pki = make_pki(tmp_path / "pki")
    vtn = Vtn(pki=pki)
    await vtn.server.run()
    cluster.add_node("jiangsu-1", {REGION: "jiangsu"})
    api.create(PSITES, powersite("jiangsu", "jiangsu"))
    pin = fingerprint(pki.server_cert if pinned == "vtn" else pki.client_cert)
    settings = Settings(plan_batch_window=0.02, full_rounds="thread",
                        openadr_vtn_url=vtn.url, openadr_ven_name="suandian-test",
                        openadr_report_interval=timedelta(seconds=1),
                        openadr_cert=str(pki.client_cert), openadr_key=str(pki.client_key),
                        openadr_ca=str(pki.ca_cert), openadr_vtn_fingerprint=pin)
    providers = {"jiangsu": ScriptedProvider(lambda t: 0.0)}
    try:
        async with running_operator(api, clock, keeper_factory(providers), settings=settings):
            if pinned == "another":
                await eventually(lambda: (registry.get_sample_value(
                    "suandian_openadr_registration_failures_total") or 0) >= 2, timeout=30,
                    what="registrations refused for the VTN's signature")
                assert registry.get_sample_value("suandian_openadr_registered") == 0
                assert vtn.registrations >= 1  # it reached the VTN over TLS: it is the pin
                return
            await eventually(lambda: registry.get_sample_value(
                "suandian_openadr_registered") == 1, timeout=30, what="the registration")
            vtn.ask("peak-tls", "LOAD_DISPATCH", "setpoint", 0.0,
                    clock.now().replace(microsecond=0))
            await eventually(lambda: vtn.opted, timeout=60, what="the answer")
            assert vtn.opted == {"peak-tls": "optIn"}
            await eventually(lambda: vtn.reports, timeout=30, what="a signed report")
    finally:
        await vtn.server.stop()
        metrics.reset()
