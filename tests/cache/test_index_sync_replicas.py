"""Two real uvicorn replicas of the demo share one cache through Redis, and survive Redis dying.

- Shared Redis (db 15): an answer made on replica A is a hit for its rewording on replica B
  within one second; an invalidation on A is seen on B.
- Fault: the test starts its own redis-server on a spare port (no persistence), runs load through
  both replicas, kills Redis mid-load and starts it again: no 5xx, every answer is the right one,
  and after the resync Redis holds only complete entries that both replicas serve, exactly and
  by meaning.
- Recovery: the same outage, measured: an answer made on replica A after Redis answers again is a
  hit on replica B within 2 s (exactly, and by meaning), and each replica logs at most 5
  degraded/recovered events for the whole outage (one state change each, not one per request).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from servers import Server, own_redis, pick_free_port, run_server, serve

from asgi_llmguard.cache.keys import namespace_of
from asgi_llmguard.core.exchange import hash_identity
from asgi_llmguard.core.openai_protocol import parse_request

pytestmark = [pytest.mark.slow, pytest.mark.model, pytest.mark.redis]

API_KEY = "sk-replica-test"
ADMIN_TOKEN = "replica-admin-token"
ADMIN_PATH = "/admin/cache"
TOPICS = (
    "volcanoes", "jazz", "penguins", "bicycles", "chess", "tea", "glaciers", "submarines", "origami", "bees",
    "lighthouses", "marathons", "cheese", "satellites", "violins", "deserts", "tulips", "robots", "pyramids",
    "coffee", "whales", "libraries", "trains", "mushrooms", "kites", "castles", "comets", "sushi", "forests",
    "telescopes",
)


def prompt_about(topic: str) -> str:
    return f"Write a short poem about {topic}"


def rewording(prompt: str) -> str:
    return prompt + ", please"


def expected_answer(prompt: str) -> str:
    return f'You said: "{prompt}". Here is a mock answer.'


def replica_env(model_dir: Path, redis_url: str) -> dict[str, str]:
    return {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "1",
            "LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir), "LLMGUARD_REDIS_URL": redis_url,
            "LLMGUARD_CACHE_ADMIN_PATH": ADMIN_PATH, "LLMGUARD_ADMIN_TOKEN": ADMIN_TOKEN}


def body(prompt: str, *, stream: bool = False) -> dict[str, Any]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": prompt}], "stream": stream}


@dataclass(frozen=True)
class Reply:
    status: int
    cache: str
    content: str


async def ask(http: httpx.AsyncClient, base: str, prompt: str, *, store: bool = True,
              stream: bool = False) -> Reply:
    headers = {"authorization": f"Bearer {API_KEY}"}
    if not store:
        headers["cache-control"] = "no-store"  # read the cache, never write it: polling leaves no trace
    if not stream:
        response = await http.post(base + "/v1/chat/completions", json=body(prompt), headers=headers)
        content = response.json()["choices"][0]["message"]["content"] if response.status_code == 200 else ""
        return Reply(response.status_code, response.headers.get("x-llmguard-cache", ""), content or "")
    parts: list[str] = []
    async with http.stream("POST", base + "/v1/chat/completions", json=body(prompt, stream=True),
                           headers=headers) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                for choice in json.loads(line[6:]).get("choices", []):
                    parts.append(choice.get("delta", {}).get("content") or "")
        return Reply(response.status_code, response.headers.get("x-llmguard-cache", ""), "".join(parts))


async def hit_within(http: httpx.AsyncClient, base: str, prompt: str, seconds: float) -> Reply:
    """Ask (without storing) until the answer is a hit or ``seconds`` pass; the last reply."""
    deadline = time.monotonic() + seconds
    while True:
        reply = await ask(http, base, prompt, store=False)
        if reply.cache == "hit" or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.02)


def namespace_for(prompt: str) -> str:
    request = parse_request(httpx.Request("POST", "/", json=body(prompt)).read(), "chat", b"application/json")
    return namespace_of(request, hash_identity("key", API_KEY))


async def admin(http: httpx.AsyncClient, base: str, action: dict[str, Any]) -> dict[str, Any]:
    response = await http.post(base + ADMIN_PATH, json=action, headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


# --- two replicas on the shared Redis ------------------------------------------------------------------


async def test_an_answer_on_replica_a_is_a_hit_for_its_rewording_on_b_and_invalidation_reaches_b(
        model_dir: Path, redis_url: str) -> None:
    env = replica_env(model_dir, redis_url)
    prompt = prompt_about(f"the number {random.randrange(10**9)}")
    with run_server(["demo_app"], pick_free_port(), env=env) as a, \
            run_server(["demo_app"], pick_free_port(), env=env) as b:
        async with httpx.AsyncClient(timeout=30) as http:
            made = await ask(http, a, prompt)
            assert (made.status, made.cache, made.content) == (200, "miss", expected_answer(prompt))
            served = await hit_within(http, b, rewording(prompt), 1.0)
            assert (served.status, served.cache, served.content) == (200, "hit", expected_answer(prompt))

            assert await admin(http, a, {"action": "invalidate_namespace", "namespace": namespace_for(prompt)}) == {
                "removed": 1}
            deadline = time.monotonic() + 1.0
            while (gone := await ask(http, b, rewording(prompt), store=False)).cache == "hit":
                assert time.monotonic() < deadline, "replica B still serves an invalidated answer after 1 s"
                await asyncio.sleep(0.02)
            assert (gone.status, gone.content) == (200, expected_answer(rewording(prompt)))
            assert (await ask(http, b, prompt, store=False)).cache == "miss"


# --- Redis dies mid-load -----------------------------------------------------------------------------


@dataclass
class Load:
    replies: list[tuple[str, str, Reply]]  # (phase, prompt asked, reply)
    phase: str = "up"
    errors: int = 0  # transport errors (the server never answered)


async def drive(load: Load, http: httpx.AsyncClient, bases: list[str], until: asyncio.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not until.is_set():
        prompt = prompt_about(rng.choice(TOPICS))
        if rng.random() < 0.3:
            prompt = rewording(prompt)
        try:
            reply = await ask(http, rng.choice(bases), prompt, stream=rng.random() < 0.25)
        except httpx.TransportError:
            load.errors += 1
            continue
        load.replies.append((load.phase, prompt, reply))


def right_answer(asked: str, content: str) -> bool:
    base = asked.removesuffix(", please")
    return content in {expected_answer(base), expected_answer(rewording(base))}


async def test_replicas_serve_through_a_redis_crash_and_resync_without_lost_or_corrupt_entries(
        model_dir: Path) -> None:
    port = pick_free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = replica_env(model_dir, url)
    with own_redis(port) as server, run_server(["demo_app"], pick_free_port(), env=env) as a, \
            run_server(["demo_app"], pick_free_port(), env=env) as b:
        load = Load([])
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=30) as http:
            workers = [asyncio.create_task(drive(load, http, [a, b], stop, seed)) for seed in range(6)]
            try:
                await asyncio.sleep(3)
                load.phase = "down"
                server.kill()
                await asyncio.sleep(3)
                server.start()  # empty: no persistence
                load.phase = "back"
                await asyncio.sleep(5)
            finally:
                stop.set()
                await asyncio.gather(*workers)

            assert load.errors == 0
            by_phase = {phase: [r for p, _, r in load.replies if p == phase] for phase in ("up", "down", "back")}
            assert all(len(replies) > 20 for replies in by_phase.values()), {k: len(v) for k, v in by_phase.items()}
            statuses = {r.status for _, _, r in load.replies}
            assert statuses == {200}, statuses
            wrong = [(asked, r.content) for _, asked, r in load.replies if not right_answer(asked, r.content)]
            assert wrong == []
            assert any(r.cache == "hit" for r in by_phase["up"])
            assert any(r.cache == "hit" for r in by_phase["back"])  # the cache works again after the restart

            # After the resync: Redis holds only complete entries ...
            with redis.Redis.from_url(url) as r:
                entry_keys = list(r.scan_iter("llmguard:cache:e:*"))
                assert len(entry_keys) == r.hlen("llmguard:cache:m") > 0
                stored: list[str] = []
                for key in entry_keys:
                    fields = r.hgetall(key)
                    prompt = fields[b"prompt"].decode()
                    assert json.loads(fields[b"answer"])["text"] == expected_answer(prompt)
                    assert len(fields[b"vec"]) == 384 * 4
                    entry_id = key.decode().rsplit(":", 1)[1]
                    assert r.get("llmguard:cache:x:" + fields[b"xk"].decode()) == entry_id.encode()
                    stored.append(prompt)
            # ... and both replicas serve each one, exactly and by meaning (their indexes resynced).
            for base in (a, b):
                for prompt in stored:
                    exact = await hit_within(http, base, prompt, 5.0)  # a request may fail open meanwhile
                    assert (exact.cache, exact.content) == ("hit", expected_answer(prompt)), (base, prompt)
                    other = prompt.removesuffix(", please") if prompt.endswith(", please") else rewording(prompt)
                    meaning = await hit_within(http, base, other, 5.0)
                    assert meaning.cache == "hit" and right_answer(other, meaning.content), (base, other, meaning)


# --- how soon after Redis returns, and how loudly -------------------------------------------------------

RECOVERY_BOUND_S = 2.0  # the bound for the first cross-replica hit after Redis answers again
EVENTS_BOUND = 5  # degraded/recovered log events per replica for the whole outage
STATE_EVENTS = (".degraded", ".recovered", ".redis_unavailable")


def state_events(server: Server) -> list[str]:
    """The names of the degraded/recovered log events a replica wrote (its stdout is JSON lines)."""
    names = []
    for line in server.output().splitlines():
        if line.startswith("{"):
            name = str(json.loads(line).get("event", ""))
            if name.endswith(STATE_EVENTS):
                names.append(name)
    return names


async def first_cross_replica_hits(http: httpx.AsyncClient, a: str, b: str, since: float,
                                   within: float = 10.0) -> tuple[float, float]:
    """Seconds from ``since`` until a fresh answer made on ``a`` is first a hit on ``b``: exactly, and by meaning."""
    exact = semantic = float("inf")
    rng = random.Random()
    while (exact == float("inf") or semantic == float("inf")) and time.monotonic() - since < within:
        prompt = prompt_about(f"the number {rng.randrange(10**9)}")
        await ask(http, a, prompt)
        if exact == float("inf") and (await ask(http, b, prompt, store=False)).cache == "hit":
            exact = time.monotonic() - since
        if semantic == float("inf"):
            reply = await ask(http, b, rewording(prompt), store=False)
            if reply.cache == "hit" and reply.content == expected_answer(prompt):
                semantic = time.monotonic() - since
        await asyncio.sleep(0.02)
    return exact, semantic


async def test_after_a_redis_crash_the_cache_is_shared_again_within_2s_and_the_outage_is_logged_once(
        model_dir: Path) -> None:
    port = pick_free_port()
    # Rate limits on too (never reached): the limiter and the cache share one view of Redis, so
    # the outage is still one degraded and one recovered event per replica, plus the sync task's pair.
    env = {**replica_env(model_dir, f"redis://127.0.0.1:{port}/0"), "LLMGUARD_RATE_LIMIT_RPM": "1000000"}
    with own_redis(port) as redis_server, serve(["demo_app"], pick_free_port(), env=env) as a, \
            serve(["demo_app"], pick_free_port(), env=env) as b:
        load = Load([])
        stop = asyncio.Event()
        async with httpx.AsyncClient(timeout=30) as http:
            workers = [asyncio.create_task(drive(load, http, [a.url, b.url], stop, seed)) for seed in range(4)]
            try:
                await asyncio.sleep(2)
                redis_server.kill()
                load.phase = "down"
                await asyncio.sleep(3)
                redis_server.start()  # returns once it answers PING: the clock starts here
                back = time.monotonic()
                load.phase = "back"
                exact, semantic = await first_cross_replica_hits(http, a.url, b.url, back)
                await asyncio.sleep(2)
            finally:
                stop.set()
                await asyncio.gather(*workers)
        events = {"a": state_events(a), "b": state_events(b)}
    print(f"first cross-replica hit after Redis answered again: exact {exact:.2f} s, by meaning {semantic:.2f} s; "
          f"degraded/recovered log events: {({name: dict(Counter(names)) for name, names in events.items()})}; "
          f"{len(load.replies)} replies")
    assert load.errors == 0 and {r.status for _, _, r in load.replies} == {200}
    assert [(asked, r.content) for _, asked, r in load.replies if not right_answer(asked, r.content)] == []
    assert exact <= RECOVERY_BOUND_S and semantic <= RECOVERY_BOUND_S
    assert all(len(names) <= EVENTS_BOUND for names in events.values()), events
    assert all(names for names in events.values())  # the outage was noticed, and said so
