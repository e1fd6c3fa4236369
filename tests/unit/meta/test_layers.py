"""The layers of DESIGN.md, enforced: a lower layer never imports a higher one, and the
planner and forecast models stay free of Kubernetes, kopf, Prometheus and asyncio.

    cli → controllers → planning → backends → k8s, metrics, sim → measure → forecast,
    planner → api → links → units
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from conftest import ROOT

PACKAGE = ROOT / "operator" / "suandian"
RANK = {
    "cli": 5,
    "controllers": 4,
    "k8s": 3, "metrics": 3, "sim": 3,
    "backends": 3.5,  # one way to act each: built on k8s, used by the controllers
    "report": 3.5,  # `suandian report`: reads the ledger from Prometheus, metrics' names
    "planning": 3.7,  # a round's work apart from the loop: the planner process loads it
    "measure": 2.5,  # measured energy: pure arithmetic over the forecast's HTTP client
    "forecast": 2, "planner": 2,
    # GridEvents as the planner's requests: over both, so neither knows the other
    "gridasks": 2.2,
    "openadr": 3.2,  # OpenADR events as GridEvent manifests (times as the API writes them)
    "api": 1,
    "config": 2,  # operator settings: parsed with the units users write
    "files": 1,  # reading users' files: errors that name the file
    # the units users write and the links' text: below the API models, so that the
    # planner reads them without pydantic
    "units": 0.5, "links": 0.6,
    "errors": 0,
}
# What the pure core must never touch, whatever its layer.
FORBIDDEN = {
    "planner": {
        "kopf", "kubernetes", "prometheus_client", "asyncio", "aiohttp", "suandian.forecast",
    },
    "forecast": {"kopf", "kubernetes", "prometheus_client"},
    "measure": {"kopf", "kubernetes", "prometheus_client"},
    # the planner process imports this package: nothing of kopf's, nor the controllers
    "planning": {"kopf", "kubernetes", "prometheus_client", "suandian.controllers"},
    "api": {"kopf", "kubernetes", "prometheus_client", "asyncio", "aiohttp"},
}
# The HTTP providers are the one place below the controllers allowed to do async I/O.
ASYNC_ALLOWED = ("forecast/providers",)


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "suandian" or len(parts) < 2:
        return None
    return parts[1]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(PACKAGE)) for p in SOURCES])
def test_no_upward_imports(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    own = relative.parts[0].removesuffix(".py")
    if own not in RANK:
        return  # __init__.py, __main__.py: the package root
    for module in _imports(path):
        target = _layer(module)
        if target in RANK and target != own:
            assert RANK[target] < RANK[own], f"{relative} ({own}) imports {module} ({target})"
        for banned in FORBIDDEN.get(own, ()):
            if str(relative).startswith(ASYNC_ALLOWED) and banned in ("asyncio", "aiohttp"):
                continue
            assert not (module == banned or module.startswith(banned + ".")), (
                f"{relative} must not import {module}"
            )


def test_every_layer_is_known() -> None:
    top = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()
           if not p.name.startswith("_") and (p.is_dir() or p.suffix == ".py")}
    top.discard("py.typed")
    assert top <= set(RANK), f"add {top - set(RANK)} to RANK (and DESIGN.md)"


def test_the_planner_process_imports_no_client() -> None:
    """The planner process (``suandian.planning.process``, started beside the operator)
    plans from forecasts it is sent: importing it must not pull in an HTTP client, kopf
    or the Kubernetes layer (they were 9 of its 59 MB of imports), nor an event loop or
    the forecast layer (it is sent plain forecasts), nor pydantic and the API models
    (16 MB: it is sent the sites' and jobs' terms). An event loop is checked by who
    imports it: pydantic-core imports ``asyncio`` itself since 2.46, so its presence says
    nothing of ours; a module of ours that imports it is what must not happen."""
    import subprocess
    import sys

    code = (
        "import builtins, sys\n"
        "real, ours = builtins.__import__, set()\n"
        "def watch(name, globals=None, locals=None, fromlist=(), level=0):\n"
        "    who = (globals or {}).get('__name__', '')\n"
        "    if name.partition('.')[0] == 'asyncio' and who.startswith('suandian'):\n"
        "        ours.add(who)\n"
        "    return real(name, globals, locals, fromlist, level)\n"
        "builtins.__import__ = watch\n"
        "import suandian.planning.process\n"
        "print(sorted(m for m in ('aiohttp', 'kopf', 'suandian.k8s', "
        "'suandian.controllers', 'suandian.backends', 'yaml', "
        "'suandian.forecast', 'pydantic', 'suandian.api') if m in sys.modules), sorted(ours))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[] []", out.stdout
