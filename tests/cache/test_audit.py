"""Knowing the cache's own wrong-hit rate: shadow mode, audits, judges and the error budget.

The in-process tests run the demo app (its mock answering by meaning from an answers file) or a
small Starlette upstream behind a real Guard with the real embedding model and verifier; the
budget's Redis twin runs on the machine's Redis, database 11.
"""

from __future__ import annotations

import asyncio
import csv
import json
import math
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from apps import CHAT, chat
from benches import load_bench
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from asgi_llmguard import ConfigurationError, Guard, Settings
from asgi_llmguard.cache.audit.budget import ErrorBudget, MemoryOutcomeStore, RedisOutcomeStore
from asgi_llmguard.cache.audit.judge import EmbeddingJudge, normalised
from asgi_llmguard.core.bounds import wilson_interval, wilson_upper

AUDIT_REDIS = "redis://127.0.0.1:6379/11"
GRID = tuple(0.5 + 0.5 * i for i in range(16))

ANSWERS = {
    "What is the capital of France?": "Paris is the capital of France.",
    "What's the capital city of France?": "Paris is the capital of France.",
    "How do I reverse a list in Python?": "Call my_list.reverse(), or use my_list[::-1] for a reversed copy.",
    "how can i reverse a python list": "The answer is 42, and bananas are yellow.",  # the mock's truth: another answer
}


def write_answers(path: Path) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "answer"])
        writer.writerows(ANSWERS.items())
    return path


# -- bounds and judges -------------------------------------------------------------------------------------


def test_wilson_bound_is_conservative_at_zero_and_tight_with_many_audits() -> None:
    assert wilson_upper(0, 0) == 1.0
    assert 0.009 < wilson_upper(0, 270) < 0.0101  # ~270 clean audits before "under 1%" can be claimed
    low, high = wilson_interval(10, 1000)
    assert low < 0.01 < high < 0.017
    assert wilson_upper(50, 100) > 0.5


@pytest.mark.model
async def test_embedding_judge_tells_rewordings_from_other_answers(start_guard: Any, model_dir: Path) -> None:
    guard: Guard = await start_guard(embedding_model_dir=str(model_dir))
    assert guard.cache is not None
    judge = EmbeddingJudge(guard.cache.embedder, 0.9)
    same = await judge.judge("q", "Paris is the capital of France.", "  paris is the capital of france. ")
    assert same is not None and same.same and same.how == "exact"
    close = await judge.judge("q", "Paris is the capital of France.", "The capital of France is Paris.")
    assert close is not None and close.same and close.how == "embedding"
    other = await judge.judge("q", "Paris is the capital of France.", "Berlin is the capital of Germany.")
    assert other is not None and not other.same


# -- the error budget --------------------------------------------------------------------------------------


async def test_budget_starts_at_the_default_cut_and_tightens_step_by_step_past_a_wrong_answer() -> None:
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=0.02, grid=GRID)
    assert budget.cut_for("ns") == 1.5  # nothing judged yet: the strictness point's own cut, serving
    for _ in range(20):
        await budget.record("ns", z=3.0, wrong=False, kind="audit")
    assert budget.cut_for("ns") == 1.5  # a clean record is no reason to tighten, nor yet to loosen
    await budget.record("ns", z=2.2, wrong=True, kind="audit")
    assert budget.cut_for("ns") == 2.5  # 1 in 21 at 1.5 and 2.0: over 2%; 2.5 leaves the wrong one out
    await budget.record("ns", z=6.0, wrong=True, kind="audit")  # confidently wrong: nothing below 6.5 holds
    assert budget.cut_for("ns") == 6.5
    await budget.record("ns", z=9.0, wrong=True, kind="audit")  # above the tightest grid cut: serve nothing
    assert math.isinf(budget.cut_for("ns"))
    for _ in range(400):  # much clean evidence at the default cut: its bound (3 in 423) falls under 2%
        await budget.record("ns", z=1.7, wrong=False, kind="probe")
    assert wilson_upper(3, 423) <= 0.02 and budget.cut_for("ns") == 1.5
    assert budget.cut_for("other") == 1.5  # per namespace


