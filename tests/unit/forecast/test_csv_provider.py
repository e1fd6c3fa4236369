from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from suandian.api.powersite import ConfigMapKeyRef, CsvForecast
from suandian.errors import ProviderResponseError
from suandian.forecast import TimeGrid
from suandian.forecast.providers import CsvProvider

GRID = TimeGrid(datetime(2026, 6, 1, tzinfo=UTC), slots=96)


def _rows(header: str, start: datetime, values: list[float], step: timedelta,
          local: bool = False) -> str:
    lines = [header]
    for i, v in enumerate(values):
        t = start + step * i
        lines.append(f"{t.replace(tzinfo=None).isoformat() if local else t.isoformat()},{v}")
    return "\n".join(lines) + "\n"


async def test_files_units_and_local_time(tmp_path: Path) -> None:
    solar = tmp_path / "solar.csv"
    # local Beijing wall-clock, in MW: 08:00 local is 00:00 UTC
    solar.write_text(_rows("time,value[MW]", datetime(2026, 6, 1, 8), [1.5] * 24,
                           timedelta(hours=1), local=True))
    carbon = tmp_path / "ci.csv"
    carbon.write_text(_rows("time,value,p10,p90", GRID.start, [500.0] * 48,
                            timedelta(minutes=30)).replace(",500.0", ",500.0,450,550"))
    spec = CsvForecast(paths={"solar": str(solar), "carbonIntensity": str(carbon)})
    sig = await CsvProvider(spec, "Asia/Shanghai").fetch(GRID, GRID.start)
    np.testing.assert_allclose(sig.values["solar"], 1500.0)
    assert sig.p10["carbonIntensity"][0] == 450 and sig.p90["carbonIntensity"][5] == 550


def test_configmap_text_and_unit_conflicts() -> None:
    spec = CsvForecast(signals={"wind": ConfigMapKeyRef(name="cm", key="wind.csv")},
                       units={"wind": "kW"})
    text = _rows("time,value", GRID.start, [100.0] * 12, timedelta(hours=2))
    sig = CsvProvider(spec, texts={"wind": text}).read(GRID, GRID.start)
    np.testing.assert_allclose(sig.values["wind"], 100.0)
    clash = _rows("time,value[MW]", GRID.start, [1.0] * 12, timedelta(hours=2))
    with pytest.raises(ProviderResponseError) as e:
        CsvProvider(spec, texts={"wind": clash}).read(GRID, GRID.start)
    assert e.value.reason == "WrongUnits"
    wrong = CsvForecast(paths={"wind": "x"}, units={"wind": "g/kWh"})
    with pytest.raises(ProviderResponseError, match="cannot be given"):
        CsvProvider(wrong, texts={"wind": text}).read(GRID, GRID.start)


@pytest.mark.parametrize(("text", "reason"), [
    ("when,value\n2026-06-01T00:00Z,1\n", "MalformedResponse"),
    ("time,value\n", "Gaps"),
    ("time,value\nnot-a-time,1\n2026-06-01T01:00Z,2\n", "MalformedResponse"),
    ("time,value\n2026-06-01T00:00Z,1\n2026-06-01T00:00Z,2\n", "MalformedResponse"),
])
def test_bad_files(text: str, reason: str) -> None:
    spec = CsvForecast(paths={"solar": "x"})
    with pytest.raises(ProviderResponseError) as e:
        CsvProvider(spec, texts={"solar": text}).read(GRID, GRID.start)
    assert e.value.reason == reason


def test_missing_file_is_a_provider_error(tmp_path: Path) -> None:
    spec = CsvForecast(paths={"solar": str(tmp_path / "absent.csv")})
    with pytest.raises(ProviderResponseError) as e:
        CsvProvider(spec).read(GRID, GRID.start)
    assert e.value.reason == "Unreachable"
