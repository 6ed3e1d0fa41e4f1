"""Does the error budget hold its target, and at what hit rate? (issue 18; docs/cache-quality.md)

A stream of prompts from labelled pairs (everyday, gateway and MQP medical pairs: bench/_pairs.py)
goes through the real stack (Guard, embedding model, verifier) in front of the demo's mock answering
by meaning (``LLMGUARD_DEMO_ANSWERS``: one answer per paraphrase cluster, clusters joined through
pairs labelled "same answer"). Each set is its own namespace (its own system prompt), as an app
with several features would have. A semantic hit is *wrong* when the stored prompt is in another
cluster (the truth, not the judge's opinion).

Arms on the same stream, per seed: the static default (verifier at ``balanced``); the error budget
at 0.5%, 1% and 2% (``LLMGUARD_CACHE_MAX_WRONG_RATE``, audits at ``--audit-rate``), *cold* (no
evidence at the start) and *warm* (the first ``--warmup`` share of the stream in shadow mode, the
rest served and counted); and a shadow run whose recorded verdicts give any static cut's figures
(hit iff the would-hit's log-odds reach the cut). Printed: realised wrong-hit rate and hit rate per
arm, the seeds in which the target held, the best static hit rate at the same or a lower realised
error on the same seed, and the loosest static cut that holds the target in 95% of seeds. Then the
served-hit latency p50 with audits off and at rate 1, and the embedding judge's own error on
labelled sentence pairs (STS-B, PAWS). ``--parts`` picks parts, ``--out``/``--report`` keep and
reprint the budget part's figures; ``--judge-url`` also measures the LLM judge against a real model
(it costs two sets of ``--judge-pairs`` calls). docs/cache-quality.md has the figures of:

    nice -n 10 python bench/audit.py --seeds 20 --per-set 100 --parts budget,latency --out audit.json
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import json
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
STATIC_CUTS = (0.5, 1.0, 1.3, 1.4, 1.5, 2.0, 2.1, 2.25, 2.5, 2.75, 3.0, 3.25, 3.5, 4.0)  # the log-odds top out near 4
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
    first_of_text: dict[str, tuple[str, str]] = {}
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
    # The mock answers by the prompt's text, so one text is one answer in every set: "How fast does light
    # travel?" is a rewording of "What is the speed of light?" in the everyday set and of "What's the speed of
    # light?" in the gateway set, and counting the one answer it gets as wrong in the other set is the
    # bench's own error, not the cache's.
    for x in prompts:
        parent[find(x)] = find(first_of_text.setdefault(x[1], x))
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

    async def embed_when_idle(self, text: str, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if text not in self.memo:
            self.memo[text] = await self.inner.embed_when_idle(text, timeout=timeout)
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


async def run_arm(stream: Stream, embedder: MemoEmbedder, *, drain: bool = True, warmup: int = 0,
                  **settings: Any) -> Run:
    """One pass of the stream; with ``warmup``, its first prompts go through in shadow mode (the day of
    shadow traffic the docs ask for: counts for the budget, entries for the cache) and only the rest
    is served and counted."""
    from asgi_llmguard import Guard
    from demo_app.app import create_app

    app = create_app(guarded=False)
    guard = Guard(embedder=embedder, cache_scope="global", metrics_enabled=True, rate_limit_rpm=0,
                  cache_bypass_time_sensitive=False, cache_max_entries=100_000, **settings)
    await guard.startup()
    wrapped = guard.wrap(app)
    if warmup and guard.auditor is not None:
        guard.auditor.shadow = True
    run = Run()
    by_text = {}  # the stored prompt text -> its cluster, per set
    for key in stream.cluster:
        by_text[key] = stream.cluster[key]
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://bench") as c:
            for k, (name, prompt) in enumerate(stream.prompts):
                if k == warmup and guard.auditor is not None:
                    guard.auditor.shadow = False  # the shadow day is over: serve
                body = {"model": "mock-small", "messages": [{"role": "system", "content": f"You help with {name}."},
                                                            {"role": "user", "content": prompt}]}
                started = time.perf_counter()
                response = await c.post(CHAT, json=body)
                elapsed = (time.perf_counter() - started) * 1000
                if k < warmup:
                    if drain and guard.auditor is not None:
                        await guard.auditor.drain()
                    continue
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


Event = tuple[int, str, float, bool]  # (place in the stream, set, z, wrong)


def shadow_figures(stream: Stream, events: list[Event], cut: float, start: int = 0) -> tuple[float, float]:
    """(wrong rate, hit rate) a static cut would give to the stream from ``start`` on, from a shadow run's
    would-hits."""
    served = [wrong for k, _, z, wrong in events if z >= cut and k >= start]
    return (sum(served) / len(served) if served else 0.0), len(served) / max(1, len(stream.prompts) - start)


async def shadow_run(stream: Stream, embedder: MemoEmbedder) -> list[Event]:
    """Every would-hit at the floor of the shadow run, with the truth."""
    import structlog

    events: list[Event] = []
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
            for k, (name, prompt) in enumerate(stream.prompts):
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
                        events.append((k, name, event["z"], truth))
                        entry_prompt[event["entry_id"]] = stored or ""
    finally:
        await guard.shutdown()
    return events


def frontier(points: Sequence[Sequence[float]], error: float) -> float:
    """The best hit rate any static cut reached on this stream with a wrong-hit rate no higher than ``error``
    (chosen with hindsight, per seed: the static arm's best case)."""
    return max((hit for wrong, hit in points if wrong <= error + 1e-12), default=0.0)


def report(data: dict[str, Any]) -> None:
    """The tables of the budget part, from its figures (``--report FILE`` prints them again)."""
    cuts = list(data["cuts"])
    default_cut = data.get("default_cut", 1.5)
    default = cuts.index(default_cut)
    print()
    print(f"cold: each arm starts with no evidence at the default cut; warm: the first {data['warm_n']} prompts "
          "of each stream go through in shadow mode, the rest are served and counted")
    print("| arm | target | realised wrong-hit rate (mean, worst seed) | hit rate (mean) | target held "
          "| best static hit rate at the same or lower realised error (same seed) | static default on the same "
          "prompts | loosest static cut holding the target in >= 95% of seeds (hit rate) |")
    print("|---|---|---|---|---|---|---|---|")
    for arm, runs in data["runs"].items():
        wrong = [w / h if h else 0.0 for w, h, _ in runs]
        hit = [h / r if r else 0.0 for _, h, r in runs]
        if arm == "static":
            print(f"| static default (balanced, cut {default_cut}) | - | {statistics.mean(wrong):.2%} "
                  f"({max(wrong):.2%}) | {statistics.mean(hit):.2%} | - | - | - | - |")
            continue
        start, name = arm.split(" ")
        target = float(name.rstrip("%")) / 100
        held = sum(1 for w in wrong if w <= target)
        points = data["static_points"][start.split("-")[0]]
        at_equal = statistics.mean(frontier(p, w) for p, w in zip(points, wrong, strict=True))
        holding = [i for i in range(len(cuts)) if sum(1 for p in points if p[i][0] <= target) >= 0.95 * len(points)]
        safe = f"{cuts[holding[0]]} ({statistics.mean(p[holding[0]][1] for p in points):.2%})" if holding else "none"
        print(f"| error budget, {start} | {name} | {statistics.mean(wrong):.2%} ({max(wrong):.2%}) "
              f"| {statistics.mean(hit):.2%} | {held} of {len(wrong)} seeds | {at_equal:.2%} "
              f"| {statistics.mean(p[default][0] for p in points):.2%} wrong, "
              f"{statistics.mean(p[default][1] for p in points):.2%} hits | {safe} |")
    print()
    print("static cut-offs on the same streams (from the shadow runs; mean over seeds; warm: served part only):")
    print("| cut | wrong-hit rate | hit rate | warm: wrong-hit rate | warm: hit rate |")
    print("|---|---|---|---|---|")
    cold, warm = data["static_points"]["cold"], data["static_points"].get("warm") or data["static_points"]["cold"]
    for i, cut in enumerate(cuts):
        print(f"| {cut} | {statistics.mean(p[i][0] for p in cold):.2%} | {statistics.mean(p[i][1] for p in cold):.2%} "
              f"| {statistics.mean(p[i][0] for p in warm):.2%} | {statistics.mean(p[i][1] for p in warm):.2%} |")
    sys.stdout.flush()


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


#: The question the LLM judge is given for a labelled sentence pair: the pairs are answers without one.
PAIR_QUESTION = "What does the text say?"


async def llm_judge_error(url: str, model: str, per_set: int, *, concurrency: int = 4,
                          transport: httpx.AsyncBaseTransport | None = None
                          ) -> list[tuple[str, float, float, int, int]]:
    """The LLM judge's own errors on the labelled sentence pairs the embedding judge is measured on, asked of
    a real model through an OpenAI-compatible endpoint (``url`` ending in /v1; the key from OPENAI_API_KEY),
    with the judge's own question, at temperature 0: (set, false same, false different, unjudged, pairs).
    A pair the judge cannot read an answer for (no yes or no, an error) counts as unjudged, not as either."""
    from asgi_llmguard.cache.audit.judge import LLMJudge

    key = os.environ.get("OPENAI_API_KEY", "")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    rows = []
    async with httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=60.0,
                                 transport=transport) as client:

        async def ask(prompt: str) -> str | None:
            body = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0,
                    "max_tokens": 3}
            response = await client.post("/chat/completions", json=body)
            response.raise_for_status()
            content: str | None = response.json()["choices"][0]["message"]["content"]
            return content

        judge = LLMJudge(ask)
        gate = asyncio.Semaphore(concurrency)

        async def one(a: str, b: str) -> bool | None:
            async with gate:
                verdict = await judge.judge(PAIR_QUESTION, a, b)
            return None if verdict is None else verdict.same

        for name in ("sts", "paws"):
            pairs = [p for p in _pairs.load([name], ("test",)) if p.same in (0, 1)][:per_set]
            said = await asyncio.gather(*(one(p.a, p.b) for p in pairs))
            judged = [(p.same == 1, s) for p, s in zip(pairs, said, strict=True) if s is not None]
            n_same = sum(1 for truth, _ in judged if truth)
            n_diff = len(judged) - n_same
            false_same = sum(1 for truth, s in judged if s and not truth) / max(1, n_diff)
            false_diff = sum(1 for truth, s in judged if truth and not s) / max(1, n_same)
            rows.append((name, false_same, false_diff, len(pairs) - len(judged), len(pairs)))
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
    static_points: dict[str, list[list[tuple[float, float]]]] = defaultdict(list)
    warm_n = int(len(prompts) * args.warmup)
    from asgi_llmguard.cache.verify import Verifier

    default_cut = Verifier().cut  # the balanced point's, where the static default serves
    if default_cut not in STATIC_CUTS:
        raise SystemExit(f"add the default cut {default_cut} to STATIC_CUTS")
    t0 = time.perf_counter()
    if "budget" in args.parts:
        kept = json.loads(Path(args.static_from).read_text()) if args.static_from else None  # noqa: ASYNC240
        arms = set(args.arms.split(","))
        label = "" if args.strictness == "balanced" else f"-{args.strictness}"
        budget = {"cache_audit_rate": args.audit_rate, "cache_audit_concurrency": 8,
                  "cache_strictness": args.strictness, **common}
        for seed in range(args.seeds):
            stream = make_stream(cluster, prompts, seed)
            stream.answers = answers
            if "static" in arms:
                results["static"].append(await run_arm(stream, embedder, **common))
            for target in TARGETS:
                if "cold" in arms:
                    results[f"cold{label} {target:.1%}"].append(await run_arm(
                        stream, embedder, cache_max_wrong_rate=target, **budget))
                if warm_n and "warm" in arms:
                    results[f"warm{label} {target:.1%}"].append(await run_arm(
                        stream, embedder, warmup=warm_n, cache_max_wrong_rate=target, **budget))
            if kept is not None:  # the same seeds' shadow runs, from an earlier --out (they are deterministic)
                for part in ("cold", "warm"):
                    static_points[part].append(kept["static_points"][part][seed])
            else:
                events = await shadow_run(stream, embedder)
                static_points["cold"].append([shadow_figures(stream, events, cut) for cut in STATIC_CUTS])
                static_points["warm"].append([shadow_figures(stream, events, cut, warm_n) for cut in STATIC_CUTS])
            figures = ", ".join(f"{arm} {runs[-1].wrong}/{runs[-1].hits}" for arm, runs in results.items())
            print(f"  seed {seed}: wrong/hits {figures} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
        data = {"args": {k: sorted(v) if isinstance(v, set) else v for k, v in vars(args).items()},
                "warm_n": warm_n, "cuts": STATIC_CUTS, "static_points": static_points, "default_cut": default_cut,
                "runs": {arm: [[r.wrong, r.hits, r.requests] for r in runs] for arm, runs in results.items()}}
        if args.out:
            Path(args.out).write_text(json.dumps(data))  # noqa: ASYNC240 - once, after the runs
        report(data)
    if "latency" in args.parts:
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
        sys.stdout.flush()
    if "judge" not in args.parts:
        return
    print()
    print("embedding judge's own error on labelled sentence pairs (test parts):")
    print("| set | threshold | false 'same' (wrong answer judged right) | false 'different' | pairs |")
    print("|---|---|---|---|---|")
    for name, t, fs, fd, n in judge_error(embedder, (0.8, 0.9, 0.95, 0.99)):
        print(f"| {name} | {t} | {fs:.1%} | {fd:.1%} | {n} |")
    if args.judge_url:
        print()
        print(f"LLM judge ({args.judge_model} at {args.judge_url}) on the same pairs, {args.judge_pairs} a set:")
        print("| set | false 'same' | false 'different' | unjudged | pairs |")
        print("|---|---|---|---|---|")
        for name, fs, fd, unjudged, n in await llm_judge_error(args.judge_url, args.judge_model, args.judge_pairs):
            print(f"| {name} | {fs:.1%} | {fd:.1%} | {unjudged} | {n} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--per-set", type=int, default=400, help="labelled pairs taken from each set")
    parser.add_argument("--audit-rate", type=float, default=0.2)
    parser.add_argument("--judge-threshold", type=float, default=0.99,
                        help="the mock is deterministic: one cluster, one answer to the letter")
    parser.add_argument("--warmup", type=float, default=0.5,
                        help="share of each stream run in shadow mode before the warm arms serve (0: no warm arms)")
    parser.add_argument("--out", help="write the per-seed figures here (JSON)")
    parser.add_argument("--parts", default="budget,latency,judge", help="which parts to run, comma-separated")
    parser.add_argument("--arms", default="static,cold,warm", help="which arms of the budget part to run")
    parser.add_argument("--strictness", default="balanced", choices=("strict", "balanced", "loose"),
                        help="the strictness point the budget arms start from (its cut is where they start)")
    parser.add_argument("--static-from", help="take the static cut-offs' figures from an earlier --out of the "
                                              "same seeds and --per-set instead of running the shadow runs")
    parser.add_argument("--report", help="print the budget part's tables again from a file --out wrote, and stop")
    parser.add_argument("--judge-url", help="judge part: also measure the LLM judge through this OpenAI-compatible "
                                            "endpoint (e.g. https://api.openai.com/v1; key from OPENAI_API_KEY)")
    parser.add_argument("--judge-model", default="gpt-4o-mini", help="the model the LLM judge asks (--judge-url)")
    parser.add_argument("--judge-pairs", type=int, default=200, help="labelled pairs a set for the LLM judge")
    args = parser.parse_args(argv)
    args.parts = set(args.parts.split(","))
    if args.report:
        report(json.loads(Path(args.report).read_text()))
        return 0
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
