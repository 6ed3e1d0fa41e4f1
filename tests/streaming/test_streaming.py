"""Streaming through the stack: nothing is held back, and a client that leaves cancels the app.

In process, raw ASGI calls show message-level behaviour; through a real uvicorn,
a gated app proves the ordering: each chunk is produced only after the client
says it received the previous one, so a stack that held chunks back would hang.
This module is also the gated server's code (``uvicorn test_streaming:create_gated_app``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from apps import CHAT, Recorder, body_message, chat, http_scope, parse_sse
from prometheus_client.parser import text_string_to_metric_families
from servers import run_server
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_llmguard import Guard
from asgi_llmguard.core.observer import ResponseObserver

HERE = Path(__file__).resolve().parent  # this module, for uvicorn
TESTS = HERE.parent  # apps
BODY = json.dumps(chat("stream this", stream=True)).encode()
WAIT = 20.0  # generous bound for anything that should happen "at once": the tests prove order, not speed


def sse(index: int, text: str, *, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    event = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-test", "choices": [choice]}
    return b"data: " + json.dumps(event).encode() + b"\n\n"


# --- in process: the layer's own behaviour ---------------------------------------------------------------


class SlowStreamApp:
    """Sends one SSE chunk, then waits on ``gate`` before the rest; records whether it was cancelled."""

    def __init__(self, *, raise_after_first: bool = False) -> None:
        self.gate = asyncio.Event()
        self.first_sent = asyncio.Event()
        self.cancelled = False
        self.raise_after_first = raise_after_first

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": sse(0, "Hello "), "more_body": True})
        self.first_sent.set()
        if self.raise_after_first:
            raise RuntimeError("the app failed mid-stream")
        try:
            await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        await send({"type": "http.response.body", "body": sse(1, "world", finish="stop"), "more_body": True})
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})


def metric(guard: Guard, name: str, **labels: str) -> float:
    assert guard.metrics is not None
    return guard.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_disconnect_mid_stream_cancels_the_waiting_app_counts_499_and_caches_nothing() -> None:
    guard = Guard(cache_semantic=False)
    app = SlowStreamApp()
    rec = Recorder(body_message(BODY))
    call = asyncio.create_task(guard.wrap(app)(http_scope(CHAT, body=BODY), rec.receive, rec.send))
    await asyncio.wait_for(app.first_sent.wait(), WAIT)
    rec.disconnect()
    await asyncio.wait_for(call, WAIT)  # returns although the gate was never opened
    assert app.cancelled
    assert metric(guard, "llmguard_requests_total", route=CHAT, outcome="499", cache="miss") == 1
    # Nothing was cached: the same request again is a miss and reaches the app.
    again = SlowStreamApp()
    again.gate.set()
    rec2 = Recorder(body_message(BODY))
    await guard.wrap(again)(http_scope(CHAT, body=BODY), rec2.receive, rec2.send)
    assert rec2.headers[b"x-llmguard-cache"] == b"miss"
    assert parse_sse(rec2.body.decode())[0] == "Hello world"


async def test_the_disconnect_uvicorn_reports_after_a_complete_response_still_lets_it_be_cached() -> None:
    guard = Guard(cache_semantic=False)
    app = SlowStreamApp()
    app.gate.set()
    rec = Recorder(body_message(BODY))

    async def send(message: dict[str, Any]) -> None:
        await rec.send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            rec.disconnect()  # what uvicorn's receive() answers once the response is complete
            await asyncio.sleep(0)

    await guard.wrap(app)(http_scope(CHAT, body=BODY), rec.receive, send)
    assert not app.cancelled
    assert metric(guard, "llmguard_requests_total", route=CHAT, outcome="2xx", cache="miss") == 1
    rec2 = Recorder(body_message(BODY))
    await guard.wrap(SlowStreamApp())(http_scope(CHAT, body=BODY), rec2.receive, rec2.send)
    assert rec2.headers[b"x-llmguard-cache"] == b"hit"
    assert parse_sse(rec2.body.decode())[0] == "Hello world"


async def test_an_exception_from_the_app_mid_stream_propagates() -> None:
    guard = Guard(cache_semantic=False)
    rec = Recorder(body_message(BODY))
    with pytest.raises(RuntimeError, match="mid-stream"):
        await guard.wrap(SlowStreamApp(raise_after_first=True))(http_scope(CHAT, body=BODY), rec.receive, rec.send)


async def test_cancelling_the_request_from_outside_is_not_swallowed() -> None:
    guard = Guard(cache_semantic=False)
    app = SlowStreamApp()
    rec = Recorder(body_message(BODY))
    call = asyncio.create_task(guard.wrap(app)(http_scope(CHAT, body=BODY), rec.receive, rec.send))
    await asyncio.wait_for(app.first_sent.wait(), WAIT)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert app.cancelled


async def test_every_chunk_leaves_the_stack_before_the_app_makes_the_next() -> None:
    guard = Guard(cache_semantic=False)
    app = SlowStreamApp()
    rec = Recorder(body_message(BODY))
    call = asyncio.create_task(guard.wrap(app)(http_scope(CHAT, body=BODY), rec.receive, rec.send))
    await asyncio.wait_for(app.first_sent.wait(), WAIT)
    assert [m["body"] for m in rec.body_messages] == [sse(0, "Hello ")]  # sent on while the app waits
    app.gate.set()
    await asyncio.wait_for(call, WAIT)
    assert rec.body_messages[-1]["body"] == b"data: [DONE]\n\n"


def test_the_observer_keeps_the_gaps_between_tokens() -> None:
    observer = ResponseObserver()
    observer.on_start({"type": "http.response.start", "status": 200,
                       "headers": [(b"content-type", b"text/event-stream")]})
    for index, word in enumerate(("a ", "b ", "c")):
        observer.on_body({"type": "http.response.body", "body": sse(index, word), "more_body": True})
    assert len(observer.token_gaps) == 2
    assert observer.inter_token_mean is not None and observer.inter_token_mean >= 0
    assert observer.inter_token_max == max(observer.token_gaps)
    assert observer.text == "a b c"


# --- through a real uvicorn ------------------------------------------------------------------------------


class Gates:
    """Chunk ``i + 1`` of a stream is produced only after the client released chunk ``i``."""

    def __init__(self) -> None:
        self.released: asyncio.Queue[int] = asyncio.Queue()
        self.events: list[str] = []
        self.cancelled = 0

    async def stream(self, words: list[str]) -> AsyncIterator[bytes]:
        try:
            for index, word in enumerate(words):
                self.events.append(f"produced {index}")
                yield sse(index, word)
                released = await self.released.get()
                self.events.append(f"released {released}")
            yield sse(len(words), "", finish="stop")
            yield b"data: [DONE]\n\n"
        except asyncio.CancelledError:
            self.cancelled += 1
            self.events.append("cancelled")
            raise


def create_gated_app() -> Any:
    """A gated LLM endpoint behind the whole stack (cache exact tier only, /stats on).

    With ``X-Raw: 1`` the endpoint is a raw ASGI streamer that never reads ``receive`` after
    the body (like a proxy forwarding upstream bytes): it learns of a disconnect only from
    the stack. Without it, Starlette's StreamingResponse, which under uvicorn's ASGI spec 2.3
    also listens for the disconnect itself.
    """
    gates = Gates()

    async def complete(request: Request) -> Response:
        payload = await request.json()
        return StreamingResponse(gates.stream(_words(payload)), media_type="text/event-stream")

    async def raw_complete(scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        async for chunk in gates.stream(_words(json.loads(message["body"]))):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def release(request: Request) -> Response:
        gates.released.put_nowait(int(request.query_params["i"]))
        return JSONResponse({"ok": True})

    async def state(request: Request) -> Response:
        return JSONResponse({"events": gates.events, "cancelled": gates.cancelled})

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route(CHAT, complete, methods=["POST"]), Route("/release", release, methods=["POST"]),
                            Route("/state", state), Route("/health", health)])

    async def dispatch(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT and (b"x-raw", b"1") in scope["headers"]:
            await raw_complete(scope, receive, send)
        else:
            await app(scope, receive, send)

    return Guard(cache_semantic=False, stats_path="/stats").wrap(dispatch)


def _words(payload: dict[str, Any]) -> list[str]:
    return [w + " " for w in str(payload["messages"][-1]["content"]).split()]


@pytest.fixture
def gated_server(free_port: int) -> Any:
    env = {"PYTHONPATH": os.pathsep.join([str(HERE), str(TESTS), os.environ.get("PYTHONPATH", "")])}
    with run_server(["uvicorn", "test_streaming:create_gated_app", "--factory", "--log-level", "warning"],
                    free_port, env=env) as base_url:
        yield base_url


def _chunks(response: httpx.Response) -> Any:
    """Complete SSE events as they arrive (a network read may hold part of one)."""
    tail = b""
    for data in response.iter_raw():
        tail += data
        while b"\n\n" in tail:
            event, tail = tail.split(b"\n\n", 1)
            yield event


@pytest.mark.slow
def test_through_uvicorn_each_chunk_reaches_the_client_before_the_next_is_produced(gated_server: str) -> None:
    words = ["one", "two", "three", "four", "five"]
    request = chat(" ".join(words), stream=True)
    with httpx.Client(base_url=gated_server, timeout=WAIT) as client, \
            client.stream("POST", CHAT, json=request) as response:
        assert response.headers["x-llmguard-cache"] == "miss"
        received: list[str] = []
        for event in _chunks(response):
            if event == b"data: [DONE]":
                break
            delta = json.loads(event[5:])["choices"][0]["delta"].get("content")
            if delta:
                received.append(delta.strip())
                # Only now may the app produce the next chunk: had the stack held this one back,
                # the app would wait for this release forever and the read would time out.
                client.post("/release", params={"i": len(received) - 1})
        state = client.get("/state").json()
    assert received == words
    expected = [e for i in range(len(words)) for e in (f"produced {i}", f"released {i}")]
    assert state["events"] == expected


@pytest.mark.slow
@pytest.mark.parametrize("raw", [True, False], ids=["raw-asgi-streamer", "starlette-streaming-response"])
def test_through_uvicorn_a_client_that_leaves_cancels_the_generator_and_nothing_is_cached(
        gated_server: str, raw: bool) -> None:
    request = chat("left early", stream=True)
    headers = {"x-raw": "1"} if raw else {}
    with httpx.Client(base_url=gated_server, timeout=WAIT, headers=headers) as client:
        with client.stream("POST", CHAT, json=request) as response:
            first = next(_chunks(response))
            assert b"left" in first
        # The connection is closed; the generator waits for a release that never comes, so only
        # a disconnect watch can end it (for the raw streamer, only the stack's).
        state: dict[str, Any] = {}
        for _ in range(int(WAIT / 0.05)):
            state = client.get("/state").json()
            if state["cancelled"]:
                break
            time.sleep(0.05)
        assert state["cancelled"] == 1
        assert state["events"] == ["produced 0", "cancelled"]

        families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
        outcomes = {s.labels["outcome"]: s.value for s in families["llmguard_requests"].samples
                    if s.name == "llmguard_requests_total"}
        assert outcomes == {"499": 1.0}

        # Nothing was cached: the same request again reaches the app (a miss) and completes.
        with client.stream("POST", CHAT, json=request) as response:
            assert response.headers["x-llmguard-cache"] == "miss"
            for index, event in enumerate(_chunks(response)):
                if event == b"data: [DONE]":
                    break
                if index < 2:
                    client.post("/release", params={"i": index})
        assert client.get("/stats").json()["cache"] == {"hit": 0, "miss": 2, "bypass": 0}
