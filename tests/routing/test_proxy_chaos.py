"""LLMProxy against real mock upstream processes that misbehave.

Upstreams (each a real ``python -m demo_app --mock-only`` process): two healthy, one slow (a long
time to first token), one answering 500 to everything, one hanging in the middle of every answer,
and one port where nothing listens (connection refused). The proxy runs in process where a test
needs to see its balancer, and as a real ``python -m demo_app --proxy`` uvicorn process where the
test is about connections (a cut stream, a client that leaves, the metrics scrape).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from servers import pick_free_port, run_server

from asgi_llmguard import LLMProxy, Settings

pytestmark = pytest.mark.slow

FAST = {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "2"}
MOCK = ["demo_app", "--mock-only", "--log-level", "warning", "--no-access-log"]


@dataclass(frozen=True)
class Upstreams:
    healthy_a: str
    healthy_b: str
    slow: str
    failing: str
    hanging: str
    flaky: str
    refused: str

    def v1(self, *names: str) -> list[dict[str, Any]]:
        return [{"url": getattr(self, name) + "/v1", "models": ["mock-small", "mock-large"]} for name in names]


@pytest.fixture(scope="module")
def upstreams() -> Iterator[Upstreams]:
    env = {
        "healthy_a": FAST,
        "healthy_b": FAST,
        "slow": {**FAST, "LLMGUARD_DEMO_TTFT_MS": "400"},
        "failing": {**FAST, "LLMGUARD_DEMO_FAULT": "error"},
        "hanging": {**FAST, "LLMGUARD_DEMO_FAULT": "hang-mid-stream"},
        "flaky": FAST,
    }
    with contextlib.ExitStack() as stack:
        urls = {name: stack.enter_context(run_server(MOCK, pick_free_port(), env=e)) for name, e in env.items()}
        yield Upstreams(**urls, refused=f"http://127.0.0.1:{pick_free_port()}")


def calls(base_url: str) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(base_url + "/mock/stats", timeout=10).json()
    return stats


async def set_fault(base_url: str, mode: str) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        (await client.post(base_url + "/mock/fault", json={"mode": mode})).raise_for_status()


def prompt() -> str:
    return f"chaos prompt {uuid.uuid4().hex[:12]}"


def answer(text: str) -> str:
    return f'You said: "{text}". Here is a mock answer.'


def sse_text(raw: str) -> tuple[str, bool, dict[str, Any] | None]:
    """The streamed text, whether ``[DONE]`` came, and the error event if one came."""
    text, done, error = [], False, None
    for line in raw.splitlines():
        if not line.startswith("data: "):
            continue
        data = line[len("data: "):]
        if data == "[DONE]":
            done = True
            continue
        event = json.loads(data)
        if "error" in event:
            error = event["error"]
            continue
        for choice in event.get("choices", []):
            text.append(choice.get("delta", {}).get("content") or "")
    return "".join(text), done, error


def in_process_proxy(upstream_list: list[dict[str, Any]], states: list[tuple[str, str]] | None = None,
                     **settings: Any) -> LLMProxy:
    defaults: dict[str, Any] = {"upstream_read_timeout_ms": 1000, "upstream_connect_timeout_ms": 1000,
                                "upstream_retry_backoff_ms": 0, "upstream_max_attempts": 4}
    recorder = (lambda backend, state: states.append((backend, state))) if states is not None else None
    return LLMProxy(upstream_list, settings=Settings(**{**defaults, **settings}), on_backend_state=recorder)


async def test_healthy_backends_keep_serving_while_the_others_fail(upstreams: Upstreams) -> None:
    names = ("healthy_a", "healthy_b", "slow", "failing", "hanging", "refused")
    proxy = in_process_proxy(upstreams.v1(*names), breaker_failures=2, breaker_open_seconds=60)
    before = {name: calls(getattr(upstreams, name))["calls"] for name in names if name != "refused"}
    outcomes: list[str] = []

    async def one(client: httpx.AsyncClient, index: int) -> None:
        text = prompt()
        stream = index % 2 == 0
        body = {"model": "mock-small", "messages": [{"role": "user", "content": text}], "stream": stream}
        response = await client.post("/v1/chat/completions", json=body)
        assert response.status_code == 200, response.text
        if not stream:
            assert response.json()["choices"][0]["message"]["content"] == answer(text)
            outcomes.append("ok")
            return
        streamed, done, error = sse_text(response.text)
        if error is None:
            assert (streamed, done) == (answer(text), True)
            outcomes.append("ok")
        else:  # only a stream already under way on the hanging backend may end like this
            assert error["code"] == "upstream_timeout"
            assert not done
            outcomes.append("cut")

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy",
                                 timeout=30) as client:
        for start in range(0, 96, 8):
            await asyncio.gather(*(one(client, i) for i in range(start, start + 8)))
    await proxy.aclose()

    assert len(outcomes) == 96
    # Cut streams are the ones that reached the hanging backend before its breaker opened.
    assert outcomes.count("cut") <= 8 + 2
    for name in ("failing", "hanging", "refused"):
        assert proxy.balancer.state(getattr(upstreams, name) + "/v1") == "open", name
    served = {name: calls(getattr(upstreams, name))["calls"] - n for name, n in before.items()}
    # Peak-EWMA with two choices keeps the slow backend's share well below the fast ones'.
    assert served["slow"] < min(served["healthy_a"], served["healthy_b"]) / 2, served
    # The broken ones were asked only until their breakers opened (two consecutive failures each;
    # requests already under way when a breaker opens still count).
    assert served["failing"] <= 4, served
    assert served["hanging"] <= 10, served


async def test_the_breaker_opens_then_recovers_through_half_open(upstreams: Upstreams) -> None:
    flaky = upstreams.flaky + "/v1"
    states: list[tuple[str, str]] = []
    # A short Peak-EWMA memory: a failure's latency penalty fades within a fraction of a second, so the
    # balancer tries the failing backend again soon and its breaker (not just its cost) is exercised.
    proxy = in_process_proxy(upstreams.v1("healthy_a", "flaky"), states, breaker_failures=2,
                             breaker_open_seconds=0.4, balancer_decay_seconds=0.05)
    await set_fault(upstreams.flaky, "error")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=proxy), base_url="http://proxy",
                                     timeout=30) as client:

            def flaky_states() -> list[str]:
                return [state for backend, state in states if backend == flaky]

            async def ask_until(transitions: int, limit_s: float = 10) -> None:
                """Send requests until the flaky backend has seen ``transitions`` states."""
                deadline = time.monotonic() + limit_s
                while len(flaky_states()) < transitions:
                    assert time.monotonic() < deadline, states
                    text = prompt()
                    body = {"model": "mock-small", "messages": [{"role": "user", "content": text}]}
                    response = await client.post("/v1/chat/completions", json=body)
                    assert response.status_code == 200, response.text  # retries hide the failing backend
                    assert response.json()["choices"][0]["message"]["content"] == answer(text)
                    await asyncio.sleep(0.02)

            await ask_until(2)  # closed -> open
            await ask_until(4)  # -> half-open, whose probe fails -> open again (for longer)
            assert flaky_states()[-1] == "open"
            await set_fault(upstreams.flaky, "none")
            await ask_until(6)  # -> half-open, whose probe succeeds -> closed
    finally:
        await set_fault(upstreams.flaky, "none")
        await proxy.aclose()
    assert [state for backend, state in states if backend == flaky] == [
        "closed", "open", "half_open", "open", "half_open", "closed"]


@pytest.fixture
def proxy_server(upstreams: Upstreams, model_dir: Path) -> Iterator[Any]:
    """Start ``python -m demo_app --proxy`` to the named upstreams; yields a starter."""

    @contextlib.contextmanager
    def start(*names: str, **env: str) -> Iterator[str]:
        full_env = {
            "LLMGUARD_UPSTREAMS": json.dumps(upstreams.v1(*names) if names else []),
            "LLMGUARD_UPSTREAM_READ_TIMEOUT_MS": "1000",
            "LLMGUARD_UPSTREAM_RETRY_BACKOFF_MS": "0",
            "LLMGUARD_BREAKER_FAILURES": "2",
            "LLMGUARD_BREAKER_OPEN_SECONDS": "60",
            "LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir),
            **env,
        }
        args = ["demo_app", "--proxy", "--log-level", "warning", "--no-access-log"]
        with run_server(args, pick_free_port(), env=full_env) as base_url:
            yield base_url

    return start


def test_a_stream_cut_after_its_first_byte_ends_with_an_error_event_not_a_hang(proxy_server: Any) -> None:
    with proxy_server("hanging", LLMGUARD_CACHE_ENABLED="false") as base_url:
        sdk = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-test", max_retries=0, timeout=15)
        started = time.monotonic()
        received: list[str] = []
        with pytest.raises(openai.APIError, match="stopped answering"):
            for chunk in sdk.chat.completions.create(model="mock-small", stream=True,
                                                     messages=[{"role": "user", "content": prompt()}]):
                if chunk.choices and chunk.choices[0].delta.content:
                    received.append(chunk.choices[0].delta.content)
        assert received  # the first bytes did reach the client
        assert time.monotonic() - started < 10
        # The same over raw HTTP: the body ends (the server closes the response) with the error event.
        with httpx.stream("POST", base_url + "/v1/chat/completions", timeout=15, json={
            "model": "mock-small", "stream": True, "messages": [{"role": "user", "content": prompt()}],
        }) as response:
            assert response.status_code == 200
            raw = "".join(response.iter_text())
        _, done, error = sse_text(raw)
        assert error is not None and error["code"] == "upstream_timeout"
        assert not done


def test_a_client_that_leaves_cancels_the_upstream_stream(upstreams: Upstreams, proxy_server: Any) -> None:
    # A slow, long answer: the prompt is repeated in it word by word, 50 ms per word.
    text = " ".join(["word"] * 200)
    with run_server(MOCK, pick_free_port(), env={"LLMGUARD_DEMO_TTFT_MS": "0",
                                                 "LLMGUARD_DEMO_TOKEN_MS": "50"}) as slow_tokens:
        before = calls(slow_tokens)
        upstream = json.dumps([{"url": slow_tokens + "/v1"}])
        with proxy_server(LLMGUARD_UPSTREAMS=upstream, LLMGUARD_CACHE_ENABLED="false") as base_url:
            with httpx.stream("POST", base_url + "/v1/chat/completions", timeout=15, json={
                "model": "mock-small", "stream": True, "messages": [{"role": "user", "content": text}],
            }) as response:
                chunks = response.iter_raw()  # kept: dropping the iterator would close the response
                assert next(chunks).startswith(b"data: ")
                assert calls(slow_tokens)["streams_open"] == 1
            deadline = time.monotonic() + 5
            while calls(slow_tokens)["streams_open"] and time.monotonic() < deadline:
                time.sleep(0.05)
            after = calls(slow_tokens)
    assert after["streams_open"] == 0
    assert after["streams_cancelled"] == before["streams_cancelled"] + 1


def test_metrics_show_each_backends_breaker_and_the_stack_caches_proxied_answers(
    upstreams: Upstreams, proxy_server: Any
) -> None:
    # One failure opens a breaker here: after one refused connection Peak-EWMA alone would keep the
    # backend out of the way for a while, and this test is about what the scrape shows.
    with proxy_server("healthy_a", "refused", LLMGUARD_BREAKER_FAILURES="1") as base_url:
        sdk = openai.OpenAI(base_url=base_url + "/v1", api_key="sk-test", max_retries=0, timeout=15)
        texts = [prompt() for _ in range(12)]
        for text in texts:
            completion = sdk.chat.completions.create(model="mock-small",
                                                     messages=[{"role": "user", "content": text}])
            assert completion.choices[0].message.content == answer(text)
        again = sdk.chat.completions.with_raw_response.create(model="mock-small",
                                                              messages=[{"role": "user", "content": texts[0]}])
        assert again.headers["x-llmguard-cache"] == "hit"
        assert again.parse().choices[0].message.content == answer(texts[0])
        scrape = httpx.get(base_url + "/metrics", timeout=10).text
    breaker: dict[str, float] = {}
    for family in text_string_to_metric_families(scrape):
        if family.name == "llmguard_backend_breaker_state":
            breaker.update({s.labels["backend"]: s.value for s in family.samples})
    # 0 closed, 2 open: the refused backend failed and was taken out.
    assert breaker == {upstreams.healthy_a + "/v1": 0.0, upstreams.refused + "/v1": 2.0}
