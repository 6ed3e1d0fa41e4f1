"""The stack around real tiny ASGI apps: what passes untouched, body read and replay, lifespan, layers alone."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from apps import CHAT, COMPLETIONS, FakeLLM, Recorder, body_message, chat, client, http_scope, parse_sse
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from asgi_llmguard import (
    Exchange,
    Guard,
    LLMGuardMiddleware,
    MetricsMiddleware,
    ModelRouterMiddleware,
    RateLimitMiddleware,
    SemanticCacheMiddleware,
    SSEPassthroughMiddleware,
    get_exchange,
)
from asgi_llmguard.core.exchange import SCOPE_KEY

BODY = json.dumps(chat("hello there")).encode()


@pytest.fixture
def guard() -> Guard:
    return Guard(cache_semantic=False)


@pytest.fixture
def llm() -> FakeLLM:
    return FakeLLM()


class RawApp:
    """A raw ASGI app that records what it is given and answers in chunks, optionally waiting on a gate."""

    def __init__(self, chunks: tuple[bytes, ...] = (b"one", b"two", b"three"), *, read_body: bool = False,
                 content_type: bytes = b"text/plain") -> None:
        self.chunks = chunks
        self.read_body = read_body
        self.content_type = content_type
        self.gate = asyncio.Event()
        self.gated = False
        self.calls: list[tuple[dict[str, Any], Any, Any]] = []
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.calls.append((scope, receive, send))
        if scope["type"] != "http":
            self.received.append(await receive())
            return
        if self.read_body:
            self.received.append(await receive())
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", self.content_type)]})
        for index, chunk in enumerate(self.chunks):
            last = index == len(self.chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": not last})
            if index == 0 and self.gated:
                await self.gate.wait()


async def until(condition: Any, limit: float = 2.0) -> None:
    """Poll a condition another task makes true (the app and the stack run as their own task)."""
    async with asyncio.timeout(limit):
        while not condition():  # noqa: ASYNC110 - the condition is plain state, there is no event to wait on
            await asyncio.sleep(0.001)


# --- what the stack leaves alone --------------------------------------------------------------------


async def test_non_guarded_path_reaches_the_app_with_the_same_receive_send_and_scope(guard: Guard) -> None:
    raw = RawApp(read_body=True)
    rec = Recorder(body_message(b"anything at all"))
    receive, send = rec.receive, rec.send
    scope = http_scope("/other", body=b"anything at all")
    await guard.wrap(raw)(scope, receive, send)
    app_scope, app_receive, app_send = raw.calls[0]
    assert app_receive is receive and app_send is send
    assert app_scope is scope and SCOPE_KEY not in scope
    assert raw.received == [body_message(b"anything at all")]
    assert not guard.started  # nothing guarded happened, nothing was opened


async def test_get_on_a_guarded_path_reaches_the_app_untouched(guard: Guard) -> None:
    raw = RawApp(read_body=True)
    rec = Recorder(body_message(b""))
    receive = rec.receive
    await guard.wrap(raw)(http_scope(CHAT, method="GET"), receive, rec.send)
    assert raw.calls[0][1] is receive
    assert SCOPE_KEY not in raw.calls[0][0]
    assert rec.body == b"onetwothree"


async def test_non_guarded_response_is_streamed_chunk_by_chunk_not_buffered(guard: Guard) -> None:
    raw = RawApp()
    raw.gated = True
    rec = Recorder()
    task = asyncio.create_task(guard.wrap(raw)(http_scope("/other", method="GET"), rec.receive, rec.send))
    await until(lambda: len(rec.body_messages) == 1)  # the first chunk is out while the app still waits
    assert rec.body_messages[0]["body"] == b"one" and not task.done()
    raw.gate.set()
    await task
    assert [m["body"] for m in rec.body_messages] == [b"one", b"two", b"three"]
    assert [m["more_body"] for m in rec.body_messages] == [True, True, False]


async def test_guarded_streamed_response_reaches_the_client_before_the_app_finishes(guard: Guard) -> None:
    events = (b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n',
              b'data: {"choices":[{"index":0,"delta":{"content":"b"},"finish_reason":"stop"}]}\n\n',
              b"data: [DONE]\n\n")
    raw = RawApp(events, read_body=True, content_type=b"text/event-stream")
    raw.gated = True
    rec = Recorder(body_message(BODY))
    task = asyncio.create_task(guard.wrap(raw)(http_scope(CHAT, body=BODY), rec.receive, rec.send))
    await until(lambda: len(rec.body_messages) == 1)
    assert rec.body_messages[0]["body"] == events[0] and not task.done()
    assert rec.headers[b"x-llmguard-cache"] == b"miss"
    raw.gate.set()
    await task
    assert [m["body"] for m in rec.body_messages] == list(events)


async def test_websocket_scope_passes_through_untouched(guard: Guard) -> None:
    raw = RawApp()
    rec = Recorder({"type": "websocket.connect"})
    receive, send = rec.receive, rec.send
    scope = {"type": "websocket", "path": CHAT, "headers": [], "asgi": {"version": "3.0"}}
    await guard.wrap(raw)(scope, receive, send)
    assert raw.calls[0][0] is scope and raw.calls[0][1] is receive and raw.calls[0][2] is send
    assert raw.received == [{"type": "websocket.connect"}]


# --- lifespan and lazy start ------------------------------------------------------------------------


def lifespan_app(events: list[str]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    return Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))], lifespan=lifespan)


async def test_lifespan_opens_and_closes_the_guard_and_reaches_the_app(guard: Guard) -> None:
    events: list[str] = []
    async with LifespanManager(guard.wrap(lifespan_app(events))):
        assert guard.started and guard.cache is not None
        assert events == ["startup"]
    assert not guard.started and guard.cache is None
    assert events == ["startup", "shutdown"]


async def test_lifespan_works_through_install_on_a_starlette_app(guard: Guard) -> None:
    events: list[str] = []
    app = lifespan_app(events)
    guard.install(app)
    async with LifespanManager(app):
        assert guard.started
    assert events == ["startup", "shutdown"] and not guard.started


async def test_without_lifespan_concurrent_first_requests_open_the_guard_once(guard: Guard, llm: FakeLLM) -> None:
    opened = 0
    original = guard._open_cache

    async def counting() -> Any:
        nonlocal opened
        opened += 1
        await asyncio.sleep(0.02)  # a slow open, so the requests overlap it
        return await original()

    guard._open_cache = counting  # type: ignore[method-assign]
    async with client(guard.wrap(llm.app)) as c:
        responses = await asyncio.gather(*(c.post(CHAT, json=chat(f"question {i}")) for i in range(5)))
    assert [r.status_code for r in responses] == [200] * 5
    assert opened == 1 and guard.started


# --- body read and replay ---------------------------------------------------------------------------


async def test_app_receives_the_exact_body_once_then_receive_waits_for_the_disconnect(guard: Guard) -> None:
    original = b'{ "messages":[{"role":"user","content":"hi"}],   "model":"m", "extra": 1 }'
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(await receive())
        waiting = asyncio.create_task(receive())
        await asyncio.sleep(0.05)
        seen.append(waiting.done())  # must still be waiting: answering at once would spin a disconnect poller
        seen.append(await waiting)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    rec = Recorder(body_message(original))
    task = asyncio.create_task(guard.wrap(app)(http_scope(CHAT, body=original), rec.receive, rec.send))
    await until(lambda: len(seen) == 2)
    assert seen[0] == {"type": "http.request", "body": original, "more_body": False}
    assert seen[1] is False
    rec.disconnect()
    await task
    assert seen[2] == {"type": "http.disconnect"}


async def test_body_sent_in_several_chunks_is_reassembled(guard: Guard) -> None:
    raw = RawApp(read_body=True)
    parts = [BODY[:5], BODY[5:20], BODY[20:]]
    rec = Recorder(body_message(parts[0], True), body_message(parts[1], True), {"type": "http.request",
                                                                                  "body": parts[2]})
    scope = http_scope(CHAT, headers=[(b"content-type", b"application/json")])  # no Content-Length
    await guard.wrap(raw)(scope, rec.receive, rec.send)
    assert raw.received[0]["body"] == BODY
    assert rec.status == 200


async def test_client_gone_while_the_body_is_read_calls_nothing(guard: Guard) -> None:
    raw = RawApp(read_body=True)
    rec = Recorder(body_message(BODY[:10], True), {"type": "http.disconnect"})
    await guard.wrap(raw)(http_scope(CHAT), rec.receive, rec.send)
    assert raw.calls == [] and rec.sent == []


async def test_body_over_the_limit_with_an_honest_content_length_is_a_413() -> None:
    guard = Guard(cache_semantic=False, max_body_bytes=100)
    raw = RawApp(read_body=True)
    big = json.dumps(chat("x" * 500)).encode()
    rec = Recorder(body_message(big))
    await guard.wrap(raw)(http_scope(CHAT, body=big), rec.receive, rec.send)
    assert_413(rec)
    assert rec.receive_calls == 0  # refused on the header, before reading
    assert raw.calls == []


@pytest.mark.parametrize("content_length", [b"10", None])
async def test_body_over_the_limit_is_a_413_when_content_length_lies_or_is_absent(
        content_length: bytes | None) -> None:
    guard = Guard(cache_semantic=False, max_body_bytes=100)
    raw = RawApp(read_body=True)
    big = json.dumps(chat("x" * 500)).encode()
    headers = [(b"content-type", b"application/json")]
    if content_length is not None:
        headers.append((b"content-length", content_length))
    rec = Recorder(*(body_message(big[i:i + 50], True) for i in range(0, len(big), 50)), body_message(b""))
    await guard.wrap(raw)(http_scope(CHAT, headers=headers), rec.receive, rec.send)
    assert_413(rec)
    assert raw.calls == []


def assert_413(rec: Recorder) -> None:
    assert rec.status == 413
    error = json.loads(rec.body)["error"]
    assert error["code"] == "request_too_large" and error["type"] == "invalid_request_error"
    assert rec.headers[b"content-type"] == b"application/json"


async def test_a_non_numeric_content_length_is_a_400(guard: Guard) -> None:
    rec = Recorder(body_message(BODY))
    headers = [(b"content-type", b"application/json"), (b"content-length", b"lots")]
    await guard.wrap(RawApp())(http_scope(CHAT, headers=headers), rec.receive, rec.send)
    assert rec.status == 400 and "error" in json.loads(rec.body)


async def test_invalid_requests_get_openai_errors_and_never_reach_the_app(guard: Guard, llm: FakeLLM) -> None:
    async with client(guard.wrap(llm.app)) as c:
        bad_json = await c.post(CHAT, content=b"{nope", headers={"content-type": "application/json"})
        no_model = await c.post(CHAT, json={"messages": [{"role": "user", "content": "x"}]})
        form = await c.post(CHAT, content=BODY, headers={"content-type": "text/plain"})
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    assert no_model.status_code == 400 and no_model.json()["error"]["param"] == "model"
    assert form.status_code == 415 and form.json()["error"]["code"] == "unsupported_media_type"
    assert llm.calls == 0


# --- the exchange and the router --------------------------------------------------------------------


async def test_get_exchange_in_the_app_returns_the_parsed_request(guard: Guard, llm: FakeLLM) -> None:
    async with client(guard.wrap(llm.app)) as c:
        response = await c.post(CHAT, json=chat("what is two plus two", temperature=0.5))
    assert response.status_code == 200
    exchange = llm.exchanges[0]
    assert isinstance(exchange, Exchange)
    assert exchange.request.model == "gpt-test" and exchange.request.last_user_text() == "what is two plus two"
    assert exchange.request.payload["temperature"] == 0.5
    assert exchange.cache_status == "miss"


async def test_get_exchange_is_none_outside_a_guarded_request(guard: Guard) -> None:
    seen: list[Any] = []

    async def endpoint(request: Request) -> PlainTextResponse:
        seen.append(get_exchange(request.scope))
        return PlainTextResponse("x")

    app = Starlette(routes=[Route("/other", endpoint)])
    async with client(guard.wrap(app)) as c:
        await c.get("/other")
    assert seen == [None]


async def test_router_alias_reaches_the_app_as_the_chosen_model_with_a_correct_content_length(llm: FakeLLM) -> None:
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["small-model", "large-model"]})
    async with client(guard.wrap(llm.app)) as c:
        short = await c.post(CHAT, json=chat("hi", model="auto"))
        long = await c.post(CHAT, json=chat("Prove that the square root of 2 is irrational, then derive a bound on "
                                            "how well rationals approximate it.", model="auto"))
        plain = await c.post(CHAT, json=chat("hi", model="gpt-test"))
    assert short.headers["x-llmguard-model"] == "small-model"
    assert long.headers["x-llmguard-model"] == "large-model"
    assert "x-llmguard-model" not in plain.headers
    for body, headers, model in zip(llm.bodies, llm.headers, ["small-model", "large-model", "gpt-test"], strict=True):
        assert json.loads(body)["model"] == model
        assert int(headers["content-length"]) == len(body)
    assert llm.exchanges[0].routed_model == "small-model"
    assert short.json()["model"] == "small-model"


async def test_router_picks_among_three_tiers_with_configured_thresholds(llm: FakeLLM) -> None:
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["s", "m", "l"]}, router_thresholds=[0.3, 0.6])
    prompts = {
        "s": "What is the capital of France?",
        "l": "Design a sharded, replicated key-value store: derive its consistency guarantees, prove the "
             "failover protocol correct, and write the Python code for the leader election step by step.",
    }
    async with client(guard.wrap(llm.app)) as c:
        for tier, text in prompts.items():
            response = await c.post(CHAT, json=chat(text, model="auto"))
            assert response.headers["x-llmguard-model"] == tier, text
    assert [json.loads(body)["model"] for body in llm.bodies] == ["s", "l"]
    assert [e.extras["complexity"] for e in llm.exchanges] == sorted(e.extras["complexity"] for e in llm.exchanges)


async def test_router_rewrite_keeps_every_other_field(llm: FakeLLM) -> None:
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["only"]})
    sent = chat("héllo ✓", model="auto", temperature=0.3, tools=[{"type": "function", "function": {"name": "f"}}])
    async with client(guard.wrap(llm.app)) as c:
        await c.post(CHAT, json=sent)
    assert json.loads(llm.bodies[0]) == {**sent, "model": "only"}


async def test_identity_is_hashed_and_no_raw_token_is_kept(guard: Guard, llm: FakeLLM) -> None:
    token = "sk-very-secret-token-123"
    async with client(guard.wrap(llm.app), authorization=f"Bearer {token}") as c:
        await c.post(CHAT, json=chat("hi"))
        await c.post(CHAT, json=chat("hi", user="alice@example.com"), headers={"authorization": ""})
    keyed, by_user = llm.exchanges
    assert keyed.identity.startswith("key:") and token not in keyed.identity
    assert by_user.identity.startswith("addr:")  # the body's user names no identity ...
    assert by_user.cache_identity.startswith(by_user.identity + "/user:")  # ... it narrows the cache's
    assert "alice" not in by_user.cache_identity
    for exchange in (keyed, by_user):
        fields = {k: v for k, v in vars(exchange).items() if k not in ("scope", "raw_body", "request")} \
            if hasattr(exchange, "__dict__") else {}
        assert token not in repr(fields)
    assert guard.cache is not None
    for entry in guard.cache.store._entries.values():  # type: ignore[attr-defined]
        assert token not in entry.namespace and token not in entry.exact_key


async def test_custom_identity_callable_is_used_and_hashed(llm: FakeLLM) -> None:
    guard = Guard(cache_semantic=False, identity=lambda scope, request: "tenant-7")
    async with client(guard.wrap(llm.app)) as c:
        await c.post(CHAT, json=chat("hi"), headers={"authorization": "Bearer a"})
        second = await c.post(CHAT, json=chat("hi"), headers={"authorization": "Bearer b"})
    assert llm.exchanges[0].identity.startswith("app:") and "tenant-7" not in llm.exchanges[0].identity
    assert second.headers["x-llmguard-cache"] == "hit"  # same tenant, different keys: one identity


# --- failures propagate -----------------------------------------------------------------------------


async def test_an_exception_from_the_app_propagates_and_nothing_is_cached(guard: Guard, llm: FakeLLM) -> None:
    llm.mode = "raise"
    async with client(guard.wrap(llm.app)) as c:
        with pytest.raises(RuntimeError, match="the app failed"):
            await c.post(CHAT, json=chat("hi"))
        llm.mode = "ok"
        again = await c.post(CHAT, json=chat("hi"))
    assert again.headers["x-llmguard-cache"] == "miss" and llm.calls == 2


async def test_an_exception_mid_stream_propagates_and_nothing_is_cached(guard: Guard) -> None:
    calls = 0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal calls
        calls += 1
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "more_body": True,
                    "body": b'data: {"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'})
        raise RuntimeError("stream broke")

    stack = guard.wrap(app)
    rec = Recorder(body_message(BODY))
    with pytest.raises(RuntimeError, match="stream broke"):
        await stack(http_scope(CHAT, body=BODY), rec.receive, rec.send)
    assert guard.cache is not None and await guard.cache.store.count() == 0


async def test_an_exception_after_a_complete_response_is_not_cached(guard: Guard) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"},
                                        "finish_reason": "stop"}]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        raise RuntimeError("after the response")

    rec = Recorder(body_message(BODY))
    with pytest.raises(RuntimeError):
        await guard.wrap(app)(http_scope(CHAT, body=BODY), rec.receive, rec.send)
    assert guard.cache is not None and await guard.cache.store.count() == 0


async def test_an_exception_from_send_propagates(guard: Guard, llm: FakeLLM) -> None:
    async def broken_send(message: Any) -> None:
        raise OSError("socket closed")

    rec = Recorder(body_message(BODY))
    with pytest.raises(OSError, match="socket closed"):
        await guard.wrap(llm.app)(http_scope(CHAT, body=BODY), rec.receive, broken_send)


# --- mounting ---------------------------------------------------------------------------------------


async def test_install_on_a_starlette_app_guards_its_endpoint(guard: Guard, llm: FakeLLM) -> None:
    guard.install(llm.app)
    async with client(llm.app) as c:
        first = await c.post(CHAT, json=chat("hi"))
        second = await c.post(CHAT, json=chat("hi"))
    assert (first.headers["x-llmguard-cache"], second.headers["x-llmguard-cache"]) == ("miss", "hit")
    assert llm.calls == 1


async def test_add_middleware_with_llmguard_middleware_works_on_fastapi(guard: Guard) -> None:
    app = FastAPI()
    calls = 0

    @app.post(CHAT)
    async def completions(payload: dict[str, Any]) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        return {"id": "x", "object": "chat.completion", "created": 1, "model": payload["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"},
                             "finish_reason": "stop"}]}

    app.add_middleware(LLMGuardMiddleware, guard=guard)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("hi"))
        second = await c.post(CHAT, json=chat("hi"))
    assert first.json()["choices"][0]["message"]["content"] == "fine"
    assert second.headers["x-llmguard-cache"] == "hit" and calls == 1


async def test_starlette_middleware_list_with_llmguard_middleware_and_settings(llm: FakeLLM) -> None:
    app = Starlette(routes=llm.app.routes, middleware=[Middleware(LLMGuardMiddleware, cache_semantic=False)])
    async with client(app) as c:
        await c.post(CHAT, json=chat("hi"))
        second = await c.post(CHAT, json=chat("hi"))
    assert second.headers["x-llmguard-cache"] == "hit"


async def test_semantic_cache_layer_works_alone(guard: Guard, llm: FakeLLM) -> None:
    async with client(SemanticCacheMiddleware(llm.app, guard=guard)) as c:
        first = await c.post(CHAT, json=chat("hi"))
        second = await c.post(CHAT, json=chat("hi"))
    assert (first.headers["x-llmguard-cache"], second.headers["x-llmguard-cache"]) == ("miss", "hit")
    assert second.json()["choices"][0]["message"]["content"] == first.json()["choices"][0]["message"]["content"]
    assert llm.calls == 1


async def test_model_router_layer_works_alone_from_settings(llm: FakeLLM) -> None:
    app = ModelRouterMiddleware(llm.app, router_aliases={"auto": ["small"]}, cache_semantic=False)
    async with client(app) as c:
        response = await c.post(CHAT, json=chat("hi", model="auto"))
    assert response.headers["x-llmguard-model"] == "small"
    assert json.loads(llm.bodies[0])["model"] == "small"
    assert "x-llmguard-cache" not in response.headers  # no cache layer here


@pytest.mark.parametrize("layer", [RateLimitMiddleware, SSEPassthroughMiddleware, MetricsMiddleware])
async def test_pass_through_layers_work_alone(layer: type, guard: Guard, llm: FakeLLM) -> None:
    async with client(layer(llm.app, guard=guard)) as c:
        response = await c.post(CHAT, json=chat("hi"))
        other = await c.get("/other")
    assert response.status_code == 200 and other.text == "other"
    assert llm.exchanges[0] is not None  # the layer opened the exchange itself


async def test_metrics_layer_alone_serves_the_metrics_path_with_the_request_counted(guard: Guard,
                                                                                    llm: FakeLLM) -> None:
    async with client(MetricsMiddleware(llm.app, guard=guard)) as c:
        await c.post(CHAT, json=chat("hi"))
        metrics = await c.get("/metrics")
    assert metrics.status_code == 200
    assert 'llmguard_requests_total{cache="none",outcome="2xx",route="/v1/chat/completions"} 1.0' in metrics.text


async def test_completions_endpoint_is_guarded_too(guard: Guard, llm: FakeLLM) -> None:
    async with client(guard.wrap(llm.app)) as c:
        first = await c.post(COMPLETIONS, json={"model": "m", "prompt": "say hi"})
        second = await c.post(COMPLETIONS, json={"model": "m", "prompt": "say hi"})
    assert first.json()["choices"][0]["text"] == second.json()["choices"][0]["text"]
    assert second.headers["x-llmguard-cache"] == "hit" and llm.calls == 1


async def test_default_guard_with_a_model_dir_starts_and_stops(model_dir: Any, llm: FakeLLM) -> None:
    guard = Guard(embedding_model_dir=str(model_dir))
    async with LifespanManager(guard.wrap(llm.app)) as manager:
        assert guard.started and guard.cache is not None and guard.cache.embedder is not None
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c:
            response = await c.post(CHAT, json=chat("how do I boil an egg", stream=True))
        assert parse_sse(response.text)[1]
    assert not guard.started


async def test_stack_error_answers_are_json(guard: Guard) -> None:
    app = Starlette(routes=[Route(CHAT, lambda r: JSONResponse({}), methods=["POST"])])
    async with client(guard.wrap(app)) as c:
        response = await c.post(CHAT, content=b"[]", headers={"content-type": "application/json"})
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)


async def test_a_model_that_cannot_load_leaves_the_exact_tier_working(tmp_path: Any, llm: FakeLLM) -> None:
    guard = Guard(embedding_model_dir=str(tmp_path / "no-model-here"))
    async with LifespanManager(guard.wrap(llm.app)) as manager:
        assert guard.started and guard.cache is not None and guard.cache.embedder is None
        async with client(manager.app) as c:
            await c.post(CHAT, json=chat("hi"))
            second = await c.post(CHAT, json=chat("hi"))
    assert second.headers["x-llmguard-cache"] == "hit"
    assert guard.metrics is not None
    assert guard.metrics.registry.get_sample_value("llmguard_degraded_total", {"part": "embedding_load"}) == 1.0


async def test_a_guard_that_cannot_start_serves_the_request_unguarded(guard: Guard, llm: FakeLLM) -> None:
    async def broken_open() -> Any:
        raise ConnectionError("the store is down")

    guard._open_cache = broken_open  # type: ignore[method-assign]
    async with client(guard.wrap(llm.app)) as c:
        response = await c.post(CHAT, json=chat("hi"))
    assert response.status_code == 200 and llm.calls == 1
    assert json.loads(llm.bodies[0]) == chat("hi")
    assert "x-llmguard-cache" not in response.headers and not guard.started


@pytest.mark.parametrize(
    "raw",
    [
        b'{"model":"m","messages":[{"role":"user","content":"hi \\ud800"}]}',
        b'{"model":"m","messages":[{"role":"system","content":"\\udfff"},{"role":"user","content":"hi"}]}',
        b'{"model":"auto","messages":[{"role":"user","content":"hi"}],"metadata":{"k":"\\ud800"}}',
    ],
    ids=["last-message", "system-prompt", "routed"],
)
async def test_a_lone_surrogate_in_the_request_is_a_400_and_never_reaches_the_app(raw: bytes) -> None:
    # No UTF-8 encoder (the app's, a tokenizer's, Redis's) could carry the string further.
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["small"]})
    called = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(scope)
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"app"})

    async with client(guard.wrap(app)) as c:
        response = await c.post(CHAT, content=raw, headers={"content-type": "application/json"})
        paired = await c.post(CHAT, content=b'{"model":"m","messages":[{"role":"user","content":"\\ud83d\\ude00"}]}',
                              headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_json"
    assert "surrogate" in response.json()["error"]["message"]
    assert paired.text == "app" and len(called) == 1  # a surrogate pair is an emoji, not an error


@pytest.mark.parametrize("field", ["tools", "metadata"])
async def test_deeply_nested_bodies_get_a_400_or_reach_the_app(field: str) -> None:
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["small"]})

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"app"})

    async with client(guard.wrap(app)) as c:
        for depth in range(850, 1000, 2):  # the window between what json.loads and a deeper json.dumps survive
            nested = "[" * depth + "]" * depth
            value = f"[{nested}]" if field == "tools" else f'{{"a":{nested}}}'
            model = "m" if field == "tools" else "auto"
            raw = f'{{"model":"{model}","messages":[{{"role":"user","content":"hi"}}],"{field}":{value}}}'
            response = await c.post(CHAT, content=raw.encode(), headers={"content-type": "application/json"})
            assert response.status_code == 400 or response.text == "app", depth
