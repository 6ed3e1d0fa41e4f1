"""What the PostgreSQL request log costs a request, and how many rows per second its writer stores.

    .venv/bin/python bench/request_log.py [--requests N] [--rounds R] [--burst ROWS]

Needs the PostgreSQL server (``--dsn``, default ``postgresql://postgres@127.0.0.1:5432/test``); the bench
writes into a schema of its own (``llmguard_bench_<random>``, through ``search_path``) and drops it at
the end. Traffic goes only to 127.0.0.1.

1. Latency of ``POST /v1/chat/completions`` on two real uvicorn processes of the demo app
   (``python -m demo_app``), mock delays at 0 and the cache off (``LLMGUARD_CACHE_ENABLED=false``, so
   each request goes through the whole stack to the mock and the sink is what differs):
   ``sink-on`` with ``LLMGUARD_REQUEST_LOG_DSN`` set, ``sink-off`` without. The load generator of
   bench/overhead.py (a separate process, raw keep-alive HTTP/1.1) alternates the two every
   ``--slice`` requests, and the rounds alternate which one starts. Figure: the median over rounds of
   p50(on) / p50(off), goal <= 1.05; p99 likewise (no goal). A check then counts the rows the sink-on
   server wrote: every request it served must be there.
2. Rows written per second: in this process, a ``RequestLog`` (the sink's own class, default batch
   size) is handed a burst of ``--burst`` rows built by the finisher's own row builder, as fast as
   ``enqueue`` takes them; the figure is burst / time until the last row is in the table (median of
   ``--bursts``), the writer building the rows (timestamps, costs) and COPYing them. The request-side
   cost (capturing the exchange and queueing it) is printed per row.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import statistics
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._servers import ROOT, Server, demo_server, pick_free_port
from bench.overhead import GUARDED_PATH, LoadSpec, Measurement, compare, percentile

__all__ = ["main"]

P50_RATIO_GOAL = 1.05
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
TABLE = "llmguard_requests"


def with_search_path(dsn: str, schema: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}search_path={schema}"


# --------------------------------------------------------------------------- the database


async def _admin(dsn: str, *statements: str) -> list[Any]:
    import asyncpg

    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return [await conn.fetchval(statement) for statement in statements]
    finally:
        await conn.close()


def admin(dsn: str, *statements: str) -> list[Any]:
    return asyncio.run(_admin(dsn, *statements))


def count_rows(dsn: str, schema: str) -> int:
    exists, = admin(dsn, f"SELECT to_regclass('\"{schema}\".{TABLE}') IS NOT NULL")
    if not exists:
        return 0
    count, = admin(dsn, f'SELECT count(*) FROM "{schema}".{TABLE}')
    return int(count)


def wait_rows(dsn: str, schema: str, expected: int, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while (have := count_rows(dsn, schema)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return have


def metric_total(server: Server, name: str) -> float | None:
    try:
        with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " ")]
    return sum(values) if values else None


# --------------------------------------------------------------------------- 1. latency, sink on vs off


def server_env() -> dict[str, str]:
    return {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0", "LLMGUARD_CACHE_ENABLED": "false",
            "LLMGUARD_CACHE_SEMANTIC": "false", "HF_HUB_OFFLINE": "1"}


def run_latency(args: argparse.Namespace, schema: str, log: Callable[[str], None]) -> dict[str, Any]:
    env = server_env()
    rounds: list[dict[str, Measurement]] = []
    with contextlib.ExitStack() as stack:
        log("starting servers ...")
        on = stack.enter_context(demo_server(
            pick_free_port(), guarded=True, name="sink-on",
            env={**env, "LLMGUARD_REQUEST_LOG_DSN": with_search_path(args.dsn, schema)}))
        off = stack.enter_context(demo_server(pick_free_port(), guarded=True, name="sink-off",
                                              env={**env, "LLMGUARD_REQUEST_LOG_DSN": ""}))  # empty: off
        for number in range(args.rounds):
            spec = LoadSpec(ports=(on.port, off.port), method="POST", path=GUARDED_PATH, requests=args.requests,
                            slice_requests=args.slice, concurrency=args.concurrency, warmup=args.warmup,
                            timeout_s=120.0, record_latencies=True, first=number % 2)
            result = compare((on, off), spec)
            rounds.append(result)
            p50_on, p50_off = (percentile(result[n].latencies_ms, 50) for n in ("sink-on", "sink-off"))
            log(f"round {number + 1}/{args.rounds} ({'on' if number % 2 == 0 else 'off'} first): "
                f"p50 on {p50_on:.3f} ms, off {p50_off:.3f} ms, ratio {p50_on / p50_off:.3f}")
        sent = args.rounds * (args.requests + args.warmup)
        log(f"waiting for the sink-on server's {sent} rows ...")
        stored = wait_rows(args.dsn, schema, sent)
        dropped = metric_total(on, "llmguard_request_log_dropped_total")
        written = metric_total(on, "llmguard_request_log_rows_total")

    def per_round(name: str, q: float) -> list[float]:
        return [percentile(r[name].latencies_ms, q) for r in rounds]

    def cpu(name: str) -> float | None:
        values = [r[name].server_cpu_us_per_request for r in rounds]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    p50_on, p50_off = per_round("sink-on", 50), per_round("sink-off", 50)
    p99_on, p99_off = per_round("sink-on", 99), per_round("sink-off", 99)
    p50_ratios = [a / b for a, b in zip(p50_on, p50_off, strict=True)]
    p99_ratios = [a / b for a, b in zip(p99_on, p99_off, strict=True)]
    return {
        "p50_on_ms": statistics.median(p50_on), "p50_off_ms": statistics.median(p50_off),
        "p99_on_ms": statistics.median(p99_on), "p99_off_ms": statistics.median(p99_off),
        "p50_ratio": statistics.median(p50_ratios), "p50_ratios": p50_ratios,
        "p99_ratio": statistics.median(p99_ratios), "p99_ratios": p99_ratios,
        "cpu_on_us": cpu("sink-on"), "cpu_off_us": cpu("sink-off"),
        "sent": sent, "stored": stored, "written_metric": written, "dropped_metric": dropped,
        "pass": statistics.median(p50_ratios) <= P50_RATIO_GOAL,
    }


# --------------------------------------------------------------------------- 2. the writer, a burst


def _template_exchange() -> Any:
    """A real exchange of a finished 200 with usage, as the finisher sees it."""
    from asgi_llmguard.core.exchange import Exchange
    from asgi_llmguard.core.openai_protocol import parse_request

    body = json.dumps({"model": "mock-small", "messages": [{"role": "user", "content": "a bench prompt"}]}).encode()
    scope = {"type": "http", "method": "POST", "path": GUARDED_PATH, "headers": [], "client": ("127.0.0.1", 1)}
    exchange = Exchange(scope=scope, request=parse_request(body, "chat", b"application/json"), raw_body=body,
                        identity="key:0123456789abcdef01234567")
    exchange.cache_status = "miss"
    exchange.response.status = 200
    exchange.response.completed = True
    exchange.response.usage = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}
    return exchange


async def _burst(dsn: str, rows: int, bursts: int, log: Callable[[str], None]) -> dict[str, Any]:
    from asgi_llmguard.observability.request_log import RequestLog, capture

    prices = {"mock-small": {"prompt": 0.15, "completion": 0.6}}
    exchange = _template_exchange()
    writer = RequestLog(dsn, queue_size=rows, prices=prices)
    await writer.start()
    deadline = time.monotonic() + 30
    while not writer.connected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the request log could not connect: {writer.last_error}")
        await asyncio.sleep(0.01)
    rates: list[float] = []
    enqueue_us: list[float] = []
    try:
        for number in range(bursts):
            before = writer.written
            started = time.perf_counter()
            for i in range(rows):
                exchange.request_id = f"{number:08x}{i:024x}"
                writer.enqueue(capture(exchange, "mock-small"))
            queued = time.perf_counter()
            limit = time.monotonic() + 120
            while writer.written - before < rows:
                if time.monotonic() > limit or writer.dropped:
                    raise RuntimeError(f"burst {number + 1}: {writer.written - before}/{rows} rows written, "
                                       f"{writer.dropped} dropped, last error {writer.last_error}")
                await asyncio.sleep(0.002)
            elapsed = time.perf_counter() - started
            rates.append(rows / elapsed)
            enqueue_us.append((queued - started) / rows * 1e6)
            log(f"burst {number + 1}/{bursts}: {rows} rows in {elapsed:.3f} s = {rows / elapsed:,.0f} rows/s "
                f"(capturing and queueing: {enqueue_us[-1]:.2f} us per row)")
    finally:
        await writer.close()
    return {"rows": rows, "bursts": bursts, "rows_per_s": statistics.median(rates), "rates": rates,
            "enqueue_us_per_row": statistics.median(enqueue_us), "batch": writer.batch_size}


# --------------------------------------------------------------------------- report


def reproduce_command(args: argparse.Namespace) -> str:
    python = Path(sys.executable)
    with contextlib.suppress(ValueError):
        python = python.relative_to(ROOT)
    return shlex.join([str(python), "bench/request_log.py", "--requests", str(args.requests), "--rounds",
                       str(args.rounds), "--concurrency", str(args.concurrency), "--slice", str(args.slice),
                       "--burst", str(args.burst), "--bursts", str(args.bursts)])


def render(summary: dict[str, Any], args: argparse.Namespace) -> str:
    lat, burst = summary["latency"], summary["burst"]
    cpu_on, cpu_off = lat["cpu_on_us"], lat["cpu_off_us"]
    lines = [
        f"1. POST {GUARDED_PATH}, cache off, c={args.concurrency}, {args.rounds} rounds x {args.requests} requests "
        "per server",
        f"   p50  sink on {lat['p50_on_ms']:.3f} ms   off {lat['p50_off_ms']:.3f} ms   ratio {lat['p50_ratio']:.3f}"
        f"   goal <= {P50_RATIO_GOAL}   {'PASS' if lat['pass'] else 'FAIL'}",
        f"   p99  sink on {lat['p99_on_ms']:.3f} ms   off {lat['p99_off_ms']:.3f} ms   ratio {lat['p99_ratio']:.3f}"
        "   (no goal)",
        "   per-round p50 ratios: " + ", ".join(f"{r:.3f}" for r in lat["p50_ratios"]),
        "   per-round p99 ratios: " + ", ".join(f"{r:.3f}" for r in lat["p99_ratios"]),
    ]
    if cpu_on is not None and cpu_off is not None:
        lines.append(f"   server CPU per request: on {cpu_on:.0f} us, off {cpu_off:.0f} us "
                     f"({cpu_on - cpu_off:+.0f} us)")
    lines += [
        f"   check: {lat['stored']} of {lat['sent']} requests to sink-on are rows in the table "
        f"(rows metric {lat['written_metric']}, dropped metric {lat['dropped_metric']})",
        f"2. writer: bursts of {burst['rows']} rows, batch {burst['batch']}: "
        f"{burst['rows_per_s']:,.0f} rows/s (median of {burst['bursts']}: "
        + ", ".join(f"{r:,.0f}" for r in burst["rates"]) + ")",
        f"   request side: capturing the exchange and queueing it {burst['enqueue_us_per_row']:.2f} us per request",
        f"Machine: {summary['machine']}.",
        f"Reproduce: {summary['command']}",
    ]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench/request_log.py",
                                     description="The request log's cost per request, and its writer's rows/s.")
    parser.add_argument("--dsn", default=os.environ.get("LLMGUARD_BENCH_POSTGRES_DSN", DEFAULT_DSN),
                        help="PostgreSQL to write into (a schema of the bench's own; default: %(default)s)")
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per server per round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=1, help="keep-alive connections (default: %(default)s)")
    parser.add_argument("--slice", type=int, default=250, help="requests before switching server")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per server per round")
    parser.add_argument("--burst", type=int, default=50_000, help="rows per writer burst (default: %(default)s)")
    parser.add_argument("--bursts", type=int, default=3, help="writer bursts (default: %(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("requests", "rounds", "concurrency", "slice", "burst", "bursts"):
        if getattr(args, name) < 1:
            print(f"bench/request_log.py: error: --{name} must be at least 1", file=sys.stderr)
            return 2
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f} s] {message}", file=sys.stderr, flush=True)

    schema = f"llmguard_bench_{uuid.uuid4().hex[:10]}"
    try:
        admin(args.dsn, f'CREATE SCHEMA "{schema}"')
    except Exception as exc:
        print(f"bench/request_log.py: PostgreSQL at {args.dsn} is not usable: {type(exc).__name__}: {exc}",
              file=sys.stderr)
        return 2
    try:
        latency = run_latency(args, schema, log)
        admin(args.dsn, f'TRUNCATE "{schema}".{TABLE}')
        burst = asyncio.run(_burst(with_search_path(args.dsn, schema), args.burst, args.bursts, log))
    finally:
        admin(args.dsn, f'DROP SCHEMA "{schema}" CASCADE')
    summary = {"latency": latency, "burst": burst, "command": reproduce_command(args),
               "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}
    log("done")
    print(render(summary, args))
    if args.json is not None:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0 if latency["pass"] and latency["stored"] == latency["sent"] else 1


if __name__ == "__main__":
    sys.exit(main())
