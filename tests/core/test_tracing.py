"""OpenTelemetry tracing: one span per guarded request, a child per stage, W3C context in and out.

Each test gives the Guard its own SDK TracerProvider with an InMemorySpanExporter behind a
SimpleSpanProcessor (spans are exported the moment they end), drives real apps in process and
reads the finished spans: names, parents, attributes, and the ``traceparent`` an upstream saw.
The tracing-off tests run in a fresh interpreter, where ``sys.modules`` tells whether anything of
ours imported opentelemetry.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from apps import CHAT, FakeLLM, Recorder, body_message, chat, client, http_scope
from opentelemetry import trace as trace_api
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_llmguard import ConfigurationError, Guard, LLMProxy, Settings
from asgi_llmguard.core.exchange import hash_identity
from demo_app.mock_llm import create_mock_llm

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM = "http://upstream.test/v1"
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN_ID = "b7ad6b7169203331"
CLIENT_TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN_ID}-01"
WAIT = 20.0


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider
    provider.shutdown()


@pytest.fixture
async def guards() -> AsyncIterator[list[Guard]]:
    """Guards to shut down after the test (they may hold the embedding model)."""
    made: list[Guard] = []
    yield made
    for guard in made:
        await guard.shutdown()


async def started(guards: list[Guard], provider: TracerProvider, **settings: Any) -> Guard:
    settings.setdefault("cache_semantic", False)
    guard = Guard(tracing=True, tracer_provider=provider, **settings)
    await guard.startup()
    guards.append(guard)
    return guard


def proxy_behind(guard: Guard, upstream_app: Any, urls: Sequence[str] = (UPSTREAM,)) -> Any:
    """guard's stack in front of LLMProxy, in front of an in-process upstream."""
    upstream_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream_app))
    proxy = LLMProxy([{"url": url} for url in urls], guard=guard, client=upstream_client)
    return guard.wrap(proxy)


def hexid(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def request_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == "llmguard.request"]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """The parent's direct children among ``spans``, in the order they started."""
    found = [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]
    return sorted(found, key=lambda s: s.start_time or 0)


def names(spans: Sequence[ReadableSpan]) -> list[str]:
    return [s.name for s in spans]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, names(spans)
    return matching[0]


def all_attribute_text(exporter: InMemorySpanExporter) -> str:
    """Every attribute and event attribute of every span, as one string to search."""
    parts: list[str] = []
    for span in exporter.get_finished_spans():
        parts.append(span.name)
        parts.extend(f"{k}={v}" for k, v in (span.attributes or {}).items())
        for event in span.events:
            parts.extend(f"{k}={v}" for k, v in (event.attributes or {}).items())
        if span.status.description:
            parts.append(span.status.description)
    return "\n".join(parts)


# --- the span tree --------------------------------------------------------------------------------------