async def test_budget_starts_at_the_given_start_cut_and_loosens_from_there_only_on_evidence() -> None:
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=0.01, grid=GRID, start_cut=3.5)
    assert budget.cut_for("ns") == 3.5  # a target tighter than the default's own error: start stricter
    for _ in range(100):
        await budget.record("ns", z=3.2, wrong=False, kind="probe")
    assert budget.cut_for("ns") == 3.5  # 0 in 100 bounds the rate at 2.7%: over 1%, so no looser yet
    for _ in range(200):
        await budget.record("ns", z=3.2, wrong=False, kind="probe")
    assert wilson_upper(0, 300) <= 0.01 and budget.cut_for("ns") == 3.0
    assert ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=None, grid=GRID, start_cut=3.5
                       ).cut_for("ns") == 1.5  # without a target the start cut means nothing


def _weights_with(tmp_path: Path, calibration: Any) -> Path:
    from importlib import resources

    data = json.loads(resources.files("asgi_llmguard").joinpath("data", "verifier.json").read_text("utf-8"))
    # The points' own cuts, pinned: the start is read against them, whatever the shipped file's are today.
    for name, cut in (("strict", 2.4), ("balanced", 1.5), ("loose", 0.4)):
        data["strictness"][name]["cut"] = cut
    if calibration is None:
        data.pop("calibration", None)
    else:
        data["calibration"] = calibration
    path = tmp_path / "verifier.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


class _NoPairModel:
    def logits(self, query: str, candidates: Any) -> list[float]:
        raise AssertionError("not asked")


def test_start_cut_is_the_point_when_it_meets_the_target_else_where_the_calibration_shows_it_with_one_wrong_hit(
        tmp_path: Path) -> None:
    from asgi_llmguard.cache.verify import Verifier

    calibration = {"cuts": [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0],
                   "hits": [500, 450, 400, 300, 200, 100, 20],
                   "wrong": [20, 9, 4, 3, 1, 0, 0]}
    path = _weights_with(tmp_path, calibration)
    balanced = Verifier(path, pair_model=_NoPairModel())
    assert balanced.cut == 1.5
    assert balanced.start_cut(0.05) == 1.5  # 1.0's 4% would do: never looser than the strictness point
    assert balanced.start_cut(0.02) == 1.5  # 9 in 450 is 2%, and no stricter cut is worse
    # Stricter than the point: where the share is within the budget and at most one hit was wrong.
    assert balanced.start_cut(0.01) == 3.0  # 3 in 300 at 2.5 is 1%, but three wrong hits are a kind
    assert balanced.start_cut(0.005) == 3.0  # 1 in 200 at 3.0 is 0.5%
    assert balanced.start_cut(0.004) == 3.5  # 1 in 200 is over 0.4%; 4.0's 20 hits count for nothing
    assert balanced.start_cut(0.0001) == 3.5  # nothing qualifies: the strictest well-measured cut stands
    loose = Verifier(path, strictness="loose", pair_model=_NoPairModel())
    assert loose.start_cut(0.2) == 1.0  # never looser than the calibration's own loosest cut
    strict = Verifier(path, strictness="strict", pair_model=_NoPairModel())
    assert strict.start_cut(0.05) == strict.cut  # never looser than the strictness point
    without = Verifier(_weights_with(tmp_path, None), pair_model=_NoPairModel())
    assert without.start_cut(0.005) == without.cut  # an older weight file: the strictness point's cut
    for bad in ({"cuts": [2.0, 1.0], "hits": [5, 5], "wrong": [0, 0]},
                {"cuts": [1.0], "hits": [5], "wrong": [6]}, {"cuts": [1.0], "hits": [5, 4], "wrong": [0]}, [1]):
        with pytest.raises(ValueError, match="calibration"):
            Verifier(_weights_with(tmp_path, bad), pair_model=_NoPairModel())


@pytest.mark.model
async def test_a_guard_with_a_tight_target_starts_its_namespaces_at_the_calibrated_cut(start_guard: Any,
                                                                                       model_dir: Path) -> None:
    guard: Guard = await start_guard(embedding_model_dir=str(model_dir), cache_audit_rate=0.1,
                                     cache_max_wrong_rate=0.005)
    assert guard.auditor is not None and guard.cache is not None and guard.cache.verifier is not None
    verifier = guard.cache.verifier
    start = verifier.start_cut(0.005)
    assert start > verifier.cut  # the shipped calibration puts 0.5% above the balanced point's own error
    assert guard.auditor.budget.cut_for("any namespace") == start and start in guard.auditor.budget.grid


