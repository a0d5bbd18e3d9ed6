"""Logs: a real service process writes nothing but JSON lines, uvicorn's own included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port


def test_every_line_a_service_process_writes_is_json(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "LOG_"))} | {
        "DATA_DIR": str(tmp_path),
        "REGISTRY_PORT": str(port),
        "LOG_JSON": "true",
        "LOG_LEVEL": "INFO",
    }
    stdout, stderr = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.registry", "serve"], env=env, stdout=out, stderr=err
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/livez", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the registry did not start"
            time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/v1/agencies", headers={"X-Request-ID": "log-test-1"})
        assert response.status_code == 401  # no principal: an error is logged like any request
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught: -SIGTERM.
        assert process.wait(30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)

    lines = [line for path in (stdout, stderr) for line in path.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    assert all(isinstance(r, dict) and "event" in r and "level" in r and "timestamp" in r for r in records), records
    events = [(r.get("logger"), r["event"]) for r in records]
    for expected in (
        ("alembic.runtime.migration", "Running upgrade  -> 0001, initial schema"),
        ("uvicorn.error", "Application startup complete."),
        ("uvicorn.error", "Shutting down"),
        ("uvicorn.error", "Application shutdown complete."),
        ("uvicorn.error", f"Finished server process [{process.pid}]"),
    ):
        assert expected in events, events
    access = [r for r in records if r["event"] == "request"]
    assert [(r["path"], r["status"], r["request_id"], r["service"]) for r in access] == [
        ("/v1/agencies", 401, "log-test-1", "registry")
    ]
    assert all(r.get("service") == "registry" for r in records)


def test_the_console_format_renders_a_traceback_as_plain_text() -> None:
    """The console format (``LOG_JSON=false``, ``make run``'s) renders an error's
    traceback as the standard library does: rich's renderer, with every frame's
    locals, took seconds per error on the event loop and stalled the service."""
    script = """
import logging, traceback
from services.common.logging import configure_logging
configure_logging("INFO", json=False)
try:
    raise RuntimeError("boom")
except RuntimeError as exc:
    logging.getLogger("probe").exception("unhandled_error")
    print("".join(traceback.format_exception(exc)), end="")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2]
    )
    assert done.returncode == 0, done.stderr
    plain = done.stdout
    assert plain.startswith("Traceback (most recent call last):") and plain.endswith("RuntimeError: boom\n")
    assert "unhandled_error" in done.stderr
    assert plain in done.stderr, done.stderr  # exactly the standard library's text: no boxes, no locals
