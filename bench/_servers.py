"""Start and stop the demo app as real uvicorn processes for benchmarks.

    with demo_server(port, guarded=True, env={"LLMGUARD_CACHE_ENABLED": "false"}) as server:
        ...  # server.base_url, server.pid

Each server is ``sys.executable -m demo_app --host 127.0.0.1 --port P [--no-guard]`` run from the
repository root in its own session, with uvicorn's access log off (it would cost the same in both
servers and only add noise). Readiness is polled on ``GET /health`` with a bounded wait. On exit the
server's process group (whose id is the server's pid) gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from demo_app.processes import HOST, pick_free_port, read_log, stop_process_group, wait_ready

__all__ = ["HOST", "ROOT", "Server", "ServerError", "demo_server", "pick_free_port", "server_command"]

ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    """The server process did not come up, or died."""


@dataclass(frozen=True)
class Server:
    """A running demo server."""

    name: str
    pid: int
    port: int
    command: tuple[str, ...]

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"


def server_command(port: int, *, guarded: bool) -> list[str]:
    """The command line that serves the demo (guarded or the ``--no-guard`` baseline)."""
    command = [sys.executable, "-m", "demo_app", "--host", HOST, "--port", str(port)]
    if not guarded:
        command.append("--no-guard")
    command += ["--no-access-log", "--log-level", "warning"]
    return command


@contextlib.contextmanager
def demo_server(
    port: int,
    *,
    guarded: bool,
    env: Mapping[str, str] | None = None,
    name: str | None = None,
    ready_timeout_s: float = 60.0,
) -> Iterator[Server]:
    """Serve the demo on ``127.0.0.1:port`` for the duration of the block; always stopped after."""
    command = server_command(port, guarded=guarded)
    full_env = {**os.environ, **(env or {})}
    label = name or ("guarded" if guarded else "baseline")
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
        try:
            why = wait_ready(proc, f"http://{HOST}:{port}/health", ready_timeout_s)
            if why is not None:
                raise ServerError(
                    f"server {label} ({' '.join(command)}) {why}\n"
                    f"--- stdout ---\n{read_log(out, last_chars=4000)}\n"
                    f"--- stderr ---\n{read_log(err, last_chars=4000)}"
                )
            yield Server(name=label, pid=proc.pid, port=port, command=tuple(command))
            if proc.poll() is not None:
                raise ServerError(f"server {label} died during the bench:\n{read_log(err, last_chars=4000)}")
        finally:
            stop_process_group(proc)
