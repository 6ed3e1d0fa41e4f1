"""The exact tier of the cache, end to end: hits, replay, what is never kept, namespaces, scope, control."""

from __future__ import annotations

import asyncio
import json
import time
import types
from typing import Any

import pytest
from apps import CHAT, FakeLLM, Recorder, body_message, chat, client, http_scope, parse_sse, reply_for
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from asgi_llmguard import Guard
from asgi_llmguard.cache.keys import namespace_of


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


def make(llm: FakeLLM, **settings: Any) -> tuple[Guard, Any]:
    guard = Guard(cache_semantic=False, **settings)
    return guard, guard.wrap(llm.app)


def content(response: Any) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


async def stored(guard: Guard) -> int:
    assert guard.cache is not None
    return await guard.cache.store.count()


# --- hits and replay --------------------------------------------------------------------------------


async def test_a_repeat_is_a_hit_served_without_calling_the_app(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("how do magnets work"))
        second = await c.post(CHAT, json=chat("how do magnets work"))
    assert first.headers["x-llmguard-cache"] == "miss"
    assert second.headers["x-llmguard-cache"] == "hit"
    assert "x-llmguard-similarity" not in second.headers  # an exact hit has no similarity
    assert llm.calls == 1
    assert content(second) == content(first) == reply_for("how do magnets work")
    hit = ChatCompletion.model_validate(second.json())
    assert hit.model == "gpt-test" and hit.usage is not None and hit.usage.total_tokens == 10


async def test_whitespace_and_case_differences_still_hit_the_exact_tier(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("How do  magnets work"))
        second = await c.post(CHAT, json=chat("  how do magnets\nwork "))
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_a_streamed_miss_is_replayed_as_sse_and_as_json(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        miss = await c.post(CHAT, json=chat("tell me a story", stream=True))
        sse_hit = await c.post(CHAT, json=chat("tell me a story", stream=True))
        json_hit = await c.post(CHAT, json=chat("tell me a story"))
    original, done, _ = parse_sse(miss.text)
    assert done and original == reply_for("tell me a story")
    assert sse_hit.headers["x-llmguard-cache"] == "hit"
    assert sse_hit.headers["content-type"].startswith("text/event-stream")
    text, done, events = parse_sse(sse_hit.text)
    assert text == original and done
    assert sse_hit.text.rstrip().endswith("data: [DONE]")
    for event in events:
        ChatCompletionChunk.model_validate(event)
    assert json_hit.headers["x-llmguard-cache"] == "hit" and content(json_hit) == original
    assert llm.calls == 1


async def test_a_streamed_miss_from_a_spec_2_4_server_is_replayed_as_sse_and_as_json(llm: FakeLLM) -> None:
    _, app = make(llm)
    body = json.dumps(chat("tell me a story", stream=True)).encode()
    scope = http_scope(CHAT, body=body)
    scope["asgi"]["spec_version"] = "2.4"  # starlette then does not poll receive for a disconnect
    rec = Recorder(body_message(body))
    await app(scope, rec.receive, rec.send)
    original, done, _ = parse_sse(rec.body.decode())
    assert done and original == reply_for("tell me a story")
    async with client(app) as c:
        sse_hit = await c.post(CHAT, json=chat("tell me a story", stream=True))
        json_hit = await c.post(CHAT, json=chat("tell me a story"))
    assert sse_hit.headers["x-llmguard-cache"] == "hit"
    assert sse_hit.headers["content-type"].startswith("text/event-stream")
    text, done, events = parse_sse(sse_hit.text)
    assert text == original and done and sse_hit.text.rstrip().endswith("data: [DONE]")
    for event in events:
        ChatCompletionChunk.model_validate(event)
    assert json_hit.headers["x-llmguard-cache"] == "hit" and content(json_hit) == original
    assert llm.calls == 1


async def test_a_disconnect_reported_after_the_complete_stream_still_caches_it(llm: FakeLLM) -> None:
    guard, app = make(llm)
    body = json.dumps(chat("q", stream=True)).encode()
    rec = Recorder(body_message(body))
    original_send = rec.send

    async def send(message: Any) -> None:  # like uvicorn: once the response is complete, receive says disconnect
        await original_send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            rec.disconnect()

    await app(http_scope(CHAT, body=body), rec.receive, send)
    assert parse_sse(rec.body.decode())[1]
    assert await stored(guard) == 1


async def test_a_json_miss_is_replayed_as_sse_with_usage_when_asked(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        miss = await c.post(CHAT, json=chat("q"))
        hit = await c.post(CHAT, json=chat("q", stream=True, stream_options={"include_usage": True}))
    text, done, events = parse_sse(hit.text)
    assert text == content(miss) and done
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] == 10


async def test_completions_stream_is_replayed(llm: FakeLLM) -> None:
    _, app = make(llm)
    body = {"model": "m", "prompt": "finish this", "stream": True}
    async with client(app) as c:
        miss = await c.post("/v1/completions", json=body)
        hit = await c.post("/v1/completions", json=body)
    assert hit.headers["x-llmguard-cache"] == "hit"
    assert parse_sse(hit.text)[:2] == parse_sse(miss.text)[:2]


# --- what is never kept -----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["500", "400"])
async def test_errors_are_never_cached(llm: FakeLLM, mode: str) -> None:
    guard, app = make(llm)
    llm.mode = mode
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("q"))
        second = await c.post(CHAT, json=chat("q"))
    assert first.status_code == second.status_code == int(mode)
    assert second.headers["x-llmguard-cache"] == "miss"
    assert llm.calls == 2 and await stored(guard) == 0


