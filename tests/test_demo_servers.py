"""The demo servers, run as real uvicorn processes, answer the official openai SDK.

Each server starts once per module (model loading is not free) and every test asks its own
prompt, so no test can be served an answer cached for another.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from servers import ROOT, pick_free_port, run_server

pytestmark = pytest.mark.slow

FAST_MOCK = {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "1"}
API_KEY = "sk-demo-test"


def guarded_env(model_dir: Path) -> dict[str, str]:
    return {**FAST_MOCK, "LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir)}


def new_prompt() -> str:
    return f"Tell me about the number {uuid.uuid4().int % 10**9} please"


def sync_client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


def async_client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url + "/v1", api_key=API_KEY, max_retries=0, timeout=30)


def expected_answer(prompt: str) -> str:
    return f'You said: "{prompt}". Here is a mock answer.'


def chat_sync(base_url: str, prompt: str, *, model: str = "mock-small") -> str:
    completion = sync_client(base_url).chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}]
    )
    content = completion.choices[0].message.content
    assert content is not None
    return content


def chat_sync_stream(base_url: str, prompt: str) -> str:
    stream = sync_client(base_url).chat.completions.create(
        model="mock-small",
        messages=[{"role": "user", "content": prompt}],
        stream=True,
        stream_options={"include_usage": True},
    )
    parts: list[str] = []
    finish_reasons: list[str] = []
    usage_seen = False
    for chunk in stream:
        if chunk.usage is not None:
            usage_seen = True
        for choice in chunk.choices:
            parts.append(choice.delta.content or "")
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert finish_reasons == ["stop"]
    assert usage_seen
    return "".join(parts)


async def chat_async(base_url: str, prompt: str) -> str:
    async with async_client(base_url) as client:
        completion = await client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": prompt}]
        )
    content = completion.choices[0].message.content
    assert content is not None
    return content


async def chat_async_stream(base_url: str, prompt: str) -> str:
    parts: list[str] = []
    async with async_client(base_url) as client:
        stream = await client.chat.completions.create(
            model="mock-small", messages=[{"role": "user", "content": prompt}], stream=True
        )
        async for chunk in stream:
            for choice in chunk.choices:
                parts.append(choice.delta.content or "")
    return "".join(parts)


def mock_calls(base_url: str) -> int:
    calls: int = httpx.get(base_url + "/mock/stats", timeout=10).json()["calls"]
    return calls


# --- in process: settings and pages -------------------------------------------------------------------


def test_demo_settings_apply_demo_defaults_unless_env_or_keywords_say_otherwise() -> None:
    from demo_app.app import demo_settings

    plain = demo_settings({})
    assert plain.stats_path == "/stats"
    assert plain.dashboard_path == "/dashboard"
    assert plain.metrics_path == "/metrics"
    assert plain.router_aliases["auto"] == ("mock-small", "mock-large")

    from_env = demo_settings({"LLMGUARD_STATS_PATH": "/my-stats", "LLMGUARD_ROUTER_ALIASES": '{"x": ["a"]}'})
    assert from_env.stats_path == "/my-stats"
    assert "auto" not in from_env.router_aliases
    assert from_env.dashboard_path == "/dashboard"

    keywords = demo_settings({"LLMGUARD_STATS_PATH": "/my-stats"}, stats_path="/kw-stats")
    assert keywords.stats_path == "/kw-stats"


async def test_unguarded_app_serves_index_health_docs_and_the_mock_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from demo_app.app import create_app

    for name, value in FAST_MOCK.items():
        monkeypatch.setenv(name, value)

    app = create_app(guarded=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
        index = await client.get("/")
        assert index.headers["content-type"].startswith("text/html")
        for link in ("/stats", "/dashboard", "/metrics", "/docs"):
            assert f'href="{link}"' in index.text
        assert (await client.get("/docs")).status_code == 200
        openapi = (await client.get("/openapi.json")).json()
        assert "/v1/chat/completions" in openapi["paths"]
        body = {"model": "mock-large", "messages": [{"role": "user", "content": "in process"}]}
        answer = (await client.post("/v1/chat/completions", json=body)).json()
        assert answer["choices"][0]["message"]["content"] == expected_answer("in process")
    with pytest.raises(TypeError):
        create_app(guarded=False, stats_path="/x")


# --- the demo, guarded -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def guarded_demo(model_dir: Path) -> Iterator[str]:
    with run_server(["demo_app"], pick_free_port(), env=guarded_env(model_dir)) as base_url:
        yield base_url


def test_guarded_demo_answers_sync_non_stream(guarded_demo: str) -> None:
    prompt = new_prompt()
    assert chat_sync(guarded_demo, prompt) == expected_answer(prompt)


def test_guarded_demo_answers_sync_stream(guarded_demo: str) -> None:
    prompt = new_prompt()
    assert chat_sync_stream(guarded_demo, prompt) == expected_answer(prompt)


async def test_guarded_demo_answers_async_non_stream(guarded_demo: str) -> None:
    prompt = new_prompt()
    assert await chat_async(guarded_demo, prompt) == expected_answer(prompt)


async def test_guarded_demo_answers_async_stream(guarded_demo: str) -> None:
    prompt = new_prompt()
    assert await chat_async_stream(guarded_demo, prompt) == expected_answer(prompt)


def test_guarded_demo_answers_legacy_completions(guarded_demo: str) -> None:
    prompt = new_prompt()
    completion = sync_client(guarded_demo).completions.create(model="gpt-3.5-turbo-instruct", prompt=prompt)
    assert completion.choices[0].text == expected_answer(prompt)


def test_guarded_demo_serves_a_repeated_request_from_the_cache(guarded_demo: str) -> None:
    prompt = new_prompt()
    client = sync_client(guarded_demo)
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
    first = client.chat.completions.with_raw_response.create(model="mock-small", messages=messages)
    assert first.headers["x-llmguard-cache"] == "miss"
    calls = mock_calls(guarded_demo)
    second = client.chat.completions.with_raw_response.create(model="mock-small", messages=messages)
    assert second.headers["x-llmguard-cache"] == "hit"
    assert second.parse().choices[0].message.content == expected_answer(prompt)
    assert mock_calls(guarded_demo) == calls


@pytest.mark.parametrize(("asked_first", "reworded"), [
    ("What is the capital of France?", "What's the capital city of France?"),
    ("How do I sort a dictionary by value in Python?", "How can I sort a Python dict by its values?"),
    # Off the medical topic and in other words: served with the balanced point's rewording credit.
    ("What is the most spoken language in the world?", "Which language has the most speakers worldwide?"),
    ("Why is cricket so popular in India?", "Why does India love cricket so much?"),
    # Questions that touch the body but are no doctor's: under the topic probe's margin, so they earn the credit
    # (each refused before the margin).
    ("How do vaccines work?", "How does a vaccine train the immune system?"),
    ("How much water should I drink every day?", "What is the recommended daily water intake for an adult?"),
    ("How long should I boil an egg for a soft yolk?", "how long do i boil an egg if i want the yolk runny"),
    ("How can I improve my sleep quality?", "What are some tips for sleeping better at night?"),
])
def test_guarded_demo_serves_an_everyday_rewording_from_the_cache(guarded_demo: str, asked_first: str,
                                                                  reworded: str) -> None:
    """Issue 14's two rewordings, which the rule-only verifier refused: the stored answer comes back."""
    client = sync_client(guarded_demo)
    first = client.chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": asked_first}])
    assert first.headers["x-llmguard-cache"] == "miss"
    calls = mock_calls(guarded_demo)
    second = client.chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": reworded}])
    assert second.headers["x-llmguard-cache"] == "hit"
    assert 0.5 < float(second.headers["x-llmguard-similarity"]) < 1.0
    assert second.parse().choices[0].message.content == expected_answer(asked_first)
    assert mock_calls(guarded_demo) == calls


