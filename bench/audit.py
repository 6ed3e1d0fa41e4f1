"""Does the error budget hold its target, and at what hit rate? (issue 18; docs/cache-quality.md)

A stream of prompts from labelled pairs (everyday, gateway and MQP medical pairs: bench/_pairs.py)
goes through the real stack (Guard, embedding model, verifier) in front of the demo's mock answering
by meaning (``LLMGUARD_DEMO_ANSWERS``: one answer per paraphrase cluster, clusters joined through
pairs labelled "same answer"). Each set is its own namespace (its own system prompt), as an app
with several features would have. A semantic hit is *wrong* when the stored prompt is in another
cluster (the truth, not the judge's opinion).

Arms on the same stream, per seed: the static default (verifier at ``balanced``), the error budget
at 0.5%, 1% and 2% (``LLMGUARD_CACHE_MAX_WRONG_RATE``, audits at ``--audit-rate``), and a shadow
run whose recorded verdicts give the static cut-offs' figures (hit iff the would-hit's log-odds
reach the cut) for the equal-error comparison. Printed: realised wrong-hit rate and hit rate per
arm (mean over seeds), the share of seeds in which the target held, and the static hit rate
interpolated at the budget's realised error. Then the hit latency p50 with audits off and at
rate 1, and the embedding judge's own error on labelled sentence pairs (STS-B, PAWS).

    python bench/audit.py --seeds 20 --per-set 400
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import itertools
import os
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _pairs

SETS = ("everyday", "gateway", "mqp")
TARGETS = (0.005, 0.01, 0.02)
STATIC_CUTS = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0)
CHAT = "/v1/chat/completions"


@dataclass
class Stream:
    prompts: list[tuple[str, str]]  # (set, prompt) in order
    cluster: dict[tuple[str, str], int]
    answers: dict[str, str] = field(default_factory=dict)


def clusters(per_set: int) -> tuple[dict[tuple[str, str], int], list[tuple[str, str]]]:
    """Union of prompts joined by same-answer pairs; at most ``per_set`` pairs of each set (fixed choice)."""
    parent: dict[tuple[str, str], tuple[str, str]] = {}

    def find(x: tuple[str, str]) -> tuple[str, str]:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    prompts: list[tuple[str, str]] = []
    for name in SETS:
        pairs = [p for p in _pairs.load([name], ("cal", "test")) if p.same in (0, 1)]
        random.Random(7).shuffle(pairs)
        for p in pairs[:per_set]:
            a, b = (name, p.a), (name, p.b)
            for x in (a, b):
                if x not in parent:
                    prompts.append(x)
                find(x)
            if p.same == 1:
                parent[find(a)] = find(b)
    roots: dict[tuple[str, str], int] = {}
    return {x: roots.setdefault(find(x), len(roots)) for x in prompts}, prompts


def make_stream(cluster: dict[tuple[str, str], int], prompts: list[tuple[str, str]], seed: int) -> Stream:
    order = list(prompts)
    random.Random(seed).shuffle(order)
    return Stream(order, cluster)


def answers_file(cluster: dict[tuple[str, str], int], path: Path) -> None:
    first: dict[int, str] = {}
    for (_, prompt), c in cluster.items():
        first.setdefault(c, prompt)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "answer"])
        for (_, prompt), c in cluster.items():
            writer.writerow([prompt, f"Here is what you need to know about: {first[c]}"])


class MemoEmbedder:
    """The real local embedder, remembered across runs (the same text always has the same vector)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[str, Any] = {}
        self.started = False

    @property
    def dimensions(self) -> int:
        return int(self.inner.dimensions)

    async def start(self) -> None:
        if not self.started:
            await self.inner.start()
            self.started = True

    async def embed(self, text: str, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if text not in self.memo:
            self.memo[text] = await self.inner.embed(text, timeout=timeout)
        return self.memo[text]

    async def close(self) -> None:
        return None


def memoise_pair_model() -> None:
    from asgi_llmguard.cache import pair_model

    original = pair_model.PairModel.logits

    @functools.lru_cache(maxsize=500_000)
    def cached(self: Any, query: str, candidates: tuple[str, ...]) -> tuple[float, ...]:
        return tuple(original(self, query, list(candidates)))

    def logits(self: Any, query: str, candidates: Sequence[str]) -> list[float]:
        return list(cached(self, query, tuple(candidates)))

    pair_model.PairModel.logits = logits  # type: ignore[method-assign]


@dataclass
class Run:
    hits: int = 0
    wrong: int = 0
    requests: int = 0
    semantic_hits: int = 0
    hit_ms: list[float] = field(default_factory=list)
    shadow: list[tuple[float, bool]] = field(default_factory=list)  # (z, wrong) of would-hits at the floor
    audits: int = 0

    @property
    def hit_rate(self) -> float:
        return self.hits / self.requests if self.requests else 0.0

    @property
    def wrong_rate(self) -> float:
        return self.wrong / self.hits if self.hits else 0.0


async def run_arm(stream: Stream, embedder: MemoEmbedder, *, drain: bool = True, **settings: Any) -> Run:
    from asgi_llmguard import Guard
    from demo_app.app import create_app

    app = create_app(guarded=False)
    guard = Guard(embedder=embedder, cache_scope="global", metrics_enabled=True, rate_limit_rpm=0,
                  cache_bypass_time_sensitive=False, cache_max_entries=100_000, **settings)
    await guard.startup()
    wrapped = guard.wrap(app)
    run = Run()
    by_text = {}  # the stored prompt text -> its cluster, per set
    for key in stream.cluster:
        by_text[key] = stream.cluster[key]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://bench") as c:
            for name, prompt in stream.prompts:
                body = {"model": "mock-small", "messages": [{"role": "system", "content": f"You help with {name}."},
                                                            {"role": "user", "content": prompt}]}
                started = time.perf_counter()
                response = await c.post(CHAT, json=body)
                elapsed = (time.perf_counter() - started) * 1000
                run.requests += 1
                if response.headers.get("x-llmguard-cache") == "hit" and "x-llmguard-similarity" in response.headers:
                    run.hits += 1
                    run.hit_ms.append(elapsed)
                    text = response.json()["choices"][0]["message"]["content"]
                    if text != stream.answers[prompt]:
                        run.wrong += 1
                elif response.headers.get("x-llmguard-cache") == "hit":
                    run.requests -= 1  # an exact repeat across sets is not the semantic tier's
                if drain and guard.auditor is not None:
                    await guard.auditor.drain()
            if guard.auditor is not None:
                await guard.auditor.drain(within=30)
    finally:
        await guard.shutdown()
    return run


def shadow_figures(stream: Stream, events: list[tuple[str, float, bool]], cut: float) -> tuple[float, float]:
    """(wrong rate, hit rate) a static cut would give, from a shadow run's would-hits (z, wrong)."""
    served = [wrong for _, z, wrong in events if z >= cut]
    return (sum(served) / len(served) if served else 0.0), len(served) / len(stream.prompts)


async def shadow_run(stream: Stream, embedder: MemoEmbedder) -> list[tuple[str, float, bool]]:
    """Every would-hit at the floor of the shadow run, with the truth: (set, z, wrong)."""
    import structlog

    events: list[tuple[str, float, bool]] = []
    from asgi_llmguard import Guard
    from demo_app.app import create_app

    guard = Guard(embedder=embedder, cache_scope="global", cache_mode="shadow", cache_bypass_time_sensitive=False,
                  cache_max_entries=100_000, cache_max_wrong_rate=0.5 - 1e-9)
    await guard.startup()
    wrapped = guard.wrap(create_app(guarded=False))
    entry_prompt: dict[int, str] = {}
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://bench") as c:
            cache = guard.cache
            assert cache is not None and guard.auditor is not None
            for name, prompt in stream.prompts:
                body = {"model": "mock-small", "messages": [{"role": "system", "content": f"You help with {name}."},
                                                            {"role": "user", "content": prompt}]}
                with structlog.testing.capture_logs() as logs:
                    await c.post(CHAT, json=body)
                    await guard.auditor.drain()
                for event in logs:
                    if event.get("event") == "llmguard.cache.audit" and event.get("outcome") in ("right", "wrong"):
                        entry = await cache.store.get(event["entry_id"], touch=False)
                        stored = entry.prompt if entry is not None else None
                        truth = stored is None or stream.answers.get(stored) != stream.answers[prompt]
                        events.append((name, event["z"], truth))
                        entry_prompt[event["entry_id"]] = stored or ""
    finally:
        await guard.shutdown()
    return events


def interpolate(points: list[tuple[float, float]], error: float) -> float:
    """Hit rate of the static cuts at ``error`` (linear between the two cuts around it)."""
    points = sorted(points)
    if error <= points[0][0]:
        return points[0][1]
    for (e0, h0), (e1, h1) in itertools.pairwise(points):
        if e0 <= error <= e1:
            return h0 if e1 == e0 else h0 + (h1 - h0) * (error - e0) / (e1 - e0)
    return max(h for _, h in points)


def judge_error(embedder: Any, thresholds: Sequence[float]) -> list[tuple[str, float, float, float, int]]:
    """The embedding judge's errors on labelled sentence pairs: (set, threshold, false same, false different, n)."""
    rows = []
    for name in ("sts", "paws"):
        pairs = [p for p in _pairs.load([name], ("test",)) if p.same in (0, 1)][:1500]
        cos = _pairs.cosines(pairs)
        same = np.array([p.same == 1 for p in pairs])
        for t in thresholds:
            said = cos >= t
            false_same = float((said & ~same).sum() / max(1, (~same).sum()))
            false_diff = float((~said & same).sum() / max(1, same.sum()))
            rows.append((name, t, false_same, false_diff, len(pairs)))
    return rows


async def main_async(args: argparse.Namespace) -> None:
    import structlog

    from asgi_llmguard.embedding.local import FastEmbedEmbedder

    def quiet(logger: Any, name: str, event: Any) -> Any:
        raise structlog.DropEvent  # no output; structlog.testing.capture_logs (the shadow runs) still sees events

    structlog.configure(processors=[quiet])
    memoise_pair_model()
    model_dir = str(_pairs.MODEL_DIR)
    embedder = MemoEmbedder(FastEmbedEmbedder("sentence-transformers/all-MiniLM-L6-v2", model_dir, timeout=30))
    cluster, prompts = clusters(args.per_set)
    tmp = Path(tempfile.mkdtemp())
    answers_file(cluster, tmp / "answers.csv")
    os.environ["LLMGUARD_DEMO_ANSWERS"] = str(tmp / "answers.csv")
    os.environ["LLMGUARD_DEMO_TTFT_MS"] = "0"
    os.environ["LLMGUARD_DEMO_TOKEN_MS"] = "0"
    from demo_app.mock_llm import known_answer

    answers = {p: known_answer(p) or "" for _, p in prompts}
    print(f"stream: {len(prompts)} prompts in {len(set(cluster.values()))} clusters "
          f"({', '.join(f'{n} {sum(1 for s, _ in prompts if s == n)}' for n in SETS)}), seeds {args.seeds}, "
          f"audit rate {args.audit_rate}, judge threshold {args.judge_threshold}")
    common = {"cache_audit_judge_threshold": args.judge_threshold, "embedding_timeout_ms": 30_000.0}
    results: dict[str, list[Run]] = defaultdict(list)
    static_points: list[list[tuple[float, float]]] = []
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        stream = make_stream(cluster, prompts, seed)
        stream.answers = answers
        results["static"].append(await run_arm(stream, embedder, **common))
        for target in TARGETS:
            results[f"{target:.1%}"].append(await run_arm(
                stream, embedder, cache_audit_rate=args.audit_rate, cache_max_wrong_rate=target,
                cache_audit_concurrency=8, **common))
        events = await shadow_run(stream, embedder)
        static_points.append([shadow_figures(stream, events, cut) for cut in STATIC_CUTS])
        print(f"  seed {seed}: done ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    print()
    print("| arm | target | realised wrong-hit rate (mean, max over seeds) | hit rate (mean) | target held "
          "| static hit rate at the same realised error |")
    print("|---|---|---|---|---|---|")
    for arm, runs in results.items():
        wrong = [r.wrong_rate for r in runs]
        hit = [r.hit_rate for r in runs]
        if arm == "static":
            print(f"| static default (balanced, cut 1.5) | - | {statistics.mean(wrong):.2%} ({max(wrong):.2%}) "
                  f"| {statistics.mean(hit):.2%} | - | - |")
            continue
        target = float(arm.rstrip("%")) / 100
        held = sum(1 for w in wrong if w <= target) / len(wrong)
        at_equal = statistics.mean(interpolate(points, w) for points, w in zip(static_points, wrong, strict=True))
        print(f"| error budget | {arm} | {statistics.mean(wrong):.2%} ({max(wrong):.2%}) | {statistics.mean(hit):.2%} "
              f"| {held:.0%} of seeds | {at_equal:.2%} |")
    print()
    print("static cut-offs on the same streams (from the shadow runs; mean over seeds):")
    print("| cut | wrong-hit rate | hit rate |")
    print("|---|---|---|")
    for i, cut in enumerate(STATIC_CUTS):
        print(f"| {cut} | {statistics.mean(p[i][0] for p in static_points):.2%} "
              f"| {statistics.mean(p[i][1] for p in static_points):.2%} |")
    # latency: audits must not delay the served hit. The upstream takes 50 ms (a real one waits on the
    # network, not on this process's CPU); a first pass warms the model memos so both arms see the same work.
    os.environ["LLMGUARD_DEMO_TTFT_MS"] = "50"
    stream = make_stream(cluster, prompts, 1000)
    stream.answers = answers
    await run_arm(stream, embedder, drain=False, **common)
    off = await run_arm(stream, embedder, drain=False, **common)
    on = await run_arm(stream, embedder, drain=False, cache_audit_rate=1.0, cache_audit_concurrency=4, **common)
    p50_off, p50_on = statistics.median(off.hit_ms), statistics.median(on.hit_ms)
    print()
    print(f"served hit latency p50: audits off {p50_off:.2f} ms ({len(off.hit_ms)} hits), audit rate 1.0 "
          f"{p50_on:.2f} ms ({len(on.hit_ms)} hits): ratio {p50_on / p50_off:.2f}")
    print()
    print("embedding judge's own error on labelled sentence pairs (test parts):")
    print("| set | threshold | false 'same' (wrong answer judged right) | false 'different' | pairs |")
    print("|---|---|---|---|---|")
    for name, t, fs, fd, n in judge_error(embedder, (0.8, 0.9, 0.95, 0.99)):
        print(f"| {name} | {t} | {fs:.1%} | {fd:.1%} | {n} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--per-set", type=int, default=400, help="labelled pairs taken from each set")
    parser.add_argument("--audit-rate", type=float, default=0.2)
    parser.add_argument("--judge-threshold", type=float, default=0.99,
                        help="the mock is deterministic: one cluster, one answer to the letter")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
