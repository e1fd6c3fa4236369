"""The VEN's supervisor (controllers.openadr.Ven) with a scripted openleadr client: it
follows the replica's activity, survives a client that fails to close, registers again
when the VTN cancels, and stays stopped once closed. (The real VTN: the integration
tests, tests/integration/operator/test_openadr.py.)"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from suandian.config import Settings
from suandian.controllers.openadr import Ven

pytestmark = pytest.mark.looptime


class Client:
    """openleadr's ``OpenADRClient`` as the VEN uses it: ``run()`` registers (or not),
    ``stop()`` closes (or raises)."""

    made: ClassVar[list[Client]] = []
    refuse = 0  # the next this many runs get no registration
    failing_stop = False

    def __init__(self, **_: Any) -> None:
        self.registration_id: str | None = None
        self.client_session: object | None = None
        self.stopped = False
        Client.made.append(self)

    def add_handler(self, *_: Any) -> None:
        return None

    def add_report(self, **_: Any) -> None:
        return None

    async def run(self) -> None:
        self.client_session = object()
        if Client.refuse > 0:
            Client.refuse -= 1
            return
        self.registration_id = f"reg-{len(Client.made)}"

    async def stop(self) -> None:
        self.stopped = True
        if Client.failing_stop:
            raise RuntimeError("the session would not close")


@pytest.fixture
def ven(monkeypatch: pytest.MonkeyPatch) -> Ven:
    import openleadr

    monkeypatch.setattr(openleadr, "OpenADRClient", Client)
    monkeypatch.setattr(Client, "made", [])
    monkeypatch.setattr(Client, "refuse", 0)
    monkeypatch.setattr(Client, "failing_stop", False)
    ctx = SimpleNamespace(settings=Settings(openadr_vtn_url="http://vtn.invalid/OpenADR2"),
                          site_names=set())
    return Ven(ctx)  # type: ignore[arg-type]


async def until(condition: Any, seconds: float = 60.0) -> None:
    for _ in range(int(seconds * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not within the time")


async def test_acting_again_while_the_supervisor_winds_down_starts_another(ven: Ven) -> None:
    ven.activate(True)
    await until(lambda: ven.registered)
    ven.activate(False)
    ven.activate(True)  # before the cancelled supervisor has ended
    await until(lambda: ven.registered and len(Client.made) == 2)
    assert Client.made[0].stopped and not Client.made[1].stopped
    await ven.close()


async def test_a_refused_then_cancelled_registration_is_tried_again(ven: Ven) -> None:
    Client.refuse = 2
    ven.activate(True)
    await until(lambda: ven.registered)
    assert len(Client.made) == 3  # two refused, the third registered
    assert all(c.stopped for c in Client.made[:2])
    Client.failing_stop = True  # and closing the cancelled one fails: logged, not fatal
    Client.made[2].registration_id = None  # the VTN cancels it
    await until(lambda: ven.registered and len(Client.made) == 4)
    await ven.close()


async def test_once_closed_it_stays_stopped(ven: Ven) -> None:
    ven.activate(True)
    await until(lambda: ven.registered)
    await ven.close()
    assert ven.client is None and Client.made[0].stopped
    ven.activate(True)
    await asyncio.sleep(30)
    assert len(Client.made) == 1 and not ven.registered
