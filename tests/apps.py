"""Tiny real ASGI apps and clients shared by the core's tests.

``FakeLLM`` is an OpenAI-like Starlette endpoint that records what reaches it
(bodies, headers, the exchange) and answers as told: JSON or SSE, a 500, a 400,
a stream cut before ``[DONE]``, a content-filter finish, or an exception.
The raw ASGI helpers (``http_scope``, ``Recorder``) drive an app one message at
a time where a test must see message-level behaviour that httpx would hide.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from asgi_llmguard import get_exchange

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def reply_for(text: str) -> str:
    """The fake model's answer: long enough to need several replay pieces, and it names the prompt."""
    return f"You asked: {text}. " + "Here is a careful answer that runs long enough to be split. " * 2


def chat(content: Any = "hello there", *, model: str = "gpt-test", system: str | None = None,
         history: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if system is not None:
        messages.append({"role": "system", "content": system})
    messages.extend(history or [])
    messages.append({"role": "user", "content": content})
    return {"model": model, "messages": messages, **extra}


def parse_sse(raw: str) -> tuple[str, bool, list[dict[str, Any]]]:
    """(concatenated delta text, whether ``[DONE]`` ended it, the JSON events)."""
    events: list[dict[str, Any]] = []
    done = False
    for line in raw.splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            done = True
            continue
        events.append(json.loads(data))
    text = ""
    for event in events:
        for choice in event.get("choices", ()):
            text += (choice.get("delta") or {}).get("content") or choice.get("text") or ""
    return text, done, events


class FakeLLM:
    """An OpenAI-compatible endpoint in a Starlette app; ``mode`` says how it answers next."""

    def __init__(self, *, delay: float = 0.0, mode: str = "ok") -> None:
        self.delay = delay
        self.mode = mode
        self.calls = 0
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.exchanges: list[Any] = []
        self.receives: list[Any] = []
        self.app = Starlette(routes=[
            Route(CHAT, self.endpoint, methods=["GET", "POST"]),
            Route(COMPLETIONS, self.endpoint, methods=["POST"]),
            Route("/other", self.other, methods=["GET", "POST"]),
        ])

    async def other(self, request: Request) -> Response:
        self.calls += 1
        self.bodies.append(await request.body())
        return PlainTextResponse("other")

    async def endpoint(self, request: Request) -> Response:
        self.calls += 1
        self.exchanges.append(get_exchange(request.scope))
        self.headers.append(dict(request.headers))
        body = await request.body()
        self.bodies.append(body)
        if request.method == "GET":
            return PlainTextResponse("get ok")
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.mode == "raise":
            raise RuntimeError("the app failed")
        if self.mode == "500":
            return JSONResponse({"error": {"message": "upstream broke", "type": "server_error"}}, status_code=500)
        if self.mode == "400":
            return JSONResponse({"error": {"message": "bad", "type": "invalid_request_error"}}, status_code=400)
        payload = json.loads(body)
        kind = "completion" if request.url.path == COMPLETIONS else "chat"
        if kind == "chat":
            content = payload["messages"][-1].get("content")
            if isinstance(content, list):
                content = "\n".join(part.get("text", "") for part in content)
        else:
            content = payload["prompt"]
        text = reply_for(str(content))
        finish = "content_filter" if self.mode == "content_filter" else "stop"
        if payload.get("stream"):
            return StreamingResponse(self._stream(kind, payload["model"], text, finish),
                                     media_type="text/event-stream")
        if kind == "completion":
            return JSONResponse({"id": "cmpl-1", "object": "text_completion", "created": 1, "model": payload["model"],
                                 "choices": [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
                                 "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10}})
        return JSONResponse({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": payload["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                         "finish_reason": finish}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 7, "total_tokens": 10},
        })

    async def _stream(self, kind: str, model: str, text: str, finish: str) -> AsyncIterator[bytes]:
        words = text.split(" ")
        pieces = [w + " " for w in words[:-1]] + [words[-1]]
        obj = "chat.completion.chunk" if kind == "chat" else "text_completion"
        for piece in pieces:
            choice: dict[str, Any] = ({"index": 0, "delta": {"content": piece}, "finish_reason": None}
                                      if kind == "chat" else {"index": 0, "text": piece, "finish_reason": None})
            yield _event({"id": "c1", "object": obj, "created": 1, "model": model, "choices": [choice]})
        if self.mode == "cut":
            return
        last: dict[str, Any] = ({"index": 0, "delta": {}, "finish_reason": finish}
                                if kind == "chat" else {"index": 0, "text": "", "finish_reason": finish})
        yield _event({"id": "c1", "object": obj, "created": 1, "model": model, "choices": [last]})
        yield b"data: [DONE]\n\n"


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(data).encode() + b"\n\n"


def client(app: Any, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", headers=headers)


# --- raw ASGI ---------------------------------------------------------------------------------------


def http_scope(path: str = CHAT, method: str = "POST", headers: list[tuple[bytes, bytes]] | None = None,
               body: bytes | None = None) -> dict[str, Any]:
    raw = list(headers or [(b"content-type", b"application/json")])
    if body is not None and not any(k == b"content-length" for k, _ in raw):
        raw.append((b"content-length", str(len(body)).encode()))
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "method": method, "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
            "root_path": "", "headers": raw, "client": ("127.0.0.1", 5000), "server": ("test", 80)}


class Recorder:
    """A server's side of one raw ASGI call: queued incoming messages, and every message sent."""

    def __init__(self, *messages: dict[str, Any]) -> None:
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in messages:
            self.incoming.put_nowait(message)
        self.sent: list[dict[str, Any]] = []
        self.sent_event = asyncio.Event()
        self.receive_calls = 0

    async def receive(self) -> dict[str, Any]:
        self.receive_calls += 1
        return await self.incoming.get()

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)
        self.sent_event.set()

    def disconnect(self) -> None:
        self.incoming.put_nowait({"type": "http.disconnect"})

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[bytes, bytes]:
        start = next(m for m in self.sent if m["type"] == "http.response.start")
        return {bytes(k).lower(): bytes(v) for k, v in start.get("headers", ())}

    @property
    def body_messages(self) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.body_messages)


def body_message(body: bytes, more_body: bool = False) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more_body}
