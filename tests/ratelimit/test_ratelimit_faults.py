"""Two real uvicorn replicas of the demo, RPM 20, 100 concurrent requests from one identity: the limit
holds when Redis is slow and when it is gone, and no client gets a 5xx.

- Slow: the replicas reach a redis-server of the test's own through a forwarder that holds every chunk
  150 ms each way (tests/tcp_proxy.py), so no decision comes back within the 100 ms budget. Each
  replica decides by its local share (``LLMGUARD_RATE_LIMIT_LOCAL_SHARE``, 0.5 by default: 10 of 20),
  so together they admit at most 20, with fail closed as without it (a slow Redis is not an outage).
- Stopped: the redis-server is killed before the burst; the same local shares decide: at most
  share x replicas x limit = 20 admitted, every other request an OpenAI 429.

The window is ten minutes, so no capacity comes back during a burst however slow the machine is;
the counts do not depend on timing. Half the requests go to each replica, each on its own connection.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from servers import own_redis, pick_free_port, run_server
from tcp_proxy import DelayProxy

pytestmark = pytest.mark.slow

LIMIT = 20
SHARE = 0.5  # the documented default of LLMGUARD_RATE_LIMIT_LOCAL_SHARE
REPLICAS = 2
REQUESTS = 100
CHAT = "/v1/chat/completions"


@contextmanager
def replicas(redis_url: str, **settings: str) -> Iterator[tuple[str, ...]]:
    env = {
        "LLMGUARD_REDIS_URL": redis_url,
        "LLMGUARD_REDIS_PREFIX": f"rlfault-{uuid.uuid4().hex[:8]}:",
        "LLMGUARD_CACHE_ENABLED": "false",
        "LLMGUARD_RATE_LIMIT_RPM": str(LIMIT),
        "LLMGUARD_RATE_LIMIT_WINDOW_SECONDS": "600",
        "LLMGUARD_DEMO_TTFT_MS": "0",
        "LLMGUARD_DEMO_TOKEN_MS": "0",
        **{"LLMGUARD_" + name.upper(): value for name, value in settings.items()},
    }  # the default 100 ms Redis budget: that is what a slow Redis runs over
    with ExitStack() as stack:
        yield tuple(stack.enter_context(run_server(["demo_app", "--no-access-log"], pick_free_port(), env=env))
                    for _ in range(REPLICAS))


async def burst(bases: tuple[str, ...]) -> list[tuple[str, httpx.Response]]:
    """``REQUESTS`` concurrent requests of one identity, alternating between the replicas, released together."""
    start = asyncio.Event()
    limits = httpx.Limits(max_connections=REQUESTS)

    async with httpx.AsyncClient(timeout=60, limits=limits) as http:
        async def one(n: int) -> tuple[str, httpx.Response]:
            base = bases[n % len(bases)]
            body = {"model": "mock-small", "messages": [{"role": "user", "content": f"request {n}"}]}
            await start.wait()
            return base, await http.post(base + CHAT, json=body, headers={"authorization": "Bearer sk-one-identity"})

        tasks = [asyncio.ensure_future(one(n)) for n in range(REQUESTS)]
        await asyncio.sleep(0.2)
        start.set()
        return list(await asyncio.gather(*tasks))


def check(results: list[tuple[str, httpx.Response]], bases: tuple[str, ...]) -> Counter[str]:
    """No 5xx, refusals as OpenAI's 429, and the admissions per replica (printed with the statuses)."""
    statuses = Counter(response.status_code for _, response in results)
    admitted = Counter(base for base, response in results if response.status_code == 200)
    print(f"statuses {dict(statuses)}, admitted per replica {[admitted[base] for base in bases]}")
    assert set(statuses) <= {200, 429}, statuses
    for _, response in results:
        if response.status_code == 429:
            assert response.json()["error"]["type"] == "rate_limit_exceeded"
            assert int(response.headers["retry-after-ms"]) > 0
    return admitted


@pytest.mark.parametrize("fail_closed", ["false", "true"], ids=["default", "fail-closed"])
async def test_a_redis_slower_than_the_budget_never_lets_the_burst_past_the_limit(fail_closed: str) -> None:
    with own_redis(pick_free_port()) as redis_server, DelayProxy(redis_server.port, delay=0.15) as slow, \
            replicas(f"redis://127.0.0.1:{slow.port}/0", rate_limit_fail_closed=fail_closed) as bases:
        admitted = check(await burst(bases), bases)
    assert sum(admitted.values()) <= LIMIT
    assert all(count <= int(LIMIT * SHARE) for count in admitted.values())
    assert sum(admitted.values()) > 0  # decided locally, not refused wholesale


async def test_with_redis_stopped_each_replica_admits_no_more_than_its_local_share() -> None:
    with own_redis(pick_free_port()) as redis_server, replicas(redis_server.url) as bases:
        redis_server.kill()
        admitted = check(await burst(bases), bases)
    assert sum(admitted.values()) <= int(LIMIT * SHARE) * REPLICAS
    assert all(0 < count <= int(LIMIT * SHARE) for count in admitted.values())
