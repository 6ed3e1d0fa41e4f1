"""Start, wait for and stop demo server processes: shared by the tests and the benchmarks.

A server runs in its own session, so its process group id is its pid and its
uvicorn workers stop with it; only processes started here are ever signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from typing import IO

__all__ = ["HOST", "pick_free_port", "read_log", "stop_process_group", "wait_ready"]

HOST = "127.0.0.1"


def pick_free_port() -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def read_log(log: IO[bytes], *, last_chars: int | None = None) -> str:
    """What a server wrote to a temporary file so far (its tail with ``last_chars``)."""
    log.flush()
    log.seek(0)
    text = log.read().decode(errors="replace")
    return text if last_chars is None else text[-last_chars:]


def stop_process_group(proc: subprocess.Popen[bytes], grace_s: float = 5.0) -> None:
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


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout_s: float) -> str | None:
    """``None`` once ``url`` answers 2xx, else why it did not within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return f"exited with code {proc.returncode} before it was ready"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if 200 <= response.status < 300:
                    return None
                last = f"{url} answered {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"{url} answered {exc.code}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    return f"not ready after {timeout_s:.0f}s ({last})"
