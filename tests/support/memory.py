"""How many bytes a structure holds, for the memory tests and the operator benchmark."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = ["deep_size"]


def deep_size(obj: Any, seen: set[int] | None = None) -> int:
    """Bytes held by ``obj`` and everything it refers to (objects already in ``seen`` are
    not counted again: pass one set to size several structures without overlap)."""
    seen = seen if seen is not None else set()
    stack, total = [obj], 0
    while stack:
        item = stack.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        total += item.nbytes if isinstance(item, np.ndarray) else sys.getsizeof(item)
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            stack.extend(item)
        elif hasattr(item, "__dict__"):
            stack.append(vars(item))
        if hasattr(type(item), "__slots__"):
            stack.extend(getattr(item, s) for s in type(item).__slots__ if hasattr(item, s))
    return total
