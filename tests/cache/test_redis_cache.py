"""Guards sharing one Redis share one cache: hits across instances, invalidation, expiry,
bootstrap from a snapshot, fail open when Redis is away, resync after a wipe.

Each Guard runs in this process with the real embedding model and the real Redis (db 15);
two Guards stand for two replicas (each has its own vector index and sync task).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import structlog.testing
from apps import CHAT, FakeLLM, chat, client, reply_for
from prometheus_client import CollectorRegistry
from servers import own_redis, pick_free_port

from asgi_llmguard import Guard
from asgi_llmguard.cache.index_sync import IndexSync

pytestmark = [pytest.mark.model, pytest.mark.redis]

PARIS = "What is the capital of France?"
PARIS_AGAIN = "What's the capital city of France?"


@pytest.fixture
def make_guard(start_guard: Any, model_dir: Path, redis_url: str) -> Any:
    async def make(**settings: Any) -> Guard:
        settings.setdefault("embedding_model_dir", str(model_dir))
        settings.setdefault("redis_url", redis_url)
        # These tests are about sharing, not about the verifier: raw similarity decides here.
        settings.setdefault("cache_verify", False)
        settings.setdefault("cache_threshold", 0.9)
        # A generous budget: on a busy CI machine a 100 ms one fails open now and then (by design),
        # which is not what these tests are about.
        settings.setdefault("redis_timeout_ms", 1000.0)
        guard: Guard = await start_guard(registry=CollectorRegistry(), **settings)
        return guard

    return make


async def ask(app: Any, prompt: str) -> tuple[int, str, str]:
    async with client(app) as c:
        response = await c.post(CHAT, json=chat(prompt))
    body = response.json()
    content = body["choices"][0]["message"]["content"] if response.status_code == 200 else ""
    return response.status_code, response.headers.get("x-llmguard-cache", ""), content


async def eventually(predicate: Callable[[], bool], within: float = 1.0) -> bool:
    """Poll ``predicate`` until it holds or ``within`` seconds pass."""
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def sync_of(guard: Guard) -> IndexSync:
    assert guard.index_sync is not None
    return guard.index_sync


def index_size(guard: Guard) -> int:
    assert guard.cache is not None and guard.cache.index is not None
    return len(guard.cache.index)


async def ready(guard: Guard) -> Guard:
    await asyncio.wait_for(sync_of(guard).ready.wait(), 10)
    return guard


async def test_an_answer_made_on_one_replica_is_a_hit_for_its_rewording_on_another(make_guard: Any) -> None:
    first, second = await ready(await make_guard()), await ready(await make_guard())
    llm_a, llm_b = FakeLLM(), FakeLLM()
    assert (await ask(first.wrap(llm_a.app), PARIS))[1] == "miss"
    assert await eventually(lambda: index_size(second) == 1)
    status, cache, answer = await ask(second.wrap(llm_b.app), PARIS_AGAIN)
    assert (status, cache, answer) == (200, "hit", reply_for(PARIS))
    assert llm_b.calls == 0
    # the exact tier is shared too
    assert (await ask(second.wrap(llm_b.app), PARIS))[1:] == ("hit", reply_for(PARIS))


async def test_an_invalidation_on_one_replica_is_seen_on_the_other(make_guard: Any) -> None:
    first, second = await ready(await make_guard()), await ready(await make_guard())
    llm = FakeLLM()
    await ask(first.wrap(llm.app), PARIS)
    assert await eventually(lambda: index_size(second) == 1)
    assert first.cache is not None
    namespace = first.cache.namespace_for(llm.exchanges[-1])
    assert await first.cache.invalidate_namespace(namespace) == 1
    assert await eventually(lambda: index_size(second) == 0)
    assert (await ask(second.wrap(FakeLLM().app), PARIS_AGAIN))[1] == "miss"


async def test_a_flush_on_one_replica_empties_every_index(make_guard: Any) -> None:
    first, second = await ready(await make_guard()), await ready(await make_guard())
    for prompt in (PARIS, "How tall is Mount Everest?"):
        await ask(first.wrap(FakeLLM().app), prompt)
    assert await eventually(lambda: index_size(second) == 2)
    assert first.cache is not None
    await first.cache.flush()
    assert await eventually(lambda: index_size(second) == 0)
    assert (await ask(second.wrap(FakeLLM().app), PARIS))[1] == "miss"


async def test_expired_entries_leave_every_replica_index(make_guard: Any) -> None:
    first, second = await ready(await make_guard(cache_ttl_seconds=1)), await ready(await make_guard())
    await ask(first.wrap(FakeLLM().app), PARIS)
    assert await eventually(lambda: index_size(second) == 1)
    await asyncio.sleep(1.1)
    assert first.cache is not None
    assert await first.cache.store.count() == 0  # prunes the expired entry, with its event
    assert await eventually(lambda: index_size(second) == 0)


async def test_a_joining_replica_bootstraps_from_the_snapshot_plus_the_stream(make_guard: Any) -> None:
    first = await ready(await make_guard())
    prompts = [PARIS, "How tall is Mount Everest?", "Who wrote Hamlet?"]
    for prompt in prompts[:2]:
        await ask(first.wrap(FakeLLM().app), prompt)
    assert await sync_of(first).write_snapshot()
    await ask(first.wrap(FakeLLM().app), prompts[2])  # after the snapshot: comes from the stream
    joiner = await ready(await make_guard())
    report = sync_of(joiner).bootstraps[0]
    assert report["source"] == "snapshot"
    assert report["replayed"] >= 1
    assert index_size(joiner) == 3
    assert (await ask(joiner.wrap(FakeLLM().app), PARIS_AGAIN))[1:] == ("hit", reply_for(PARIS))


async def test_without_a_snapshot_a_joining_replica_scans_the_entries(make_guard: Any) -> None:
    first = await ready(await make_guard())
    await ask(first.wrap(FakeLLM().app), PARIS)
    joiner = await ready(await make_guard())
    assert sync_of(joiner).bootstraps[0]["source"] == "scan"
    assert (await ask(joiner.wrap(FakeLLM().app), PARIS_AGAIN))[1:] == ("hit", reply_for(PARIS))


async def test_with_redis_unreachable_requests_are_served_as_misses_and_counted(
        make_guard: Any, free_port: int) -> None:
    guard = await make_guard(redis_url=f"redis://127.0.0.1:{free_port}/0")
    llm = FakeLLM()
    app = guard.wrap(llm.app)
    for _ in range(3):
        assert await ask(app, PARIS) == (200, "miss", reply_for(PARIS))
    assert llm.calls == 3
    assert guard.metrics is not None
    degraded = guard.metrics.registry.get_sample_value("llmguard_degraded_total", {"part": "redis"})
    assert degraded is not None and degraded >= 1


async def test_connections_pooled_before_a_redis_restart_cost_no_request_a_miss(make_guard: Any) -> None:
    # redis-py keeps its connections across the restart; each fails on first use afterwards and
    # is retried once, at once, on a fresh one: no request is served without the store.
    with own_redis(pick_free_port()) as server:
        guard = await make_guard(redis_url=server.url, cache_semantic=False, redis_timeout_ms=500.0)
        app = guard.wrap(FakeLLM().app)
        async with client(app) as c:
            await asyncio.gather(*[c.post(CHAT, json=chat(f"before {n}")) for n in range(16)])
            assert guard.redis is not None
            assert len(guard.redis.connection_pool._available_connections) > 1  # type: ignore[attr-defined]
            server.kill()
            server.start()  # empty: no persistence
            with structlog.testing.capture_logs() as events:
                after = await asyncio.gather(*[c.post(CHAT, json=chat(f"after {n}")) for n in range(16)])
                again = await asyncio.gather(*[c.post(CHAT, json=chat(f"after {n}")) for n in range(16)])
        assert [r.headers["x-llmguard-cache"] for r in after] == ["miss"] * 16
        assert [r.headers["x-llmguard-cache"] for r in again] == ["hit"] * 16  # every answer was kept
        assert guard.metrics is not None
        assert guard.metrics.registry.get_sample_value("llmguard_degraded_total", {"part": "redis"}) is None
        assert [e for e in events if e["event"].startswith("llmguard.redis")] == []


async def test_replicas_resync_by_themselves_after_redis_lost_everything(make_guard: Any, redis_url: str) -> None:
    import redis

    first, second = await ready(await make_guard()), await ready(await make_guard())
    await ask(first.wrap(FakeLLM().app), PARIS)
    assert await eventually(lambda: index_size(second) == 1)
    with redis.Redis.from_url(redis_url) as wipe:  # what a restart without persistence leaves
        wipe.flushdb()
    assert await eventually(lambda: index_size(first) == 0 and index_size(second) == 0, within=5)
    assert await eventually(lambda: len(sync_of(second).bootstraps) >= 2, within=5)
    await ask(first.wrap(FakeLLM().app), "Who wrote Hamlet?")
    assert await eventually(lambda: index_size(second) == 1)
    assert (await ask(second.wrap(FakeLLM().app), "Who was the author of Hamlet?"))[1:] == (
        "hit", reply_for("Who wrote Hamlet?"))


async def test_a_stream_trimmed_past_a_replica_position_makes_it_rebuild(make_guard: Any, redis_url: str) -> None:
    import redis

    first, second = await ready(await make_guard()), await ready(await make_guard())
    await sync_of(second).stop()  # second falls behind ...
    await ask(first.wrap(FakeLLM().app), PARIS)
    with redis.Redis.from_url(redis_url) as r:  # ... and the events it missed are trimmed away
        stream = "llmguard:cache:stream"
        r.xtrim(stream, maxlen=0)
    sync_of(second).start()
    await ask(first.wrap(FakeLLM().app), "Who wrote Hamlet?")  # the next event shows the hole
    assert await eventually(lambda: len(sync_of(second).bootstraps) >= 2, within=5)
    assert await eventually(lambda: index_size(second) == 2)
    assert sync_of(second).bootstraps[-1]["source"] == "scan"


async def test_an_app_may_hand_the_guard_its_own_client_as_for_sentinel(model_dir: Path, redis_url: str) -> None:
    """The documented Sentinel path: ``guard.redis = sentinel.master_for(...)`` before startup."""
    from redis.asyncio import Redis

    guards = []
    for _ in range(2):
        guard = Guard(registry=CollectorRegistry(), embedding_model_dir=str(model_dir), cache_verify=False,
                      cache_threshold=0.9)
        guard.redis = Redis.from_url(redis_url, socket_timeout=0.1)  # stands in for master_for("mymaster")
        await guard.startup()
        guards.append(guard)
    try:
        first, second = [await ready(guard) for guard in guards]
        await ask(first.wrap(FakeLLM().app), PARIS)
        assert await eventually(lambda: index_size(second) == 1)
        assert (await ask(second.wrap(FakeLLM().app), PARIS_AGAIN))[1:] == ("hit", reply_for(PARIS))
    finally:
        for guard in guards:
            await guard.shutdown()
    for guard in guards:  # the app's client is the app's: the guard leaves it open
        assert guard.redis is not None and await guard.redis.ping()
        await guard.redis.aclose()


async def test_admin_flush_with_redis_down_is_a_503_not_a_false_done() -> None:
    """An invalidation that could not happen must say so (and never be a 500)."""
    guard = Guard(redis_url="redis://127.0.0.1:1/0", redis_timeout_ms=50, cache_semantic=False,
                  cache_admin_path="/admin/cache", admin_token="secret")
    app = guard.wrap(FakeLLM().app)
    await guard.startup()
    try:
        async with client(app, authorization="Bearer secret") as c:
            response = await c.post("/admin/cache", json={"action": "flush"})
    finally:
        await guard.shutdown()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cache_storage_unavailable"