@pytest.mark.parametrize("stream", [True, False])
async def test_content_filter_finish_is_never_cached(llm: FakeLLM, stream: bool) -> None:
    guard, app = make(llm)
    llm.mode = "content_filter"
    async with client(app) as c:
        await c.post(CHAT, json=chat("q", stream=stream))
        second = await c.post(CHAT, json=chat("q", stream=stream))
    assert second.headers["x-llmguard-cache"] == "miss" and await stored(guard) == 0


async def test_a_cut_stream_without_done_or_finish_reason_is_never_cached(llm: FakeLLM) -> None:
    guard, app = make(llm)
    llm.mode = "cut"
    async with client(app) as c:
        cut = await c.post(CHAT, json=chat("q", stream=True))
        assert not parse_sse(cut.text)[1]
        assert await stored(guard) == 0
        llm.mode = "ok"
        second = await c.post(CHAT, json=chat("q", stream=True))
    assert second.headers["x-llmguard-cache"] == "miss" and llm.calls == 2


async def test_a_stream_with_finish_reason_but_no_done_is_never_cached() -> None:
    events = [b'data: {"choices":[{"index":0,"delta":{"content":"partial"},"finish_reason":"stop"}]}\n\n']

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        for event in events:
            await send({"type": "http.response.body", "body": event, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    guard = Guard(cache_semantic=False)
    body = json.dumps(chat("q", stream=True)).encode()
    rec = Recorder(body_message(body))
    await guard.wrap(app)(http_scope(CHAT, body=body), rec.receive, rec.send)
    assert rec.status == 200 and await stored(guard) == 0


async def test_a_client_gone_mid_stream_is_never_cached(llm: FakeLLM) -> None:
    guard, app = make(llm)
    body = json.dumps(chat("q", stream=True)).encode()
    rec = Recorder(body_message(body))
    original_send = rec.send

    async def send(message: Any) -> None:
        await original_send(message)
        if len(rec.body_messages) == 2:  # the client hangs up after two chunks
            rec.disconnect()
            await asyncio.sleep(0.01)

    await app(http_scope(CHAT, body=body), rec.receive, send)
    assert not parse_sse(rec.body.decode())[1]
    assert await stored(guard) == 0


async def test_more_than_one_choice_is_bypassed(llm: FakeLLM) -> None:
    guard, app = make(llm)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("q", n=2))
        second = await c.post(CHAT, json=chat("q", n=2))
    assert first.headers["x-llmguard-cache"] == second.headers["x-llmguard-cache"] == "bypass"
    assert llm.calls == 2 and await stored(guard) == 0


@pytest.mark.parametrize("prompt", ["what's the weather today", "Latest news about Mars?", "current EUR exchange rate"])
async def test_time_sensitive_prompts_are_bypassed(llm: FakeLLM, prompt: str) -> None:
    guard, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat(prompt))
        second = await c.post(CHAT, json=chat(prompt))
    assert second.headers["x-llmguard-cache"] == "bypass" and llm.calls == 2 and await stored(guard) == 0