async def test_budget_loosens_to_the_floor_only_on_enough_clean_evidence_there() -> None:
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=0.02, grid=GRID)
    for _ in range(100):  # probes: candidates refused at 1.5, accepted at the floor, and right
        await budget.record("ns", z=1.0, wrong=False, kind="probe")
    assert budget.cut_for("ns") == 1.5  # 0 in 100 still bounds the rate at 2.6%: not enough to loosen
    for _ in range(50):
        await budget.record("ns", z=1.0, wrong=False, kind="probe")
    assert wilson_upper(0, 150) <= 0.02 and budget.cut_for("ns") == 1.0  # only as far as the evidence goes
    for _ in range(150):
        await budget.record("ns", z=0.6, wrong=False, kind="probe")
    assert budget.cut_for("ns") == 0.5  # the floor, never below it
    for _ in range(40):
        await budget.record("ns", z=0.6, wrong=True, kind="probe")
    assert budget.cut_for("ns") == 1.0  # the band that turned out wrong is given up again
    await budget.record("ns", z=0.1, wrong=True, kind="probe")  # below the floor: not counted
    view = await budget.refresh("ns")
    assert sum(v for k, v in view.counts.items() if k.startswith("w")) == 40
    assert view.get("audited") == 0


async def test_budget_does_not_loosen_into_a_band_on_clean_evidence_from_higher_scores() -> None:
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=0.02, grid=GRID)
    for _ in range(1000):  # a long clean record at the default cut and above
        await budget.record("ns", z=2.0, wrong=False, kind="audit")
    for _ in range(40):  # and a few clean probes in the band below it
        await budget.record("ns", z=1.0, wrong=False, kind="probe")
    assert wilson_upper(0, 1040) <= 0.02  # pooled, the looser cut looks safe ...
    assert budget.cut_for("ns") == 1.5  # ... but 0 wrong in 40 still allows 6% in that band: stay
    for _ in range(110):
        await budget.record("ns", z=1.0, wrong=False, kind="probe")
    assert wilson_upper(0, 150) <= 0.02 and budget.cut_for("ns") == 1.0  # the band shown clean on its own


async def test_budget_without_a_target_counts_and_keeps_the_default_cut() -> None:
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=None, grid=GRID)
    for _ in range(5):
        await budget.record("ns", z=3.0, wrong=True, kind="audit")
    assert budget.cut_for("ns") == 1.5
    view = await budget.refresh("ns")
    assert view.get("audited") == 5 and view.get("wrong") == 5


async def test_outcomes_are_counted_per_served_entry_and_the_most_judged_are_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from asgi_llmguard.cache.audit import budget as budget_module

    monkeypatch.setattr(budget_module, "MAX_ENTRIES", 3)
    budget = ErrorBudget(MemoryOutcomeStore(), default_cut=1.5, target=0.02, grid=GRID)
    for _ in range(4):
        await budget.record("ns", z=3.0, wrong=True, kind="audit", entry_id=7)
    await budget.record("ns", z=3.0, wrong=False, kind="audit", entry_id=7)
    await budget.record("ns", z=2.0, wrong=False, kind="shadow", would_hit=True, entry_id=8)
    await budget.record("ns", z=2.0, wrong=True, kind="shadow", would_hit=False, entry_id=9)  # not served
    await budget.record("ns", z=1.0, wrong=True, kind="probe", entry_id=10)  # refused: not the entry's
    await budget.record("ns", z=2.0, wrong=None, kind="audit", entry_id=11)  # unjudged
    entries = (await budget.summary())["ns"]["entries"]
    assert set(entries) == {"7", "8"}
    assert entries["7"]["judged"] == 5 and entries["7"]["wrong"] == 4 and entries["7"]["wrong_rate"] == 0.8
    assert 0.8 < entries["7"]["wrong_rate_upper"] < 1.0
    assert entries["8"] == {"judged": 1, "wrong": 0, "wrong_rate": 0.0,
                            "wrong_rate_upper": round(wilson_upper(0, 1), 6)}
    for entry_id in range(100, 106):  # past twice MAX_ENTRIES the least judged go, the most judged stay
        await budget.record("ns", z=3.0, wrong=False, kind="audit", entry_id=entry_id)
    kept = await budget.store.entries("ns", 100)
    assert len(kept) <= 6 and kept[7] == (5, 4) and kept[8] == (1, 0)


