"""The embedding tier apart: ``python -m asgi_llmguard.embedding_server`` and ``RemoteEmbedder``.

The embedding server runs as a real process serving the real local model (tests/servers.run_server);
the cache tests wrap tests/apps.FakeLLM in a Guard whose ``embedding_url`` points at it. The slow
server is tests/embedding_doubles.py under uvicorn, its delay set while it runs.
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from apps import CHAT, FakeLLM, chat, client, reply_for
from servers import pick_free_port, run_server

from asgi_llmguard import ConfigurationError, Guard, Settings
from asgi_llmguard.embedding.local import EmbeddingUnavailable, FastEmbedEmbedder
from asgi_llmguard.embedding.remote import RemoteEmbedder, parse_embeddings

pytestmark = [pytest.mark.model, pytest.mark.slow]

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SERVER = ["asgi_llmguard.embedding_server", "--no-access-log", "--log-level", "warning"]


def server_env(model_dir: Path, **extra: str) -> dict[str, str]:
    return {"LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir), "HF_HUB_OFFLINE": "1", **extra}


@pytest.fixture(scope="module")
def embedding_server(model_dir: Path) -> Iterator[str]:
    """One embedding server process for the tests that do not stop it; yields its base URL (no /v1)."""
    with run_server(SERVER, pick_free_port(), env=server_env(model_dir)) as base_url:
        yield base_url


@pytest.fixture
def slow_server() -> Iterator[str]:
    with run_server(["uvicorn", "embedding_doubles:app", "--app-dir", "tests", "--log-level", "warning"],
                    pick_free_port()) as base_url:
        yield base_url


@pytest.fixture
def make_guard(start_guard: Any) -> Any:
    return start_guard


@pytest.fixture
async def remote(embedding_server: str) -> AsyncIterator[RemoteEmbedder]:
    embedder = RemoteEmbedder(embedding_server + "/v1", timeout=10.0)  # a shared machine: not about latency
    await embedder.start()
    yield embedder
    await embedder.close()


async def ask(app: Any, prompt: str, **headers: str) -> tuple[str, str, float]:
    """(cache header, answer text, seconds) of one chat request, which must be a 200."""
    started = time.perf_counter()
    async with client(app, **headers) as c:
        response = await c.post(CHAT, json=chat(prompt))
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return response.headers["x-llmguard-cache"], response.json()["choices"][0]["message"]["content"], elapsed


def degraded(guard: Guard, part: str) -> float:
    assert guard.metrics is not None
    return guard.metrics.registry.get_sample_value("llmguard_degraded_total", {"part": part}) or 0.0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


# -- the server ----------------------------------------------------------------------------------------


def test_the_server_answers_the_openai_shape_for_a_string_and_a_list(embedding_server: str) -> None:
    with httpx.Client(base_url=embedding_server) as http:
        one = http.post("/v1/embeddings", json={"model": MODEL, "input": "How do I reset my password?"})
        many = http.post("/v1/embeddings", json={"model": MODEL, "input": ["first text", "second text"]})
        packed = http.post("/v1/embeddings", json={"input": ["first text"], "encoding_format": "base64"})
        models = http.get("/v1/models").json()
        health = http.get("/health").json()

    assert one.status_code == 200, one.text
    body = one.json()
    assert body["object"] == "list" and body["model"] == MODEL
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    assert [item["index"] for item in body["data"]] == [0]
    assert len(body["data"][0]["embedding"]) == 384
    assert [item["index"] for item in many.json()["data"]] == [0, 1]
    as_floats = np.asarray(many.json()["data"][0]["embedding"], dtype=np.float32)
    as_base64 = np.frombuffer(base64.b64decode(packed.json()["data"][0]["embedding"]), dtype="<f4")
    assert np.array_equal(as_floats, as_base64)
    assert [m["id"] for m in models["data"]] == [MODEL]
    assert health == {"status": "ok", "model": MODEL}


def test_the_official_openai_client_reads_the_server(embedding_server: str) -> None:
    """The openai SDK asks for base64 by default and decodes it itself."""
    import openai

    sdk = openai.OpenAI(base_url=embedding_server + "/v1", api_key="unused", max_retries=0)
    try:
        result = sdk.embeddings.create(model=MODEL, input=["What is the capital of France?", "Paris"])
    finally:
        sdk.close()
    assert [len(item.embedding) for item in result.data] == [384, 384]
    assert float(np.linalg.norm(result.data[0].embedding)) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("body", "param"), [
    (b"{not json", None),
    (b'["a list, not an object"]', None),
    (b'{"model": "sentence-transformers/all-MiniLM-L6-v2"}', "input"),
    (b'{"input": []}', "input"),
    (b'{"input": ""}', "input"),
    (b'{"input": ["fine", ""]}', "input"),
    (b'{"input": [[101, 2023, 102]]}', "input"),
    (b'{"input": ["fine", 3]}', "input"),
    (b'{"input": "fine", "encoding_format": "int8"}', "encoding_format"),
    (b'{"input": "fine", "dimensions": 64}', "dimensions"),
    (b'{"input": [' + b",".join([b'"t"'] * 257) + b"]}", "input"),
])
def test_bad_input_is_an_openai_style_400(embedding_server: str, body: bytes, param: str | None) -> None:
    response = httpx.post(embedding_server + "/v1/embeddings", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    assert error["param"] == param


def test_an_unknown_model_is_a_404_and_a_huge_body_a_413(embedding_server: str) -> None:
    unknown = httpx.post(embedding_server + "/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    huge = httpx.post(embedding_server + "/v1/embeddings", json={"input": "x" * (9 * 1024 * 1024)})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "request_too_large"


# -- the remote embedder -------------------------------------------------------------------------------


async def test_remote_vectors_are_the_in_process_vectors(remote: RemoteEmbedder, model_dir: Path) -> None:
    local = FastEmbedEmbedder(model_dir=str(model_dir), timeout=10.0)
    await local.start()
    try:
        texts = ["How do I reset my password?", "What's the capital of France?", "ünïcödé and emoji 🚀", "x" * 3000]
        for text in texts:
            far, near = await remote.embed(text), await local.embed(text)
            assert far.dtype == np.float32 and far.shape == (remote.dimensions,) == (384,)
            assert float(np.linalg.norm(far)) == pytest.approx(1.0, abs=1e-5)
            assert cosine(far, near) > 0.9999
    finally:
        await local.close()


async def test_concurrent_embeds_share_http_calls(remote: RemoteEmbedder, embedding_server: str) -> None:
    texts = [f"question number {i} about topic {i % 7}" for i in range(64)]
    async with httpx.AsyncClient(base_url=embedding_server) as http:
        before = (await http.get("/stats")).json()
        client_before = remote.stats()
        vectors = await asyncio.gather(*(remote.embed(text) for text in texts))
        after = (await http.get("/stats")).json()

    calls = after["requests"] - before["requests"]
    assert after["inputs"] - before["inputs"] == 64
    assert calls <= 8, f"64 concurrent embeds took {calls} HTTP calls"  # 64 without batching
    assert remote.stats().batches - client_before.batches == calls
    assert remote.stats().largest_batch > 1
    for index in (0, 13, 63):  # each caller got its own text's vector
        assert cosine(vectors[index], await remote.embed(texts[index])) > 0.9999


async def test_the_remote_embedder_fails_fast_on_a_server_that_is_down() -> None:
    embedder = RemoteEmbedder(f"http://127.0.0.1:{pick_free_port()}/v1", start_timeout=0.5)
    started = time.perf_counter()
    with pytest.raises(EmbeddingUnavailable, match="unavailable"):
        await embedder.start()
    assert time.perf_counter() - started < 3.0
    with pytest.raises(EmbeddingUnavailable, match="unavailable"):
        await embedder.embed("still not started")
    await embedder.close()


def test_answers_that_are_not_one_finite_vector_per_input_are_refused() -> None:
    good = {"data": [{"index": 1, "embedding": [0.0, 2.0]},
                     {"index": 0, "embedding": base64.b64encode(np.asarray([3.0, 4.0], "<f4").tobytes()).decode()}]}
    rows = parse_embeddings(good, 2, 2)
    assert rows.tolist() == [[pytest.approx(0.6), pytest.approx(0.8)], [0.0, 1.0]]
    for bad, count in [
        ({"data": [{"index": 0, "embedding": [1.0]}]}, 2),
        ({"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]}, 2),
        ({"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 1, "embedding": [1.0]}]}, 2),
        ({"data": [{"index": 0, "embedding": [float("nan"), 1.0]}]}, 1),
        ({"data": [{"index": 0, "embedding": "not base64!"}]}, 1),
        ({"error": {"message": "nope"}}, 1),
    ]:
        with pytest.raises(EmbeddingUnavailable):
            parse_embeddings(bad, count)
    with pytest.raises(EmbeddingUnavailable, match="expected 3"):
        parse_embeddings(good, 2, 3)


def test_without_httpx_the_embedding_url_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ConfigurationError, match="LLMGUARD_EMBEDDING_URL"):
        RemoteEmbedder("http://127.0.0.1:8100/v1")


@pytest.mark.parametrize("url", ["127.0.0.1:8100/v1", "ftp://host/v1", "http://127.0.0.1:8100/v1/embeddings"])
def test_an_embedding_url_that_is_not_a_base_url_fails_at_startup(url: str) -> None:
    with pytest.raises(ConfigurationError, match="LLMGUARD_EMBEDDING_URL"):
        Settings.from_env({"LLMGUARD_EMBEDDING_URL": url})
    assert Settings(embedding_url="http://127.0.0.1:8100/v1/").embedding_url == "http://127.0.0.1:8100/v1"


# -- the cache through the remote tier -----------------------------------------------------------------


async def test_a_paraphrase_is_a_semantic_hit_through_the_embedding_server(
    make_guard: Any, embedding_server: str
) -> None:
    llm = FakeLLM()
    guard = await make_guard(embedding_url=embedding_server + "/v1", embedding_timeout_ms=5000)
    assert guard.cache is not None and isinstance(guard.cache.embedder, RemoteEmbedder)
    app = guard.wrap(llm.app)

    assert (await ask(app, "What is the capital of France?"))[0] == "miss"
    status, answer, _ = await ask(app, "What's the capital of France?")
    assert status == "hit" and answer == reply_for("What is the capital of France?")
    assert (await ask(app, "What is the capital of Spain?"))[0] == "miss"  # verification still applies
    assert llm.calls == 2


async def test_early_verification_runs_beside_the_remote_embedding_even_on_one_cpu(
    make_guard: Any, embedding_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the embedding server computes, this process's CPU is free: the pair model starts on the
    guessed stored prompt whatever the CPU count (tests/cache/test_semantic_cache.py checks that the
    verdicts are the plain order's)."""
    from asgi_llmguard.cache import engine

    monkeypatch.setattr(engine, "SEVERAL_CPUS", False)
    guard = await make_guard(embedding_url=embedding_server + "/v1", embedding_timeout_ms=5000)
    app = guard.wrap(FakeLLM().app)
    assert (await ask(app, "How do I reverse a list in Python?"))[0] == "miss"
    assert (await ask(app, "How can I reverse a list in Python?"))[0] == "hit"
    assert (await ask(app, "How do I reverse a string in Python?"))[0] == "miss"  # guessed, still not served
    assert guard.metrics is not None
    counts = {outcome: guard.metrics.registry.get_sample_value("llmguard_cache_early_verify_total",
                                                               {"outcome": outcome}) or 0.0
              for outcome in ("used", "missed")}
    assert counts["used"] >= 1 and counts["used"] + counts["missed"] == 2  # a guess for each of the two asks


