"""LLMProxy against in-process upstreams: forwarding, headers, bad input and error mapping.

The upstream here is the demo's mock LLM (or a small recording app) reached through httpx's
ASGI transport, so every test can see exactly what the upstream received. The chaos tests with
real upstream processes are in test_proxy_chaos.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_llmguard import ConfigurationError, Guard, LLMProxy, Settings
from demo_app.mock_llm import create_mock_llm

UPSTREAM = "http://upstream.test/v1"


def proxy_to(upstream_app: Any, *, models: list[str] | None = None, environ: dict[str, str] | None = None,
             api_key_env: str | None = None, **settings: Any) -> LLMProxy:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=upstream_app))
    upstream: dict[str, Any] = {"url": UPSTREAM, "models": models or []}
    if api_key_env:
        upstream["api_key_env"] = api_key_env
    return LLMProxy([upstream], settings=Settings(**settings), client=client, environ=environ or {})


@pytest.fixture
async def front() -> AsyncIterator[tuple[LLMProxy, httpx.AsyncClient]]:
    proxy = proxy_to(create_mock_llm(ttft_ms=0, token_ms=0), models=["mock-small", "mock-large"])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as client:
        yield proxy, client


def chat(content: str, **extra: Any) -> dict[str, Any]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": content}], **extra}


async def test_json_and_stream_reach_the_openai_sdk_unchanged(front: tuple[LLMProxy, httpx.AsyncClient]) -> None:
    proxy, _ = front
    transport = httpx.ASGITransport(app=proxy)
    sdk = openai.AsyncOpenAI(base_url="http://proxy/v1", api_key="sk-client", max_retries=0,
                             http_client=httpx.AsyncClient(transport=transport))
    completion = await sdk.chat.completions.create(model="mock-small",
                                                   messages=[{"role": "user", "content": "hello there"}])
    assert completion.choices[0].message.content == 'You said: "hello there". Here is a mock answer.'
    assert completion.usage is not None and completion.usage.prompt_tokens > 0

    stream = await sdk.chat.completions.create(model="mock-large", stream=True,
                                               messages=[{"role": "user", "content": "stream it"}])
    text = "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
    assert text == 'You said: "stream it". Here is a mock answer.'
    legacy = await sdk.completions.create(model="mock-small", prompt="legacy prompt")
    assert "legacy prompt" in legacy.choices[0].text
    await sdk.close()


async def test_models_lists_the_configured_models(front: tuple[LLMProxy, httpx.AsyncClient]) -> None:
    _, client = front
    response = await client.get("/v1/models")
    assert response.status_code == 200
    assert [m["id"] for m in response.json()["data"]] == ["mock-large", "mock-small"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/v1/chat/completions", b"{not json", 400, "invalid_json"),
        ("POST", "/v1/chat/completions", b"[1, 2]", 400, "invalid_json"),
        ("POST", "/v1/chat/completions", json.dumps({"messages": []}).encode(), 400, "missing_model"),
        ("POST", "/v1/chat/completions", json.dumps({"model": 7}).encode(), 400, "missing_model"),
        ("POST", "/v1/chat/completions", json.dumps(chat("x", model="gpt-9")).encode(), 404, "model_not_found"),
        ("POST", "/v1/chat/completions", b"x" * (3 * 1024 * 1024), 413, "request_too_large"),
        ("GET", "/v1/chat/completions", b"", 405, "method_not_allowed"),
        ("POST", "/v2/anything", b"{}", 404, "unknown_url"),
    ],
)
async def test_bad_requests_get_openai_style_errors_and_never_reach_the_upstream(
    front: tuple[LLMProxy, httpx.AsyncClient], method: str, path: str, body: bytes, status: int, code: str
) -> None:
    _, client = front
    response = await client.request(method, path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error) == {"message", "type", "param", "code"}
    assert (await client.get("/v1/models")).status_code == 200  # still serving


def recording_upstream(seen: list[Request], bodies: list[bytes]) -> Starlette:
    async def complete(request: Request) -> Response:
        seen.append(request)
        bodies.append(await request.body())
        return JSONResponse({"id": "x", "object": "chat.completion", "choices": []})

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


async def test_the_upstream_key_replaces_the_clients_and_the_body_passes_byte_for_byte() -> None:
    seen: list[Request] = []
    bodies: list[bytes] = []
    proxy = proxy_to(recording_upstream(seen, bodies), api_key_env="UPSTREAM_KEY",
                     environ={"UPSTREAM_KEY": "sk-upstream-secret"})
    body = b'{"model":  "m", "messages": [{"role": "user", "content": "hi"}], "x_extra": 1}'
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as client:
        response = await client.post("/v1/chat/completions", content=body, headers={
            "authorization": "Bearer sk-client-key", "cookie": "session=1", "content-type": "application/json",
            "x-request-id": "req-42", "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        })
    assert response.status_code == 200
    assert bodies == [body]
    headers = seen[0].headers
    assert headers["authorization"] == "Bearer sk-upstream-secret"
    assert "cookie" not in headers
    assert headers["x-request-id"] == "req-42"
    assert headers["traceparent"].startswith("00-0af7651916cd43dd")
    assert headers["accept-encoding"] == "identity"


async def test_without_an_upstream_key_the_clients_key_is_not_passed_on() -> None:
    seen: list[Request] = []
    proxy = proxy_to(recording_upstream(seen, []))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as client:
        await client.post("/v1/chat/completions", json=chat("hi"), headers={"authorization": "Bearer sk-client"})
    assert "authorization" not in seen[0].headers


async def test_upstream_4xx_is_passed_through_and_5xx_keeps_its_status_after_retries() -> None:
    mock = create_mock_llm(ttft_ms=0, token_ms=0)
    proxy = proxy_to(mock, upstream_retry_backoff_ms=0)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as client:
        bad = await client.post("/v1/chat/completions", json={"model": "m", "messages": "nope"})
        assert bad.status_code == 400
        assert bad.json()["error"]["param"] == "messages"
        calls_before = mock.state.calls
        failing = await client.post("/v1/chat/completions", json=chat("hi"), headers={"x-mock-fail": "503"})
    assert failing.status_code == 503
    assert "answered 503" in failing.json()["error"]["message"]
    # One backend: nothing else to retry on, so it was asked once.
    assert mock.state.calls == calls_before + 1


def test_configuration_errors_name_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="LLMGUARD_UPSTREAMS"):
        LLMProxy(settings=Settings())
    with pytest.raises(ConfigurationError, match="NOT_SET_KEY"):
        LLMProxy([{"url": UPSTREAM, "api_key_env": "NOT_SET_KEY"}], settings=Settings(), environ={})
    with pytest.raises(ConfigurationError, match="distinct"):
        LLMProxy([{"url": UPSTREAM}, {"url": UPSTREAM}], settings=Settings())
    with pytest.raises(ConfigurationError, match="http"):
        LLMProxy([{"url": "ftp://x"}], settings=Settings())


async def test_behind_the_stack_the_router_rewrites_the_model_the_upstream_sees() -> None:
    mock = create_mock_llm(ttft_ms=0, token_ms=0)
    guard = Guard(Settings(cache_enabled=False, router_aliases={"auto": ["mock-small", "mock-large"]}))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=mock))
    proxy = LLMProxy([{"url": UPSTREAM, "models": ["mock-small", "mock-large"]}], guard=guard, client=client)
    app = guard.wrap(proxy)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://proxy") as front:
        response = await front.post("/v1/chat/completions", json=chat("what is 2 + 2?", model="auto"))
    assert response.status_code == 200
    assert response.headers["x-llmguard-model"] == "mock-small"
    assert mock.state.last_request["model"] == "mock-small"
    assert mock.state.models["mock-small"] == 1


async def test_affinity_sends_one_system_prompt_to_one_backend_and_spreads_many() -> None:
    mocks = {"a.test": create_mock_llm(ttft_ms=0, token_ms=0), "b.test": create_mock_llm(ttft_ms=0, token_ms=0)}

    async def by_host(scope: Any, receive: Any, send: Any) -> None:
        host = dict(scope["headers"])[b"host"].decode()
        await mocks[host](scope, receive, send)

    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=by_host))
    proxy = LLMProxy([{"url": "http://a.test/v1"}, {"url": "http://b.test/v1"}],
                     settings=Settings(upstream_affinity=True), client=client)

    def calls() -> dict[str, int]:
        return {host: mock.state.calls for host, mock in mocks.items()}

    async def ask(system: str) -> None:
        body = {"model": "m", "messages": [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]}
        assert (await front.post("/v1/chat/completions", json=body)).status_code == 200

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as front:
        for _ in range(8):
            await ask("You are the billing assistant of ACME.")
        after_one = calls()
        assert sorted(after_one.values()) == [0, 8]  # one backend took every request with that prompt
        for i in range(40):
            await ask(f"You are assistant number {i}.")
    spread = {host: n - after_one[host] for host, n in calls().items()}
    assert min(spread.values()) >= 8, spread  # forty prompts land on both backends


async def test_unreachable_upstreams_give_502_then_an_open_breaker_gives_503_with_retry_after(
    free_port: int,
) -> None:
    proxy = LLMProxy([{"url": f"http://127.0.0.1:{free_port}/v1"}],  # nothing listens there
                     settings=Settings(breaker_failures=1, breaker_open_seconds=30, upstream_retry_backoff_ms=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy") as client:
        refused = await client.post("/v1/chat/completions", json=chat("hi"))
        assert refused.status_code == 502
        assert refused.json()["error"]["code"] == "upstream_unavailable"
        shut = await client.post("/v1/chat/completions", json=chat("hi"))
    await proxy.aclose()
    assert shut.status_code == 503
    assert shut.json()["error"]["code"] == "no_healthy_upstream"
    assert shut.headers["retry-after"] == "30"
