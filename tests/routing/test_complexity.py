"""The router's complexity estimate: a score in [0, 1] that only rises with what makes a request hard,
the tier choice, the fast paths matching the plain patterns, and accuracy on the held-out prompts.

Prompts come from tests/data/router_prompts.jsonl through bench/router_complexity.py's own request
builder, so these tests measure exactly what the bench prints. The estimator was tuned on the
``dev`` split only; the ``test`` split was written before it and measured once it was frozen.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from benches import load_bench
from hypothesis import given, settings
from hypothesis import strategies as st

from asgi_llmguard.core.openai_protocol import ParsedRequest
from asgi_llmguard.routing import complexity
from asgi_llmguard.routing.complexity import WEIGHTS, Complexity, choose_tier, default_thresholds, estimate_complexity

# Measured when the estimator was frozen (bench/router_complexity.py): dev 73/76 = 0.961 and
# test 61/76 = 0.803. The floors leave a margin of three (dev) and four (test) prompts.
DEV_FLOOR = 0.92
TEST_FLOOR = 0.75


bench = load_bench("router_complexity")
PROMPTS: list[dict[str, Any]] = bench.load()


def request(prompt: str, **extra: Any) -> ParsedRequest:
    result: ParsedRequest = bench.build_request({"prompt": prompt, **extra})
    return result


def score(prompt: str, **extra: Any) -> float:
    return estimate_complexity(request(prompt, **extra)).score


CODE = "\n\n```python\ndef total(items):\n    return sum(i.price for i in items)\n```\nWhy is this slow?"
REASONING = "\n\nProve it, step by step, and explain why each step holds. Compare the trade-offs."
BASES = [item["prompt"] for item in PROMPTS[::3]] + ["", "hi", "ok thanks", "What is the capital of France?"]
# Random text, mostly prose-like, with the characters the patterns care about.
TEXT = st.text(alphabet=st.sampled_from([*"abcdefxyz ABCOT\n\t.,;:?!()[]{}=+-*/^#`'\"_0123456789", "é", "İ", "∑"]),
               max_size=400)


# --- the score -------------------------------------------------------------------------------------


def test_the_data_set_is_balanced_and_both_splits_are_there() -> None:
    assert len(PROMPTS) >= 120
    for split in ("dev", "test"):
        labels = [p["label"] for p in PROMPTS if p["split"] == split]
        assert 0.4 <= labels.count("simple") / len(labels) <= 0.6, split
    assert {p["label"] for p in PROMPTS} == {"simple", "complex"}


@pytest.mark.parametrize("item", PROMPTS, ids=lambda item: item["prompt"][:30])
def test_every_labelled_prompt_scores_within_0_and_1_with_every_signal_reported(item: dict[str, Any]) -> None:
    estimate = estimate_complexity(bench.build_request(item))
    assert 0.0 <= estimate.score < 1.0
    assert set(estimate.signals) == set(WEIGHTS)
    total = sum(estimate.signals.values())
    assert estimate.score == pytest.approx(1 - math.exp(-max(0.0, total)), abs=1e-3)


@settings(max_examples=300, deadline=None)
@given(TEXT, st.integers(0, 30), st.one_of(st.none(), st.integers(1, 100_000)))
def test_any_text_scores_within_0_and_1(text: str, turns: int, max_tokens: int | None) -> None:
    extra: dict[str, Any] = {"history_turns": turns}
    if max_tokens is not None:
        extra["max_tokens"] = max_tokens
    assert 0.0 <= score(text, **extra) <= 1.0


def test_requests_without_text_score_zero_or_close() -> None:
    images = bench.build_request({"prompt": "x"})
    images.messages[-1]["content"] = [{"type": "image_url", "image_url": {"url": "data:,"}}]
    assert estimate_complexity(images).score == 0.0
    only_system = bench.build_request({"prompt": "x"})
    only_system.messages = [{"role": "system", "content": "Prove everything step by step."}]
    assert estimate_complexity(only_system).score == 0.0


def test_the_system_prompt_is_not_the_requests_difficulty() -> None:
    plain, primed = request("What's the capital of Peru?"), request("What's the capital of Peru?")
    primed.messages[0]["content"] = "You are an expert. Think step by step, analyse and justify. " * 20
    assert estimate_complexity(plain).score == estimate_complexity(primed).score


def test_a_huge_prompt_is_bounded_in_time_and_still_scores() -> None:
    estimate = estimate_complexity(request("Please translate the word 'cat'.\n" + "lorem ipsum dolor. " * 60_000))
    assert 0.0 < estimate.score < 0.5  # long, but nothing asked that is hard


@pytest.mark.parametrize("prompt", ["hello!", "good morning :)", "What is the capital of France?",
                                    "Who invented the telephone?", "Translate 'cat' into German.",
                                    "How do you say 'thank you' in Portuguese?", "Is water wet?",
                                    "Does the store open on Sundays?", "How do I change my username?"])
def test_greetings_lookups_translations_and_yes_no_questions_score_low(prompt: str) -> None:
    assert score(prompt) < 0.3


@pytest.mark.parametrize("prompt", [
    "Prove that every bounded monotone sequence of real numbers converges.",
    "Traceback (most recent call last):\n  File \"app.py\", line 3, in <module>\n    import pandas as pd\n"
    "ImportError: numpy.core.multiarray failed to import\n\nWhy does this happen only inside the container?",
    "Design a schema and an indexing strategy for a time-series store, and explain the trade-offs.",
])
def test_a_single_strong_cue_of_hard_work_routes_to_the_strong_tier(prompt: str) -> None:
    assert choose_tier(score(prompt), 2) == 1


# --- monotone signals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES, ids=lambda base: base[:30])
def test_adding_code_or_reasoning_cues_never_lowers_the_score(base: str) -> None:
    before = score(base)
    assert score(base + CODE) >= before
    assert score(base + REASONING) >= before
    assert score(base + CODE + REASONING) >= max(score(base + CODE), score(base + REASONING))


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from([CODE, REASONING, "\n\n1. Derive it.\n2. Verify it.\n3. Optimise it.",
                              "\n\nWhat is the integral of x^2 + 3x?", "\n\nWrite a regex for that."]))
def test_appending_a_cue_to_any_text_never_lowers_the_score(text: str, cue: str) -> None:
    assert score(text + cue) >= score(text)


@pytest.mark.parametrize("base", BASES, ids=lambda base: base[:30])
def test_more_earlier_turns_never_lower_the_score(base: str) -> None:
    scores = [score(base, history_turns=turns) for turns in (0, 1, 2, 4, 8, 16, 40)]
    assert scores == sorted(scores)


def test_code_in_an_earlier_turn_lifts_a_short_follow_up_at_half_strength() -> None:
    after_code = request("still the same error, any idea?")
    after_code.messages[1:1] = [{"role": "user", "content": CODE}, {"role": "assistant", "content": "Try caching."}]
    after_chat = request("still the same error, any idea?", history_turns=1)
    lifted, plain = estimate_complexity(after_code), estimate_complexity(after_chat)
    assert score("still the same error, any idea?") == 0.0
    assert lifted.score > plain.score + 0.3
    alone = estimate_complexity(request(CODE.strip())).signals["code"]
    assert lifted.signals["code"] == pytest.approx(complexity.CONTEXT_DISCOUNT * alone, abs=1e-3)


@pytest.mark.parametrize("base", BASES, ids=lambda base: base[:30])
def test_a_larger_max_tokens_never_lowers_the_score(base: str) -> None:
    scores = [score(base)] + [score(base, max_tokens=n) for n in (16, 1024, 2048, 4096, 8192, 16384, 100_000)]
    assert scores == sorted(scores)


def test_tools_and_a_response_schema_raise_the_score() -> None:
    base = score("Find me a hotel in Lisbon.")
    assert score("Find me a hotel in Lisbon.", tools=1) > base
    assert score("Find me a hotel in Lisbon.", tools=5) > score("Find me a hotel in Lisbon.", tools=1)
    assert score("Find me a hotel in Lisbon.", response_format="json_schema") > \
        score("Find me a hotel in Lisbon.", response_format="json_object") > base


def test_asking_for_a_long_answer_raises_the_score_and_asking_for_a_short_one_lowers_it() -> None:
    essay = "Write about the history of the printing press."
    assert score(essay + " Make it a detailed 2000-word essay.") > score(essay) + 0.3
    assert score(essay + " Answer in one sentence.") <= score(essay)


def test_cue_words_match_whole_words_only() -> None:
    assert score("The pack weighs 1.4 kg and has a waterproof, proofread label.") < 0.2
    assert score("Weigh the options and prove the claim.") > 0.5


# --- fast paths agree with the plain patterns -----------------------------------------------------


def _plain(cues: Any) -> re.Pattern[str]:
    """One case-insensitive regex for a cue list: words, prefixes and phrases as alternatives."""
    parts = [re.escape(word) for word in sorted(cues.words)]
    parts += [re.escape(prefix) + r"\w{" + str(shortest - len(prefix)) + ",}" for prefix, shortest in cues.prefixes]
    if cues.phrases is not None:
        parts.append(cues.phrases.pattern[len(r"\b(?:"):-len(r")\b")])
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE)


CUE_LISTS = ["_CODE_WORDS", "_STRONG", "_WEAK", "_CONSTRAINT", "_MATH_WORDS", "_LONG_ASK", "_FORMAT_ASK"]
SAMPLES = [item["prompt"] for item in PROMPTS] + [
    "2 x + 3 = y, x^2, 4k+3, log (n), sin(x), \\frac{1}{2} ∑ 8am-2pm 2021-03-14 a-1 b /2 combinatorics3^4",
    "    at com.x.Foo(Foo.java:42) Race condition; TypeError: bad\n  File \"a.py\", line 3 Error: x",
    "C++ and C# and c++17, node.js, thread-safe, threadsafe, unit tests, shell script, Refactoring concurrency",
    "Designing the plan for, at most, in O(n), trade-offs, tradeoff, Optimization analysing debugger",
]


@pytest.mark.parametrize("name", CUE_LISTS)
def test_word_counts_match_the_plain_regex_for_every_cue_list(name: str) -> None:
    cues = getattr(complexity, name)
    plain = _plain(cues)
    for text in SAMPLES:
        assert cues.count(complexity._Text.of(text)) == len(plain.findall(text)), (name, text[:60])


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([*SAMPLES[-4:], "prove", "Proofs", "weighs", "why", "vs.", "in one word", "x",
                                  "=", "+", "-", "^", "(", ")", "\n", " ", "3", "k"]), max_size=25))
def test_gated_passes_count_what_the_plain_patterns_count(pieces: list[str]) -> None:
    text = "".join(pieces)
    t = complexity._Text.of(text)
    for name in CUE_LISTS:
        assert getattr(complexity, name).count(t) == len(_plain(getattr(complexity, name)).findall(text))
    assert complexity._math_sign_count(t.low, t.counts.keys()) == len(complexity._MATH_SIGNS.findall(t.low))
    assert complexity._brief(t) == (complexity._BRIEF.search(t.low) is not None)


# --- choose_tier ---------------------------------------------------------------------------------------


def test_default_thresholds_split_0_to_1_evenly() -> None:
    assert default_thresholds(1) == ()
    assert default_thresholds(2) == (0.5,)
    assert default_thresholds(4) == (0.25, 0.5, 0.75)


@pytest.mark.parametrize(("value", "tiers", "expected"), [
    (0.0, 1, 0), (1.0, 1, 0),
    (0.0, 2, 0), (0.4999, 2, 0), (0.5, 2, 1), (1.0, 2, 1),
    (0.0, 3, 0), (0.33, 3, 0), (1 / 3, 3, 1), (0.66, 3, 1), (2 / 3, 3, 2), (0.99, 3, 2),
    (-0.5, 3, 0), (7.0, 3, 2),
])
def test_choose_tier_with_the_default_split(value: float, tiers: int, expected: int) -> None:
    assert choose_tier(value, tiers) == expected


def test_choose_tier_with_given_thresholds_sends_a_score_on_a_threshold_up() -> None:
    assert [choose_tier(s, 3, [0.2, 0.7]) for s in (0.0, 0.19, 0.2, 0.5, 0.7, 0.95)] == [0, 0, 1, 1, 2, 2]
    assert choose_tier(0.3, 2, (0.25,)) == 1
    assert choose_tier(0.9, 1, []) == 0


@pytest.mark.parametrize(("tiers", "thresholds"), [
    (2, []), (2, [0.3, 0.6]), (3, [0.5]),  # wrong count
    (3, [0.6, 0.4]), (3, [0.5, 0.5]),  # not increasing
    (2, [0.0]), (2, [1.0]), (2, [-0.1]), (2, [1.5]), (2, [math.nan]),  # not strictly inside (0, 1)
    (1, [0.5]),
])
def test_choose_tier_rejects_bad_thresholds(tiers: int, thresholds: list[float]) -> None:
    with pytest.raises(ValueError):
        choose_tier(0.5, tiers, thresholds)


@pytest.mark.parametrize("tiers", [0, -1, True, 2.0])
def test_choose_tier_rejects_bad_tier_counts(tiers: Any) -> None:
    with pytest.raises(ValueError):
        choose_tier(0.5, tiers)


def test_choose_tier_rejects_a_nan_score() -> None:
    with pytest.raises(ValueError):
        choose_tier(math.nan, 2)


def test_complexity_is_frozen() -> None:
    estimate = Complexity(score=0.5, signals={})
    with pytest.raises(AttributeError):
        estimate.score = 0.9  # type: ignore[misc]


# --- accuracy on the labelled prompts ------------------------------------------------------------------


def _accuracy(split: str) -> float:
    items = [item for item in PROMPTS if item["split"] == split]
    right = sum(LABEL_OF_TIER[choose_tier(estimate_complexity(bench.build_request(item)).score, 2)] == item["label"]
                for item in items)
    return right / len(items)


LABEL_OF_TIER = ("simple", "complex")


def test_accuracy_on_the_held_out_test_split() -> None:
    assert _accuracy("test") >= TEST_FLOOR


def test_accuracy_on_the_dev_split_it_was_tuned_on() -> None:
    assert _accuracy("dev") >= DEV_FLOOR
