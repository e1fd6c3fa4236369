"""What every provider shares: the signals it returns, credentials, and a careful HTTP client.

A provider turns one ``ForecastSource`` into :class:`Signals` on a ``TimeGrid``: NaN
where it said nothing, so the assembly step (not the provider) decides what a gap means.
Every failure leaves a provider as a :class:`~suandian.errors.ProviderError` whose
``reason`` (one of :data:`~suandian.errors.PROVIDER_REASONS`) is both the site's
``Degraded`` condition reason and the metric's label: ``Unauthorized``,
``MissingCredentials``, ``RateLimited``, ``ServerError``, ``ClientError`` (another 4xx),
``Timeout``, ``Unreachable``, ``MalformedResponse``, ``WrongUnits``, ``OutOfRange``,
``Gaps``, ``Stale``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import SecretStr

from suandian.api.powersite import SecretKeyRef
from suandian.errors import (
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderResponseError,
)
from suandian.forecast.grid import TimeGrid
from suandian.units import parse_time

if TYPE_CHECKING:  # imported where a request is made: the planner process, which
    import aiohttp  # reads forecasts and never fetches them, goes without it (9 MB)

__all__ = [
    "Credentials",
    "HttpClient",
    "Provider",
    "RetryPolicy",
    "Signals",
    "SiteInputs",
    "convert_units",
    "parse_instant",
]

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class Signals:
    """Signals on a grid: ``values[name]`` has shape ``(grid.slots,)``, NaN where unknown.

    Names: ``solar``, ``wind``, ``hydro``, ``directGreen`` (kW), ``carbonIntensity``
    (gCO2/kWh), ``price``. ``p10``/``p90`` are optional bands of the same names.
    """

    provider: str
    grid: TimeGrid
    values: Mapping[str, np.ndarray]
    p10: Mapping[str, np.ndarray] = field(default_factory=dict)
    p90: Mapping[str, np.ndarray] = field(default_factory=dict)
    generated_at: datetime | None = None


class Provider(Protocol):
    """A source of signals for one site."""

    name: str

    async def fetch(self, grid: TimeGrid, now: datetime) -> Signals: ...


_UNITS: dict[str, tuple[str, float]] = {
    "w": ("power", 0.001), "kw": ("power", 1.0), "mw": ("power", 1000.0),
    "gw": ("power", 1e6),
    "g/kwh": ("carbon", 1.0), "gco2/kwh": ("carbon", 1.0), "gco2eq/kwh": ("carbon", 1.0),
    "kg/kwh": ("carbon", 1000.0), "kg/mwh": ("carbon", 1.0), "t/mwh": ("carbon", 1000.0),
    "lbs/mwh": ("carbon", 0.45359237), "lbs_co2_per_mwh": ("carbon", 0.45359237),
    "cny/kwh": ("price", 1.0), "cny/mwh": ("price", 0.001),
}
DEFAULT_UNITS = {"carbonIntensity": "g/kWh", "price": "CNY/kWh"}


def signal_dimension(signal: str) -> str:
    if signal == "carbonIntensity":
        return "carbon"
    if signal == "price":
        return "price"
    return "power"


def convert_units(provider: str, signal: str, values: np.ndarray, unit: str) -> np.ndarray:
    """``values`` in ``unit`` to the signal's canonical unit (kW, g/kWh, CNY/kWh)."""
    dim, factor = _UNITS.get(unit.strip().lower().replace(" ", ""), ("", 0.0))
    if dim != signal_dimension(signal):
        raise ProviderResponseError(
            provider, "WrongUnits", f"{signal} cannot be given in {unit!r}")
    result: np.ndarray = values * factor
    return result


def parse_instant(provider: str, text: Any) -> datetime:
    """An aware datetime from an RFC 3339 / ISO 8601 string (``Z`` allowed)."""
    if not isinstance(text, str):
        raise ProviderResponseError(provider, "MalformedResponse", f"time {text!r} is no string")
    try:
        return parse_time(text)
    except ValueError as exc:
        raise ProviderResponseError(provider, "MalformedResponse", f"bad time: {exc}") from exc