def test_guarded_demo_serves_a_repeated_stream_from_the_cache(guarded_demo: str) -> None:
    prompt = new_prompt()
    assert chat_sync_stream(guarded_demo, prompt) == expected_answer(prompt)
    calls = mock_calls(guarded_demo)
    with httpx.stream(
        "POST",
        guarded_demo + "/v1/chat/completions",
        json={
            "model": "mock-small",
            "messages": [{"role": "user", "content": prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        headers={"authorization": f"Bearer {API_KEY}"},  # the same identity: answers are scoped to it
        timeout=30,
    ) as response:
        assert response.headers["x-llmguard-cache"] == "hit"
        response.read()
    assert mock_calls(guarded_demo) == calls
    assert chat_sync_stream(guarded_demo, prompt) == expected_answer(prompt)


def test_guarded_demo_routes_the_auto_alias_to_a_mock_model(guarded_demo: str) -> None:
    raw = sync_client(guarded_demo).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": new_prompt()}]
    )
    completion = raw.parse()
    assert completion.model in {"mock-small", "mock-large"}
    assert raw.headers["x-llmguard-model"] == completion.model


def test_guarded_demo_leaves_health_and_the_index_page_unguarded(guarded_demo: str) -> None:
    health = httpx.get(guarded_demo + "/health", timeout=10)
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert not any(name.lower().startswith("x-llmguard-") for name in health.headers)
    index = httpx.get(guarded_demo + "/", timeout=10)
    assert index.status_code == 200
    assert "/dashboard" in index.text


def test_guarded_demo_turns_on_stats_and_metrics(guarded_demo: str) -> None:
    chat_sync(guarded_demo, new_prompt())
    stats = httpx.get(guarded_demo + "/stats", timeout=10)
    assert stats.status_code == 200
    assert isinstance(stats.json(), dict)
    metrics = httpx.get(guarded_demo + "/metrics", timeout=10)
    assert metrics.status_code == 200
    assert "llmguard_" in metrics.text


def test_guarded_demo_turns_on_the_dashboard(guarded_demo: str) -> None:
    dashboard = httpx.get(guarded_demo + "/dashboard", timeout=10)
    assert dashboard.status_code == 200
    assert dashboard.headers["content-type"].startswith("text/html")


@pytest.mark.redis
def test_two_guarded_replicas_sharing_redis_share_the_cache(model_dir: Path, redis_url: str) -> None:
    env = {**guarded_env(model_dir), "LLMGUARD_REDIS_URL": redis_url}
    prompt = new_prompt()
    messages: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": prompt}]
    with (
        run_server(["demo_app"], pick_free_port(), env=env) as first,
        run_server(["demo_app"], pick_free_port(), env=env) as second,
    ):
        made = sync_client(first).chat.completions.with_raw_response.create(model="mock-small", messages=messages)
        assert made.headers["x-llmguard-cache"] == "miss"
        served = sync_client(second).chat.completions.with_raw_response.create(model="mock-small", messages=messages)
        assert served.headers["x-llmguard-cache"] == "hit"
        assert served.parse().choices[0].message.content == expected_answer(prompt)
        assert mock_calls(second) == 0


# --- the demo without the stack ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def unguarded_demo() -> Iterator[str]:
    with run_server(["demo_app", "--no-guard"], pick_free_port(), env=FAST_MOCK) as base_url:
        yield base_url


def test_unguarded_demo_answers_stream_and_non_stream(unguarded_demo: str) -> None:
    prompt = new_prompt()
    assert chat_sync(unguarded_demo, prompt) == expected_answer(prompt)
    assert chat_sync_stream(unguarded_demo, prompt) == expected_answer(prompt)


async def test_unguarded_demo_answers_async_stream_and_non_stream(unguarded_demo: str) -> None:
    prompt = new_prompt()
    assert await chat_async(unguarded_demo, prompt) == expected_answer(prompt)
    assert await chat_async_stream(unguarded_demo, prompt) == expected_answer(prompt)


def test_unguarded_demo_adds_no_llmguard_headers_and_every_request_reaches_the_mock(unguarded_demo: str) -> None:
    prompt = new_prompt()
    calls = mock_calls(unguarded_demo)
    for _ in range(2):
        raw = sync_client(unguarded_demo).chat.completions.with_raw_response.create(
            model="mock-small", messages=[{"role": "user", "content": prompt}]
        )
        assert not any(name.lower().startswith("x-llmguard-") for name in raw.headers)
    assert mock_calls(unguarded_demo) == calls + 2
    assert httpx.get(unguarded_demo + "/health", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("which", ["guarded", "unguarded"])
def test_a_lone_surrogate_gets_an_openai_400_never_a_plain_500(which: str, stream: bool,
                                                               request: pytest.FixtureRequest) -> None:
    base_url = request.getfixturevalue(f"{which}_demo")
    body = b'{"model":"mock-small","stream":%s,"messages":[{"role":"user","content":"\\ud800 hi"}]}' % (
        b"true" if stream else b"false")
    response = httpx.post(base_url + "/v1/chat/completions", content=body,
                          headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_json"


def test_unguarded_demo_runs_with_several_workers() -> None:
    args = ["demo_app", "--no-guard", "--workers", "2", "--log-level", "warning"]
    with run_server(args, pick_free_port(), env=FAST_MOCK) as base_url:
        prompt = new_prompt()
        assert chat_sync(base_url, prompt) == expected_answer(prompt)


# --- the mock alone and the proxy mode without upstreams ------------------------------------------------------


def test_mock_only_serves_the_mock_llm() -> None:
    with run_server(["demo_app", "--mock-only"], pick_free_port(), env=FAST_MOCK) as base_url:
        prompt = new_prompt()
        assert chat_sync_stream(base_url, prompt) == expected_answer(prompt)
        models = httpx.get(base_url + "/v1/models", timeout=10).json()
        assert "mock-large" in {m["id"] for m in models["data"]}
        assert httpx.get(base_url + "/stats", timeout=10).status_code == 404


def test_proxy_mode_without_upstreams_says_what_to_set_and_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LLMGUARD_UPSTREAMS"}
    result = subprocess.run(
        [sys.executable, "-m", "demo_app", "--proxy", "--port", str(pick_free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "LLMGUARD_UPSTREAMS" in result.stderr
    assert "Traceback" not in result.stderr


# --- the Django site ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def django_demo(model_dir: Path) -> Iterator[str]:
    args = ["uvicorn", "demo_app.django_site.asgi:application"]
    with run_server(args, pick_free_port(), env=guarded_env(model_dir)) as base_url:
        yield base_url


def test_django_demo_answers_stream_and_non_stream(django_demo: str) -> None:
    prompt = new_prompt()
    assert chat_sync(django_demo, prompt) == expected_answer(prompt)
    other = new_prompt()
    assert chat_sync_stream(django_demo, other) == expected_answer(other)


async def test_django_demo_answers_async_stream(django_demo: str) -> None:
    prompt = new_prompt()
    assert await chat_async_stream(django_demo, prompt) == expected_answer(prompt)


def test_django_demo_sees_the_model_the_router_chose(django_demo: str) -> None:
    raw = sync_client(django_demo).chat.completions.with_raw_response.create(
        model="auto", messages=[{"role": "user", "content": new_prompt()}]
    )
    completion = raw.parse()
    assert completion.model in {"mock-small", "mock-large"}
    assert raw.headers["x-llmguard-model"] == completion.model


def test_django_demo_guards_the_llm_endpoint_but_not_health(django_demo: str) -> None:
    raw = sync_client(django_demo).chat.completions.with_raw_response.create(
        model="mock-small", messages=[{"role": "user", "content": new_prompt()}]
    )
    assert raw.headers["x-llmguard-cache"] in {"miss", "bypass"}
    health = httpx.get(django_demo + "/health", timeout=10)
    assert health.json() == {"status": "ok"}
    assert not any(name.lower().startswith("x-llmguard-") for name in health.headers)
    models = sync_client(django_demo).models.list()
    assert "mock-small" in {m.id for m in models.data}


def test_guarded_demo_serves_a_rewording_to_the_sdk_and_refuses_a_near_duplicate(guarded_demo: str) -> None:
    """Through a real uvicorn and the official SDK: a rewording is a verified hit, another number is not."""
    distance = uuid.uuid4().int % 900 + 100
    client = sync_client(guarded_demo)
    original = f"How many miles are in {distance} km?"

    def ask(prompt: str, *, stream: bool = False) -> tuple[str, str]:
        messages = [{"role": "user", "content": prompt}]
        if stream:
            raw_stream = client.chat.completions.with_raw_response.create(
                model="mock-small", messages=messages, stream=True)  # type: ignore[arg-type]
            text = "".join(c.choices[0].delta.content or "" for c in raw_stream.parse() if c.choices)
            return raw_stream.headers["x-llmguard-cache"], text
        raw = client.chat.completions.with_raw_response.create(
            model="mock-small", messages=messages)  # type: ignore[arg-type]
        return raw.headers["x-llmguard-cache"], raw.parse().choices[0].message.content or ""

    assert ask(original) == ("miss", expected_answer(original))
    assert ask(f"How many miles are there in {distance} km?") == ("hit", expected_answer(original))
    assert ask(f"How many miles are there in {distance} km?", stream=True) == ("hit", expected_answer(original))
    other = f"How many miles are in {distance + 7} km?"
    assert ask(other) == ("miss", expected_answer(other))
