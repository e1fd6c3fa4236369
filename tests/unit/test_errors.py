"""The one exception hierarchy: its tree in the docstring is the truth."""

from __future__ import annotations

import re

import suandian.errors as errors
from suandian.errors import (
    FieldError,
    InvalidSpecError,
    ProviderRateLimited,
    ProviderResponseError,
    SuandianError,
)


def test_docstring_tree_matches_the_classes() -> None:
    """Each class drawn in the module docstring exists and derives from the one above it."""
    stack: list[tuple[int, type]] = []
    drawn = set()
    for line in (errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*)(?:[│ ]*[├└]── )?([A-Z]\w+)\s{2,}", line + "  ")
        if not match or not hasattr(errors, match.group(2)):
            continue
        depth = len(line) - len(line.lstrip(" │├└─"))
        cls = getattr(errors, match.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            assert issubclass(cls, stack[-1][1]), f"{cls.__name__} under {stack[-1][1].__name__}"
        stack.append((depth, cls))
        drawn.add(cls.__name__)
    exported = {n for n in errors.__all__ if isinstance(getattr(errors, n), type)
                and issubclass(getattr(errors, n), Exception)}
    assert exported == drawn


def test_invalid_spec_names_fields() -> None:
    exc = InvalidSpecError("ComputeJob", [FieldError("spec.duration", "must be longer than zero")])
    assert exc.fields == ("spec.duration",)
    assert str(exc) == "invalid ComputeJob: spec.duration: must be longer than zero"
    assert isinstance(exc, SuandianError)


def test_provider_errors_carry_reason_and_retry_after() -> None:
    limited = ProviderRateLimited("wattTime", "slow down", retry_after=30.0)
    assert limited.reason == "RateLimited" and limited.retry_after == 30.0
    bad = ProviderResponseError("electricityMaps", "Stale", "forecast is 9 h old")
    assert str(bad) == "electricityMaps: forecast is 9 h old" and bad.provider == "electricityMaps"
