"""Backend choice under one slow backend, and what routing costs per request.

    .venv/bin/python bench/router.py [--requests 400] [--concurrency 8] [--slow-ttft-ms 300]

Three real mock upstream processes (``python -m demo_app --mock-only``) serve the same model:
two fast (time to first token 5 ms) and one slow (``--slow-ttft-ms``). LLMProxy runs in this
process and is driven through httpx's ASGI transport by ``--concurrency`` callers, first with
Peak-EWMA power of two choices, then with round robin (the same proxy, breaker and retries;
only the choice differs), in alternating rounds so machine noise hits both alike. It prints
p50/p99 latency for each and the p99 ratio (round robin / P2C: above 1 means P2C is better),
and each backend's share of requests.

Then the router's own cost per request, in process: the balancer's choice (``acquire`` plus
``succeeded``) over 3 backends, the complexity estimate with the tier choice on short and long
prompts, and the ModelRouter layer's whole handling of a request (exchange rewrite included)
against an app that answers at once, as a multiple of the same request with no router.
Traffic goes only to 127.0.0.1; every process started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from asgi_llmguard import Guard, LLMProxy, Settings  # noqa: E402
from asgi_llmguard.core.openai_protocol import parse_request  # noqa: E402
from asgi_llmguard.core.types import Message, Receive, Scope, Send  # noqa: E402
from asgi_llmguard.routing.balancer import Balancer, BalancerConfig, Lease  # noqa: E402
from asgi_llmguard.routing.complexity import choose_tier, estimate_complexity  # noqa: E402
from asgi_llmguard.routing.middleware import ModelRouterMiddleware  # noqa: E402
from demo_app.processes import HOST, pick_free_port, stop_process_group, wait_ready  # noqa: E402


@contextlib.contextmanager
def mock_upstream(ttft_ms: float) -> Iterator[str]:
    port = pick_free_port()
    env = {**os.environ, "LLMGUARD_DEMO_TTFT_MS": str(ttft_ms), "LLMGUARD_DEMO_TOKEN_MS": "0"}
    command = [sys.executable, "-m", "demo_app", "--mock-only", "--host", HOST, "--port", str(port),
               "--no-access-log", "--log-level", "warning"]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
        try:
            why = wait_ready(proc, f"http://{HOST}:{port}/health", 60)
            if why is not None:
                raise RuntimeError(f"mock upstream on {port}: {why}")
            yield f"http://{HOST}:{port}/v1"
        finally:
            stop_process_group(proc)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run_round(proxy: LLMProxy, requests: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)

    async def caller(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            queue.get_nowait()
            body = {"model": "mock-small", "messages": [{"role": "user", "content": f"q {uuid.uuid4().hex[:8]}"}]}
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise RuntimeError(f"proxy answered {response.status_code}: {response.text[:200]}")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy",
                                 timeout=60) as client:
        await asyncio.gather(*(caller(client) for _ in range(concurrency)))
    return latencies


def count_choices(balancer: Balancer, shares: Counter[str]) -> None:
    """Count which backend each request was given (wraps the balancer's ``acquire``)."""
    original = balancer.acquire

    def acquire(candidates: Sequence[str] | None = None, *, affinity_key: str | None = None,
                exclude: Collection[str] = ()) -> Lease | None:
        lease = original(candidates, affinity_key=affinity_key, exclude=exclude)
        if lease is not None:
            shares[lease.backend] += 1
        return lease

    balancer.acquire = acquire  # type: ignore[method-assign]


async def compare(urls: list[str], slow: str, args: argparse.Namespace) -> None:
    settings = Settings(upstream_retry_backoff_ms=0)
    upstreams = [{"url": url, "models": ["mock-small"]} for url in urls]
    results: dict[str, list[float]] = {"p2c": [], "round_robin": []}
    shares: dict[str, Counter[str]] = {"p2c": Counter(), "round_robin": Counter()}
    proxies = {
        "p2c": LLMProxy(upstreams, settings=settings, balancer_config=BalancerConfig(policy="p2c")),
        "round_robin": LLMProxy(upstreams, settings=settings, balancer_config=BalancerConfig(policy="round_robin")),
    }
    for policy, proxy in proxies.items():
        count_choices(proxy.balancer, shares[policy])
        await run_round(proxy, 24, args.concurrency)  # warm connections and estimates
        shares[policy].clear()
    per_round = max(1, args.requests // args.rounds)
    for _ in range(args.rounds):
        for policy, proxy in proxies.items():
            results[policy] += await run_round(proxy, per_round, args.concurrency)
    for proxy in proxies.values():
        await proxy.aclose()

    print(f"{args.requests} requests per policy, {args.concurrency} concurrent callers, "
          f"backends: 2 fast (TTFT 5 ms), 1 slow (TTFT {args.slow_ttft_ms:.0f} ms)")
    for policy, latencies in results.items():
        slow_share = shares[policy][slow] / max(1, sum(shares[policy].values()))
        print(f"  {policy:12s} p50 {1000 * pct(latencies, 0.5):7.1f} ms   p99 {1000 * pct(latencies, 0.99):7.1f} ms"
              f"   slow backend's share {100 * slow_share:5.1f}%")
    ratio = pct(results["round_robin"], 0.99) / pct(results["p2c"], 0.99)
    ratio50 = pct(results["round_robin"], 0.5) / pct(results["p2c"], 0.5)
    print(f"  p99 round robin / p99 Peak-EWMA P2C: {ratio:.2f}x   (p50: {ratio50:.2f}x)")


def timed(call: Callable[[], object], n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - started) / n


async def one_request(layer: ModelRouterMiddleware, scope: Scope, body: bytes) -> None:
    delivered = False

    async def receive() -> Message:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Message) -> None:
        return None

    await layer(dict(scope), receive, send)


async def router_cost(samples: int) -> None:
    print("\nRouting cost per request, in process:")
    balancer = Balancer(["http://a/v1", "http://b/v1", "http://c/v1"])

    def choose() -> None:
        lease = balancer.acquire()
        assert lease is not None
        lease.succeeded(0.01)

    per = timed(choose, samples)
    print(f"  balancer acquire + succeeded (3 backends):  {per * 1e6:6.2f} us")
    long_text = "Refactor this function and explain each step. " + "def f(x):\n    return x * 2\n" * 60
    for text in ("What is the capital of France?", long_text):
        request = parse_request(json.dumps({"model": "auto", "messages": [{"role": "user", "content": text}]})
                                .encode(), "chat")
        per = timed(partial(lambda r: choose_tier(estimate_complexity(r).score, 2), request), samples)
        label = f"{len(text)}-char prompt"
        print(f"  complexity estimate + tier, {label:18s} {per * 1e6:7.2f} us")

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b"{}"})

    body = b'{"model":"auto","messages":[{"role":"user","content":"What is the capital of France?"}]}'
    scope: Scope = {"type": "http", "method": "POST", "path": "/v1/chat/completions",
                    "headers": [(b"content-type", b"application/json")], "client": ("127.0.0.1", 1)}
    costs = {}
    aliases_by_label: dict[str, dict[str, tuple[str, ...]]] = {
        "no alias (router passes it on)": {}, "alias rewritten": {"auto": ("s", "l")}}
    for label, aliases in aliases_by_label.items():
        guard = Guard(Settings(cache_enabled=False, metrics_enabled=False, router_aliases=aliases))
        layer = ModelRouterMiddleware(app, guard=guard)
        await guard.startup()
        for _ in range(200):
            await one_request(layer, scope, body)
        started = time.perf_counter()
        for _ in range(samples // 4):
            await one_request(layer, scope, body)
        costs[label] = (time.perf_counter() - started) / (samples // 4)
        await guard.shutdown()
    base = costs["no alias (router passes it on)"]
    for label, per in costs.items():
        print(f"  ModelRouter layer, {label:32s} {per * 1e6:7.1f} us per request ({per / base:.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--slow-ttft-ms", type=float, default=300.0)
    ap.add_argument("--samples", type=int, default=20000)
    args = ap.parse_args()
    with mock_upstream(5) as fast_a, mock_upstream(5) as fast_b, mock_upstream(args.slow_ttft_ms) as slow:
        asyncio.run(compare([fast_a, fast_b, slow], slow, args))
    asyncio.run(router_cost(args.samples))
    print(f"\nmachine load average: {os.getloadavg()[0]:.2f}; ratios compare runs made side by side")


if __name__ == "__main__":
    main()
