"""Grid carbon intensity: the provincial annual factor with a daily shape from wind and sun.

``CI(t) = F x (1 - s (pv(t) / pv_mean - 1) - w (wind(t) / wind_mean - 1))``, clipped to
``[0.3 F, 1.6 F]``, where ``F`` is the province's published annual average factor
(MEE/NBS 2022), ``s`` and ``w`` the province's solar and wind shares of generation, and
``pv``/``wind`` the normalised regional output at the site (the same weather the site's
own plants see; the mean of the published capacity-factor range as ``*_mean``). When the
sun shines and the wind blows, fossil units are backed down and the intensity falls,
by as much as those sources' share; the annual mean stays ``F`` on average.
"""

from __future__ import annotations

import numpy as np

__all__ = ["carbon_intensity"]


def carbon_intensity(factor: np.ndarray, solar_share: np.ndarray, wind_share: np.ndarray,
                     pv_cf: np.ndarray, wind_cf: np.ndarray, pv_mean: np.ndarray,
                     wind_mean: np.ndarray) -> np.ndarray:
    """gCO2/kWh, sites x slots."""
    f = factor[:, None]
    rel = (1.0 - solar_share[:, None] * (pv_cf / pv_mean[:, None] - 1.0)
           - wind_share[:, None] * (wind_cf / wind_mean[:, None] - 1.0))
    result: np.ndarray = f * np.clip(rel, 0.3, 1.6)
    return result
