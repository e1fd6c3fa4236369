"""Forecast providers: one module per kind of source, and ``make_provider`` to pick one.

``builtin`` and ``csv`` do no network I/O; the others are aiohttp clients with the retry
policy of :class:`~suandian.forecast.providers.base.RetryPolicy`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from suandian.api.powersite import ForecastProvider, ForecastSource, PowerSite
from suandian.forecast.providers.base import (
    Credentials,
    HttpClient,
    Provider,
    RetryPolicy,
    Signals,
    SiteInputs,
)
from suandian.forecast.providers.builtin import BuiltinProvider
from suandian.forecast.providers.carbon_services import (
    CarbonAwareSdkProvider,
    ElectricityMapsProvider,
    WattTimeProvider,
)
from suandian.forecast.providers.csv import CsvProvider
from suandian.forecast.providers.prometheus import PrometheusProvider

__all__ = [
    "BuiltinProvider",
    "CarbonAwareSdkProvider",
    "Credentials",
    "CsvProvider",
    "ElectricityMapsProvider",
    "HttpClient",
    "PrometheusProvider",
    "Provider",
    "RetryPolicy",
    "Signals",
    "SiteInputs",
    "WattTimeProvider",
    "make_provider",
]


def make_provider(source: ForecastSource, site: PowerSite, *,
                  credentials: Credentials | None = None, policy: RetryPolicy | None = None,
                  csv_texts: Mapping[str, str] | None = None, seed: int = 0,
                  http: dict[str, Any] | None = None) -> Provider:
    """The provider a ``ForecastSource`` names, configured for ``site``.

    ``csv_texts`` holds ConfigMap data already read by the k8s layer (signal -> CSV);
    ``http`` passes ``session``/``sleep``/``rng``/``clock`` to the HTTP client (tests).
    """
    creds = credentials or Credentials()
    pol = policy or RetryPolicy()
    extra = dict(http or {})
    p = source.provider
    if p is ForecastProvider.BUILTIN:
        block = source.builtin
        return BuiltinProvider(site, block.seed if block and block.seed is not None else seed)
    if p is ForecastProvider.CSV and source.csv is not None:
        return CsvProvider(source.csv, site.spec.location.time_zone, csv_texts)
    if p is ForecastProvider.CARBON_AWARE_SDK and source.carbon_aware_sdk is not None:
        return CarbonAwareSdkProvider(source.carbon_aware_sdk, pol, extra)
    if p is ForecastProvider.ELECTRICITY_MAPS and source.electricity_maps is not None:
        return ElectricityMapsProvider(source.electricity_maps, creds, pol, extra)
    if p is ForecastProvider.WATT_TIME and source.watt_time is not None:
        return WattTimeProvider(source.watt_time, creds, pol, extra)
    if p is ForecastProvider.PROMETHEUS and source.prometheus is not None:
        return PrometheusProvider(source.prometheus, pol, extra)
    raise ValueError(f"provider {p.value} has no settings block")  # the API model forbids it
