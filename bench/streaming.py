"""Streaming through the stack: time to first byte against a ``--no-guard`` baseline, and chunk pacing.

    .venv/bin/python bench/streaming.py [--requests N] [--rounds R] [--token-ms MS]

It starts real uvicorn processes of the demo app on 127.0.0.1:

- ``baseline``: ``python -m demo_app --no-guard`` (the same app without the stack);
- ``guarded-nocache``: the whole stack with ``LLMGUARD_CACHE_ENABLED=false``: every request goes
  through the rate limiter, router, SSE passthrough and metrics to the app (the streaming path);
- ``guarded``: the whole stack as the demo configures it; every prompt is new, so each request is a
  cache miss that also pays for embedding the prompt before the app is called.

Part 1, time to first byte: with the mock's delays at 0, one streamed request at a time on a
keep-alive connection; TTFB is the time from sending the request to reading the first ``data:``
event. Rounds alternate which server goes first, so the drift of a shared machine falls on both
sides; the figure is the median over rounds of p50(guarded) - p50(baseline). Goal for the streaming
path: at most +1 ms.

Part 2, pacing: the mock waits ``--token-ms`` between tokens. If any layer held chunks back, they
would arrive bunched; the bench prints the median gap between consecutive events at the client and
the share of gaps under half the token delay (bunched arrivals), guarded against baseline.

The client is a raw blocking socket (no HTTP library between the bytes and the clock).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import socket
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import HOST, ROOT, Server, demo_server, pick_free_port

__all__ = ["main"]

TTFB_GOAL_MS = 1.0
PATH = "/v1/chat/completions"
MODEL_DIR = ROOT / ".models" / "all-MiniLM-L6-v2"


@dataclass
class Stream:
    ttfb_s: float
    arrivals: list[float]  # perf_counter of each data: event, as the client read it


class _Closed(ConnectionError):
    """The server had closed the connection before this request."""


class Client:
    """One keep-alive connection that reads a streamed answer event by event."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = self._connect()

    def _connect(self) -> socket.socket:
        sock = socket.create_connection((HOST, self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def stream(self, prompt: str) -> Stream:
        try:
            return self._stream(prompt)
        except _Closed:  # uvicorn closes keep-alive connections idle for 5 s: reconnect, then measure
            self.sock.close()
            self.sock = self._connect()
            return self._stream(prompt)

    def _stream(self, prompt: str) -> Stream:
        body = json.dumps({"model": "mock-small", "stream": True,
                           "messages": [{"role": "user", "content": prompt}]}, separators=(",", ":")).encode()
        request = (f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        start = time.perf_counter()
        buffer = b""
        arrivals: list[float] = []
        try:
            self.sock.sendall(request)
        except OSError:
            raise _Closed from None
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            now = time.perf_counter()
            if not data:
                raise _Closed if not buffer else ConnectionError("the server closed the connection mid-response")
            buffer += data
            seen = buffer.count(b"data: ")
            arrivals.extend([now] * (seen - len(arrivals)))
            if b"data: [DONE]" in buffer and buffer.endswith(b"\r\n0\r\n\r\n"):
                break
        if not buffer.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(buffer[:200].decode(errors="replace"))
        return Stream(ttfb_s=arrivals[0] - start, arrivals=[a - start for a in arrivals])

    def close(self) -> None:
        self.sock.close()


def _p(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_ttfb(servers: list[Server], requests: int, rounds: int, warmup: int) -> dict[str, list[list[float]]]:
    """Per server, per round: the TTFB of each request (seconds)."""
    clients = {s.name: Client(s.port) for s in servers}
    try:
        for s in servers:
            for i in range(warmup):
                clients[s.name].stream(f"warm up {s.name} {i}")
        results: dict[str, list[list[float]]] = {s.name: [] for s in servers}
        for r in range(rounds):
            order = servers if r % 2 == 0 else list(reversed(servers))
            for s in order:
                results[s.name].append([clients[s.name].stream(f"ttfb round {r} request {i} on {s.name}").ttfb_s
                                        for i in range(requests)])
        return results
    finally:
        for c in clients.values():
            c.close()


def measure_pacing(server: Server, requests: int) -> list[float]:
    """Gaps (seconds) between consecutive events of streamed answers, as the client read them."""
    client = Client(server.port)
    try:
        gaps: list[float] = []
        for i in range(requests):
            arrivals = client.stream(f"pacing request {i} with a few more words to stream").arrivals
            # Events: the role chunk and the first piece (sent together), one per further piece after
            # the mock's delay, then the finish chunk and [DONE] right after the last piece.
            gaps.extend(b - a for a, b in itertools.pairwise(arrivals[1:-2]))
        return gaps
    finally:
        client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per server per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--token-ms", type=float, default=25.0, help="the mock's delay between tokens in part 2")
    parser.add_argument("--pacing-requests", type=int, default=8)
    args = parser.parse_args(argv)

    env = {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0", "HF_HUB_OFFLINE": "1"}
    if "LLMGUARD_EMBEDDING_MODEL_DIR" not in os.environ and MODEL_DIR.is_dir():
        env["LLMGUARD_EMBEDDING_MODEL_DIR"] = str(MODEL_DIR)
    print(f"# bench/streaming.py on {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs; {args.rounds} rounds x {args.requests} streamed requests per server, "
          f"one at a time on a keep-alive connection")
    from contextlib import ExitStack

    with ExitStack() as stack:
        baseline = stack.enter_context(demo_server(pick_free_port(), guarded=False, env=env, name="baseline"))
        nocache = stack.enter_context(demo_server(pick_free_port(), guarded=True, name="guarded-nocache",
                                                  env={**env, "LLMGUARD_CACHE_ENABLED": "false"}))
        guarded = stack.enter_context(demo_server(pick_free_port(), guarded=True, env=env, name="guarded"))
        servers = [baseline, nocache, guarded]
        results = measure_ttfb(servers, args.requests, args.rounds, args.warmup)

        print("\n## Part 1: time to first byte (first data: event), mock delays 0")
        print(f"{'server':<17} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}   "
              f"{'added p50 vs baseline (median of rounds)':>40}")
        verdicts = []
        for s in servers:
            every = [t for round_ in results[s.name] for t in round_]
            line = (f"{s.name:<17} {_p(every, .5) * 1000:8.3f} {_p(every, .9) * 1000:8.3f} "
                    f"{_p(every, .99) * 1000:8.3f}")
            if s is not baseline:
                added = statistics.median(
                    (_p(g, .5) - _p(b, .5)) * 1000 for g, b in zip(results[s.name], results["baseline"], strict=True))
                line += f"   {added:+40.3f} ms"
                verdicts.append((s.name, added))
            print(line)
        for name, added in verdicts:
            if name == "guarded-nocache":
                ok = "meets" if added <= TTFB_GOAL_MS else "MISSES"
                print(f"streaming path ({name}): {added:+.3f} ms added to TTFB; {ok} the goal of <= +{TTFB_GOAL_MS} ms")
            else:
                print(f"cache miss ({name}): {added:+.3f} ms added to TTFB (includes embedding the prompt "
                      f"before the app is called; not a streaming cost)")

    print(f"\n## Part 2: pacing, the mock waits {args.token_ms:g} ms between tokens")
    paced = {**env, "LLMGUARD_DEMO_TOKEN_MS": str(args.token_ms)}
    with ExitStack() as stack:
        baseline = stack.enter_context(demo_server(pick_free_port(), guarded=False, env=paced, name="baseline"))
        guarded = stack.enter_context(demo_server(pick_free_port(), guarded=True, env=paced, name="guarded"))
        print(f"{'server':<10} {'gaps':>5} {'median gap ms':>14} {'min gap ms':>11} {'bunched (< half the delay)':>27}")
        for s in (baseline, guarded):
            gaps = measure_pacing(s, args.pacing_requests)
            bunched = sum(g < args.token_ms / 2000 for g in gaps) / len(gaps)
            print(f"{s.name:<10} {len(gaps):5d} {statistics.median(gaps) * 1000:14.2f} {min(gaps) * 1000:11.2f} "
                  f"{bunched:27.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
