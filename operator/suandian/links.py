"""The text form of the links between sites that data moves over, as settings give it:
``gansu:yangtze-delta=25Gbps,0.03kWh;ningxia:jing-jin-ji=100Gbps``.

Parsed here, below both the operator's settings (which refuse a bad one at start) and
the planner (which builds its :class:`~suandian.planner.data.DataLinks` from it), so the
two read the same text the same way.
"""

from __future__ import annotations

import math
import re

from suandian.units import NUMBER

__all__ = ["DEFAULT_GBPS", "DEFAULT_KWH_PER_GB", "parse_link_text"]

DEFAULT_GBPS = 10.0
"""Default bandwidth between two sites, Gbit/s (a 10G inter-site link, sustained)."""
DEFAULT_KWH_PER_GB = 0.06
"""Default network energy per GB moved (Aslan et al. 2018, J. Ind. Ecol. 22(4): 0.06
kWh/GB for 2015, core and fixed-line access networks; an upper figure for a
data-centre interconnect today: docs/planner.md says why it was chosen)."""

_PAIR = re.compile(r"^\s*([^:=\s]+)\s*:\s*([^:=\s]+)\s*=\s*(.+)$")
_GBPS = re.compile(rf"^({NUMBER}(?:[eE][-+]?[0-9]+)?)\s*(g|m)bps$", re.IGNORECASE)
_KWH = re.compile(rf"^({NUMBER}(?:[eE][-+]?[0-9]+)?)\s*kwh(?:/gb)?$", re.IGNORECASE)

LinkText = dict[tuple[str, str], tuple[float | None, float | None]]


def parse_link_text(text: str) -> LinkText:
    """``{(a, b): (Gbit/s or None, kWh/GB or None)}``, each pair's names sorted (a link
    serves both ways; None: the default's figure). Raises ValueError naming the bad
    entry and the form it should take."""
    pairs: LinkText = {}
    for entry in filter(None, (e.strip() for e in text.split(";"))):
        m = _PAIR.match(entry)
        if m is None:
            raise ValueError(f"{entry!r} is not site:site=<bandwidth>,<energy>, e.g. "
                             "gansu:yangtze-delta=25Gbps,0.03kWh")
        a, b, figures = m.group(1), m.group(2), m.group(3)
        if a == b:
            raise ValueError(f"{entry!r}: a link joins two different sites")
        gbps: float | None = None
        kwh: float | None = None
        for part in filter(None, (p.strip() for p in figures.split(","))):
            if g := _GBPS.match(part):
                gbps = float(g.group(1)) / (1000.0 if g.group(2).lower() == "m" else 1.0)
                if not (math.isfinite(gbps) and gbps > 0):
                    raise ValueError(f"{entry!r}: the bandwidth must be > 0, e.g. 25Gbps")
            elif k := _KWH.match(part):
                kwh = float(k.group(1))
                if not math.isfinite(kwh):
                    raise ValueError(f"{entry!r}: the energy must be a number, e.g. 0.03kWh")
            else:
                raise ValueError(f"{entry!r}: {part!r} is neither a bandwidth (25Gbps, "
                                 "500Mbps) nor an energy per GB (0.03kWh)")
        key = (a, b) if a <= b else (b, a)
        if key in pairs:
            raise ValueError(f"{entry!r}: the link {a}:{b} is given twice")
        pairs[key] = (gbps, kwh)
    return pairs
