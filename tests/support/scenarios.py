"""Scenario fragments the simulator's tests share."""

from __future__ import annotations

import textwrap

GRID_ONLY_SITE = textwrap.dedent("""\
    - apiVersion: suandian.io/v1alpha1
      kind: PowerSite
      metadata: {name: fr}
      spec:
        nodeSelector: {topology.kubernetes.io/region: fr}
        location: {latitude: 48.8, longitude: 2.3, timeZone: Europe/Paris}
        supply: []
        grid: {importLimitKW: 1000000, carbonIntensity: 50}
    """)
"""A grid-only site ``fr`` (no supply of its own, a clean grid), as an entry of
``sites:`` at the start of a line."""
