"""Rate limits: the GCRA store twins (one suite over memory and Redis), the layer behind real ASGI
apps, cache hits, per-identity overrides, the openai SDK's RateLimitError and retry, and Redis down.

Every Redis test talks to the real server (db 15, flushed by ``redis_url``). Windows are short or
long on purpose: long (an hour) where a test must see no refill, seconds where it must see one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import openai
import pytest
import structlog
import structlog.testing
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route
from storages import ALL_STORAGES
from tcp_proxy import DelayProxy

from asgi_llmguard import Guard
from asgi_llmguard.core.exchange import Exchange, hash_identity
from asgi_llmguard.core.tokens import estimate_request_tokens
from asgi_llmguard.ratelimit.limiter import RateLimits, format_duration
from asgi_llmguard.ratelimit.store import Charge, RateLimitStore, RateLimitStoreError, gcra_params
from asgi_llmguard.ratelimit.stores.memory import SWEEP_EVERY, MemoryRateLimitStore
from asgi_llmguard.ratelimit.stores.redis import RedisRateLimitStore

CHAT = "/v1/chat/completions"
HOUR = 3600.0
USAGE = {"prompt_tokens": 12, "completion_tokens": 18, "total_tokens": 30}
RATE_HEADERS = [f"x-ratelimit-{what}-{unit}" for unit in ("requests", "tokens")
                for what in ("limit", "remaining", "reset")]


# --- the store twins ------------------------------------------------------------------------------


@pytest.fixture(params=ALL_STORAGES)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[RateLimitStore]:
    if request.param == "memory":
        yield MemoryRateLimitStore()
        return
    if request.param == "cluster":
        from asgi_llmguard.core.redis_cluster import connect_cluster

        cluster = connect_cluster(request.getfixturevalue("cluster_url"), timeout=2.0)
        await cluster.initialize()  # the slot map, read once before a burst (as the Guard does at startup)
        try:
            yield RedisRateLimitStore(cluster, prefix="test:rl:", timeout=2.0, cluster=True)
        finally:
            await cluster.aclose()
        return
    from redis.asyncio import Redis

    client = Redis.from_url(request.getfixturevalue("redis_url"))
    try:
        yield RedisRateLimitStore(client, prefix="test:rl:", timeout=2.0)
    finally:
        await client.aclose()


async def burst(store: RateLimitStore, charges: list[Charge], count: int) -> list[bool]:
    return [(await store.acquire(charges)).allowed for _ in range(count)]


class TestStoreTwins:
    """The same behaviour from the in-memory and the Redis store: the twins cannot drift."""

    async def test_admits_exactly_the_limit_in_a_burst_then_refuses_with_a_retry_time(
            self, store: RateLimitStore) -> None:
        charge = Charge("a", 7, HOUR, 1)
        remaining = []
        for _ in range(7):
            decision = await store.acquire([charge])
            assert decision.allowed
            remaining.append(decision.states[0].remaining)
        assert remaining == [6, 5, 4, 3, 2, 1, 0]
        refused = await store.acquire([charge])
        assert not refused.allowed
        assert refused.states[0].remaining == 0
        interval, capacity = gcra_params(7, HOUR)
        assert 0 < refused.retry_us <= interval
        assert capacity - interval < refused.states[0].reset_us <= capacity

    async def test_concurrent_decisions_admit_exactly_the_limit(self, store: RateLimitStore) -> None:
        charge = Charge("crowd", 50, HOUR, 1)
        results = await asyncio.gather(*(store.acquire([charge]) for _ in range(200)))
        assert sum(d.allowed for d in results) == 50
        assert sorted(d.states[0].remaining for d in results if d.allowed) == list(range(50))

    async def test_a_refusal_by_one_limit_charges_none_of_them(self, store: RateLimitStore) -> None:
        wide, narrow = Charge("wide", 5, HOUR, 1), Charge("narrow", 1, HOUR, 1)
        assert (await store.acquire([wide, narrow])).allowed
        refused = await store.acquire([wide, narrow])
        assert not refused.allowed
        assert [s.allowed for s in refused.states] == [True, False]
        assert refused.states[0].remaining == 4  # wide was not charged for the refused request
        assert await burst(store, [wide], 5) == [True] * 4 + [False]

    async def test_capacity_comes_back_one_interval_at_a_time(self, store: RateLimitStore) -> None:
        # one request back every second: wide enough for a busy machine's pauses
        charge = Charge("refill", 3, 3.0, 1)
        assert await burst(store, [charge], 4) == [True] * 3 + [False]
        refused = await store.acquire([charge])
        await asyncio.sleep(refused.retry_us / 1e6 + 0.05)
        assert await burst(store, [charge], 2) == [True, False]
        again = await store.acquire([charge])
        await asyncio.sleep(again.states[0].reset_us / 1e6 + 0.05)
        assert await burst(store, [charge], 4) == [True] * 3 + [False]

    async def test_costs_and_refunds_move_the_bucket(self, store: RateLimitStore) -> None:
        tokens = Charge("tok", 100, HOUR, 80)
        assert (await store.acquire([tokens])).states[0].remaining == 20
        assert not (await store.acquire([Charge("tok", 100, HOUR, 30)])).allowed
        await store.adjust([Charge("tok", 100, HOUR, -60)])  # used 20 of the 80 reserved
        decision = await store.acquire([Charge("tok", 100, HOUR, 30)])
        assert decision.allowed and decision.states[0].remaining == 50

    async def test_usage_beyond_the_reservation_is_charged_afterwards(self, store: RateLimitStore) -> None:
        assert (await store.acquire([Charge("debt", 100, HOUR, 10)])).allowed
        await store.adjust([Charge("debt", 100, HOUR, 150)])  # the answer cost far more than reserved
        refused = await store.acquire([Charge("debt", 100, HOUR, 1)])
        assert not refused.allowed and refused.states[0].remaining == 0

    async def test_a_refund_never_fills_a_bucket_beyond_full(self, store: RateLimitStore) -> None:
        await store.adjust([Charge("full", 3, HOUR, -1000)])
        assert await burst(store, [Charge("full", 3, HOUR, 1)], 4) == [True] * 3 + [False]

    async def test_a_charge_larger_than_the_limit_never_fits_and_costs_nothing(self, store: RateLimitStore) -> None:
        refused = await store.acquire([Charge("big", 100, HOUR, 101)])
        assert not refused.allowed
        assert refused.states[0].remaining == 100
        assert (await store.acquire([Charge("big", 100, HOUR, 100)])).allowed

    async def test_clear_forgets_every_limit(self, store: RateLimitStore) -> None:
        await burst(store, [Charge("c", 1, HOUR, 1)], 1)
        await store.clear()
        assert await burst(store, [Charge("c", 1, HOUR, 1)], 2) == [True, False]


async def test_the_memory_store_forgets_buckets_that_are_full_again() -> None:
    now = [0]
    store = MemoryRateLimitStore(clock=lambda: now[0])
    for n in range(SWEEP_EVERY - 1):
        await store.acquire([Charge(f"id-{n}", 10, 1.0, 1)])
    assert len(store) == SWEEP_EVERY - 1
    now[0] = 2_000_000  # two one-second windows later: every bucket is full again
    await store.acquire([Charge("fresh", 10, 1.0, 1)])
    assert len(store) == 1


async def test_redis_keys_expire_when_their_bucket_is_full_again(redis_url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        store = RedisRateLimitStore(client, prefix="test:rl:")
        await store.acquire([Charge("ttl", 10, 60.0, 3)])
        ttl = await client.pttl("test:rl:ttl")
        assert 0 < ttl <= 18_001  # three of ten units of a minute
        await client.script_flush()  # a Redis that forgot the scripts gets them again
        assert (await store.acquire([Charge("ttl", 10, 60.0, 1)])).states[0].remaining == 6
    finally:
        await client.aclose()


# --- the layer ------------------------------------------------------------------------------------


class FakeLLM:
    """An OpenAI-like endpoint that counts its calls and reports ``USAGE``."""

    def __init__(self) -> None:
        self.calls = 0

    async def chat(self, request: Request) -> JSONResponse:
        self.calls += 1
        payload = await request.json()
        text = "answer to " + str(payload["messages"][-1]["content"])
        return JSONResponse({
            "id": f"chatcmpl-{self.calls}", "object": "chat.completion", "created": 0, "model": payload["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop",
                         "logprobs": None}],
            "usage": USAGE,
        })

    async def stream(self, request: Request) -> StreamingResponse:
        """SSE without a usage chunk: the limiter has only the text to go by."""
        self.calls += 1

        async def events() -> AsyncIterator[bytes]:
            for piece in ("x" * 40, "y" * 40):
                chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
                         "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                yield b"data: " + json.dumps(chunk).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    def app(self) -> Starlette:
        return Starlette(routes=[Route(CHAT, self.chat, methods=["POST"]),
                                 Route("/stream" + CHAT, self.stream, methods=["POST"])])


def body(content: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-test", "messages": [{"role": "user", "content": content}], **extra}


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


Stack = tuple[httpx.AsyncClient, Guard, FakeLLM]


@pytest.fixture(params=ALL_STORAGES)
async def make_stack(request: pytest.FixtureRequest) -> AsyncIterator[Callable[..., Any]]:
    """Build the whole stack around a FakeLLM, in memory or on the real Redis."""
    redis_url = request.getfixturevalue(request.param + "_url") if request.param in ("redis", "cluster") else None
    opened: list[tuple[httpx.AsyncClient, Guard]] = []

    async def make(limit_overrides: Any = None, **settings: Any) -> Stack:
        settings.setdefault("cache_enabled", False)
        settings.setdefault("rate_limit_window_seconds", HOUR)
        if request.param in ("redis", "cluster"):
            settings.setdefault("redis_url", redis_url)
            # these tests are about decisions: a busy machine opening the first connection must
            # not make them fail open (that has its own tests below)
            settings.setdefault("redis_timeout_ms", 2000)
        llm = FakeLLM()
        guard = Guard(registry=CollectorRegistry(), limit_overrides=limit_overrides, **settings)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=guard.wrap(llm.app())), base_url="http://t")
        opened.append((client, guard))
        return client, guard, llm

    yield make
    for client, guard in opened:
        await client.aclose()
        await guard.shutdown()


def metric(guard: Guard, name: str, **labels: str) -> float:
    assert guard.metrics is not None
    value = guard.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


class TestLayer:
    async def test_every_guarded_response_carries_the_openai_headers(self, make_stack: Any) -> None:
        client, _, llm = await make_stack(rate_limit_rpm=3, rate_limit_tpm=10_000)
        responses = [await client.post(CHAT, json=body(), headers=auth("k1")) for _ in range(4)]
        assert [r.status_code for r in responses] == [200, 200, 200, 429]
        assert llm.calls == 3  # the refused request never reached the app
        for response in responses:
            assert all(name in response.headers for name in RATE_HEADERS), response.headers
            assert response.headers["x-ratelimit-limit-requests"] == "3"
            assert response.headers["x-ratelimit-limit-tokens"] == "10000"
        assert [r.headers["x-ratelimit-remaining-requests"] for r in responses] == ["2", "1", "0", "0"]

    async def test_a_refusal_is_openai_s_429_with_retry_after(self, make_stack: Any) -> None:
        client, guard, _ = await make_stack(rate_limit_rpm=1)
        assert (await client.post(CHAT, json=body(), headers=auth("k1"))).status_code == 200
        refused = await client.post(CHAT, json=body(), headers=auth("k1"))
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert error["type"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
        assert "requests per" in error["message"] and "Limit 1" in error["message"]
        assert int(refused.headers["retry-after"]) >= 1
        assert 0 < int(refused.headers["retry-after-ms"]) <= HOUR * 1000
        assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
        assert "x-should-retry" not in refused.headers
        assert metric(guard, "llmguard_rate_limited_total", limit="requests") == 1

    async def test_identities_have_their_own_limits(self, make_stack: Any) -> None:
        client, _, _ = await make_stack(rate_limit_rpm=2)
        codes = {key: [(await client.post(CHAT, json=body(), headers=auth(key))).status_code for _ in range(3)]
                 for key in ("alice", "bob")}
        assert codes == {"alice": [200, 200, 429], "bob": [200, 200, 429]}
        by_user = [(await client.post(CHAT, json=body(user="carol"))).status_code for _ in range(3)]
        assert by_user == [200, 200, 429]  # no bearer token: the ``user`` field is the identity

    async def test_the_global_ceiling_holds_across_identities(self, make_stack: Any) -> None:
        client, guard, _ = await make_stack(rate_limit_rpm=2, global_rpm=3)
        codes = [(await client.post(CHAT, json=body(), headers=auth(f"key-{i}"))).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        refused = await client.post(CHAT, json=body(), headers=auth("key-9"))
        assert refused.headers["x-ratelimit-limit-requests"] == "3"  # the binding limit is the global one
        assert "global requests" in refused.json()["error"]["message"]
        assert metric(guard, "llmguard_rate_limited_total", limit="global_requests") == 3

    async def test_overrides_give_identities_their_own_plan(self, make_stack: Any) -> None:
        gold = hash_identity("key", "gold")
        client, _, _ = await make_stack(limit_overrides={gold: RateLimits(rpm=4)}, rate_limit_rpm=1)
        gold_codes = [(await client.post(CHAT, json=body(), headers=auth("gold"))).status_code for _ in range(5)]
        plain_codes = [(await client.post(CHAT, json=body(), headers=auth("plain"))).status_code for _ in range(2)]
        assert gold_codes == [200] * 4 + [429]
        assert plain_codes == [200, 429]

        def plan(exchange: Exchange) -> RateLimits | None:
            return RateLimits(rpm=0) if exchange.request.user == "vip" else None

        client, _, _ = await make_stack(limit_overrides=plan, rate_limit_rpm=1)
        vip = [(await client.post(CHAT, json=body(user="vip"))).status_code for _ in range(3)]
        assert vip == [200, 200, 200]  # 0 turns the limit off for this identity
        assert "x-ratelimit-limit-requests" not in (await client.post(CHAT, json=body(user="vip"))).headers

    async def test_tokens_are_reserved_then_reconciled_with_the_real_usage(self, make_stack: Any) -> None:
        client, _, _ = await make_stack(rate_limit_tpm=2000)
        request = body("how many tokens?", max_tokens=500)
        from asgi_llmguard.core.openai_protocol import parse_request

        estimate = estimate_request_tokens(parse_request(json.dumps(request).encode(), "chat"))
        first = await client.post(CHAT, json=request, headers=auth("k"))
        assert first.headers["x-ratelimit-remaining-tokens"] == str(2000 - estimate)
        second = await client.post(CHAT, json=request, headers=auth("k"))
        # the first request was settled at its real usage (30), not its reservation
        assert second.headers["x-ratelimit-remaining-tokens"] == str(2000 - USAGE["total_tokens"] - estimate)

    async def test_a_stream_without_usage_is_reconciled_from_its_text(self, make_stack: Any) -> None:
        client, _, _ = await make_stack(rate_limit_tpm=2000, guarded_paths=("/stream" + CHAT,))
        request = body("stream me", max_tokens=500, stream=True)
        await client.post("/stream" + CHAT, json=request, headers=auth("k"))
        after = await client.post("/stream" + CHAT, json=request, headers=auth("k"))
        prompt = estimate_of(request) - 500
        spent = 2000 - int(after.headers["x-ratelimit-remaining-tokens"])
        assert spent == prompt + 20 + estimate_of(request)  # 80 characters of answer = 20 tokens

    async def test_a_request_larger_than_the_token_limit_is_told_not_to_retry(self, make_stack: Any) -> None:
        client, guard, llm = await make_stack(rate_limit_tpm=100)
        refused = await client.post(CHAT, json=body(max_tokens=400), headers=auth("k"))
        assert refused.status_code == 429 and llm.calls == 0
        assert refused.headers["x-should-retry"] == "false"
        assert "Request too large for tokens" in refused.json()["error"]["message"]
        assert refused.headers["x-ratelimit-remaining-tokens"] == "100"
        assert metric(guard, "llmguard_rate_limited_total", limit="tokens") == 1

    async def test_unguarded_paths_get_no_rate_limit_headers(self, make_stack: Any) -> None:
        client, _, _ = await make_stack(rate_limit_rpm=1)
        response = await client.get("/elsewhere")
        assert response.status_code == 404
        assert "x-ratelimit-limit-requests" not in response.headers


class TestCacheHits:
    """The cache answers inside the limiter: the limiter settles a hit when the exchange finishes."""

    async def stack(self, make_stack: Any, **settings: Any) -> tuple[httpx.AsyncClient, FakeLLM]:
        client, _, llm = await make_stack(cache_enabled=True, cache_semantic=False, rate_limit_rpm=10,
                                          rate_limit_tpm=5000, **settings)
        first = await client.post(CHAT, json=body("cached?", max_tokens=100), headers=auth("k"))
        assert first.headers["x-llmguard-cache"] == "miss"
        return client, llm

    async def test_by_default_a_hit_counts_as_a_request_and_costs_no_tokens(self, make_stack: Any) -> None:
        client, llm = await self.stack(make_stack)
        hit = await client.post(CHAT, json=body("cached?", max_tokens=100), headers=auth("k"))
        assert hit.headers["x-llmguard-cache"] == "hit" and llm.calls == 1
        after = await client.post(CHAT, json=body("other", max_tokens=1), headers=auth("k"))
        assert after.headers["x-ratelimit-remaining-requests"] == "7"  # miss, hit and this one
        spent = 5000 - int(after.headers["x-ratelimit-remaining-tokens"])
        assert spent == USAGE["total_tokens"] + estimate_of(body("other", max_tokens=1))

    async def test_hits_can_be_free_of_requests_and_cost_their_tokens(self, make_stack: Any) -> None:
        client, _ = await self.stack(make_stack, rate_limit_count_cache_hits=False,
                                     rate_limit_cache_hits_cost_tokens=True)
        hit = await client.post(CHAT, json=body("cached?", max_tokens=100), headers=auth("k"))
        assert hit.headers["x-llmguard-cache"] == "hit"
        after = await client.post(CHAT, json=body("other", max_tokens=1), headers=auth("k"))
        assert after.headers["x-ratelimit-remaining-requests"] == "8"  # the hit was given back
        spent = 5000 - int(after.headers["x-ratelimit-remaining-tokens"])
        assert spent == 2 * USAGE["total_tokens"] + estimate_of(body("other", max_tokens=1))


def estimate_of(payload: dict[str, Any]) -> int:
    from asgi_llmguard.core.openai_protocol import parse_request

    return estimate_request_tokens(parse_request(json.dumps(payload).encode(), "chat"))


# --- the openai SDK -------------------------------------------------------------------------------


class TestOpenAISDK:
    def sdk(self, guard: Guard, llm: FakeLLM, statuses: list[int], max_retries: int) -> openai.AsyncOpenAI:
        async def record(response: httpx2.Response) -> None:
            statuses.append(response.status_code)

        http_client = httpx2.AsyncClient(transport=httpx2.ASGITransport(app=guard.wrap(llm.app())),
                                         event_hooks={"response": [record]})
        return openai.AsyncOpenAI(base_url="http://t/v1", api_key="sk-test", http_client=http_client,
                                  max_retries=max_retries)

    async def test_the_sdk_raises_rate_limit_error(self) -> None:
        guard = Guard(rate_limit_rpm=1, cache_enabled=False, registry=CollectorRegistry())
        llm, statuses = FakeLLM(), list[int]()
        client = self.sdk(guard, llm, statuses, max_retries=0)
        await client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(model="gpt-test", messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 429
        assert caught.value.code == "rate_limit_exceeded"
        assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "0"
        await client.close()
        await guard.shutdown()

    async def test_the_sdk_retry_waits_as_long_as_retry_after_says(self) -> None:
        # One request per 2 s: the SDK's own first backoff (at most 0.5 s) would be refused again,
        # so a single 429 followed by a 200 shows it waited for Retry-After.
        guard = Guard(rate_limit_rpm=1, rate_limit_window_seconds=2.0, cache_enabled=False,
                      registry=CollectorRegistry())
        llm, statuses = FakeLLM(), list[int]()
        client = self.sdk(guard, llm, statuses, max_retries=2)
        messages: Any = [{"role": "user", "content": "hi"}]
        await client.chat.completions.create(model="gpt-test", messages=messages)
        completion = await client.chat.completions.create(model="gpt-test", messages=messages)
        assert completion.choices[0].message.content == "answer to hi"
        assert statuses == [200, 429, 200]
        await client.close()
        await guard.shutdown()


# --- Redis down ---------------------------------------------------------------------------------


class TestRedisDown:
    """Nothing listens at the URL: each replica enforces its local share; fail closed answers 503."""

    async def call(self, count: int = 1, **settings: Any) -> tuple[list[httpx.Response], Guard, FakeLLM]:
        llm = FakeLLM()
        settings = {"rate_limit_rpm": 6, "rate_limit_window_seconds": HOUR, **settings}
        guard = Guard(redis_url="redis://127.0.0.1:1/0", redis_timeout_ms=50, cache_enabled=False,
                      registry=CollectorRegistry(), **settings)
        transport = httpx.ASGITransport(app=guard.wrap(llm.app()))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            responses = [await client.post(CHAT, json=body(), headers=auth("k")) for _ in range(count)]
        await guard.shutdown()
        return responses, guard, llm

    async def test_each_replica_enforces_its_local_share_and_logs_the_outage_once(self) -> None:
        with structlog.testing.capture_logs() as events:
            responses, guard, llm = await self.call(5)  # RPM 6, default share 0.5: 3 here
        assert [r.status_code for r in responses] == [200, 200, 200, 429, 429] and llm.calls == 3
        assert [r.headers["x-ratelimit-remaining-requests"] for r in responses] == ["2", "1", "0", "0", "0"]
        assert {r.headers["x-ratelimit-limit-requests"] for r in responses} == {"3"}
        assert responses[-1].json()["error"]["type"] == "rate_limit_exceeded"
        assert int(responses[-1].headers["retry-after-ms"]) > 0
        degraded = [e for e in events if e["event"] == "llmguard.redis.degraded"]
        assert len(degraded) == 1 and degraded[0]["unreachable"] is True, events  # one event, not one per request
        assert not any(e["event"].startswith("llmguard.ratelimit") for e in events)
        assert all(e.get("identity") != "k" for e in events)
        assert metric(guard, "llmguard_ratelimit_degraded_total", mode="local") == 5

    async def test_the_local_share_is_a_setting(self) -> None:
        responses, _, llm = await self.call(8, rate_limit_local_share=1.0)
        assert [r.status_code for r in responses] == [200] * 6 + [429] * 2 and llm.calls == 6

    async def test_a_token_estimate_over_the_local_share_but_within_the_limit_still_fits(self) -> None:
        # TPM 1000, share 0.1: 100 locally; a ~300-token request takes the whole local bucket
        responses, _, llm = await self.call(2, rate_limit_rpm=0, rate_limit_tpm=1000, rate_limit_local_share=0.1)
        assert [r.status_code for r in responses] == [200, 429] and llm.calls == 1
        assert "x-should-retry" not in responses[1].headers  # it will fit again: not "too large"

    async def test_fails_closed_when_told_to(self) -> None:
        with structlog.testing.capture_logs() as events:
            responses, guard, llm = await self.call(rate_limit_fail_closed=True)
        response = responses[0]
        assert any(e["event"] == "llmguard.redis.degraded" for e in events)
        assert response.status_code == 503 and llm.calls == 0
        assert response.json()["error"]["code"] == "rate_limit_unavailable"
        assert response.headers["retry-after"] == "1"
        assert metric(guard, "llmguard_ratelimit_degraded_total", mode="closed") == 1


async def test_a_store_of_the_apps_own_that_fails_gets_the_local_share_too() -> None:
    class Unreachable:
        async def acquire(self, charges: Any) -> Any:
            raise RateLimitStoreError("down", unreachable=True)

        async def adjust(self, charges: Any) -> None:
            raise RateLimitStoreError("down", unreachable=True)

        async def clear(self) -> None:
            return None

    guard = Guard(rate_limit_rpm=4, rate_limit_window_seconds=HOUR, cache_enabled=False, registry=CollectorRegistry())
    await guard.startup()
    assert guard.limiter is not None
    guard.limiter.store = Unreachable()
    llm = FakeLLM()
    transport = httpx.ASGITransport(app=guard.wrap(llm.app()))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        statuses = [(await client.post(CHAT, json=body(), headers=auth("own"))).status_code for _ in range(4)]
    await guard.shutdown()
    assert statuses == [200, 200, 429, 429] and llm.calls == 2  # share 0.5 of 4


class TestRedisSlow:
    """Redis answers, but later than the budget: decided locally, never freely, never a 503 (a slow call
    is not an outage), with fail closed too. Redis sits behind a forwarder that delays every chunk."""

    @pytest.mark.parametrize("fail_closed", [False, True], ids=["default", "fail-closed"])
    async def test_a_slow_redis_gets_local_decisions_not_free_admission(self, redis_url: str,
                                                                         fail_closed: bool) -> None:
        host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
        with DelayProxy(int(host_port.rsplit(":", 1)[1]), delay=0.15) as proxy:
            llm = FakeLLM()
            guard = Guard(redis_url=f"redis://127.0.0.1:{proxy.port}/{redis_url.rsplit('/', 1)[1]}",
                          redis_timeout_ms=50, rate_limit_rpm=4, rate_limit_window_seconds=HOUR,
                          rate_limit_fail_closed=fail_closed, cache_enabled=False, registry=CollectorRegistry())
            transport = httpx.ASGITransport(app=guard.wrap(llm.app()))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                responses = await asyncio.gather(*[client.post(CHAT, json=body(), headers=auth("slow"))
                                                   for _ in range(8)])
            await guard.shutdown()
        assert sorted(r.status_code for r in responses) == [200] * 2 + [429] * 6  # the share of 4: 2
        assert llm.calls == 2
        assert metric(guard, "llmguard_ratelimit_degraded_total", mode="local") == 8


def test_reset_durations_read_like_openai_s() -> None:
    assert [format_duration(us) for us in (0, 20_000, 1_500_000, 60_000_000, 361_000_000, 3_600_000_000)] == \
        ["0s", "20ms", "1.5s", "1m0s", "6m1s", "1h0m0s"]
