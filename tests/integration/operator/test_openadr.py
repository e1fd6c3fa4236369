"""The OpenADR VEN against a real VTN: openleadr's own server on loopback, in real time.

The VTN asks for a shed at ``jiangsu`` (a LOAD_DISPATCH setpoint of 0 kW for the next
two hours, targeting the site by resource_id); the VEN turns it into a GridEvent, the
plan defers the job that would run in the window, the VEN opts in, and its reports
reach the VTN with the power delivered (the 60 kW the job would have drawn). A SIMPLE
level-2 signal in the same poll becomes a shed of 50% of the site's import, met by the
same deferral (opted in); a BID_LOAD signal, which the planner cannot read, is opted
out of, and a SIMPLE level 0 (normal operation) is opted into with nothing planned.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.support.forecasts import ScriptedProvider, keeper_factory, powersite
from tests.support.objects import CJ, PSITES, computejob, eventually
from tests.support.operator import free_port, running_operator

from suandian.config import Settings
from suandian.controllers.clock import LoopClock

openleadr = pytest.importorskip("openleadr")

GEV = "suandian.io/v1alpha1/gridevents"
REGION = "topology.kubernetes.io/region"


@pytest.fixture
def clock() -> LoopClock:
    """Wall-clock time: openleadr's VTN and VEN schedule on it."""
    return LoopClock(datetime.now(UTC))


class Vtn:
    """openleadr's VTN on a loopback port, recording what the VEN answers and reports."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = openleadr.OpenADRServer(vtn_id="GRID-JIANGSU", http_host="127.0.0.1",
                                              http_port=self.port, requested_poll_freq=
                                              timedelta(seconds=1))
        self.server.add_handler("on_create_party_registration", self.register)
        self.server.add_handler("on_register_report", self.on_register_report)
        self.opted: dict[str, str] = {}
        self.reports: list[tuple[str, float]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/OpenADR2/Simple/2.0b"

    async def register(self, info: Any) -> tuple[str, str]:
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
