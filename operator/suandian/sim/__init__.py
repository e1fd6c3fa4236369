"""The simulator: replay a job trace against green supply, every policy side by side.

``load_scenario`` reads a built-in or file scenario, ``simulate`` runs the policies
(run-now, threshold, best-window, suandian, oracle) on a virtual clock with forecast
error injected, and ``SimReport`` holds the figures (``to_json`` for ``--json``).
See ``docs/simulator.md``.
"""

from suandian.sim.run import POLICY_NAMES, SimReport, build_world, simulate
from suandian.sim.scenario import Scenario, builtin_scenarios, load_scenario

__all__ = [
    "POLICY_NAMES",
    "Scenario",
    "SimReport",
    "build_world",
    "builtin_scenarios",
    "load_scenario",
    "simulate",
]