async def test_time_sensitive_bypass_can_be_turned_off(llm: FakeLLM) -> None:
    _, app = make(llm, cache_bypass_time_sensitive=False)
    async with client(app) as c:
        await c.post(CHAT, json=chat("what's the weather today"))
        second = await c.post(CHAT, json=chat("what's the weather today"))
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_a_disabled_cache_bypasses_everything(llm: FakeLLM) -> None:
    guard, app = make(llm, cache_enabled=False)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"))
        second = await c.post(CHAT, json=chat("q"))
    assert llm.calls == 2 and guard.cache is None
    assert second.headers.get("x-llmguard-cache") in (None, "bypass")


# --- namespaces and scope ---------------------------------------------------------------------------


BASE: dict[str, Any] = {"content": "how do magnets work", "system": "be brief", "temperature": 0.2}


@pytest.mark.parametrize(
    ("label", "change"),
    [
        ("model", {"model": "other-model"}),
        ("system prompt", {"system": "be verbose"}),
        ("no system prompt", {"system": None}),
        ("temperature", {"temperature": 0.9}),
        ("max_tokens", {"max_tokens": 50}),
        ("earlier turns", {"history": [{"role": "user", "content": "I am a physicist"},
                                       {"role": "assistant", "content": "Noted."}]}),
        ("tools", {"tools": [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]}),
        ("response_format", {"response_format": {"type": "json_object"}}),
        ("last message", {"content": "how do batteries work"}),
    ],
)
async def test_namespaces_never_leak(llm: FakeLLM, label: str, change: dict[str, Any]) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat(**BASE))
        other = await c.post(CHAT, json=chat(**{**BASE, **change}))
        again = await c.post(CHAT, json=chat(**BASE))
    assert other.headers["x-llmguard-cache"] == "miss", label
    assert again.headers["x-llmguard-cache"] == "hit"
    assert llm.calls == 2