@pytest.mark.model
async def test_a_miss_an_exact_hit_and_a_semantic_hit_each_make_their_span_tree(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter, model_dir: Path
) -> None:
    guard = await started(guards, provider, cache_semantic=True, embedding_model_dir=str(model_dir),
                          rate_limit_rpm=100, router_aliases={"auto": ["mock-small", "mock-large"]})
    app = proxy_behind(guard, create_mock_llm(ttft_ms=0, token_ms=0))
    prompts = ["What is the capital of France?", "What is the capital of France?", "What's the capital of France?"]
    responses = []
    async with client(app, authorization="Bearer sk-alice") as c:
        for prompt in prompts:
            exporter.clear()
            response = await c.post(CHAT, json=chat(prompt, model="auto"))
            assert response.status_code == 200
            responses.append((response, list(exporter.get_finished_spans())))

    # 1. The miss: every stage of the lookup, the upstream call, and the answer kept afterwards.
    response, spans = responses[0]
    assert response.headers["x-llmguard-cache"] == "miss"
    request = one(spans, "llmguard.request")
    assert request.parent is None and request.kind == SpanKind.SERVER
    assert {s.context.trace_id for s in spans} == {request.context.trace_id}
    stages = children(spans, request)
    assert names(stages) == ["llmguard.ratelimit", "llmguard.cache.exact", "llmguard.embedding",
                             "llmguard.index.search", "llmguard.upstream", "llmguard.cache.store"]
    assert len(spans) == 7  # nothing else, nothing nested deeper
    usage = response.json()["usage"]
    attributes = dict(request.attributes or {})
    assert attributes["llmguard.cache.status"] == "miss"
    assert attributes["gen_ai.request.model"] == "auto"
    assert attributes["llmguard.routed_model"] == "mock-small"
    assert attributes["gen_ai.response.model"] == "mock-small"
    assert attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"] > 0
    assert attributes["http.response.status_code"] == 200
    assert attributes["llmguard.backend"] == UPSTREAM
    assert attributes["llmguard.identity"] == hash_identity("key", "sk-alice")
    assert "llmguard.cache.similarity" not in attributes
    assert request.status.status_code == StatusCode.UNSET
    ratelimit, exact, embedding, search, upstream, store = stages
    assert ratelimit.attributes == {"llmguard.ratelimit.admitted": True, "llmguard.ratelimit.limits": ("requests",)}
    assert exact.attributes == {"llmguard.cache.found": False}
    assert embedding.attributes == {"llmguard.embedding.ok": True}
    assert search.attributes == {"llmguard.index.results": 0}
    assert upstream.kind == SpanKind.CLIENT
    assert upstream.attributes == {"llmguard.backend": UPSTREAM, "llmguard.upstream.attempt": 1,
                                   "http.response.status_code": 200}
    assert isinstance((store.attributes or {})["llmguard.cache.entry_id"], int)
    # The request span ends last: after the finishers that stored the answer.
    assert all((s.end_time or 0) <= (request.end_time or 0) for s in stages)

    # 2. The exact hit: found at once and replayed; nothing upstream.
    response, spans = responses[1]
    assert response.headers["x-llmguard-cache"] == "hit"
    request = one(spans, "llmguard.request")
    stages = children(spans, request)
    assert names(stages) == ["llmguard.ratelimit", "llmguard.cache.exact", "llmguard.cache.replay"]
    assert len(spans) == 4
    assert (stages[1].attributes or {})["llmguard.cache.found"] is True
    assert stages[2].attributes == {"llmguard.cache.tier": "exact", "llmguard.stream": False,
                                    "llmguard.cache.entry_id": (store.attributes or {})["llmguard.cache.entry_id"]}
    attributes = dict(request.attributes or {})
    assert attributes["llmguard.cache.status"] == "hit"
    assert attributes["llmguard.cache.tier"] == "exact"
    assert "llmguard.cache.similarity" not in attributes
    assert "llmguard.routed_model" not in attributes and "llmguard.backend" not in attributes
    assert attributes["gen_ai.request.model"] == "auto"
    assert attributes["gen_ai.response.model"] == "mock-small"
    # A hit spent no tokens: the answer's usage is reported as saved, not as usage.
    assert attributes["llmguard.tokens_saved.input"] == usage["prompt_tokens"]
    assert attributes["llmguard.tokens_saved.output"] == usage["completion_tokens"]
    assert "gen_ai.usage.input_tokens" not in attributes

    # 3. The semantic hit: embedded, searched, verified, replayed.
    response, spans = responses[2]
    assert response.headers["x-llmguard-cache"] == "hit"
    request = one(spans, "llmguard.request")
    stages = children(spans, request)
    assert names(stages) == ["llmguard.ratelimit", "llmguard.cache.exact", "llmguard.embedding",
                             "llmguard.index.search", "llmguard.cache.verify", "llmguard.cache.replay"]
    assert len(spans) == 7
    similarity = float(response.headers["x-llmguard-similarity"])
    attributes = dict(request.attributes or {})
    assert attributes["llmguard.cache.status"] == "hit"
    assert attributes["llmguard.cache.tier"] == "semantic"
    assert round(attributes["llmguard.cache.similarity"], 4) == similarity
    search, verify, replay = stages[3], stages[4], stages[5]
    assert (search.attributes or {})["llmguard.index.results"] == 1
    assert round((search.attributes or {})["llmguard.index.best_similarity"], 4) == similarity
    assert (verify.attributes or {})["llmguard.verify.accepted"] is True
    assert round((verify.attributes or {})["llmguard.cache.similarity"], 4) == similarity
    assert (replay.attributes or {})["llmguard.cache.tier"] == "semantic"


