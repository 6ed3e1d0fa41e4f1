"""FastEmbedEmbedder with the real model: batching, bounded queue, time budgets, clean failures."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from asgi_llmguard.core.types import Embedder
from asgi_llmguard.embedding.local import (
    CHARS_PER_TOKEN,
    MAX_BATCH_TOKENS,
    EmbeddingUnavailable,
    FastEmbedEmbedder,
    _Job,
    _length_groups,
    load_text_embedding,
)

pytestmark = pytest.mark.model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def embedder(model_dir: Path) -> AsyncIterator[FastEmbedEmbedder]:
    # A generous budget: the machine is shared, and these tests are not about latency.
    started = FastEmbedEmbedder(model_dir=str(model_dir), timeout=10.0)
    await started.start()
    yield started
    await started.close()


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


async def test_vectors_are_float32_unit_length_and_paraphrases_score_higher(
    embedder: FastEmbedEmbedder,
) -> None:
    question = await embedder.embed("How do I reset my password?")
    paraphrase = await embedder.embed("What's the way to reset my password?")
    unrelated = await embedder.embed("What is the capital of France?")

    assert isinstance(embedder, Embedder)
    assert question.dtype == np.float32
    assert question.shape == (embedder.dimensions,) == (384,)
    assert float(np.linalg.norm(question)) == pytest.approx(1.0, abs=1e-5)
    assert cosine(question, paraphrase) > 0.8
    assert cosine(question, paraphrase) > cosine(question, unrelated) + 0.4


async def test_concurrent_callers_share_batches_and_each_gets_its_own_vector(
    embedder: FastEmbedEmbedder,
) -> None:
    texts = [f"question number {i} about topic {i % 7}" for i in range(64)]
    before = embedder.stats()

    vectors = await asyncio.gather(*(embedder.embed(text) for text in texts))

    after = embedder.stats()
    assert after.texts_embedded - before.texts_embedded == 64
    assert after.batches - before.batches <= 8  # 64 one-text batches without batching
    assert after.largest_batch > 1
    # Results reach the caller that asked: compare with each text embedded alone.
    for index in (0, 13, 63):
        alone = await embedder.embed(texts[index])
        assert cosine(vectors[index], alone) > 0.999


def test_a_long_prompt_is_not_batched_with_short_ones() -> None:
    """One call pads all texts to the longest: a long prompt among short ones gets its own call."""
    texts = [f"short question {i}" for i in range(20)] + ["a long prompt with context " * 20]

    groups = _length_groups(texts)

    assert sorted(i for group in groups for i in group) == list(range(21))
    assert [20] in groups
    assert len(groups) == 2
    assert _length_groups([f"question number {i}" for i in range(32)]) == [list(range(32))]
    assert _length_groups([]) == []


async def test_mixed_length_callers_each_get_their_own_vector(embedder: FastEmbedEmbedder) -> None:
    texts = [f"short question {i}" for i in range(12)] + ["a long prompt with context " * 20] * 2

    vectors = await asyncio.gather(*(embedder.embed(text) for text in texts))

    for index in (0, 5, 12):
        assert cosine(vectors[index], await embedder.embed(texts[index])) > 0.999
    assert cosine(vectors[12], vectors[13]) > 0.999


async def test_a_text_is_cut_to_what_the_model_can_read_before_it_is_tokenised(embedder: FastEmbedEmbedder) -> None:
    # A head of blank space is long in characters and short in tokens: only a cut by characters
    # (not the tokenizer's truncation at 256 tokens) makes what follows it invisible.
    assert embedder.max_tokens == 256 and embedder.max_chars == 256 * CHARS_PER_TOKEN
    head = "Notes:" + " " * (embedder.max_chars - 6)
    one = await embedder.embed(head + "volcanoes erupt lava and ash " * 4000)  # ~115 KB
    other = await embedder.embed(head + "penguins live in the southern hemisphere " * 4000)
    assert cosine(one, other) > 0.9999
    within = await embedder.embed(head[:-100] + "volcanoes erupt lava and ash " * 4000)
    assert cosine(one, within) < 0.99  # inside the cut, the text still counts


async def test_batches_are_bounded_by_tokens_as_well_as_texts(model_dir: Path) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir), timeout=None)
    await embedder.start()
    try:
        long_texts = [f"report {i}: " + "the quarterly figures rose and fell again " * 80 for i in range(8)]
        await asyncio.gather(*(embedder.embed(text) for text in long_texts))
        assert embedder.stats().largest_batch <= MAX_BATCH_TOKENS // 256 == 2
        await asyncio.gather(*(embedder.embed(f"short question {i}") for i in range(32)))
        assert embedder.stats().largest_batch > 2  # short prompts still share calls
    finally:
        await embedder.close()


def test_the_onnx_memory_arena_is_off_when_asked(model_dir: Path) -> None:
    for arena in (True, False):
        model = load_text_embedding("sentence-transformers/all-MiniLM-L6-v2", str(model_dir), 1, memory_arena=arena)
        session = model.model.model  # fastembed's onnxruntime InferenceSession
        assert session.get_session_options().enable_cpu_mem_arena is arena


async def test_texts_that_could_not_be_embedded_in_time_are_refused_at_once(model_dir: Path) -> None:
    # Once the worker's pace is known, a text queued behind others that would take longer than the
    # caller's budget is refused when it is offered, not embedded after its caller gave up.
    embedder = FastEmbedEmbedder(model_dir=str(model_dir), timeout=10.0)
    await embedder.start()
    long_text = "the quarterly figures rose and fell again " * 80
    try:
        await embedder.embed(long_text)  # learns the pace
        outcomes = await asyncio.gather(*(embedder.embed(f"{i} {long_text}", timeout=0.001) for i in range(10)),
                                        return_exceptions=True)
        refused = [o for o in outcomes if isinstance(o, EmbeddingUnavailable) and "ahead" in str(o)]
        assert len(refused) == 9  # all but the first, which had nothing ahead of it
        assert embedder.stats().rejected == 9
        assert (await embedder.embed("still working")).shape == (384,)
    finally:
        await embedder.close()


async def test_the_worker_passes_over_texts_that_could_not_be_ready_before_their_callers_stop_waiting() -> None:
    # The worker's choice alone (no model): at 1 ms a token, a 256-token text due in 0.1 s cannot make it.
    embedder = FastEmbedEmbedder(model_dir="unused")
    embedder._seconds_per_token = 0.001
    loop = asyncio.get_running_loop()
    now = time.monotonic()
    due_soon, due_later, no_budget = (_Job("x" * 2048, loop, loop.create_future(), 256, deadline)
                                      for deadline in (now + 0.1, now + 10.0, None))
    embedder._waiting.extend([due_soon, due_later, no_budget])
    embedder._queued_tokens = 3 * 256
    batch, late = embedder._take()
    assert (batch, late) == ([due_later, no_budget], [due_soon])
    assert embedder._queued_tokens == 2 * 256  # the passed-over text no longer counts as work ahead


async def test_full_queue_refuses_at_once_and_the_embedder_keeps_working(model_dir: Path) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir), max_batch=1, max_pending=4, timeout=10.0)
    await embedder.start()
    refusals: list[tuple[str, float]] = []
    served: list[np.ndarray] = []

    async def attempt(text: str) -> None:
        started = time.perf_counter()
        try:
            served.append(await embedder.embed(text))
        except EmbeddingUnavailable as exc:
            refusals.append((str(exc), time.perf_counter() - started))

    try:
        await asyncio.gather(*(attempt(f"text {i}") for i in range(40)))

        # All 40 calls enqueue in one pass of the loop; the worker takes at most a few meanwhile.
        assert len(refusals) >= 30
        assert len(served) + len(refusals) == 40
        assert all("queue full" in message for message, _ in refusals)
        assert max(seconds for _, seconds in refusals) < 0.05  # refused at once, not after waiting
        assert embedder.stats().rejected == len(refusals)
        assert (await embedder.embed("still working")).shape == (384,)
    finally:
        await embedder.close()


async def test_tiny_timeout_raises_skips_the_text_and_the_embedder_keeps_working(
    model_dir: Path,
) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir), max_batch=1, timeout=10.0)
    await embedder.start()
    try:
        before = embedder.stats()
        outcomes = await asyncio.gather(
            *(embedder.embed(f"late text {i}", timeout=0.0001) for i in range(32)),
            return_exceptions=True,
        )
        assert all(isinstance(outcome, EmbeddingUnavailable) for outcome in outcomes)
        assert "within" in str(outcomes[0])
        after = embedder.stats()
        assert after.timed_out - before.timed_out == 32
        # Texts whose callers gave up before the worker took them are never embedded.
        assert after.texts_embedded - before.texts_embedded < 8
        assert after.pending == 0

        vector = await embedder.embed("on time")
        assert vector.shape == (384,)
    finally:
        await embedder.close()


async def test_embed_before_start_and_after_close_raises(model_dir: Path) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir))
    with pytest.raises(EmbeddingUnavailable, match="not started"):
        await embedder.embed("too early")

    await embedder.start()
    await embedder.close()
    await embedder.close()  # idempotent

    with pytest.raises(EmbeddingUnavailable, match="closed"):
        await embedder.embed("too late")
    with pytest.raises(EmbeddingUnavailable, match="closed"):
        await embedder.start()
    assert embedder._thread is not None and not embedder._thread.is_alive()


async def test_close_releases_waiting_callers(model_dir: Path) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir), max_batch=1, timeout=10.0)
    await embedder.start()
    calls = [asyncio.ensure_future(embedder.embed(f"text {i}")) for i in range(20)]
    await asyncio.sleep(0)  # every call is queued now

    await embedder.close()
    outcomes = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), timeout=5)

    released = [o for o in outcomes if isinstance(o, EmbeddingUnavailable)]
    assert released, "callers still queued at close must be released, not left waiting"
    assert all(isinstance(o, EmbeddingUnavailable | np.ndarray) for o in outcomes)


async def test_concurrent_starts_load_the_model_once(model_dir: Path) -> None:
    embedder = FastEmbedEmbedder(model_dir=str(model_dir))
    try:
        await asyncio.gather(embedder.start(), embedder.start(), embedder.start())
        thread = embedder._thread
        await embedder.start()
        assert embedder._thread is thread
        assert embedder.ready
    finally:
        await embedder.close()


async def test_model_folder_without_model_files_gives_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    embedder = FastEmbedEmbedder(model_dir=str(tmp_path))

    with pytest.raises(EmbeddingUnavailable) as raised:
        await embedder.start()

    message = str(raised.value)
    assert str(tmp_path) in message
    assert "model.onnx" in message and "tokenizer.json" in message
    with pytest.raises(EmbeddingUnavailable, match=r"model\.onnx"):
        await embedder.embed("anything")
    with pytest.raises(EmbeddingUnavailable, match=r"model\.onnx"):
        await embedder.start()  # the failure is remembered, not retried on every request
    await embedder.close()


def test_missing_model_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(EmbeddingUnavailable, match="does not exist") as raised:
        load_text_embedding("sentence-transformers/all-MiniLM-L6-v2", str(missing), 1)
    assert str(missing) in str(raised.value)


def test_corrupt_model_file_is_reported_as_unavailable(tmp_path: Path, model_dir: Path) -> None:
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "config.json"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    (tmp_path / "model.onnx").write_bytes(b"not an onnx model")

    with pytest.raises(EmbeddingUnavailable, match="could not load") as raised:
        load_text_embedding("sentence-transformers/all-MiniLM-L6-v2", str(tmp_path), 1)
    assert str(tmp_path) in str(raised.value)


@pytest.mark.parametrize("user_value", [None, "0"])
def test_local_load_sets_hub_offline_only_for_the_load_and_never_clobbers_the_user(
    model_dir: Path, monkeypatch: pytest.MonkeyPatch, user_value: str | None
) -> None:
    if user_value is None:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    else:
        monkeypatch.setenv("HF_HUB_OFFLINE", user_value)

    model = load_text_embedding("sentence-transformers/all-MiniLM-L6-v2", str(model_dir), 1)

    assert os.environ.get("HF_HUB_OFFLINE") == user_value
    assert len(next(iter(model.embed(["hello"])))) == 384


def test_importing_the_module_does_not_load_onnxruntime() -> None:
    code = (
        "import sys, asgi_llmguard, asgi_llmguard.embedding\n"
        "heavy = sorted(m for m in ('onnxruntime', 'fastembed', 'tokenizers') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_usearch_imported_before_onnxruntime_does_not_crash(model_dir: Path) -> None:
    """usearch 2.26.2-2.26.6 segfault in this order; the pin must keep it working."""
    code = (
        "import sys, usearch.index\n"
        "from asgi_llmguard.embedding.local import load_text_embedding\n"
        "from asgi_llmguard.cache.index import VectorIndex\n"
        f"model = load_text_embedding('sentence-transformers/all-MiniLM-L6-v2', {str(model_dir)!r}, 1)\n"
        "vector = next(iter(model.embed(['hello'])))\n"
        "index = VectorIndex(384, brute_force_below=0)\n"
        "index.add('ns', 1, vector)\n"
        "assert index.search('ns', vector)[0].key == 1\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])


async def test_idle_texts_wait_behind_every_request_text_and_still_get_embedded(embedder: FastEmbedEmbedder) -> None:
    done: list[str] = []

    async def one(name: str, idle: bool) -> np.ndarray:
        embed = embedder.embed_when_idle if idle else embedder.embed
        vector = await embed(f"text number {name}", timeout=30)
        done.append(name)
        return vector

    with embedder._cond:  # the worker cannot take anything until every text below is queued
        idle = [asyncio.create_task(one(f"idle {i}", True)) for i in range(4)]
        await asyncio.sleep(0)
        request = asyncio.create_task(one("request", False))
        await asyncio.sleep(0)
        assert embedder.stats().idle_pending == 4 and embedder.stats().pending == 1
    vectors = await asyncio.gather(request, *idle)
    assert done[0] == "request"  # queued last, embedded first
    assert embedder.stats().idle_embedded == 4 and embedder.stats().idle_pending == 0
    alone = await embedder.embed("text number idle 2", timeout=30)
    assert float(np.dot(alone, vectors[3])) > 0.999  # an idle text gets the same vector as a request's
