from __future__ import annotations

from datetime import UTC, datetime

import pytest

from suandian.api.powersite import PowerSite
from suandian.forecast import TimeGrid, builtin_sites


@pytest.fixture(scope="session")
def sites() -> dict[str, PowerSite]:
    return builtin_sites()


@pytest.fixture
def grid() -> TimeGrid:
    return TimeGrid(datetime(2026, 6, 1, tzinfo=UTC))