async def test_when_the_server_stops_requests_are_misses_and_never_errors(make_guard: Any, model_dir: Path) -> None:
    """Also: a server that wants a key, and a guard that sends it."""
    llm = FakeLLM()
    port = pick_free_port()
    with run_server(SERVER, port, env=server_env(model_dir, LLMGUARD_EMBEDDING_API_KEY="sk-embed")) as base_url:
        async with httpx.AsyncClient() as http:
            keyless = await http.post(base_url + "/v1/embeddings", json={"input": "who am I?"})
        assert keyless.status_code == 401 and keyless.json()["error"]["code"] == "invalid_api_key"
        guard = await make_guard(embedding_url=base_url + "/v1", embedding_api_key="sk-embed",
                                 embedding_timeout_ms=5000)
        assert guard.cache is not None and guard.cache.embedder is not None
        app = guard.wrap(llm.app)
        await ask(app, "How do I reverse a list in Python?")
        assert (await ask(app, "How can I reverse a list in Python?"))[0] == "hit"

    status, answer, elapsed = await ask(app, "How could I reverse a Python list?")
    assert status == "miss" and answer == reply_for("How could I reverse a Python list?")
    assert elapsed < 5.0  # connection refused: no budget to wait out
    assert degraded(guard, "embedding") >= 1
    assert (await ask(app, "How do I reverse a list in Python?"))[0] == "hit"  # the exact tier goes on


