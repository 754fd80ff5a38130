"""What a server process writes to its log, uvicorn's own lines included (docs/operations.md, "Logs
and metrics": with POINTSNET_LOG_FORMAT=json every line is one JSON object)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from shared.ports import free_port
from tests.cli.inprocess import pointsnet as in_process


def _wait_live(server: subprocess.Popen, url: str, name: str) -> None:
    """Until the server answers ``url`` 200 (at most 90 s, and only while it runs)."""
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline and server.poll() is None, f"{name} did not come up"
        time.sleep(0.2)


def _stopped(server: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM (a kill after 30 s), then what the server wrote: (stdout, stderr)."""
    server.send_signal(signal.SIGTERM)
    try:
        return server.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        return server.communicate()


def _serve_api_log(tmp_path, log_format: str) -> str:
    """Standard output and error of `pointsnet serve-api` that received one malformed request, then SIGTERM."""
    same_env = {"POINTSNET_DATA_DIR": str(tmp_path / "data"), "POINTSNET_DATABASE_URL": None}
    assert in_process("db", "upgrade", env=same_env).returncode == 0
    assert in_process("keys", "init", env=same_env).returncode == 0
    env = dict(os.environ, POINTSNET_DATA_DIR=str(tmp_path / "data"), POINTSNET_LOG_FORMAT=log_format)
    env.pop("POINTSNET_DATABASE_URL", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-api", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_live(server, f"http://127.0.0.1:{port}/health/live", "serve-api")
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # a scanner, a broken client
            raw.sendall(b"GARBAGE\r\n\r\n")
            raw.recv(200)
        time.sleep(0.5)
    finally:
        stdout, stderr = _stopped(server)
    return stdout + stderr  # the start-up banner included (stdout in the text format)


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_uvicorns_own_lines_take_the_configured_log_format(tmp_path, log_format):
    lines = [line for line in _serve_api_log(tmp_path, log_format).splitlines() if line.strip()]
    if log_format == "json":
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not one JSON object: {line!r}")
        assert {"logger": "uvicorn.error", "level": "WARNING", "message": "Invalid HTTP request received."} \
            in [{key: record.get(key) for key in ("logger", "level", "message")} for record in records], records
    else:  # the project's text format, uvicorn's logger named
        assert any(line.endswith(" WARNING uvicorn.error Invalid HTTP request received.") for line in lines), lines


def test_with_the_json_format_every_line_a_server_writes_at_start_is_json(tmp_path):
    """The start-up banner too: it went to standard output through rich, wrapped at 80 columns when not
    a terminal (journald, docker logs), breaking "every line is one JSON object"."""
    data = tmp_path / ("a-data-directory-with-a-long-name-" * 3)  # what the log lines carry is long
    assert in_process("db", "upgrade", env={"POINTSNET_DATA_DIR": str(data), "POINTSNET_DATABASE_URL": None}
                      ).returncode == 0
    env = dict(os.environ, POINTSNET_DATA_DIR=str(data), POINTSNET_LOG_FORMAT="json", COLUMNS="80")
    env.pop("POINTSNET_DATABASE_URL", None)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "services.cli", "serve-dashboard", "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_live(server, f"http://127.0.0.1:{port}/dashboard/health/live", "serve-dashboard")
    finally:
        stdout, stderr = _stopped(server)
    lines = [line for line in (stdout + stderr).splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not one JSON object: {line!r} (stdout {stdout!r})")
    assert any(r.get("message", "").startswith(f"Pointsnet dashboard listening on http://127.0.0.1:{port}/dashboard/")
               for r in records), records


def test_without_the_json_format_the_banner_is_one_line_however_long(monkeypatch, capsys):
    from services.cli.serving import _banner
    from shared.config import get_settings

    monkeypatch.delenv("POINTSNET_LOG_FORMAT", raising=False)
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    try:
        message = "Pointsnet listening on http://127.0.0.1:8400 (data: " + "/srv/pointsnet/" * 12 + ")"
        _banner(message)
    finally:
        get_settings.cache_clear()
    assert capsys.readouterr().out == message + "\n"
