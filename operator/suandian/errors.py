"""Every exception Suandian raises on purpose, in one hierarchy.

Callers catch the narrowest class they can act on; the controllers turn these into
``kopf.PermanentError`` (bad input: retrying will not help) or ``kopf.TemporaryError``
(the world may change: retry later) at their edge, and nowhere else.

    SuandianError
    ├── InvalidSpecError          a manifest or file the user wrote is wrong (names the fields)
    │   ├── ScenarioError         a simulation scenario file is wrong
    │   └── InputFileError        a file cannot be read or parsed (names the file and where)
    ├── ForecastError             a forecast could not be obtained or trusted
    │   ├── ProviderError         a provider answered badly or not at all
    │   │   │                     (``reason``: one of PROVIDER_REASONS)
    │   │   ├── ProviderAuthError       401/403: credentials missing or refused
    │   │   ├── ProviderRateLimited     429: carries the Retry-After delay
    │   │   └── ProviderResponseError   malformed, out-of-range, stale or gappy data
    │   └── ForecastUnavailable   no good forecast and nothing left to fall back on
    ├── PlanningError             the planner was handed an inconsistent snapshot
    └── KubeApiError              the Kubernetes API refused or failed a request (has .status)
        └── KubeCredentialsError  no credentials to send (an exec plugin or token file failed)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "PROVIDER_REASONS",
    "FieldError",
    "ForecastError",
    "ForecastUnavailable",
    "InputFileError",
    "InvalidSpecError",
    "KubeApiError",
    "KubeCredentialsError",
    "PlanningError",
    "ProviderAuthError",
    "ProviderError",
    "ProviderRateLimited",
    "ProviderResponseError",
    "ScenarioError",
    "SuandianError",
]


class SuandianError(Exception):
    """Base of every error Suandian raises on purpose."""


@dataclass(frozen=True)
class FieldError:
    """One problem with one field: where it is, what is wrong and what would be valid."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class InvalidSpecError(SuandianError):
    """A manifest the user wrote is invalid; ``errors`` names every offending field."""

    def __init__(self, kind: str, errors: Sequence[FieldError]) -> None:
        self.kind = kind
        self.errors = tuple(errors)
        lines = "; ".join(str(e) for e in self.errors) or "invalid"
        super().__init__(f"invalid {kind}: {lines}")

    @property
    def fields(self) -> tuple[str, ...]:
        """The dotted paths of the offending fields, e.g. ``spec.deadline.maxDelay``."""
        return tuple(e.path for e in self.errors)


class ScenarioError(InvalidSpecError):
    """A simulation scenario file (YAML, CSV) is invalid."""


class InputFileError(InvalidSpecError):
    """A file the user named cannot be used: it is missing, unreadable, not valid YAML or
    CSV, or holds what it must not. ``path`` names the file; each error says where in it
    (``line 3, column 5``, ``row 4``, a field path) and what would be right."""

    def __init__(self, path: object, errors: Sequence[FieldError]) -> None:
        super().__init__("file", errors)
        self.path = str(path)
        lines = "; ".join(str(e) for e in self.errors) or "unusable"
        self.args = (f"{self.path}: {lines}",)

    def __str__(self) -> str:
        return str(self.args[0])


class ForecastError(SuandianError):
    """A forecast could not be obtained or cannot be trusted."""


PROVIDER_REASONS = frozenset({
    "Unauthorized",        # 401/403: the credentials were refused
    "MissingCredentials",  # no Secret key and no environment variable holds them
    "RateLimited",         # 429
    "Timeout",             # no answer in time
    "Unreachable",         # no connection (DNS, refused, reset, TLS), or a file not read
    "ServerError",         # 5xx
    "ClientError",         # another 4xx: the request itself is wrong (zone, region, URL)
    "MalformedResponse",   # not the shape promised: not JSON, missing fields, bad cells
    "WrongUnits",          # values in units the provider cannot convert
    "OutOfRange",          # values no real grid or plant has
    "Gaps",                # too little of the horizon covered
    "Stale",               # issued too long ago
})
"""Every ``reason`` a :class:`ProviderError` may carry: the site's ``Degraded``
condition reason and the ``reason`` label of ``suandian_provider_errors_total``, one
vocabulary for both."""


class ProviderError(ForecastError):
    """A forecast provider failed; ``provider`` names it, ``reason`` is one of
    :data:`PROVIDER_REASONS` (any other is a bug, refused here)."""

    def __init__(self, provider: str, reason: str, message: str) -> None:
        if reason not in PROVIDER_REASONS:
            raise ValueError(f"provider failure reason {reason!r} is not one of "
                             f"{sorted(PROVIDER_REASONS)}")
        self.provider = provider
        self.reason = reason
        super().__init__(f"{provider}: {message}")


class ProviderAuthError(ProviderError):
    """The provider refused the credentials (HTTP 401/403) or none were configured."""


class ProviderRateLimited(ProviderError):
    """The provider asked us to slow down (HTTP 429); ``retry_after`` is in seconds."""

    def __init__(self, provider: str, message: str, retry_after: float | None) -> None:
        super().__init__(provider, "RateLimited", message)
        self.retry_after = retry_after


class ProviderResponseError(ProviderError):
    """The provider answered, but with data we must not use (malformed, stale, gaps, range)."""


class ForecastUnavailable(ForecastError):
    """No trustworthy forecast exists for a site and no fallback was allowed."""


class PlanningError(SuandianError):
    """The planner was given arrays that do not fit together (a bug, not bad user input)."""


class KubeApiError(SuandianError):
    """The Kubernetes API answered an error, or did not answer (``status`` 0).

    ``status`` is the HTTP status (404 absent, 409 conflict, 5xx server trouble);
    ``transient`` says whether retrying the same request later may succeed.
    """

    def __init__(self, status: int, reason: str, message: str) -> None:
        self.status = status
        self.reason = reason
        self.message = message
        super().__init__(f"Kubernetes API {status or 'unreachable'} {reason}: {message}")

    @property
    def transient(self) -> bool:
        return self.status in (0, 408, 409, 429) or self.status >= 500

    @property
    def refused(self) -> bool:
        """The server refused the request as it was made (400 bad request, 403 forbidden,
        404 absent, 422 invalid): sent again unchanged, it fails again; what must change
        is the object, the permissions or the namespace, not the moment."""
        return self.status in (400, 403, 404, 422)


class KubeCredentialsError(KubeApiError):
    """No credentials to send: a kubeconfig ``exec`` plugin failed or answered badly, or
    a token file could not be read. Nothing was sent (``status`` 0, ``reason``
    ``Credentials``); the message names the plugin or file and what to do. Transient:
    the next request tries again (a plugin may need a network that is back by then)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "Credentials", message)
