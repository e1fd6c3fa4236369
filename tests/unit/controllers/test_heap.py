"""The heap policy freezes what survives full collections, and thaws it hourly."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from suandian.controllers.heap import HeapPolicy


@pytest.fixture(autouse=True)
def thawed() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()


class Cycle:
    def __init__(self) -> None:
        self.me = self


def test_a_full_round_collects_young_garbage_then_freezes_the_survivors() -> None:
    now = [0.0]
    heap = HeapPolicy(full_every=3600, clock=lambda: now[0])
    survivor = [[i] for i in range(1000)]
    garbage = weakref.ref(Cycle())  # unreachable, but only a collection finds it
    assert garbage() is not None
    heap.after_full_round()
    assert garbage() is None
    assert gc.get_freeze_count() >= 1000 and heap.freezes == 1
    frozen = gc.get_freeze_count()
    holder = [Cycle()]
    old = weakref.ref(holder[0])
    gc.freeze()
    holder.clear()  # a frozen cycle, now garbage: only the hourly full collection sees it
    heap.after_full_round()
    assert old() is not None
    now[0] = 3601.0  # an hour on: everything is thawed and collected first
    heap.after_full_round()
    assert old() is None
    assert gc.get_freeze_count() <= frozen + 100  # not frozen twice over
    del survivor


async def test_survivors_of_cpythons_own_full_collections_are_frozen() -> None:
    heap = HeapPolicy()
    heap.install(asyncio.get_running_loop())
    try:
        gc.collect(2)  # as CPython would start one
        await asyncio.sleep(0)  # the freeze runs on the loop right after
        assert heap.freezes == 1 and gc.get_freeze_count() > 0
        gc.collect(1)  # younger collections freeze nothing
        await asyncio.sleep(0)
        assert heap.freezes == 1
    finally:
        heap.uninstall()
    gc.collect(2)
    await asyncio.sleep(0)
    assert heap.freezes == 1  # uninstalled
