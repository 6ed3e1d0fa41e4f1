"""The mock LLM speaks OpenAI's wire format, echoes the prompt, and misbehaves on request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from demo_app.mock_llm import (
    MockStreamCut,
    build_answer,
    create_mock_llm,
    split_into_pieces,
)

PROMPT = "What is the capital of France, in 3 words?"


@pytest.fixture
def mock() -> Starlette:
    return create_mock_llm(ttft_ms=0, token_ms=0)


@pytest.fixture
async def client(mock: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=mock)
    async with httpx.AsyncClient(transport=transport, base_url="http://mock") as http:
        yield http


def chat_body(prompt: str = PROMPT, **extra: Any) -> dict[str, Any]:
    return {
        "model": "mock-small",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "an earlier question"},
            {"role": "assistant", "content": "an earlier answer"},
            {"role": "user", "content": prompt},
        ],
        **extra,
    }


def sse_payloads(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, checking that every event is well formed."""
    assert text.endswith("\n\n")
    events = text[:-2].split("\n\n")
    payloads = []
    for event in events:
        assert event.startswith("data: "), event
        payloads.append(event[len("data: ") :])
    return payloads


def expected_content(prompt: str = PROMPT) -> str:
    return f'You said: "{prompt}". Here is a mock answer.'


async def test_chat_non_stream_has_openai_shape_and_echoes_last_user_message(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body())
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-")
    assert body["model"] == "mock-small"
    assert isinstance(body["created"], int)
    [choice] = body["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == expected_content()
    usage = body["usage"]
    assert usage["completion_tokens"] == len(expected_content().split())
    assert usage["prompt_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_chat_stream_deltas_concatenate_to_the_non_stream_content(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body(stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert all(c["model"] == "mock-small" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"][0]["delta"] == {}
    content_chunks = chunks[1:-1]
    assert len(content_chunks) > 3
    assert all(c["choices"][0]["finish_reason"] is None for c in content_chunks)
    streamed = "".join(c["choices"][0]["delta"]["content"] for c in content_chunks)
    assert streamed == expected_content()
    assert all("usage" not in c for c in chunks)


async def test_chat_stream_sends_a_usage_chunk_when_asked(client: httpx.AsyncClient) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", json=body)
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["completion_tokens"] == len(expected_content().split())
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["usage"] is None for c in chunks[:-1])

    plain = (await client.post("/v1/chat/completions", json=chat_body())).json()
    assert usage_chunk["usage"] == plain["usage"]