async def test_budget_state_is_shared_by_replicas_through_redis() -> None:
    from redis.asyncio import Redis

    sync = redis.Redis.from_url(AUDIT_REDIS)
    sync.flushdb()
    clients = [Redis.from_url(AUDIT_REDIS), Redis.from_url(AUDIT_REDIS)]
    try:
        one, two = (ErrorBudget(RedisOutcomeStore(c, "test:"), default_cut=1.5, target=0.02, grid=GRID)
                    for c in clients)
        for _ in range(200):
            await one.record("ns", z=3.0, wrong=False, kind="audit")
        await one.record("ns", z=3.0, wrong=True, kind="audit", entry_id=5)
        await two.record("ns", z=3.0, wrong=False, kind="audit", entry_id=5)
        await two.record("ns", z=3.0, wrong=True, kind="probe", entry_id=6)
        assert await one.store.entries("ns", 5) == {5: (2, 1)}  # both replicas' audits of entry 5, no probe
        await two.record("ns", z=3.0, wrong=False, kind="audit")
        view = await two.refresh("ns")
        assert view.get("audited") == 203 and view.get("wrong") == 1
        assert two.cut_for("ns") == 3.5  # 1 in 203: the bound (2.1%) is over 2% up to the wrong one's z
        for _ in range(198):
            await two.record("ns", z=3.0, wrong=False, kind="audit")
        await one.refresh("ns")
        assert one.cut_for("ns") == two.cut_for("ns") == 1.5  # each replica's audits count for both: 1 in 401
        summary = await one.summary()
        assert summary["ns"]["audited"] == 401 and summary["ns"]["wrong"] == 1 and summary["ns"]["cut"] == 1.5
        assert summary["ns"]["entries"]["5"]["judged"] == 2 and summary["ns"]["entries"]["5"]["wrong"] == 1
    finally:
        for c in clients:
            await c.aclose()
        sync.flushdb()
        sync.close()


def test_bad_audit_settings_fail_naming_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="LLMGUARD_CACHE_MODE"):
        Settings(cache_mode="dry-run")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="LLMGUARD_CACHE_AUDIT_RATE"):
        Settings(cache_audit_rate=1.5)
    with pytest.raises(ConfigurationError, match=r"LLMGUARD_CACHE_MAX_WRONG_RATE.*audits to learn from"):
        Settings(cache_max_wrong_rate=0.01)
    with pytest.raises(ConfigurationError, match="LLMGUARD_CACHE_MAX_WRONG_RATE"):
        Settings.from_env({"LLMGUARD_CACHE_MAX_WRONG_RATE": "5%", "LLMGUARD_CACHE_AUDIT_RATE": "0.1"})
    with pytest.raises(ConfigurationError, match="LLMGUARD_CACHE_AUDIT_CONCURRENCY"):
        Settings(cache_audit_concurrency=0)
    assert Settings.from_env({"LLMGUARD_CACHE_MAX_WRONG_RATE": "0.01", "LLMGUARD_CACHE_MODE": "shadow"}
                             ).cache_max_wrong_rate == 0.01


# -- shadow mode and audits through the stack --------------------------------------------------------------


@pytest.fixture
def demo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_dir: Path) -> Any:
    """The demo app (its mock answering from an answers file, no delays) behind a Guard with ``settings``."""
    monkeypatch.setenv("LLMGUARD_DEMO_ANSWERS", str(write_answers(tmp_path / "answers.csv")))
    monkeypatch.setenv("LLMGUARD_DEMO_TTFT_MS", "0")
    monkeypatch.setenv("LLMGUARD_DEMO_TOKEN_MS", "0")

    def make(**settings: Any) -> Any:
        from demo_app.app import create_app

        return create_app(guarded=True, embedding_model_dir=str(model_dir), **settings)

    return make


@pytest.fixture
async def shutdown_demo() -> Any:
    apps: list[Any] = []
    yield apps.append
    for app in apps:
        await app.state.guard.shutdown()


async def post(c: httpx.AsyncClient, prompt: str) -> httpx.Response:
    response = await c.post(CHAT, json=chat(prompt, model="mock-small"))
    assert response.status_code == 200, response.text
    return response


