"""The semantic tier with the real embedding model: rewordings hit, near-duplicates with other answers miss.

Each test builds a real Starlette app (tests/apps.FakeLLM, whose answer names the prompt it was
made for) behind a Guard that loads the local model, and talks to it with httpx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from apps import CHAT, FakeLLM, chat, client, parse_sse, reply_for

from asgi_llmguard import Guard

pytestmark = pytest.mark.model


@pytest.fixture
def make_guard(start_guard: Any, model_dir: Path) -> Any:
    async def make(**settings: Any) -> Guard:
        settings.setdefault("embedding_model_dir", str(model_dir))
        guard: Guard = await start_guard(**settings)
        return guard

    return make


async def ask(app: Any, prompt: str, **extra: Any) -> tuple[str, str, str | None, str]:
    """(cache header, similarity header, answer text) for one non-streamed chat request."""
    headers = extra.pop("headers", {})
    async with client(app, **headers) as c:
        response = await c.post(CHAT, json=chat(prompt, **extra))
    assert response.status_code == 200, response.text
    content = response.json()["choices"][0]["message"]["content"]
    return (response.headers["x-llmguard-cache"], response.headers.get("x-llmguard-similarity", ""),
            response.headers.get("x-llmguard-model"), content)


async def test_a_rewording_is_a_semantic_hit_with_the_original_answer(make_guard: Any) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    assert (await ask(app, "What is the capital of France?"))[0] == "miss"
    status, similarity, _, answer = await ask(app, "What's the capital of France?")
    assert status == "hit"
    assert 0.8 < float(similarity) < 1.0
    assert answer == reply_for("What is the capital of France?")
    assert llm.calls == 1


async def test_a_short_rewording_under_the_cosine_floor_is_served_and_a_long_one_is_not(make_guard: Any) -> None:
    """Short prompts are judged under the floor (the strictness point's reach); long ones never are, and an
    expert's LLMGUARD_CACHE_THRESHOLD turns the reach off."""
    guard = await make_guard()
    verifier = guard.cache.verifier
    llm = FakeLLM()
    app = guard.wrap(llm.app)
    stored = "How do I make my phone battery last longer?"
    await ask(app, stored)
    status, similarity, _, answer = await ask(app, "Tips to extend my phone's battery life")
    assert status == "hit" and answer == reply_for(stored)
    assert verifier.reach.floor <= float(similarity) < verifier.threshold
    long_prompt = "Tips to extend my phone's battery life when I am travelling all day long without any charger at all"
    assert (await ask(app, long_prompt))[0] == "miss"
    assert llm.calls == 2
    expert = (await make_guard(cache_threshold=verifier.threshold)).wrap(FakeLLM().app)
    await ask(expert, stored)
    assert (await ask(expert, "Tips to extend my phone's battery life"))[0] == "miss"


async def test_the_same_question_far_under_the_floor_is_served_from_the_nearest_prompt_only(make_guard: Any) -> None:
    """A conversion written in symbols meets its words far under every floor (cosine 0.61): served as the same
    question in other words, from the nearest stored prompt; the other direction stays a miss, and an expert's
    LLMGUARD_CACHE_THRESHOLD keeps its floor."""
    guard = await make_guard()
    verifier = guard.cache.verifier
    llm = FakeLLM()
    app = guard.wrap(llm.app)
    stored = "Convert 100 Fahrenheit to Celsius"
    await ask(app, stored)
    status, similarity, _, answer = await ask(app, "100 F to C")
    assert status == "hit" and answer == reply_for(stored)
    assert verifier.same_question_floor <= float(similarity) < verifier.reach.floor
    assert (await ask(app, "100 C to F"))[0] == "miss"  # and stored
    # Only the nearest is fetched that far down: "100 C to F" (0.78) is nearer to this one than the stored
    # "Convert 100 Fahrenheit to Celsius" (0.64), which it asks in other words, and refused.
    assert (await ask(app, "what is 100F in C"))[0] == "miss"
    assert llm.calls == 3
    expert = (await make_guard(cache_threshold=verifier.threshold)).wrap(FakeLLM().app)
    await ask(expert, stored)
    assert (await ask(expert, "100 F to C"))[0] == "miss"


@pytest.mark.parametrize(("stored", "asked"), [
    ("How do I convert 5 km to miles?", "How do I convert 8 km to miles?"),
    ("Translate 'good morning' from English to French", "Translate 'good morning' from French to English"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("Is it safe to take ibuprofen with alcohol?", "Is it not safe to take ibuprofen with alcohol?"),
    ("What is the largest planet in the solar system?", "What is the smallest planet in the solar system?"),
])
async def test_a_near_duplicate_with_another_answer_misses(make_guard: Any, stored: str, asked: str) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    await ask(app, stored)
    status, _, _, answer = await ask(app, asked)
    assert status == "miss"
    assert answer == reply_for(asked)
    assert llm.calls == 2


async def test_raw_similarity_alone_would_serve_the_trap(make_guard: Any) -> None:
    """The same trap with verification off is served: verification is what stops it."""
    llm = FakeLLM()
    app = (await make_guard(cache_verify=False, cache_threshold=0.85)).wrap(llm.app)
    await ask(app, "Translate 'good morning' from English to French")
    status, _, _, answer = await ask(app, "Translate 'good morning' from French to English")
    assert status == "hit"
    assert answer == reply_for("Translate 'good morning' from English to French")


async def test_a_streamed_miss_replays_as_stream_and_as_json(make_guard: Any) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    async with client(app) as c:
        first = await c.post(CHAT, json=chat("How do I reverse a list in Python?", stream=True))
        original, done, _ = parse_sse(first.text)
        assert first.headers["x-llmguard-cache"] == "miss" and done
        streamed = await c.post(CHAT, json=chat("How can I reverse a list in Python?", stream=True))
        as_json = await c.post(CHAT, json=chat("How can I reverse a list in Python?"))
    replayed, replay_done, events = parse_sse(streamed.text)
    assert streamed.headers["x-llmguard-cache"] == "hit"
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert replay_done and replayed == original
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert as_json.headers["x-llmguard-cache"] == "hit"
    assert as_json.json()["choices"][0]["message"]["content"] == original
    assert llm.calls == 1


@pytest.mark.parametrize("change", [
    {"model": "another-model"},
    {"system": "Answer like a pirate."},
    {"temperature": 1.5},
    {"history": [{"role": "user", "content": "Let's talk geography."},
                 {"role": "assistant", "content": "Sure."}]},
])
async def test_a_rewording_in_another_namespace_misses(make_guard: Any, change: dict[str, Any]) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    await ask(app, "What is the capital of France?")
    assert (await ask(app, "What's the capital of France?", **change))[0] == "miss"


async def test_identity_scope_keeps_answers_to_their_identity_and_global_shares(make_guard: Any) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    await ask(app, "What is the capital of France?", headers={"authorization": "Bearer sk-alice"})
    assert (await ask(app, "What's the capital of France?",
                      headers={"authorization": "Bearer sk-bob"}))[0] == "miss"
    assert (await ask(app, "What's the capital of France?",
                      headers={"authorization": "Bearer sk-alice"}))[0] == "hit"

    shared = (await make_guard(cache_scope="global")).wrap(FakeLLM().app)
    await ask(shared, "What is the capital of France?", headers={"authorization": "Bearer sk-alice"})
    assert (await ask(shared, "What's the capital of France?",
                      headers={"authorization": "Bearer sk-bob"}))[0] == "hit"


async def test_the_body_user_field_narrows_the_identity_it_comes_with_and_crosses_none(make_guard: Any) -> None:
    app = (await make_guard()).wrap(FakeLLM().app)
    alice_from_a = {"authorization": "Bearer sk-tenant-a"}
    await ask(app, "What is the capital of France?", user="alice", headers=alice_from_a)
    assert (await ask(app, "What's the capital of France?", user="alice", headers=alice_from_a))[0] == "hit"
    # the same key, another end user: not alice's answers (the app may have added her context)
    assert (await ask(app, "What's the capital of France?", user="bob", headers=alice_from_a))[0] == "miss"
    # another key naming "alice" is not alice
    assert (await ask(app, "What's the capital of France?", user="alice",
                      headers={"authorization": "Bearer sk-tenant-b"}))[0] == "miss"


async def test_a_neighbour_the_verifier_refuses_is_not_marked_used(make_guard: Any) -> None:
    # Three entries fit. "5 km" is the oldest; "8 km" finds it as its nearest neighbour (cosine
    # 0.88, over the threshold), the verifier refuses it (another number), and the 8 km answer is
    # stored: the entry to go is 5 km's, untouched by the refused lookup, not the newer "Python" one.
    llm = FakeLLM()
    app = (await make_guard(cache_max_entries=3)).wrap(llm.app)
    for prompt in ("How do I convert 5 km to miles?", "How do I reverse a list in Python?",
                   "Why is the sky blue?"):
        await ask(app, prompt)
    assert (await ask(app, "How do I convert 8 km to miles?"))[0] == "miss"
    assert (await ask(app, "How do I reverse a list in Python?"))[0] == "hit"
    assert (await ask(app, "How do I convert 5 km to miles?"))[0] == "miss"


async def test_requests_with_tools_use_the_exact_tier_only(make_guard: Any) -> None:
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    app = (await make_guard()).wrap(FakeLLM().app)
    await ask(app, "What is the capital of France?", tools=tools)
    assert (await ask(app, "What's the capital of France?", tools=tools))[0] == "miss"
    assert (await ask(app, "What is the capital of France?", tools=tools))[0] == "hit"


async def test_an_embedding_over_budget_is_served_as_a_miss(make_guard: Any) -> None:
    llm = FakeLLM()
    guard = await make_guard(embedding_timeout_ms=0.001)
    app = guard.wrap(llm.app)
    await ask(app, "What is the capital of France?")
    status, _, _, answer = await ask(app, "What's the capital of France?")
    assert status == "miss" and answer == reply_for("What's the capital of France?")
    assert guard.metrics is not None
    assert guard.metrics.registry.get_sample_value("llmguard_degraded_total", {"part": "embedding"}) >= 1


async def test_a_model_that_cannot_load_leaves_the_exact_tier_working(make_guard: Any, tmp_path: Path) -> None:
    llm = FakeLLM()
    guard = await make_guard(embedding_model_dir=str(tmp_path / "no-model-here"))
    app = guard.wrap(llm.app)
    assert guard.cache is not None and guard.cache.embedder is None
    await ask(app, "What is the capital of France?")
    assert (await ask(app, "What is the capital of France?"))[0] == "hit"
    assert (await ask(app, "What's the capital of France?"))[0] == "miss"
    assert llm.calls == 2


async def test_time_sensitive_prompts_bypass_and_say_so(make_guard: Any) -> None:
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    for _ in range(2):
        assert (await ask(app, "What's the weather in Paris today?"))[0] == "bypass"
    assert llm.calls == 2


async def test_the_climate_is_cached_where_the_weather_is_not(make_guard: Any) -> None:
    """Issue 14's example: "weather" on Mars asks no clock, so the rewording is a hit, not a bypass."""
    llm = FakeLLM()
    app = (await make_guard()).wrap(llm.app)
    assert (await ask(app, "What's the weather like on Mars?"))[0] == "miss"
    status, _, _, answer = await ask(app, "Describe the weather on Mars")
    assert status == "hit" and answer == reply_for("What's the weather like on Mars?")
    assert (await ask(app, "What's the weather like in Paris right now?"))[0] == "bypass"
    assert llm.calls == 2


async def test_an_invalidated_namespace_no_longer_serves_its_rewordings(make_guard: Any) -> None:
    guard = await make_guard()
    llm = FakeLLM()
    app = guard.wrap(llm.app)
    await ask(app, "What is the capital of France?")
    exchange = llm.exchanges[-1]
    assert guard.cache is not None
    namespace = guard.cache.namespace_for(exchange)
    assert await guard.cache.invalidate_namespace(namespace) == 1
    assert (await ask(app, "What's the capital of France?"))[0] == "miss"


EARLY_STORED = ["How do I reverse a list in Python?", "What is the capital of France?",
                "How do I convert 5 km to miles?", "Write a haiku about autumn leaves.",
                "What are the symptoms of dehydration?"]
EARLY_ASKED = ["How can I reverse a list in Python?",  # a rewording sharing most words: guessed, served
               "What's the capital city of France?",
               "How do I convert 8 km to miles?",  # a near-duplicate: guessed, refused by a hard rule
               "Please write a haiku about autumn leaves.",  # only filler differs: no model needed at all
               "What symptoms does dehydration cause?",
               "How do I reverse a string in Python?",  # a near-duplicate the pair model must refuse
               "Explain quantum entanglement simply"]  # nothing stored is like it


async def test_early_verification_changes_no_verdict(make_guard: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pair model started on the lexicon's guess while the embedding runs gives the very verdicts
    (hit or miss, similarity, answer) of the plain order, and its guesses are used on rewordings."""
    from asgi_llmguard.cache import engine

    monkeypatch.setattr(engine, "SEVERAL_CPUS", True)  # the overlap needs two CPUs; the verdicts do not
    seen: dict[bool, list[tuple[str, str, str]]] = {}
    used: dict[bool, float] = {}
    for early in (True, False):
        guard = await make_guard(cache_early_verify=early)
        app = guard.wrap(FakeLLM().app)
        for prompt in EARLY_STORED:
            assert (await ask(app, prompt))[0] == "miss"
        seen[early] = [(status, similarity, answer) for status, similarity, _, answer
                       in [await ask(app, prompt) for prompt in EARLY_ASKED]]
        assert guard.metrics is not None
        used[early] = guard.metrics.registry.get_sample_value("llmguard_cache_early_verify_total",
                                                              {"outcome": "used"}) or 0.0
    assert seen[True] == seen[False]
    statuses = [status for status, _, _ in seen[True]]
    assert statuses[:2] == ["hit", "hit"] and statuses[2] == "miss" and statuses[5:] == ["miss", "miss"]
    assert used[True] >= 4 and used[False] == 0  # guessed right: the reworded, filler and near-duplicate asks


async def test_a_guess_that_needs_no_model_is_judged_without_a_second_thread_hop(
        make_guard: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The early call learns that a shortcut (or a hard rule) decides the nearest candidate: the verdict is then
    taken on the event loop, in microseconds, not sent to the verifier's thread a second time."""
    from asgi_llmguard.cache import engine

    monkeypatch.setattr(engine, "SEVERAL_CPUS", True)
    guard = await make_guard()
    app = guard.wrap(FakeLLM().app)
    await ask(app, "Write a haiku about autumn leaves.")
    cache = guard.cache
    assert cache is not None and cache.verifier is not None
    assert not cache.verifier.needs_pair_model("Please write a haiku about autumn leaves.",
                                               "Write a haiku about autumn leaves.")
    jobs: list[object] = []
    submit = cache._submit
    monkeypatch.setattr(cache, "_submit", lambda job: jobs.append(job) or submit(job))
    assert (await ask(app, "Please write a haiku about autumn leaves."))[0] == "hit"
    assert len(jobs) == 1  # the early call only


async def test_early_verification_stands_aside_with_one_cpu(make_guard: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from asgi_llmguard.cache import engine

    monkeypatch.setattr(engine, "SEVERAL_CPUS", False)  # nothing to overlap with: no guesses, no prompts kept
    guard = await make_guard()
    app = guard.wrap(FakeLLM().app)
    await ask(app, EARLY_STORED[0])
    assert (await ask(app, EARLY_ASKED[0]))[0] == "hit"
    assert guard.cache is not None and len(guard.cache.lexicon) == 0
    assert guard.metrics is not None
    assert guard.metrics.registry.get_sample_value("llmguard_cache_early_verify_total", {"outcome": "used"}) is None
