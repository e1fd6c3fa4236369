"""Read what a PowerSite's providers need from the cluster: CSV ConfigMaps and Secrets.

A PowerSite names ConfigMap keys for its ``csv`` signals and Secret keys for provider
credentials; their contents change without the PowerSite changing, so they are read
again before every refresh into the site's :class:`~suandian.forecast.SiteInputs`.
A ConfigMap or Secret that cannot be read (absent, forbidden, the API down) keeps what
was read last: the forecast degrades through the keeper's usual chain (last good
forecast, then all-grid), never because of a hiccup here, and the problem is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from suandian.api.powersite import PowerSite
from suandian.errors import KubeApiError
from suandian.forecast import SiteInputs
from suandian.k8s.client import KubeApi

__all__ = ["read_site_inputs"]

log = logging.getLogger(__name__)

Getter = Callable[[str, str], Awaitable[dict[str, str] | None]]


async def read_site_inputs(api: KubeApi, site: PowerSite, into: SiteInputs) -> list[str]:
    """Refill ``into`` for ``site``; returns what could not be read, one line each."""
    fs = site.spec.forecast
    sources = (fs.supply, fs.carbon)
    problems: list[str] = []
    configmaps: dict[tuple[str, str], dict[str, str] | None] = {}
    texts: dict[str, str] = {}
    for source in sources:
        for signal, ref in source.configmap_refs().items():
            where = (ref.namespace or api.namespace, ref.name)
            if where not in configmaps:
                configmaps[where] = await _read("ConfigMap", api.get_configmap, where,
                                                problems)
            data = configmaps[where]
            if data is None:
                if signal in into.csv_texts:  # unreadable now: keep what was read last
                    texts[signal] = into.csv_texts[signal]
            elif ref.key in data:
                texts[signal] = data[ref.key]
            else:
                problems.append(f"ConfigMap {where[0]}/{where[1]} has no key {ref.key} "
                                f"(signal {signal})")
    into.csv_texts.clear()
    into.csv_texts.update(texts)
    secrets: dict[str, dict[str, str]] = {}
    for name in sorted({ref.name for source in sources for ref in source.secret_refs()}):
        data = await _read("Secret", api.get_secret, (api.namespace, name), problems)
        if data is None:
            data = into.secrets.get(name)
        if data is not None:
            secrets[name] = data
    into.use_secrets(secrets)
    for problem in problems:
        log.warning("PowerSite %s: %s", site.metadata.name, problem)
    return problems


async def _read(kind: str, get: Getter, where: tuple[str, str], problems: list[str]
                ) -> dict[str, str] | None:
    try:
        data = await get(*where)
    except KubeApiError as exc:
        problems.append(f"cannot read {kind} {where[0]}/{where[1]}: {exc}")
        return None
    if data is None:
        problems.append(f"{kind} {where[0]}/{where[1]} does not exist")
    return data
