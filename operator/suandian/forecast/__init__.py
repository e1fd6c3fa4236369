"""Supply and carbon forecasts for each site, on a common time grid.

The public surface (what the planner, the simulator and the operator use):

* :class:`TimeGrid`, :class:`SiteForecast`;
* :func:`simulate_actuals`, :func:`forecast_from_actuals` (the simulator's truth and
  what a policy is told in advance);
* :func:`builtin_forecasts` (the physical models for many sites at once);
* :class:`ForecastKeeper`, :class:`SiteHealth` (providers with the fallback chain),
  :class:`SiteInputs` (what the operator reads for them from the cluster);
* :func:`builtin_sites`; :class:`Battery`, :func:`run_batteries`.
"""

from suandian.forecast.actuals import forecast_from_actuals, simulate_actuals
from suandian.forecast.assemble import GapPolicy, assemble
from suandian.forecast.builtin import builtin_forecasts
from suandian.forecast.grid import DEFAULT_SLOT, DEFAULT_SLOTS, TimeGrid, floor_time
from suandian.forecast.providers.base import SiteInputs
from suandian.forecast.providers.keeper import ForecastKeeper, SiteHealth
from suandian.forecast.series import SiteForecast, conservative_forecast
from suandian.forecast.sites import builtin_sites
from suandian.forecast.storage import Battery, run_batteries

__all__ = [
    "DEFAULT_SLOT",
    "DEFAULT_SLOTS",
    "Battery",
    "ForecastKeeper",
    "GapPolicy",
    "SiteForecast",
    "SiteHealth",
    "SiteInputs",
    "TimeGrid",
    "assemble",
    "builtin_forecasts",
    "builtin_sites",
    "conservative_forecast",
    "floor_time",
    "forecast_from_actuals",
    "run_batteries",
    "simulate_actuals",
]