async def test_a_slow_server_is_a_miss_within_the_budget(make_guard: Any, slow_server: str) -> None:
    llm = FakeLLM()
    guard = await make_guard(embedding_url=slow_server + "/v1", embedding_timeout_ms=200)
    app = guard.wrap(llm.app)
    await ask(app, "What is the capital of France?")
    async with httpx.AsyncClient() as http:
        await http.post(slow_server + "/control", json={"delay_ms": 2000})

    status, answer, elapsed = await ask(app, "What's the capital of France?")
    assert status == "miss" and answer == reply_for("What's the capital of France?")
    # The lookup's embedding and the store's one after the answer: two budgets, not the server's 2 s.
    assert elapsed < 1.5
    assert degraded(guard, "embedding") >= 1
    assert guard.cache is not None and isinstance(guard.cache.embedder, RemoteEmbedder)
    assert guard.cache.embedder.stats().timed_out >= 1

    embedder = guard.cache.embedder
    started = time.perf_counter()
    with pytest.raises(EmbeddingUnavailable, match="within"):
        await embedder.embed("on its own", timeout=0.1)
    assert time.perf_counter() - started < 0.6


async def test_a_server_down_at_startup_leaves_the_exact_tier_working(make_guard: Any) -> None:
    llm = FakeLLM()
    down = RemoteEmbedder(f"http://127.0.0.1:{pick_free_port()}/v1", start_timeout=0.5)
    guard = await make_guard(embedder=down)
    assert guard.cache is not None and guard.cache.embedder is None
    assert degraded(guard, "embedding_load") == 1
    app = guard.wrap(llm.app)
    assert (await ask(app, "What is the capital of France?"))[0] == "miss"
    assert (await ask(app, "What is the capital of France?"))[0] == "hit"
    assert (await ask(app, "What's the capital of France?"))[0] == "miss"
