"""The AR(1) filter of the built-in weather, without scipy: bit for bit what
``scipy.signal.lfilter([1], [1, -phi])`` gave, which the simulator's figures rest on."""

from __future__ import annotations

import numpy as np
import pytest

from suandian.forecast.noise import ar1


@pytest.mark.parametrize("shape", [(1, 1), (1, 5760), (4, 500), (3, 2, 97)])
@pytest.mark.parametrize("phi", [0.0, 0.5, 0.97, 0.999])
def test_ar1_is_lfilter_bit_for_bit(shape: tuple[int, ...], phi: float) -> None:
    signal = pytest.importorskip("scipy.signal")
    innovations = np.random.default_rng(7).standard_normal(shape)
    scale = np.sqrt(1.0 - phi * phi)
    e = innovations * scale
    e[..., :1] = innovations[..., :1]
    expected = signal.lfilter([1.0], [1.0, -phi], e, axis=-1)
    got = ar1(innovations.copy(), phi)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


def test_ar1_keeps_unit_variance() -> None:
    x = ar1(np.random.default_rng(3).standard_normal((8, 20_000)), 0.9)
    assert abs(float(x.std()) - 1.0) < 0.03
