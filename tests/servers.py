"""Start real server processes for tests: ``run_server`` and ``pick_free_port``.

    with run_server(["demo_app", "--no-guard"], port) as base_url:
        httpx.get(base_url + "/health")

The server runs as ``sys.executable -m <args...> --host 127.0.0.1 --port <port>`` in its own
session (so its workers die with it), from the repository root. Readiness is polled on
``ready_path`` with a bounded wait; on exit the process group is sent SIGTERM, then SIGKILL.
When the server does not come up, exits early, or the test body fails, the server's captured
stdout and stderr are printed (pytest shows them with the failure).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

__all__ = ["ROOT", "ServerError", "pick_free_port", "run_server"]

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


class ServerError(RuntimeError):
    """The server process did not come up, or died."""


def pick_free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1 (for fixtures wider than a function)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _read(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def _report(args: list[str], port: int, stdout: IO[bytes], stderr: IO[bytes], why: str) -> str:
    text = (
        f"--- server {' '.join(args)} on port {port}: {why} ---\n"
        f"--- stdout ---\n{_read(stdout)}\n"
        f"--- stderr ---\n{_read(stderr)}\n"
        f"--- end of server output ---"
    )
    print(text, file=sys.stderr)
    return text


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the process group we started (its id is the server's pid), then SIGKILL it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace_s)
    # Workers of a server that already exited may still be alive in its group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=grace_s)


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float) -> str | None:
    """``None`` once ``url`` answers 2xx, else why it did not."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with code {proc.returncode} before it was ready"
            try:
                response = client.get(url)
            except httpx.TransportError as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if response.is_success:
                    return None
                last = f"{url} answered {response.status_code}"
            time.sleep(0.1)
    return f"not ready after {timeout_s:.0f}s ({last})"


@contextlib.contextmanager
def run_server(
    args: list[str],
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    *,
    timeout_s: float = 60.0,
    grace_s: float = 10.0,
) -> Iterator[str]:
    """Run ``python -m <args>`` on 127.0.0.1:``port`` and yield its base URL (``http://127.0.0.1:port``).

    ``args`` is the module and its arguments; ``--host 127.0.0.1 --port <port>`` are appended
    unless ``args`` already has ``--port``. ``env`` is added to (and wins over) ``os.environ``.
    """
    command = [sys.executable, "-m", *args]
    if "--port" not in args:
        command += ["--host", HOST, "--port", str(port)]
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    full_env.setdefault("PYTHONUNBUFFERED", "1")
    base_url = f"http://{HOST}:{port}"
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        try:
            why = _wait_ready(proc, base_url + ready_path, timeout_s)
            if why is not None:
                raise ServerError(_report(args, port, stdout, stderr, why))
            try:
                yield base_url
            except BaseException:
                _report(args, port, stdout, stderr, "the test failed while the server ran")
                raise
            if proc.poll() is not None:
                raise ServerError(
                    _report(args, port, stdout, stderr, f"exited with code {proc.returncode} during the test")
                )
        finally:
            _stop(proc, grace_s)
