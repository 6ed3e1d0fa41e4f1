"""Two real uvicorn replicas of the demo sharing the real Redis: limits are exact across them.

64 concurrent clients (each its own connection pool) fire together at both replicas. With a
limit of N, exactly N are admitted, each seeing a different ``x-ratelimit-remaining-requests``
(N-1 down to 0: every decision was atomic), and every other request gets OpenAI's 429 with its
headers. The same for the global ceiling. A second pair with a 2-second window shows capacity
coming back when ``retry-after-ms`` said it would, on either replica. Each test uses a fresh key
prefix; the servers are ours and stop with the test.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import httpx
import pytest
from servers import pick_free_port, run_server

pytestmark = [pytest.mark.slow, pytest.mark.redis]

CLIENTS = 64
CHAT = "/v1/chat/completions"


@contextmanager
def replicas(redis_url: str, **settings: str) -> Iterator[tuple[str, str]]:
    env = {
        "LLMGUARD_REDIS_URL": redis_url,
        "LLMGUARD_REDIS_PREFIX": f"rltest-{uuid.uuid4().hex[:8]}:",
        "LLMGUARD_CACHE_ENABLED": "false",
        # a generous budget: this test is about exactness, and a machine busy with two servers and
        # 64 clients may take longer than the 100 ms default to open the first connections
        "LLMGUARD_REDIS_TIMEOUT_MS": "2000",
        "LLMGUARD_DEMO_TTFT_MS": "0",
        "LLMGUARD_DEMO_TOKEN_MS": "0",
        **{"LLMGUARD_" + name.upper(): value for name, value in settings.items()},
    }
    with ExitStack() as stack:
        first = stack.enter_context(run_server(["demo_app", "--no-access-log"], pick_free_port(), env=env))
        second = stack.enter_context(run_server(["demo_app", "--no-access-log"], pick_free_port(), env=env))
        yield first, second


def chat(text: str) -> dict[str, object]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": text}]}


async def crowd(clients: list[tuple[str, tuple[str, ...]]]) -> list[httpx.Response]:
    """Concurrent clients, each (key, the base URLs it posts to in turn), all released at once."""
    start = asyncio.Event()

    async def client(n: int, key: str, base_urls: tuple[str, ...]) -> list[httpx.Response]:
        headers = {"authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(timeout=30) as http:
            await start.wait()
            return [await http.post(url + CHAT, json=chat(f"request {n}"), headers=headers) for url in base_urls]

    tasks = [asyncio.ensure_future(client(n, key, urls)) for n, (key, urls) in enumerate(clients)]
    await asyncio.sleep(0.2)  # every client is waiting at the start line
    start.set()
    return [response for responses in await asyncio.gather(*tasks) for response in responses]


def assert_refused_like_openai(response: httpx.Response, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["type"] == "rate_limit_exceeded"
    assert int(response.headers["retry-after"]) >= 1
    assert int(response.headers["retry-after-ms"]) > 0
    assert response.headers["x-ratelimit-limit-requests"] == str(limit)
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")


async def test_two_replicas_admit_exactly_the_limit_then_exactly_the_global_ceiling(redis_url: str) -> None:
    limit, ceiling = 20, 50
    # a long window: no capacity comes back while the crowd runs (one request per 30 s)
    with replicas(redis_url, rate_limit_rpm=str(limit), global_rpm=str(ceiling),
                  rate_limit_window_seconds="600") as (first, second):
        # one identity, 64 clients, two requests each: one to each replica
        responses = await crowd([("shared-key", (first, second) if i % 2 else (second, first))
                                 for i in range(CLIENTS)])
        admitted = [r for r in responses if r.status_code == 200]
        assert len(admitted) == limit
        assert sorted(int(r.headers["x-ratelimit-remaining-requests"]) for r in admitted) == list(range(limit))
        for response in responses:
            if response.status_code != 200:
                assert_refused_like_openai(response, limit)
            assert response.headers["x-ratelimit-limit-requests"] == str(limit)

        # 64 identities, one request each: the global ceiling has ceiling - limit left, and the
        # 108 refused requests above were charged to nothing
        responses = await crowd([(f"client-{i}", ((first, second)[i % 2],)) for i in range(CLIENTS)])
        assert sum(r.status_code == 200 for r in responses) == ceiling - limit
        for response in responses:
            if response.status_code != 200:
                assert_refused_like_openai(response, ceiling)
                assert "global requests" in response.json()["error"]["message"]


async def test_capacity_comes_back_when_the_headers_say_on_either_replica(redis_url: str) -> None:
    # three per three seconds: one request comes back every second (wide enough for a busy machine)
    with replicas(redis_url, rate_limit_rpm="3", rate_limit_window_seconds="3") as (first, second):
        headers = {"authorization": "Bearer refill-key"}
        async with httpx.AsyncClient(timeout=30) as http:

            async def post(base_url: str) -> httpx.Response:
                return await http.post(base_url + CHAT, json=chat("refill"), headers=headers)

            burst = [await post((first, second)[i % 2]) for i in range(5)]
            assert [r.status_code for r in burst] == [200] * 3 + [429] * 2
            await asyncio.sleep(int(burst[-1].headers["retry-after-ms"]) / 1000 + 0.05)
            back = [await post(second), await post(first)]
            assert [r.status_code for r in back] == [200, 429]
            await asyncio.sleep(seconds(back[0].headers["x-ratelimit-reset-requests"]) + 0.05)
            again = [(await post((second, first)[i % 2])).status_code for i in range(4)]
            assert again == [200] * 3 + [429]


def seconds(duration: str) -> float:
    """``x-ratelimit-reset-*`` as seconds (``850ms``, ``2.5s``, ``1m0s``)."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    minutes, _, rest = duration.rpartition("m")
    return (float(minutes) * 60 if minutes else 0.0) + float(rest.rstrip("s"))