async def test_a_rate_limited_request_has_the_rate_limit_span_and_status_429(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    llm = FakeLLM()
    guard = await started(guards, provider, cache_enabled=False, rate_limit_rpm=1)
    async with client(guard.wrap(llm.app)) as c:
        assert (await c.post(CHAT, json=chat("first"))).status_code == 200
        exporter.clear()
        refused = await c.post(CHAT, json=chat("second"))
    assert refused.status_code == 429
    spans = exporter.get_finished_spans()
    request = one(spans, "llmguard.request")
    stages = children(spans, request)
    assert names(stages) == ["llmguard.ratelimit"]
    attributes = dict(stages[0].attributes or {})
    assert attributes["llmguard.ratelimit.admitted"] is False
    assert attributes["llmguard.ratelimit.limit"] == "requests"
    assert attributes["llmguard.ratelimit.retry_after_ms"] > 0
    assert (request.attributes or {})["http.response.status_code"] == 429
    assert request.status.status_code == StatusCode.UNSET  # a 4xx is the client's, not a server error
    assert llm.calls == 1


async def test_a_bypassed_request_says_why(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    guard = await started(guards, provider)
    async with client(guard.wrap(FakeLLM().app)) as c:
        await c.post(CHAT, json=chat("What is the weather today in Paris?"))
    attributes = dict(one(exporter.get_finished_spans(), "llmguard.request").attributes or {})
    assert attributes["llmguard.cache.status"] == "bypass"
    assert attributes["llmguard.cache.reason"] == "time_sensitive"


# --- W3C trace context ---------------------------------------------------------------------------------


async def test_the_request_span_continues_the_clients_traceparent(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    guard = await started(guards, provider)
    async with client(guard.wrap(FakeLLM().app), traceparent=CLIENT_TRACEPARENT) as c:
        await c.post(CHAT, json=chat("hello"))
    request = one(exporter.get_finished_spans(), "llmguard.request")
    assert hexid(request.context.trace_id, 32) == TRACE_ID
    assert request.parent is not None and request.parent.is_remote
    assert hexid(request.parent.span_id, 16) == CLIENT_SPAN_ID
    assert request.kind == SpanKind.SERVER
    assert {hexid(s.context.trace_id, 32) for s in exporter.get_finished_spans()} == {TRACE_ID}


async def test_under_an_apps_own_server_span_the_request_span_is_its_child(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """An app instrumented outside the stack (OpenTelemetry's ASGI middleware) already has a span."""
    guard = await started(guards, provider)
    inner = guard.wrap(FakeLLM().app)
    tracer = provider.get_tracer("the-app")

    async def instrumented(scope: Any, receive: Any, send: Any) -> None:
        with tracer.start_as_current_span("app.server", kind=SpanKind.SERVER):
            await inner(scope, receive, send)

    async with client(instrumented, traceparent=CLIENT_TRACEPARENT) as c:
        await c.post(CHAT, json=chat("hello"))
    spans = exporter.get_finished_spans()
    outer, request = one(spans, "app.server"), one(spans, "llmguard.request")
    assert request.parent is not None and request.parent.span_id == outer.context.span_id
    assert request.kind == SpanKind.INTERNAL


async def test_the_apps_own_spans_nest_under_the_request_span(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("the-app")

    async def endpoint(request: Request) -> Response:
        with tracer.start_as_current_span("app.endpoint"):
            return JSONResponse({"id": "x", "object": "chat.completion", "model": "m", "choices": []})

    guard = await started(guards, provider)
    app = Starlette(routes=[Route(CHAT, endpoint, methods=["POST"])])
    async with client(guard.wrap(app)) as c:
        await c.post(CHAT, json=chat("hello"))
    spans = exporter.get_finished_spans()
    endpoint_span, request = one(spans, "app.endpoint"), one(spans, "llmguard.request")
    assert endpoint_span.parent is not None and endpoint_span.parent.span_id == request.context.span_id
    assert trace_api.get_current_span() is trace_api.INVALID_SPAN  # and the context was left afterwards


def recording_upstream(seen: list[Request], *, status: int = 200, current: list[int] | None = None) -> Starlette:
    """An upstream that records its requests and, in process, the span current when it was called."""

    async def complete(request: Request) -> Response:
        seen.append(request)
        if current is not None:
            current.append(trace_api.get_current_span().get_span_context().span_id)
        await request.body()
        if status != 200:
            return JSONResponse({"error": {"message": "busy", "type": "server_error"}}, status_code=status)
        return JSONResponse({"id": "x", "object": "chat.completion", "model": "m", "choices": [],
                             "usage": {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}})

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


async def test_llmproxy_sends_a_traceparent_whose_parent_is_its_upstream_span(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    seen: list[Request] = []
    current: list[int] = []
    guard = await started(guards, provider, cache_enabled=False)
    app = proxy_behind(guard, recording_upstream(seen, current=current))
    async with client(app, traceparent=CLIENT_TRACEPARENT, tracestate="vendor=abc") as c:
        assert (await c.post(CHAT, json=chat("hello"))).status_code == 200
    spans = exporter.get_finished_spans()
    request, upstream = one(spans, "llmguard.request"), one(spans, "llmguard.upstream")
    assert upstream.parent is not None and upstream.parent.span_id == request.context.span_id
    headers = seen[0].headers
    assert len(headers.getlist("traceparent")) == 1  # the client's was replaced, not repeated
    version, trace_id, parent_id, flags = headers["traceparent"].split("-")
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert parent_id == hexid(upstream.context.span_id, 16) != CLIENT_SPAN_ID
    assert headers.getlist("tracestate") == ["vendor=abc"]
    # During the call the upstream span is current: an instrumented HTTP client would nest under it.
    assert current == [upstream.context.span_id]


async def test_each_upstream_attempt_is_a_span_and_carries_its_own_traceparent(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    seen: list[Request] = []
    guard = await started(guards, provider, cache_enabled=False, upstream_retry_backoff_ms=0)
    app = proxy_behind(guard, recording_upstream(seen, status=503), urls=("http://a.test/v1", "http://b.test/v1"))
    async with client(app) as c:
        assert (await c.post(CHAT, json=chat("hello"))).status_code == 503
    spans = exporter.get_finished_spans()
    request = one(spans, "llmguard.request")
    attempts = [s for s in children(spans, request) if s.name == "llmguard.upstream"]
    assert [(s.attributes or {})["llmguard.upstream.attempt"] for s in attempts] == [1, 2]
    assert {(s.attributes or {})["llmguard.backend"] for s in attempts} == {"http://a.test/v1", "http://b.test/v1"}
    for attempt in attempts:
        assert (attempt.attributes or {})["http.response.status_code"] == 503
        assert attempt.status.status_code == StatusCode.ERROR
    sent_parents = [r.headers["traceparent"].split("-")[2] for r in seen]
    assert sent_parents == [hexid(s.context.span_id, 16) for s in attempts]
    assert (request.attributes or {})["http.response.status_code"] == 503
    assert request.status.status_code == StatusCode.ERROR


async def test_a_standalone_llmproxy_with_tracing_on_continues_the_clients_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Request] = []
    monkeypatch.setattr(trace_api, "get_tracer", lambda *args, **kwargs: provider.get_tracer(*args, **kwargs))
    upstream_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=recording_upstream(seen)))
    proxy = LLMProxy([{"url": UPSTREAM}], settings=Settings(tracing=True), client=upstream_client)
    async with client(proxy, traceparent=CLIENT_TRACEPARENT) as c:
        assert (await c.post(CHAT, json=chat("hello"))).status_code == 200
    upstream = one(exporter.get_finished_spans(), "llmguard.upstream")
    assert upstream.parent is not None and hexid(upstream.parent.span_id, 16) == CLIENT_SPAN_ID
    assert seen[0].headers["traceparent"] == f"00-{TRACE_ID}-{hexid(upstream.context.span_id, 16)}-01"


# --- streaming and disconnects -----------------------------------------------------------------------------


class GatedStream:
    """Sends one SSE chunk, then waits on ``gate`` before the rest."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.first_sent = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": _chunk("Hello "), "more_body": True})
        self.first_sent.set()
        await self.gate.wait()
        await send({"type": "http.response.body", "body": _chunk("world", finish="stop"), "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def _chunk(text: str, *, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": finish}
    return b"data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                                   "choices": [choice]}).encode() + b"\n\n"


async def stream_to_first_chunk(
    guards: list[Guard], provider: TracerProvider
) -> tuple[GatedStream, Recorder, asyncio.Task[None]]:
    """A traced guard streaming from a gated app, waited on until the first chunk is out."""
    guard = await started(guards, provider)
    app = GatedStream()
    body = json.dumps(chat("stream this", stream=True)).encode()
    rec = Recorder(body_message(body))
    call = asyncio.create_task(guard.wrap(app)(http_scope(CHAT, body=body), rec.receive, rec.send))
    await asyncio.wait_for(app.first_sent.wait(), WAIT)
    return app, rec, call


async def test_a_streamed_responses_request_span_ends_when_the_stream_is_over(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    app, _rec, call = await stream_to_first_chunk(guards, provider)
    assert request_spans(exporter) == []  # the first chunk is out, the response is not over
    app.gate.set()
    await asyncio.wait_for(call, WAIT)
    spans = exporter.get_finished_spans()
    request = one(spans, "llmguard.request")
    attributes = dict(request.attributes or {})
    assert attributes["llmguard.stream"] is True
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["llmguard.time_to_first_token_ms"] >= 0
    assert "llmguard.disconnected" not in attributes
    assert names(children(spans, request))[-1] == "llmguard.cache.store"  # kept after the last byte


async def test_a_client_that_leaves_mid_stream_ends_the_span_marked_disconnected(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    _app, rec, call = await stream_to_first_chunk(guards, provider)
    rec.disconnect()
    await asyncio.wait_for(call, WAIT)
    spans = exporter.get_finished_spans()
    request = one(spans, "llmguard.request")
    assert (request.attributes or {})["llmguard.disconnected"] is True
    assert request.status.status_code == StatusCode.UNSET
    assert "llmguard.cache.store" not in names(children(spans, request))


# --- privacy ------------------------------------------------------------------------------------------------

SECRET_PROMPT = "My passport number is X1234567, what should I do?"


def raising_app() -> Starlette:
    async def endpoint(request: Request) -> Response:
        body = await request.json()
        raise ValueError(f"cannot answer {body['messages'][-1]['content']!r}")

    return Starlette(routes=[Route(CHAT, endpoint, methods=["POST"])])


async def _ask_and_fail(guard: Guard) -> None:
    async with client(guard.wrap(FakeLLM().app), authorization="Bearer sk-very-secret") as c:
        assert (await c.post(CHAT, json=chat(SECRET_PROMPT))).status_code == 200
    transport = httpx.ASGITransport(app=guard.wrap(raising_app()), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        assert (await c.post(CHAT, json=chat(SECRET_PROMPT + " (again)"))).status_code == 500


async def test_no_prompt_text_and_no_key_in_any_span_by_default(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    await _ask_and_fail(await started(guards, provider))
    text = all_attribute_text(exporter)
    assert len(request_spans(exporter)) == 2
    assert "X1234567" not in text and "passport" not in text
    assert "sk-very-secret" not in text
    failed = request_spans(exporter)[1]
    assert failed.status.status_code == StatusCode.ERROR
    assert [dict(e.attributes or {}) for e in failed.events] == [{"exception.type": "ValueError"}]


async def test_prompt_text_is_in_the_request_span_when_enabled(
    guards: list[Guard], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    await _ask_and_fail(await started(guards, provider, trace_prompts=True))
    served, failed = request_spans(exporter)
    assert (served.attributes or {})["llmguard.prompt"] == SECRET_PROMPT
    assert (failed.attributes or {})["llmguard.prompt"] == SECRET_PROMPT + " (again)"
    assert "X1234567" in str((failed.events[0].attributes or {})["exception.message"])
    assert "sk-very-secret" not in all_attribute_text(exporter)  # keys never, prompts or not


# --- off, and missing ------------------------------------------------------------------------------------------


async def test_tracing_off_makes_no_spans_even_with_a_provider(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    guard = Guard(tracer_provider=provider, cache_semantic=False)
    assert guard.tracing is None
    seen: list[Request] = []
    async with client(proxy_behind(guard, recording_upstream(seen)), traceparent=CLIENT_TRACEPARENT) as c:
        assert (await c.post(CHAT, json=chat("hello"))).status_code == 200
    await guard.shutdown()
    assert exporter.get_finished_spans() == ()
    assert seen[0].headers["traceparent"] == CLIENT_TRACEPARENT  # passed on untouched, as before


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGUARD_", "OTEL_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)


def test_tracing_off_never_imports_opentelemetry() -> None:
    result = _run_python(f"""
        import asyncio, json, sys
        import httpx
        from asgi_llmguard import Guard, LLMProxy
        from demo_app.mock_llm import create_mock_llm

        async def main():
            guard = Guard(cache_semantic=False, rate_limit_rpm=100, rate_limit_tpm=100000)
            upstream = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_mock_llm(ttft_ms=0, token_ms=0)))
            app = guard.wrap(LLMProxy([{{"url": "{UPSTREAM}"}}], guard=guard, client=upstream))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                for stream in (False, False, True):
                    r = await c.post("/v1/chat/completions", headers={{"traceparent": "{CLIENT_TRACEPARENT}"}},
                                     json={{"model": "m", "stream": stream, "messages": [{{"role": "user",
                                                                                         "content": "hi"}}]}})
                    assert r.status_code == 200, r.text
            await guard.shutdown()

        asyncio.run(main())
        print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")))
    """)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_tracing_on_without_the_otel_packages_fails_at_startup_naming_the_setting_and_extra() -> None:
    result = _run_python("""
        import sys
        sys.modules["opentelemetry"] = None  # as if the otel extra were not installed
        from asgi_llmguard import ConfigurationError, Guard, LLMProxy, Settings
        for build in (lambda: Guard(tracing=True),
                      lambda: LLMProxy([{"url": "http://u.test/v1"}], settings=Settings(tracing=True))):
            try:
                build()
            except ConfigurationError as exc:
                print(exc)
            else:
                raise SystemExit("no ConfigurationError")
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("LLMGUARD_TRACING:")
        assert "`otel` extra" in line and "asgi-llmguard[otel]" in line


def test_the_settings_read_from_the_environment() -> None:
    settings = Settings.from_env({"LLMGUARD_TRACING": "true", "LLMGUARD_TRACE_PROMPTS": "1"})
    assert settings.tracing is True and settings.trace_prompts is True
    assert Settings.from_env({}).tracing is False and Settings.from_env({}).trace_prompts is False
    with pytest.raises(ConfigurationError, match="LLMGUARD_TRACING"):
        Settings.from_env({"LLMGUARD_TRACING": "sometimes"})
