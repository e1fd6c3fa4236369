"""The report's one door to Prometheus: instant queries over its HTTP API.

Synchronous (``urllib``): the report is a one-shot command, and a few hundred local
queries are quicker to make in a row than to schedule. Every failure becomes one
:class:`PrometheusError` naming the URL and what to do about it, so the CLI prints one
line instead of a traceback.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from suandian.errors import SuandianError

Labels = frozenset[tuple[str, str]]
"""A series' identity: its label pairs, metric name and target labels included."""

FIX = "pass --prometheus URL (or set SUANDIAN_PROMETHEUS_URL) to the server's base URL"


class PrometheusError(SuandianError):
    """Prometheus could not be asked, or refused; the message names the URL and the fix."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant query: its labels and its value, or its raw samples
    when the query was a range selector."""

    labels: Labels
    value: float | None = None
    points: tuple[tuple[float, float], ...] = ()


class Prometheus:
    """A Prometheus server at ``url`` (``http://prometheus:9090``, no ``/api`` suffix)."""

    def __init__(self, url: str, *, timeout_s: float = 30.0, token: str = "") -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise PrometheusError(f"--prometheus {url!r} is not an http(s) URL: {FIX} "
                                  "(e.g. http://prometheus.monitoring:9090)")
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.queries = 0
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def query(self, expr: str, at: float) -> list[Sample]:
        """Evaluate ``expr`` at Unix time ``at``: a vector or a matrix of raw samples."""
        data = self._post("/api/v1/query", {"query": expr, "time": f"{at:.3f}"})
        kind, result = data.get("resultType"), data.get("result")
        if kind not in ("vector", "matrix") or not isinstance(result, list):
            raise PrometheusError(f"Prometheus at {self.url} answered {expr!r} with a "
                                  f"{kind!r} result, not a vector: is it Prometheus?")
        out = []
        for item in result:
            labels = frozenset(item["metric"].items())
            if kind == "vector":
                out.append(Sample(labels, value=float(item["value"][1])))
            else:
                out.append(Sample(labels, points=tuple(
                    (float(t), float(v)) for t, v in item["values"])))
        return out

    def _post(self, path: str, form: Mapping[str, str]) -> dict[str, Any]:
        body = urllib.parse.urlencode(form).encode()
        request = urllib.request.Request(
            self.url + path, data=body, method="POST",
            headers={"Content-Type": "application/x-www-form-urlencoded",
                     "Accept": "application/json", **self._auth})
        self.queries += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as rsp:
                text = rsp.read()
        except urllib.error.HTTPError as exc:
            raise self._refused(exc.code, exc.read()) from exc
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusError(f"cannot reach Prometheus at {self.url} ({reason}): "
                                  f"is it running? {FIX}") from exc
        answer = self._json(text)
        if answer.get("status") != "success":
            raise self._refused(200, text)
        data = answer.get("data")
        if not isinstance(data, dict):
            raise PrometheusError(f"Prometheus at {self.url} answered without data: {FIX}")
        return data

    def _json(self, text: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PrometheusError(f"{self.url} did not answer like Prometheus's HTTP API "
                                  f"(not JSON: {text[:60]!r}): {FIX}")
        return answer

    def _refused(self, status: int, text: bytes) -> PrometheusError:
        if status in (401, 403):
            given = "the bearer token given was refused" if self._auth else "it needs credentials"
            return PrometheusError(f"Prometheus at {self.url} refused the query (HTTP "
                                   f"{status}): {given}; pass --token-file FILE (or set "
                                   "SUANDIAN_PROMETHEUS_TOKEN), or port-forward to the server")
        try:
            answer = json.loads(text)
            detail = f"{answer.get('errorType', 'error')}: {answer.get('error', '?')}"
        except ValueError:
            detail = f"not JSON: {text[:60]!r}"
        return PrometheusError(f"Prometheus at {self.url} answered HTTP {status} ({detail}): "
                               f"check the URL and the server's version (2.33 or later); {FIX}")
