"""The in-memory and Redis cache stores pass one test suite, so the twins cannot drift."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from storages import ALL_STORAGES

from asgi_llmguard.cache.stores.base import CacheEntry, CacheStore
from asgi_llmguard.cache.stores.memory import MemoryCacheStore
from asgi_llmguard.core.openai_protocol import Answer

StoreFactory = Callable[..., Any]


@pytest.fixture(params=ALL_STORAGES)
async def make_store(request: pytest.FixtureRequest) -> AsyncIterator[StoreFactory]:
    """A factory of stores of one kind: ``make_store(max_entries=..., max_bytes=...)``."""
    if request.param == "memory":
        yield lambda **bounds: MemoryCacheStore(**{"max_entries": 100, "max_bytes": 10**7, **bounds})
        return
    if request.param == "cluster":
        from asgi_llmguard.cache.stores.cluster import ClusterCacheStore
        from asgi_llmguard.core.redis_cluster import connect_cluster

        cluster = connect_cluster(request.getfixturevalue("cluster_url"), timeout=2.0)
        await cluster.initialize()  # the slot map, read once before a burst (as the Guard does at startup)

        def make_cluster(**bounds: int) -> ClusterCacheStore:
            # Each of the 4 partitions enforces a quarter of the bounds; the bound tests use one namespace.
            merged = {name: value * 4 for name, value in {"max_entries": 100, "max_bytes": 10**7, **bounds}.items()}
            return ClusterCacheStore(cluster, prefix="twins:", timeout=2.0, partitions=4,
                                     **merged)  # type: ignore[arg-type]

        yield make_cluster
        await cluster.aclose()
        return
    from redis.asyncio import Redis

    from asgi_llmguard.cache.stores.redis import RedisCacheStore

    url = request.getfixturevalue("redis_url")
    client = Redis.from_url(url)

    def make(**bounds: int) -> RedisCacheStore:
        return RedisCacheStore(client, prefix="twins:", timeout=2.0,
                               **{"max_entries": 100, "max_bytes": 10**7, **bounds})  # type: ignore[arg-type]

    yield make
    await client.aclose()


async def entry(store: CacheStore, ns: str = "ns", key: str = "k", *, prompt: str | None = "p",
                text: str = "answer", ttl: float = 60.0, vector: bool = True) -> CacheEntry:
    now = time.time()
    vec = np.arange(1, 5, dtype=np.float32) if vector else None
    return CacheEntry(id=await store.next_id(ns), namespace=ns, exact_key=f"{ns}:{key}", prompt=prompt,
                      answer=Answer(text=text, usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
                                    model="m"),
                      vector=vec, created_at=now, expires_at=now + ttl)


async def stored(store: CacheStore, *args: Any, **kwargs: Any) -> CacheEntry:
    made = await entry(store, *args, **kwargs)
    assert await store.put(made) == []
    return made


class TestCacheStoreTwins:
    async def test_ids_are_unique_and_increasing(self, make_store: StoreFactory) -> None:
        store = make_store()
        ids = [await store.next_id("ns") for _ in range(5)]
        assert ids == sorted(set(ids))

    async def test_put_then_get_returns_the_same_entry(self, make_store: StoreFactory) -> None:
        store = make_store()
        made = await stored(store, prompt="what is two plus two", text="four")
        got = await store.get(made.id)
        assert got is not None
        assert (got.id, got.namespace, got.exact_key, got.prompt, got.answer) == (
            made.id, made.namespace, made.exact_key, made.prompt, made.answer)
        assert got.vector is not None and made.vector is not None
        assert np.array_equal(got.vector, made.vector)
        assert got.created_at == pytest.approx(made.created_at)
        assert got.expires_at == pytest.approx(made.expires_at)
        assert await store.count() == 1

    async def test_an_entry_without_prompt_or_vector_round_trips(self, make_store: StoreFactory) -> None:
        store = make_store()
        made = await stored(store, prompt=None, vector=False)
        got = await store.get(made.id)
        assert got is not None and got.prompt is None and got.vector is None

    async def test_unknown_ids_and_keys_are_misses(self, make_store: StoreFactory) -> None:
        store = make_store()
        assert await store.get(123456) is None
        assert await store.get_exact("nope") is None
        assert await store.delete(123456) is None
        assert await store.delete_namespace("nope") == []

    async def test_exact_key_finds_the_entry_and_a_new_put_replaces_it(self, make_store: StoreFactory) -> None:
        store = make_store()
        first = await stored(store, text="old")
        found = await store.get_exact(first.exact_key)
        assert found is not None and found.id == first.id
        second = await entry(store, text="new")
        replaced = await store.put(second)
        assert [e.id for e in replaced] == [first.id]
        found = await store.get_exact(first.exact_key)
        assert found is not None and found.answer.text == "new"
        assert await store.get(first.id) is None
        assert await store.count() == 1

    async def test_expired_entries_are_misses(self, make_store: StoreFactory) -> None:
        store = make_store()
        made = await stored(store, ttl=0.2)
        assert await store.get(made.id) is not None
        await asyncio.sleep(0.35)
        assert await store.get(made.id) is None
        assert await store.get_exact(made.exact_key) is None

    async def test_evicts_the_least_recently_used_beyond_max_entries(self, make_store: StoreFactory) -> None:
        store = make_store(max_entries=3)
        a = await stored(store, key="a")
        b = await stored(store, key="b")
        c = await stored(store, key="c")
        assert await store.get(a.id) is not None  # a is now the most recently used
        evicted = await store.put(await entry(store, key="d"))
        assert [e.id for e in evicted] == [b.id]
        assert await store.get(b.id) is None
        assert {await store.get(x.id) is not None for x in (a, c)} == {True}
        assert await store.count() == 3

    async def test_a_read_without_touch_leaves_the_lru_alone_until_touched(self, make_store: StoreFactory) -> None:
        store = make_store(max_entries=3)
        a = await stored(store, key="a")
        b = await stored(store, key="b")
        await stored(store, key="c")
        assert await store.get(a.id, touch=False) is not None  # a semantic candidate, not yet accepted
        assert [e.id for e in await store.put(await entry(store, key="d"))] == [a.id]
        await store.touch(b.id)  # accepted: now the most recently used
        evicted = await store.put(await entry(store, key="e"))
        assert b.id not in [e.id for e in evicted] and await store.get(b.id) is not None

    async def test_evicts_to_stay_within_max_bytes(self, make_store: StoreFactory) -> None:
        probe = await entry(make_store(), text="x" * 1000)
        store = make_store(max_bytes=probe.size * 2 + 10)
        first = await stored(store, key="1", text="x" * 1000)
        await stored(store, key="2", text="x" * 1000)
        evicted = await store.put(await entry(store, key="3", text="x" * 1000))
        assert [e.id for e in evicted] == [first.id]
        assert await store.count() == 2

    async def test_delete_returns_the_entry_once(self, make_store: StoreFactory) -> None:
        store = make_store()
        made = await stored(store)
        deleted = await store.delete(made.id)
        assert deleted is not None and deleted.id == made.id and deleted.namespace == "ns"
        assert await store.delete(made.id) is None
        assert await store.get_exact(made.exact_key) is None
        assert await store.count() == 0

    async def test_delete_namespace_removes_only_that_namespace(self, make_store: StoreFactory) -> None:
        store = make_store()
        gone = [await stored(store, "a", key=str(i)) for i in range(3)]
        kept = await stored(store, "b", key="0")
        removed = await store.delete_namespace("a")
        assert sorted(e.id for e in removed) == sorted(e.id for e in gone)
        assert all([await store.get(e.id) is None for e in gone])
        assert await store.get(kept.id) is not None
        assert await store.count() == 1

    async def test_flush_forgets_everything_but_ids_keep_growing(self, make_store: StoreFactory) -> None:
        store = make_store()
        made = [await stored(store, key=str(i)) for i in range(3)]
        await store.flush()
        assert await store.count() == 0
        assert await store.get(made[0].id) is None
        assert await store.get_exact(made[0].exact_key) is None
        assert await store.next_id("ns") > made[-1].id
        again = await stored(store, key="0")
        assert await store.get(again.id) is not None
