"""`suandian report`'s options: help with examples, and bad input refused before any query."""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from suandian.cli import cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    return result.exit_code, result.stdout, result.stderr


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_help_teaches_with_examples() -> None:
    code, out, _ = run("--help")
    assert code == 0
    for words in ("--since", "--until", "--namespace", "--site", "--format", "--plot",
                  "--prometheus", "--timezone", "Examples:", "exit status is 3",
                  "suandian report --since 2026-11-01 --until 2026-12-01"):
        assert words in out


def test_the_top_level_help_lists_the_report() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "report" in result.stdout


def test_unreachable_prometheus_is_one_line_naming_url_and_fix() -> None:
    port = closed_port()
    code, out, err = run("--since", "2026-11-01", "--prometheus", f"http://127.0.0.1:{port}")
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"suandian report: cannot reach Prometheus at http://127.0.0.1:{port}")
    assert "--prometheus URL" in err


def test_the_url_comes_from_the_environment_too() -> None:
    port = closed_port()
    result = CliRunner().invoke(cli, ["report", "--since", "2026-11-01"],
                                env={"SUANDIAN_PROMETHEUS_URL": f"http://127.0.0.1:{port}"})
    assert f"http://127.0.0.1:{port}" in result.stderr


@pytest.mark.parametrize(("args", "words"), [
    (["--since", "2026-13-01"], "'2026-13-01' is not a date like 2026-11-01"),
    (["--since", "2026-11-02", "--until", "2026-11-01"], "--until 2026-11-01 must be after"),
    (["--since", "2026-11-01", "--timezone", "Nowhere/Land"], "--timezone 'Nowhere/Land'"),
    (["--since", "2026-11-01", "--format", "xml"], "'xml' is not one of"),
    (["--since", "2026-11-01", "--prometheus", "prometheus:9090"], "is not an http(s) URL"),
])
def test_bad_options_are_refused_naming_them(args: list[str], words: str) -> None:
    code, _, err = run(*args)
    assert code in (1, 2)
    assert words in err


def test_a_plot_without_matplotlib_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, _, err = run("--since", "2026-11-01", "--plot", str(tmp_path / "x.png"),
                       "--prometheus", f"http://127.0.0.1:{closed_port()}")
    assert code == 1
    assert "--plot needs matplotlib" in err and "pip install 'suandian[sim]'" in err


def test_a_plot_into_a_missing_folder_is_refused_before_querying(tmp_path: Path) -> None:
    code, _, err = run("--since", "2026-11-01", "--plot", str(tmp_path / "no" / "x.png"),
                       "--prometheus", f"http://127.0.0.1:{closed_port()}")
    assert code == 1 and "does not exist" in err and "cannot reach" not in err


class _Guarded:
    """A loopback 'Prometheus' answering every query with no series, but only with the
    bearer token ``s3``: a 401 otherwise."""

    def __enter__(self) -> str:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                ok = self.headers.get("Authorization") == "Bearer s3"
                body = json.dumps({"status": "success", "data": {
                    "resultType": "vector", "result": []}}).encode() if ok else b"no"
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join()


def test_the_token_comes_from_a_file_or_the_environment(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3\n", encoding="utf-8")
    with _Guarded() as url:
        code, out, _ = run("--since", "2026-11-01", "--until", "2026-11-03",
                           "--prometheus", url, "--token-file", str(token))
        assert code == 0, out
        assert out.startswith("No ledger entries in this period")
        result = CliRunner().invoke(cli, ["report", "--since", "2026-11-01", "--until",
                                          "2026-11-03", "--prometheus", url],
                                    env={"SUANDIAN_PROMETHEUS_TOKEN": "s3"})
        assert result.exit_code == 0
        code, _, err = run("--since", "2026-11-01", "--until", "2026-11-03",
                           "--prometheus", url)
        assert code == 1 and "HTTP 401" in err and "--token-file" in err
