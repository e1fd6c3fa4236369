"""The report's HTTP client: answers parsed, and every failure one line naming the URL
and the fix. A real HTTP server on loopback plays Prometheus (or something else)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest

from suandian.report.prometheus import Prometheus, PrometheusError

ANSWERS: dict[str, tuple[int, str, bytes]] = {}
"""query -> (status, content type, body) served by the fake."""


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
        status, kind, body = ANSWERS[form["query"][0]]
        if form["query"][0] == "guarded" and self.headers.get("Authorization") == "Bearer s3":
            status, kind, body = ANSWERS["v"]
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args  # keep pytest's output clean


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    thread.join()


def answer(query: str, status: int, body: object, kind: str = "application/json") -> None:
    ANSWERS[query] = (status, kind, body if isinstance(body, bytes) else
                      json.dumps(body).encode())


def test_a_vector_and_a_matrix_are_parsed(url: str) -> None:
    answer("v", 200, {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"site": "gansu"}, "value": [1.0, "3.5"]}]}})
    answer("m", 200, {"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"__name__": "x", "site": "gansu"}, "values": [[1.0, "1"], [2.0, "4"]]}]}})
    prometheus = Prometheus(url)
    assert prometheus.url == url.rstrip("/")
    (v,) = prometheus.query("v", 10.0)
    assert v.labels == frozenset({("site", "gansu")}) and v.value == 3.5
    (m,) = prometheus.query("m", 10.0)
    assert m.points == ((1.0, 1.0), (2.0, 4.0))
    assert prometheus.queries == 2


def test_an_error_answer_is_quoted_with_the_url(url: str) -> None:
    answer("bad(", 400, {"status": "error", "errorType": "bad_data",
                         "error": "parse error at char 5"})
    with pytest.raises(PrometheusError, match=r"answered HTTP 400 \(bad_data: parse error "
                                              r"at char 5\).*--prometheus URL"):
        Prometheus(url).query("bad(", 10.0)


def test_authentication_is_named(url: str) -> None:
    answer("secret", 401, b"Unauthorized", "text/plain")
    with pytest.raises(PrometheusError, match=r"HTTP 401.*needs credentials"):
        Prometheus(url).query("secret", 10.0)


def test_a_bearer_token_is_sent_and_a_refused_one_is_named(url: str) -> None:
    answer("v", 200, {"status": "success", "data": {"resultType": "vector", "result": []}})
    answer("guarded", 403, b"Forbidden", "text/plain")
    assert Prometheus(url, token="s3").query("guarded", 10.0) == []
    with pytest.raises(PrometheusError, match="the bearer token given was refused"):
        Prometheus(url, token="wrong").query("guarded", 10.0)
    with pytest.raises(PrometheusError, match="--token-file FILE"):
        Prometheus(url).query("guarded", 10.0)


def test_something_else_than_prometheus_is_named(url: str) -> None:
    answer("html", 200, b"<html>Grafana</html>", "text/html")
    with pytest.raises(PrometheusError, match=r"did not answer like Prometheus's HTTP API"):
        Prometheus(url).query("html", 10.0)


def test_a_scalar_result_is_refused(url: str) -> None:
    answer("1", 200, {"status": "success", "data": {"resultType": "scalar",
                                                     "result": [1, "1"]}})
    with pytest.raises(PrometheusError, match="'scalar' result"):
        Prometheus(url).query("1", 10.0)


def test_an_unreachable_server_is_one_line_with_the_fix() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(PrometheusError) as info:
        Prometheus(f"http://127.0.0.1:{port}").query("up", 10.0)
    message = str(info.value)
    assert "\n" not in message
    assert f"cannot reach Prometheus at http://127.0.0.1:{port}" in message
    assert "SUANDIAN_PROMETHEUS_URL" in message


@pytest.mark.parametrize("bad", ["localhost:9090", "ftp://x", "http://"])
def test_a_url_that_is_not_http_is_refused(bad: str) -> None:
    with pytest.raises(PrometheusError, match="is not an http"):
        Prometheus(bad)