async def test_stream_and_user_fields_do_not_split_the_namespace_under_global_scope(llm: FakeLLM) -> None:
    _, app = make(llm, cache_scope="global")
    async with client(app) as c:
        await c.post(CHAT, json=chat("q", user="alice"))
        second = await c.post(CHAT, json=chat("q", user="bob", stream=True))
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_same_tools_hit_the_exact_tier(llm: FakeLLM) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q", tools=tools))
        second = await c.post(CHAT, json=chat("q", tools=tools))
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_different_bearer_tokens_do_not_share_entries_by_default(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"), headers={"authorization": "Bearer alice"})
        bob = await c.post(CHAT, json=chat("q"), headers={"authorization": "Bearer bob"})
        alice = await c.post(CHAT, json=chat("q"), headers={"authorization": "Bearer alice"})
    assert bob.headers["x-llmguard-cache"] == "miss"
    assert alice.headers["x-llmguard-cache"] == "hit"


async def test_different_users_do_not_share_entries_by_default(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q", user="alice"))
        bob = await c.post(CHAT, json=chat("q", user="bob"))
    assert bob.headers["x-llmguard-cache"] == "miss"


async def test_global_scope_shares_entries_across_tokens(llm: FakeLLM) -> None:
    _, app = make(llm, cache_scope="global")
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"), headers={"authorization": "Bearer alice"})
        bob = await c.post(CHAT, json=chat("q"), headers={"authorization": "Bearer bob"})
    assert bob.headers["x-llmguard-cache"] == "hit" and llm.calls == 1


# --- Cache-Control ----------------------------------------------------------------------------------


async def test_no_cache_skips_reading_a_stored_answer(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"))
        fresh = await c.post(CHAT, json=chat("q"), headers={"cache-control": "no-cache"})
        normal = await c.post(CHAT, json=chat("q"))
    assert fresh.headers["x-llmguard-cache"] == "miss"
    assert normal.headers["x-llmguard-cache"] == "hit"
    assert llm.calls == 2


async def test_no_store_skips_writing(llm: FakeLLM) -> None:
    guard, app = make(llm)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("q"), headers={"cache-control": "no-store"})
        second = await c.post(CHAT, json=chat("q"))
    assert first.headers["x-llmguard-cache"] == "miss"
    assert second.headers["x-llmguard-cache"] == "miss" and llm.calls == 2
    assert await stored(guard) == 1  # only the second, unmarked request was kept


async def test_no_store_still_reads_a_stored_answer(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"))
        second = await c.post(CHAT, json=chat("q"), headers={"cache-control": "no-store"})
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_no_cache_and_no_store_together_bypass(llm: FakeLLM) -> None:
    guard, app = make(llm)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("q"), headers={"cache-control": "no-cache, no-store"})
    assert first.headers["x-llmguard-cache"] == "bypass" and await stored(guard) == 0


# --- lifetime and size ------------------------------------------------------------------------------


async def test_an_expired_entry_is_a_miss(llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    _, app = make(llm, cache_ttl_seconds=1)
    async with client(app) as c:
        await c.post(CHAT, json=chat("q"))
        assert (await c.post(CHAT, json=chat("q"))).headers["x-llmguard-cache"] == "hit"
        later = types.SimpleNamespace(time=lambda: time.time() + 1.5)
        monkeypatch.setattr("asgi_llmguard.cache.stores.memory.time", later)
        expired = await c.post(CHAT, json=chat("q"))
    assert expired.headers["x-llmguard-cache"] == "miss" and llm.calls == 2


async def test_the_least_recently_used_entry_is_evicted_beyond_max_entries(llm: FakeLLM) -> None:
    guard, app = make(llm, cache_max_entries=2)
    async with client(app) as c:
        await c.post(CHAT, json=chat("a"))
        await c.post(CHAT, json=chat("b"))
        await c.post(CHAT, json=chat("a"))          # a is now the most recently used
        await c.post(CHAT, json=chat("c"))          # evicts b
        a = await c.post(CHAT, json=chat("a"))
        b = await c.post(CHAT, json=chat("b"))
    assert a.headers["x-llmguard-cache"] == "hit"
    assert b.headers["x-llmguard-cache"] == "miss"
    assert await stored(guard) == 2


# --- single flight ----------------------------------------------------------------------------------


async def test_concurrent_identical_misses_call_the_app_once() -> None:
    llm = FakeLLM(delay=0.1)
    _, app = make(llm)
    async with client(app) as c:
        responses = await asyncio.gather(*(c.post(CHAT, json=chat("same question")) for _ in range(5)))
    statuses = sorted(r.headers["x-llmguard-cache"] for r in responses)
    assert statuses == ["hit", "hit", "hit", "hit", "miss"]
    assert llm.calls == 1
    assert {content(r) for r in responses} == {reply_for("same question")}


async def test_waiters_go_to_the_app_when_the_leader_fails() -> None:
    llm = FakeLLM(delay=0.05, mode="500")
    _, app = make(llm)
    async with client(app) as c:
        responses = await asyncio.gather(*(c.post(CHAT, json=chat("same")) for _ in range(3)))
    assert [r.status_code for r in responses] == [500] * 3
    assert llm.calls == 3


async def test_concurrent_different_prompts_do_not_wait_for_each_other() -> None:
    llm = FakeLLM(delay=0.3)
    _, app = make(llm)
    async with client(app) as c:
        start = time.perf_counter()
        await asyncio.gather(*(c.post(CHAT, json=chat(f"question {i}")) for i in range(5)))
        elapsed = time.perf_counter() - start
    assert llm.calls == 5 and elapsed < 1.2  # one after another would take 1.5 s


# --- invalidation -----------------------------------------------------------------------------------


async def test_invalidate_namespace_and_flush_through_the_api(llm: FakeLLM) -> None:
    guard, app = make(llm)
    async with client(app) as c:
        await c.post(CHAT, json=chat("a", model="m1"))
        await c.post(CHAT, json=chat("b", model="m1"))
        await c.post(CHAT, json=chat("a", model="m2"))
        exchange = llm.exchanges[0]
        assert guard.cache is not None
        removed = await guard.cache.invalidate_namespace(namespace_of(exchange.request, exchange.identity))
        assert removed == 2
        assert (await c.post(CHAT, json=chat("a", model="m1"))).headers["x-llmguard-cache"] == "miss"
        assert (await c.post(CHAT, json=chat("a", model="m2"))).headers["x-llmguard-cache"] == "hit"
        await guard.cache.flush()
        assert await stored(guard) == 0
        assert (await c.post(CHAT, json=chat("a", model="m2"))).headers["x-llmguard-cache"] == "miss"


ADMIN = "/admin/cache"


async def test_admin_endpoint_flushes_and_invalidates_with_the_token(llm: FakeLLM) -> None:
    guard, app = make(llm, cache_admin_path=ADMIN, admin_token="t")
    auth = {"authorization": "Bearer t"}
    async with client(app) as c:
        await c.post(CHAT, json=chat("a", model="m1"))
        await c.post(CHAT, json=chat("b", model="m2"))
        exchange = llm.exchanges[0]
        namespace = namespace_of(exchange.request, exchange.identity)
        by_namespace = await c.post(ADMIN, json={"action": "invalidate_namespace", "namespace": namespace},
                                    headers=auth)
        assert by_namespace.status_code == 200 and by_namespace.json() == {"removed": 1}
        assert (await c.post(CHAT, json=chat("a", model="m1"))).headers["x-llmguard-cache"] == "miss"
        by_id = await c.post(ADMIN, json={"action": "invalidate_entry", "id": 2}, headers=auth)
        assert by_id.json() == {"removed": 1}
        assert (await c.post(CHAT, json=chat("b", model="m2"))).headers["x-llmguard-cache"] == "miss"
        flushed = await c.post(ADMIN, json={"action": "flush"}, headers=auth)
        assert flushed.json() == {"flushed": True} and await stored(guard) == 0


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": "Basic t"}])
async def test_admin_endpoint_refuses_a_wrong_or_missing_token(llm: FakeLLM, headers: dict[str, str]) -> None:
    guard, app = make(llm, cache_admin_path=ADMIN, admin_token="t")
    async with client(app) as c:
        await c.post(CHAT, json=chat("a"))
        response = await c.post(ADMIN, json={"action": "flush"}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert await stored(guard) == 1


async def test_admin_endpoint_refuses_bad_methods_and_actions(llm: FakeLLM) -> None:
    _, app = make(llm, cache_admin_path=ADMIN, admin_token="t")
    auth = {"authorization": "Bearer t"}
    async with client(app, **auth) as c:
        get = await c.get(ADMIN)
        unknown = await c.post(ADMIN, json={"action": "explode"})
        not_json = await c.post(ADMIN, content=b"{", headers={"content-type": "application/json"})
    assert get.status_code == 405
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "action"
    assert not_json.status_code == 400


async def test_admin_endpoint_is_off_unless_configured(llm: FakeLLM) -> None:
    _, app = make(llm)
    async with client(app) as c:
        response = await c.post(ADMIN, json={"action": "flush"}, headers={"authorization": "Bearer t"})
    assert response.status_code == 404  # the app's own answer: the stack serves nothing there


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_with_a_lone_surrogate_never_breaks_a_later_hit(stream: bool) -> None:
    answer = b'{"choices":[{"index":0,"message":{"role":"assistant","content":"ok \\ud800"},"finish_reason":"stop"}]}'

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": answer})

    guard = Guard(cache_semantic=False)
    async with client(guard.wrap(app)) as c:
        await c.post(CHAT, json=chat("q"))
        second = await c.post(CHAT, json=chat("q", stream=stream))
    assert second.status_code == 200


@pytest.mark.parametrize(
    ("prompt", "sensitive"),
    [
        ("Who is the current president of France?", True),
        ("What's on TV tonight?", True),
        ("How is Apple stock doing right now?", True),
        ("Any recent developments in fusion energy?", True),
        # Time words that tell the asker's story do not make the answer change with the clock.
        ("I have had a cough for a week now, what should I take?", False),
        ("My doctor said yesterday that my blood pressure is 150/90. Is that dangerous?", False),
        ("I am currently taking ibuprofen. Can I drink alcohol?", False),
        # The weather is asked about; the climate is not the clock's.
        ("nyc weather", True),
        ("What's the weather forecast for Paris?", True),
        ("What's the weather like in Tokyo in August?", False),
        ("Describe the weather on Mars", False),
        ("What's the difference between weather and climate?", False),
        # Text handed over to work on, and code that reads the clock, are not asked about.
        ("Translate 'see you tomorrow' into Italian", False),
        ("Summarize this news article: The council voted today to approve new bike lanes.", False),
        ("Proofread this: Their going to the store tomorrow.", False),
        ("Explain: why is the Apple stock price falling today?", True),  # a question after the colon, no payload
        ("What's in the news today?", True),
        ("How do I get the current date in JavaScript?", False),
        ("What is the current date?", True),
        ("Write a bash one-liner that counts the files in the current directory", False),
        ("What's the latest version of Python?", True),
        # Words that only look like the clock.
        ("Write a catchy headline for a blog post about saving money", False),
        ("Why do some people ghost instead of breaking up?", False),
        ("What causes a stock market crash?", False),
        ("How is the stock market doing?", True),
        ("What time is it in Tokyo when it's 9 am in London?", False),
        ("What time is it in Tokyo?", True),
    ],
)
def test_time_words_count_when_they_ask_about_the_world_not_when_they_tell_a_story(
    prompt: str, sensitive: bool
) -> None:
    from asgi_llmguard.cache.time_sensitive import is_time_sensitive

    assert is_time_sensitive(prompt) is sensitive