async def test_text_completions_stream_and_non_stream_agree(client: httpx.AsyncClient) -> None:
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": "Say hi"}
    plain = (await client.post("/v1/completions", json=body)).json()
    assert plain["object"] == "text_completion"
    assert plain["id"].startswith("cmpl-")
    assert plain["choices"][0]["text"] == expected_content("Say hi")
    assert plain["choices"][0]["finish_reason"] == "stop"
    assert plain["usage"]["prompt_tokens"] == 2

    response = await client.post(
        "/v1/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    payloads = sse_payloads(response.text)
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    assert all(c["object"] == "text_completion" for c in chunks)
    text_chunks = [c for c in chunks if c["choices"]]
    assert "".join(c["choices"][0]["text"] for c in text_chunks) == plain["choices"][0]["text"]
    assert text_chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == plain["usage"]


async def test_any_model_is_accepted_and_echoed(client: httpx.AsyncClient) -> None:
    body = chat_body()
    body["model"] = "some-model-nobody-has"
    response = await client.post("/v1/chat/completions", json=body)
    assert response.json()["model"] == "some-model-nobody-has"


async def test_content_parts_are_read_as_text(client: httpx.AsyncClient) -> None:
    body = {"model": "mock-large", "messages": [{"role": "user", "content": [{"type": "text", "text": "parts!"}]}]}
    response = await client.post("/v1/chat/completions", json=body)
    assert response.json()["choices"][0]["message"]["content"] == expected_content("parts!")


async def test_max_tokens_shortens_the_tail_but_never_the_echo(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body(max_tokens=1))
    choice = response.json()["choices"][0]
    assert choice["message"]["content"] == f'You said: "{PROMPT}".'
    assert choice["finish_reason"] == "length"

    response = await client.post("/v1/chat/completions", json=chat_body(max_tokens=1000))
    assert response.json()["choices"][0]["finish_reason"] == "stop"


async def test_models_are_listed(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/models")
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    ids = {m["id"] for m in body["data"]}
    assert {"mock-small", "mock-large", "gpt-4o-mini"} <= ids
    assert all(m["object"] == "model" for m in body["data"])
    assert (await client.get("/v1/models/anything")).json()["id"] == "anything"


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (json.dumps({"messages": [{"role": "user", "content": "x"}]}).encode(), "model"),
        (json.dumps({"model": "m", "messages": []}).encode(), "messages"),
        (
            json.dumps({"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": "9"}).encode(),
            "max_tokens",
        ),
        # a lone surrogate: valid JSON, but no Unicode text, so an answer echoing it could not be sent
        (b'{"model":"m","messages":[{"role":"user","content":"\\ud800 hi"}]}', None),
        (b'{"model":"m","stream":true,"messages":[{"role":"user","content":"\\ud800 hi"}]}', None),
        (b'{"model":"m","prompt":"\\udfff"}', None),
    ],
)
async def test_bad_requests_get_an_openai_style_400(
    client: httpx.AsyncClient, content: bytes, param: str | None
) -> None:
    response = await client.post("/v1/chat/completions", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert error["message"]


async def test_fail_knob_returns_the_requested_error_status(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body(), headers={"X-Mock-Fail": "500"})
    assert response.status_code == 500
    assert response.json()["error"]["type"] == "server_error"
    response = await client.post("/v1/chat/completions", json=chat_body(), headers={"X-Mock-Fail": "503"})
    assert response.status_code == 503
    response = await client.post("/v1/chat/completions", json=chat_body(), headers={"X-Mock-Fail": "yes"})
    assert response.status_code == 500


async def test_cut_knob_aborts_the_stream_after_n_content_chunks(mock: Starlette) -> None:
    # ASGITransport buffers the response, so drive the app with raw ASGI calls to see what was sent.
    body = json.dumps(chat_body(stream=True)).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json"), (b"x-mock-cut-after", b"2")],
        "client": ("127.0.0.1", 1234),
        "server": ("mock", 80),
    }
    sent: list[Message] = []
    request_sent = False

    async def receive() -> Message:
        nonlocal request_sent
        if not request_sent:
            request_sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        import anyio

        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    with pytest.RaisesGroup(MockStreamCut, allow_unwrapped=True, flatten_subgroups=True):
        await mock(scope, receive, send)

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200
    text = b"".join(m.get("body", b"") for m in sent[1:]).decode()
    chunks = [json.loads(p) for p in sse_payloads(text)]
    assert len(chunks) == 3  # the role chunk and two content chunks
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "You said: "
    assert not any(m.get("more_body") is False for m in sent[1:])
    assert "[DONE]" not in text


async def test_a_client_disconnect_stops_a_slow_stream_at_once() -> None:
    slow = create_mock_llm(ttft_ms=0, token_ms=10_000)
    body = json.dumps(chat_body(stream=True)).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1234),
        "server": ("mock", 80),
    }
    sent: list[Message] = []
    calls = 0

    async def receive() -> Message:
        nonlocal calls
        calls += 1
        if calls == 1:
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(0.05)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    started = time.monotonic()
    await asyncio.wait_for(slow(scope, receive, send), timeout=5)
    assert time.monotonic() - started < 2
    # The role chunk and the first piece went out; the 10 s pause before the second was cancelled.
    assert len([m for m in sent if m.get("body")]) == 2


async def test_calls_are_counted(mock: Starlette, client: httpx.AsyncClient) -> None:
    assert mock.state.calls == 0
    await client.post("/v1/chat/completions", json=chat_body())
    await client.post("/v1/chat/completions", json=chat_body(stream=True))
    await client.post("/v1/completions", json={"model": "mock-large", "prompt": "x"})
    await client.get("/v1/models")
    assert mock.state.calls == 3
    assert mock.state.models == {"mock-small": 2, "mock-large": 1}
    assert mock.state.last_request == {"model": "mock-large", "prompt": "x"}
    stats = (await client.get("/mock/stats")).json()
    assert stats == {"calls": 3, "models": {"mock-small": 2, "mock-large": 1},
                     "streams_open": 0, "streams_cancelled": 0}


async def test_delays_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGUARD_DEMO_TTFT_MS", "7")
    monkeypatch.setenv("LLMGUARD_DEMO_TOKEN_MS", "0.5")
    llm = create_mock_llm().state.mock
    assert llm.delays.ttft_s == pytest.approx(0.007)
    assert llm.delays.token_s == pytest.approx(0.0005)
    assert create_mock_llm(ttft_ms=1, token_ms=2).state.mock.delays.token_s == pytest.approx(0.002)


@pytest.mark.parametrize("text", ["", "one", " lead", "a  b\n c ", 'quote "x" tail.'])
def test_pieces_concatenate_to_the_text(text: str) -> None:
    assert "".join(split_into_pieces(text)) == text


def test_answer_contains_the_prompt_verbatim() -> None:
    prompt = '  weird\tspacing and "quotes" and ünïcödé  '
    content, finish = build_answer(prompt)
    assert prompt in content
    assert finish == "stop"
