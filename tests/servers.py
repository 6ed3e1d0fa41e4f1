"""Start real server processes for tests: ``run_server``, ``serve``, ``own_redis`` and ``pick_free_port``.

    with run_server(["demo_app", "--no-guard"], port) as base_url:
        httpx.get(base_url + "/health")

    with own_redis(pick_free_port()) as redis_server:     # a redis-server of the test's own
        redis_server.kill(); redis_server.start()         # by its PID; never the shared one

The server runs as ``sys.executable -m <args...> --host 127.0.0.1 --port <port>`` in its own
session (so its workers die with it), from the repository root. Readiness is polled on
``ready_path`` with a bounded wait; on exit the process group is sent SIGTERM, then SIGKILL.
When the server does not come up, exits early, or the test body fails, the server's captured
stdout and stderr are printed (pytest shows them with the failure).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

from demo_app.processes import HOST, pick_free_port, read_log, stop_process_group, wait_ready

__all__ = [
    "ROOT", "RedisServer", "Server", "ServerError", "own_redis", "pick_free_port", "run_server", "serve",
    "wait_for_ping",
]

ROOT = Path(__file__).resolve().parent.parent


def wait_for_ping(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Return once the redis-server ``proc`` started on ``port`` answers ``PING``; raise if it died or
    did not answer within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    with redis.Redis(host=HOST, port=port, socket_timeout=0.5) as probe:
        while True:
            try:
                probe.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.02)


class ServerError(RuntimeError):
    """The server process did not come up, or died."""


def _report(args: list[str], port: int, stdout: IO[bytes], stderr: IO[bytes], why: str) -> str:
    text = (
        f"--- server {' '.join(args)} on port {port}: {why} ---\n"
        f"--- stdout ---\n{read_log(stdout)}\n"
        f"--- stderr ---\n{read_log(stderr)}\n"
        f"--- end of server output ---"
    )
    print(text, file=sys.stderr)
    return text


@dataclass(frozen=True)
class Server:
    """A running server: its base URL, its process id, and what it wrote to stdout so far (the demo's
    JSON log lines)."""

    url: str
    pid: int
    output: Callable[[], str]


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
    with serve(args, port, env, ready_path, timeout_s=timeout_s, grace_s=grace_s) as server:
        yield server.url


@contextlib.contextmanager
def serve(
    args: list[str],
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/health",
    *,
    timeout_s: float = 60.0,
    grace_s: float = 10.0,
) -> Iterator[Server]:
    """:func:`run_server`, yielding a :class:`Server` whose ``output()`` reads the server's stdout."""
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
            why = wait_ready(proc, base_url + ready_path, timeout_s)
            if why is not None:
                raise ServerError(_report(args, port, stdout, stderr, why))
            try:
                yield Server(base_url, proc.pid, lambda: read_log(stdout))
            except BaseException:
                _report(args, port, stdout, stderr, "the test failed while the server ran")
                raise
            if proc.poll() is not None:
                raise ServerError(
                    _report(args, port, stdout, stderr, f"exited with code {proc.returncode} during the test")
                )
        finally:
            stop_process_group(proc, grace_s)


class RedisServer:
    """A redis-server of the test's own on ``port`` (no persistence), started and killed by its PID."""

    def __init__(self, port: int) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not on PATH")
        self.binary = binary
        self.port = port
        self.url = f"redis://{HOST}:{port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it (empty) and return once it answers ``PING``."""
        proc = subprocess.Popen([self.binary, "--port", str(self.port), "--bind", HOST, "--save", "",
                                 "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.proc = proc
        wait_for_ping(self.port, proc)

    def kill(self) -> None:
        """SIGKILL it (a crash, not a shutdown), and wait for it to be gone."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def own_redis(port: int) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, killed when the block ends."""
    server = RedisServer(port)
    server.start()
    try:
        yield server
    finally:
        server.kill()
