"""The embedded PowerSites (eight Chinese hub sites) and scenario files that name sites.

The manifests under ``data/sites/`` are copies of ``examples/powersites/`` shipped as
package data, so ``suandian forecast --site gansu`` works from an installed wheel; a test
keeps the two in step.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from suandian.api.powersite import PowerSite
from suandian.api.validation import parse_powersite
from suandian.errors import FieldError, ScenarioError

__all__ = ["builtin_sites", "load_sites", "sites_from_scenario"]


def builtin_sites() -> dict[str, PowerSite]:
    """The embedded sites by name."""
    out: dict[str, PowerSite] = {}
    folder = resources.files("suandian.forecast") / "data" / "sites"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            site = parse_powersite(yaml.safe_load(entry.read_text(encoding="utf-8")))
            out[site.metadata.name or entry.name[:-5]] = site
    return out


def sites_from_scenario(path: Path) -> dict[str, PowerSite]:
    """The PowerSites a scenario YAML lists under ``sites`` (manifests inline, or paths to
    manifest files relative to the scenario); the embedded sites when it lists none."""
    try:
        doc: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ScenarioError("Scenario", [FieldError("", f"{path}: {exc}")]) from exc
    entries = (doc or {}).get("sites") if isinstance(doc, dict) else None
    if not entries:
        return builtin_sites()
    out: dict[str, PowerSite] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            try:
                entry = yaml.safe_load((path.parent / entry).read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ScenarioError("Scenario", [FieldError(f"sites[{i}]", str(exc))]) from exc
        if not isinstance(entry, dict):
            raise ScenarioError("Scenario", [FieldError(f"sites[{i}]", "not a PowerSite")])
        site = parse_powersite(_csv_paths_relative_to(entry, path.parent))
        out[site.metadata.name or f"site-{i}"] = site
    return out


def _csv_paths_relative_to(manifest: dict[str, Any], folder: Path) -> dict[str, Any]:
    """The manifest with relative ``csv.paths`` made relative to the scenario's folder."""
    forecast = (manifest.get("spec") or {}).get("forecast") or {}
    for block in ("supply", "carbon"):
        paths = ((forecast.get(block) or {}).get("csv") or {}).get("paths")
        if isinstance(paths, dict):
            for signal, p in paths.items():
                if isinstance(p, str) and not Path(p).is_absolute():
                    paths[signal] = str(folder / p)
    return manifest


def load_sites(scenario: str | None) -> dict[str, PowerSite]:
    """Sites of a scenario file, or the embedded ones (``None`` or a built-in name)."""
    if scenario and Path(scenario).is_file():
        return sites_from_scenario(Path(scenario))
    return builtin_sites()
