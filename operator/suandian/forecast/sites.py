"""The embedded PowerSites: the eight Chinese hub sites.

The manifests under ``data/sites/`` are copies of ``examples/powersites/`` shipped as
package data, so ``suandian forecast --site gansu`` works from an installed wheel; a test
keeps the two in step.
"""

from __future__ import annotations

from importlib import resources

import yaml

from suandian.api.powersite import PowerSite
from suandian.api.validation import parse_powersite

__all__ = ["builtin_sites"]


def builtin_sites() -> dict[str, PowerSite]:
    """The embedded sites by name."""
    out: dict[str, PowerSite] = {}
    folder = resources.files("suandian.forecast") / "data" / "sites"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            site = parse_powersite(yaml.safe_load(entry.read_text(encoding="utf-8")))
            out[site.metadata.name or entry.name[:-5]] = site
    return out