class Credentials:
    """Secret values by ``SecretKeyRef``: from Secret data the operator read, else from the
    environment as ``SUANDIAN_SECRET_<NAME>_<KEY>`` (upper case, non-alphanumerics ``_``).

    Values are held as ``SecretStr``, so neither ``repr`` nor logging shows them.
    """

    def __init__(self, secrets: Mapping[str, Mapping[str, str]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self._secrets = {k: dict(v) for k, v in (secrets or {}).items()}
        self._env = os.environ if env is None else env

    @staticmethod
    def env_name(ref: SecretKeyRef) -> str:
        return re.sub(r"[^A-Z0-9]", "_", f"SUANDIAN_SECRET_{ref.name}_{ref.key}".upper())

    def get(self, provider: str, ref: SecretKeyRef) -> SecretStr:
        value = self._secrets.get(ref.name, {}).get(ref.key)
        if value is None:
            value = self._env.get(self.env_name(ref))
        if not value:
            raise ProviderAuthError(
                provider, "MissingCredentials",
                f"no Secret {ref.name}/{ref.key} and no ${self.env_name(ref)} set")
        return SecretStr(value)

    def replace(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        """Use these Secrets' data from now on (the operator re-reads them each refresh)."""
        self._secrets = {k: dict(v) for k, v in secrets.items()}

    def __repr__(self) -> str:
        return f"Credentials(secrets={sorted(self._secrets)})"


@dataclass
class SiteInputs:
    """What a site's providers read from the cluster rather than from its spec: the CSV
    text of each signal a ConfigMap holds, and the Secrets credentials come from.

    The operator's PowerSite controller refills it before every refresh (a ConfigMap or
    a Secret changes without the PowerSite changing) and the providers built with it
    read it when they fetch; the CLI and the simulator never fill it (files and
    environment variables serve them).
    """

    csv_texts: dict[str, str] = field(default_factory=dict)
    """Signal name to its CSV text."""
    secrets: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)
    """Secret name to its decoded data (what ``credentials`` serves)."""
    credentials: Credentials = field(default_factory=Credentials)

    def use_secrets(self, secrets: Mapping[str, Mapping[str, str]]) -> None:
        self.secrets = {k: dict(v) for k, v in secrets.items()}
        self.credentials.replace(self.secrets)


@dataclass(frozen=True)
class RetryPolicy:
    """Timeouts and retries: ``attempts`` tries, exponential backoff with equal jitter
    (``d/2 + U(0, d/2)``, ``d = min(max, base x 2^n)``); a ``Retry-After`` longer than
    ``max_retry_after_s`` is not waited for (the keeper falls back instead)."""

    attempts: int = 4
    timeout_s: float = 10.0
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    max_retry_after_s: float = 120.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


class HttpClient:
    """GET/POST returning parsed JSON, with the retry policy above.

    ``sleep`` and ``rng`` are injectable so tests wait for nothing and can assert each
    delay. The session is the caller's if given, else owned (``async with``).
    """

    def __init__(self, provider: str, policy: RetryPolicy | None = None, *,
                 session: aiohttp.ClientSession | None = None, sleep: Sleep | None = None,
                 rng: random.Random | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.provider = provider
        self.policy = policy or RetryPolicy()
        self._session = session
        self._owned: aiohttp.ClientSession | None = None
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self._clock = clock or (lambda: datetime.now(UTC))

    async def __aenter__(self) -> HttpClient:
        if self._session is None:
            import aiohttp

            self._owned = aiohttp.ClientSession()
            self._session = self._owned
        return self

    async def __aexit__(self, et: type[BaseException] | None, ev: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._owned is not None:
            await self._owned.close()
            self._owned = None
            self._session = None

    def _backoff(self, attempt: int) -> float:
        d = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2.0**attempt)
        return float(d / 2 + self._rng.uniform(0, d / 2))

    async def get_json(self, url: str, *, params: Mapping[str, str] | None = None,
                       headers: Mapping[str, str] | None = None) -> Any:
        """The JSON body of a successful GET; raises ``ProviderError`` subclasses."""
        if self._session is None:
            raise RuntimeError("use HttpClient as 'async with'")
        import aiohttp

        last: ProviderError | None = None
        for attempt in range(self.policy.attempts):
            wait: float | None = None
            try:
                timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
                async with self._session.get(url, params=params, headers=headers,
                                             timeout=timeout) as resp:
                    log.debug("%s GET %s -> %d", self.provider, url, resp.status)
                    if resp.status in (401, 403):
                        raise ProviderAuthError(
                            self.provider, "Unauthorized",
                            f"HTTP {resp.status}: credentials refused")
                    if resp.status == 429:
                        delay = retry_after_seconds(resp.headers.get("Retry-After"),
                                                    self._clock())
                        last = ProviderRateLimited(
                            self.provider, "HTTP 429: rate limited", delay)
                        if delay is not None and delay > self.policy.max_retry_after_s:
                            raise last
                        wait = max(delay if delay is not None else 0.0,
                                   self._backoff(attempt))
                    elif resp.status >= 500:
                        last = ProviderError(self.provider, "ServerError",
                                             f"HTTP {resp.status}")
                    elif resp.status >= 400:
                        text = (await resp.read())[:200].decode("utf-8", "replace")
                        raise ProviderResponseError(
                            self.provider, "ClientError", f"HTTP {resp.status}: {text}")
                    else:
                        body = await resp.read()
                        try:
                            return json.loads(body)
                        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                            raise ProviderResponseError(
                                self.provider, "MalformedResponse",
                                f"response is not JSON: {exc}") from exc
            except TimeoutError:
                last = ProviderError(self.provider, "Timeout",
                                     f"no answer within {self.policy.timeout_s:g}s")
            except aiohttp.ClientError as exc:
                last = ProviderError(self.provider, "Unreachable", f"{type(exc).__name__}: {exc}")
            if attempt + 1 < self.policy.attempts:
                await self._sleep(wait if wait is not None else self._backoff(attempt))
        assert last is not None
        raise last