@pytest.mark.model
async def test_shadow_mode_asks_upstream_every_time_and_judges_would_hits(demo: Any, shutdown_demo: Any) -> None:
    app = demo(cache_mode="shadow")
    shutdown_demo(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        statuses = [(await post(c, p)).headers for p in ANSWERS]
        again = (await post(c, "What is the capital of France?")).headers  # an exact would-hit
        await app.state.guard.auditor.drain()
        stats = (await c.get("/stats")).json()
    assert [h["x-llmguard-cache"] for h in [*statuses, again]] == ["miss"] * 5
    assert [h["x-llmguard-shadow"] for h in statuses] == ["miss", "hit", "miss", "hit"]
    assert again["x-llmguard-shadow"] == "exact"
    assert app.state.calls == 5  # every request reached the mock
    assert stats["cache"]["hit"] == 0
    assert stats["shadow"] == {"would_hit": 2, "would_hit_wrong": 1, "judged": 2, "wrong_rate": 0.5,
                               "wrong_rate_upper": stats["shadow"]["wrong_rate_upper"]}
    assert 0.5 < stats["shadow"]["wrong_rate_upper"] < 1.0


@pytest.mark.model
async def test_an_audit_that_finds_the_served_answer_wrong_keeps_its_own(demo: Any, shutdown_demo: Any) -> None:
    """The audit paid for a fresh answer: when the served one was another question's, the fresh one is
    stored as the request's own, and the same request is then served it (an exact hit)."""
    app = demo(cache_audit_rate=1.0)
    shutdown_demo(app)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as c:
        await post(c, "How do I reverse a list in Python?")
        served = await post(c, "how can i reverse a python list")  # a rewording to the cache, not to the mock
        await app.state.guard.auditor.drain()
        again = await post(c, "how can i reverse a python list")
        await post(c, "What's the capital city of France?")
        right = await post(c, "What is the capital of France?")  # a hit judged right: nothing more is stored
        await app.state.guard.auditor.drain()
        twice = await post(c, "What is the capital of France?")
        await app.state.guard.auditor.drain()
        stats = (await c.get("/stats")).json()
    assert served.headers["x-llmguard-cache"] == "hit" and "x-llmguard-similarity" in served.headers
    assert served.json()["choices"][0]["message"]["content"] == ANSWERS["How do I reverse a list in Python?"]
    assert again.headers["x-llmguard-cache"] == "hit" and "x-llmguard-similarity" not in again.headers  # exact
    assert again.json()["choices"][0]["message"]["content"] == ANSWERS["how can i reverse a python list"]
    assert right.headers["x-llmguard-cache"] == twice.headers["x-llmguard-cache"] == "hit"
    assert "x-llmguard-similarity" in twice.headers  # still the semantic tier: the right answer was not re-stored
    assert stats["audit"]["audited"] == 3 and stats["audit"]["wrong"] == 1
    assert app.state.calls == 5  # two misses and three audits: the exact hit asked nobody


class SlowUpstream:
    """An upstream that counts how many requests it serves at once, and can fail."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.now = 0
        self.most = 0  # audits (they carry X-LLMGuard-Audit) upstream at once, at most
        self.app = Starlette(routes=[Route(CHAT, self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        payload = await request.json()
        self.calls += 1
        audit = request.headers.get("x-llmguard-audit") == "1"
        self.now += audit
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.now -= audit
        text = "Paris is the capital of France."
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 1, "model": payload["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})


HITS = ["What's the capital city of France?", "what is the capital of france ?", "Capital of France?",
        "Tell me the capital of France"]
REWORDINGS = ["What's the capital city of France?", "what is the capital of france ?", "Capital of France?",
              "Tell me the capital of France", "What is France's capital?", "Which city is the capital of France?"]


@pytest.mark.model
async def test_audits_never_exceed_their_concurrency(start_guard: Any, model_dir: Path) -> None:
    upstream = SlowUpstream(delay=0.3)
    guard: Guard = await start_guard(embedding_model_dir=str(model_dir), cache_audit_rate=1.0,
                                     cache_audit_concurrency=2, stats_path="/stats")
    app = guard.wrap(upstream.app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await post(c, "What is the capital of France?")
        upstream.most = 0
        served = await asyncio.gather(*(post(c, p) for p in REWORDINGS * 2))
        hits = [r for r in served if r.headers["x-llmguard-cache"] == "hit"
                and "x-llmguard-similarity" in r.headers]
        assert guard.auditor is not None
        await guard.auditor.drain()
        stats = (await c.get("/stats")).json()
    assert len(hits) >= 6  # semantic hits, each sampled for an audit
    assert upstream.most == 2 and guard.auditor.max_in_flight == 2  # full, never over
    audit = stats["audit"]
    assert audit["audited"] + audit["skipped"] == len(hits)
    assert audit["skipped"] > 0 and audit["audited"] >= 2 and audit["wrong"] == 0
    assert audit["tokens"]["total"] == 8 * audit["audited"]  # audit spend, counted apart
    (namespace,) = audit["namespaces"].values()  # every hit served the one stored entry: its own outcomes
    (entry,) = namespace["entries"].values()
    assert entry["judged"] == audit["audited"] and entry["wrong"] == 0


class JudgingUpstream:
    """Answers each question in its own words (never equal to the letter) and the LLM judge's yes/no
    question with ``verdict``; records the judge's requests."""

    def __init__(self) -> None:
        self.verdict = "Yes."
        self.judge_requests: list[tuple[dict[str, Any], str | None]] = []
        self.app = Starlette(routes=[Route(CHAT, self.endpoint, methods=["POST"])])

    async def endpoint(self, request: Request) -> Response:
        payload = await request.json()
        question = payload["messages"][-1]["content"]
        if "Same information (yes/no)?" in question:
            self.judge_requests.append((payload, request.headers.get("x-llmguard-audit")))
            text = self.verdict
        else:
            text = f"You asked: {question} Paris."
        return JSONResponse({"id": "c", "object": "chat.completion", "created": 1, "model": payload["model"],
                             "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                          "finish_reason": "stop"}],
                             "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}})


@pytest.mark.model
async def test_the_llm_judge_asks_yes_or_no_through_the_upstream_as_an_audit(start_guard: Any,
                                                                            model_dir: Path) -> None:
    upstream = JudgingUpstream()
    guard: Guard = await start_guard(embedding_model_dir=str(model_dir), cache_audit_rate=1.0,
                                     cache_audit_judge="llm", cache_audit_judge_model="judge-model",
                                     stats_path="/stats")
    app = guard.wrap(upstream.app)
    assert guard.auditor is not None
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        await post(c, "What is the capital of France?")
        assert (await post(c, HITS[0])).headers["x-llmguard-cache"] == "hit"
        await guard.auditor.drain()
        upstream.verdict = "No, they differ."
        assert (await post(c, HITS[1])).headers["x-llmguard-cache"] == "hit"
        await guard.auditor.drain()
        audit = (await c.get("/stats")).json()["audit"]
    assert audit["audited"] == 2 and audit["wrong"] == 1  # judged by the model's yes, then its no
    assert len(upstream.judge_requests) == 2
    payload, header = upstream.judge_requests[0]
    assert payload["model"] == "judge-model" and payload["temperature"] == 0 and header == "1"
    assert "Answer A: You asked: What is the capital of France? Paris." in payload["messages"][0]["content"]
    assert audit["tokens"]["total"] == 8 * 4  # two re-asked hits and two judge questions: audit spend


@pytest.mark.model
async def test_audits_pause_while_the_failing_mock_fails_and_resume_after(demo: Any, shutdown_demo: Any) -> None:
    app = demo(cache_audit_rate=1.0, cache_audit_pause_seconds=0.5)
    shutdown_demo(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://demo") as c:
        await post(c, "What is the capital of France?")
        assert (await c.post("/mock/fault", json={"mode": "error"})).status_code == 200
        before = app.state.calls
        for prompt in HITS:  # hits served from the cache while the upstream fails
            assert (await post(c, prompt)).headers["x-llmguard-cache"] == "hit"
            await app.state.guard.auditor.drain()
        failing_calls = app.state.calls - before
        stats = (await c.get("/stats")).json()["audit"]
        assert failing_calls == 1  # the first audit found the failure; the rest waited
        assert stats["failed"] == 1 and stats["paused"] == len(HITS) - 1
        await c.post("/mock/fault", json={"mode": "none"})
        await asyncio.sleep(0.6)
        await post(c, "What's the capital city of France?")  # listed in the answers: the same answer
        await app.state.guard.auditor.drain()
        after = (await c.get("/stats")).json()["audit"]
    assert after["audited"] == 1 and after["wrong"] == 0  # resumed once the pause ran out


@pytest.mark.cluster
async def test_budget_state_is_shared_through_a_redis_cluster(cluster_url: str) -> None:
    from redis.asyncio import RedisCluster

    clients = [RedisCluster.from_url(cluster_url), RedisCluster.from_url(cluster_url)]
    try:
        one, two = (ErrorBudget(RedisOutcomeStore(c, "test:"), default_cut=1.5, target=0.02, grid=GRID)
                    for c in clients)
        for namespace in ("ns-a", "ns-b", "ns-c"):  # hashes in different slots, one index of namespaces
            await one.record(namespace, z=3.0, wrong=False, kind="audit")
        await one.record("ns-a", z=2.2, wrong=True, kind="audit")
        view = await two.refresh("ns-a")
        assert view.get("audited") == 2 and view.get("wrong") == 1
        assert two.cut_for("ns-a") == 2.5 and two.cut_for("ns-b") == 1.5
        summary = await two.summary()
        assert set(summary) == {"ns-a", "ns-b", "ns-c"} and summary["ns-a"]["cut"] == 2.5
    finally:
        for c in clients:
            await c.aclose()


# -- the LLM judge's own error (bench/audit.py --judge-url) --------------------------------------------------


def _shares_half(a: str, b: str) -> bool:
    wa, wb = set(a.lower().split()), set(b.lower().split())
    return len(wa & wb) >= 0.5 * len(wa | wb)


def _rule_model(asked: list[dict[str, Any]]) -> Starlette:
    """An OpenAI-style endpoint that judges by shared words (yes at half or more), and cannot tell for
    answers whose length is a multiple of 11."""

    def verdict(a: str, b: str) -> str:
        if len(a) % 11 == 0:
            return "Hard to say."
        return "Yes." if _shares_half(a, b) else "No"

    async def complete(request: Request) -> Response:
        body = await request.json()
        asked.append({**body, "authorization": request.headers.get("authorization")})
        prompt = body["messages"][0]["content"]
        a = prompt.split("Answer A: ", 1)[1].split("\n\nAnswer B: ", 1)[0]
        b = prompt.split("\n\nAnswer B: ", 1)[1].split("\n\nSame information", 1)[0]
        return JSONResponse({"choices": [{"message": {"role": "assistant", "content": verdict(a, b)}}]})

    return Starlette(routes=[Route("/v1/chat/completions", complete, methods=["POST"])])


async def test_the_llm_judges_own_error_is_measured_against_the_labelled_pairs(monkeypatch: Any) -> None:
    bench = load_bench("audit")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    asked: list[dict[str, Any]] = []
    transport = httpx.ASGITransport(app=_rule_model(asked))
    rows = await bench.llm_judge_error("http://model.test/v1", "judge-model", 40, transport=transport)
    assert [r[0] for r in rows] == ["sts", "paws"]
    for name, false_same, false_diff, unjudged, n in rows:
        pairs = [p for p in bench._pairs.load([name], ("test",)) if p.same in (0, 1)][:40]
        assert n == len(pairs) == 40
        exact = [p for p in pairs if normalised(p.a) == normalised(p.b)]
        asked_of = [p for p in pairs if p not in exact]
        cannot = [p for p in asked_of if len(p.a) % 11 == 0]
        assert unjudged == len(cannot)
        judged = [p for p in pairs if p not in cannot]

        said = {id(p): p in exact or _shares_half(p.a, p.b) for p in judged}
        diff = [p for p in judged if p.same == 0]
        same = [p for p in judged if p.same == 1]
        assert false_same == pytest.approx(sum(said[id(p)] for p in diff) / max(1, len(diff)))
        assert false_diff == pytest.approx(sum(not said[id(p)] for p in same) / max(1, len(same)))
    assert all(a["model"] == "judge-model" and a["temperature"] == 0 and a["max_tokens"] == 3 for a in asked)
    assert all(a["authorization"] == "Bearer sk-test" for a in asked)
    assert all("Question: What does the text say?" in a["messages"][0]["content"] for a in asked)
