"""The ledger's shortcuts do numpy's arithmetic: the sum of ``n`` copies of a load
(:func:`~suandian.planner.ledger.copies_sum`) is the float ``np.add.reduce`` gives for
an array of them."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from suandian.planner.ledger import copies_sum


@given(st.floats(min_value=1e-6, max_value=1e7, allow_nan=False),
       st.integers(min_value=0, max_value=700))
def test_copies_sum_is_numpys_pairwise_sum(q: float, n: int) -> None:
    assert copies_sum(q, n) == float(np.add.reduce(np.full(n, q)))


def test_copies_sum_at_the_block_edges() -> None:
    rng = np.random.default_rng(0)
    for n in (*range(1, 20), 127, 128, 129, 136, 255, 256, 257, 1000):
        for q in rng.uniform(0.01, 5000.0, 20):
            assert copies_sum(float(q), n) == float(np.add.reduce(np.full(n, q)))
