"""Cache latency through real uvicorn: exact hits, semantic hits, hits per second, against a miss.

    .venv/bin/python bench/cache_latency.py [--requests 300] [--seconds 8] [--concurrency 32]

Prints, in one run:
- exact-hit p50 (goal ≤ 1 ms), raw and net of the same server's ``GET /health`` round trip;
- semantic-hit p50 against one bare embedding call measured in this run (goal ≤ 1.5x, pair model included),
  with early verification (the default: the pair model starts on the lexicon's guess while the
  embedding runs, cache/lexicon.py) and without it (LLMGUARD_CACHE_EARLY_VERIFY=false), and how
  many of the semantic lookups' guesses the embedding confirmed (used) or not (missed);
- semantic hits per second with micro-batching (max batch 32) and without (max batch 1),
  goal ≥ 300/s, each server measured with the same client load;
- the mock LLM's miss latency with its default delays, for scale.
The client runs on the same 2 shared cores as the server, so throughput figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, demo_server, pick_free_port

MODEL_DIR = os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2"))

# Seed prompts and rewordings of them (same answer). The bench counts only the responses that the
# server marked as hits; the share of rewordings that hit is printed too.
PAIRS = [
    ("How do I reverse a list in Python?", "How can I reverse a list in Python?"),
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("Give me a recipe for banana bread.", "Can you give me a recipe for banana bread?"),
    ("Explain how photosynthesis works.", "Can you explain how photosynthesis works?"),
    ("What are the symptoms of dehydration?", "What symptoms does dehydration cause?"),
    ("How do I center a div with CSS?", "How can I center a div using CSS?"),
    ("What is the difference between a list and a tuple in Python?",
     "What's the difference between a list and a tuple in Python?"),
    ("Write a haiku about autumn leaves.", "Please write a haiku about autumn leaves."),
    ("How does a hash map work?", "How does a hashmap work?"),
    ("Summarise the causes of the French Revolution.", "Summarize the causes of the French Revolution."),
    ("What is a good way to learn to play the guitar?", "What's a good way to learn to play guitar?"),
    ("How do vaccines train the immune system?", "How do vaccines teach the immune system?"),
]


def chat_body(prompt: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def p99_ms(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000


async def timed_posts(client: httpx.AsyncClient, prompt: str, count: int, expect: str) -> tuple[list[float], int]:
    samples: list[float] = []
    wrong = 0
    for _ in range(count):
        started = time.perf_counter()
        response = await client.post("/v1/chat/completions", json=chat_body(prompt))
        elapsed = time.perf_counter() - started
        if response.headers.get("x-llmguard-cache") == expect:
            samples.append(elapsed)
        else:
            wrong += 1
    return samples, wrong


async def timed_gets(client: httpx.AsyncClient, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await client.get("/health")
        samples.append(time.perf_counter() - started)
    return samples


async def seed(client: httpx.AsyncClient) -> list[str]:
    """Store the seed prompts; returns the rewordings that the server then serves as semantic hits."""
    for original, _ in PAIRS:
        await client.post("/v1/chat/completions", json=chat_body(original))
    hitting = []
    for _, reworded in PAIRS:
        response = await client.post("/v1/chat/completions", json=chat_body(reworded))
        if response.headers.get("x-llmguard-cache") == "hit":
            hitting.append(reworded)
    return hitting


async def hits_per_second(base_url: str, prompts: list[str], seconds: float, concurrency: int) -> tuple[float, int]:
    deadline = time.perf_counter() + seconds
    hits = 0
    others = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30) as client:

        async def worker(offset: int) -> None:
            nonlocal hits, others
            i = offset
            while time.perf_counter() < deadline:
                # no-store: a rewording that misses (embedding over budget) must not become an exact entry
                response = await client.post("/v1/chat/completions", json=chat_body(prompts[i % len(prompts)]),
                                             headers={"cache-control": "no-store"})
                if response.headers.get("x-llmguard-cache") == "hit" and response.headers.get("x-llmguard-similarity"):
                    hits += 1
                else:
                    others += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - started
    return hits / elapsed, others


class BareEmbedding:
    """One bare fastembed call, in this process, as the semantic hit's reference cost."""

    def __init__(self) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from fastembed import TextEmbedding

        self.model = TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=MODEL_DIR,
                                   threads=1)
        list(self.model.embed(["warm up"]))

    def time(self, texts: list[str]) -> list[float]:
        samples = []
        for text in texts:
            started = time.perf_counter()
            list(self.model.embed([text]))
            samples.append(time.perf_counter() - started)
        return samples


async def measure_latency(base_url: str, requests: int, bare: BareEmbedding) -> dict[str, float]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        miss_samples = []
        for i in range(5):
            started = time.perf_counter()
            await client.post("/v1/chat/completions", json=chat_body(f"a fresh question number {i} about tea"))
            miss_samples.append(time.perf_counter() - started)
        hitting = await seed(client)
        exact_prompt = PAIRS[0][0]
        await timed_gets(client, 50)
        health = await timed_gets(client, requests)
        exact, exact_wrong = await timed_posts(client, exact_prompt, requests, "hit")
        # Alternate the bare embedding and the semantic hit on the same texts, so machine noise hits both.
        semantic: list[float] = []
        embedding: list[float] = []
        for _ in range(max(1, requests // (5 * max(1, len(hitting))))):
            for prompt in hitting:
                embedding.extend(bare.time([prompt] * 5))
                samples, _ = await timed_posts(client, prompt, 5, "hit")
                semantic.extend(samples)
        exposition = (await client.get("/metrics")).text
    early = {outcome: float(m.group(1)) for outcome in ("used", "missed")
             if (m := re.search(rf'llmguard_cache_early_verify_total{{outcome="{outcome}"}} (\S+)', exposition))}
    return {
        "early_used": early.get("used", 0.0), "early_missed": early.get("missed", 0.0),
        "health_p50": p50_ms(health), "exact_p50": p50_ms(exact), "exact_p99": p99_ms(exact),
        "exact_wrong": exact_wrong, "semantic_p50": p50_ms(semantic) if semantic else float("nan"),
        "semantic_p99": p99_ms(semantic) if semantic else float("nan"),
        "hitting": len(hitting), "miss_p50": p50_ms(miss_samples),
        "embedding_p50": p50_ms(embedding) if embedding else float("nan"),
    }


async def prepare_hitting(base_url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        return await seed(client)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    env = {"LLMGUARD_EMBEDDING_MODEL_DIR": MODEL_DIR, "HF_HUB_OFFLINE": "1"}

    bare = BareEmbedding()
    with demo_server(pick_free_port(), guarded=True, env=env, name="latency") as server:
        latency = asyncio.run(measure_latency(server.base_url, args.requests, bare))
    with demo_server(pick_free_port(), guarded=True, env={**env, "LLMGUARD_CACHE_EARLY_VERIFY": "false"},
                     name="latency-late") as server:
        late = asyncio.run(measure_latency(server.base_url, args.requests, bare))
    embed_p50 = latency["embedding_p50"]
    # Throughput servers: an instant mock, so a non-hit does not hold a client for the mock's delays.
    fast = {**env, "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}
    with demo_server(pick_free_port(), guarded=True, env=fast, name="batched") as server:
        hitting = asyncio.run(prepare_hitting(server.base_url))
        batched, batched_other = asyncio.run(hits_per_second(server.base_url, hitting, args.seconds, args.concurrency))
    unbatched_env = {**fast, "LLMGUARD_EMBEDDING_MAX_BATCH": "1"}
    with demo_server(pick_free_port(), guarded=True, env=unbatched_env, name="unbatched") as server:
        hitting_unbatched = asyncio.run(prepare_hitting(server.base_url))
        unbatched, unbatched_other = asyncio.run(
            hits_per_second(server.base_url, hitting_unbatched, args.seconds, args.concurrency))

    net_exact = latency["exact_p50"] - latency["health_p50"]
    net_semantic = latency["semantic_p50"] - latency["health_p50"]
    print(f"rewordings served as semantic hits: {latency['hitting']:.0f}/{len(PAIRS)}")
    print(f"{'figure':44} {'measured':>12} {'goal':>14}")
    print(f"{'GET /health p50 (HTTP round trip baseline)':44} {latency['health_p50']:10.3f}ms")
    print(f"{'exact hit p50 / p99':44} {latency['exact_p50']:8.3f}/{latency['exact_p99']:.2f}ms")
    print(f"{'exact hit p50, net of /health':44} {net_exact:10.3f}ms {'≤ 1 ms':>14}"
          f"  {'PASS' if net_exact <= 1.0 else 'MISS'}")
    print(f"{'bare embedding call p50 (in process)':44} {embed_p50:10.3f}ms")
    print(f"{'semantic hit p50 / p99':44} {latency['semantic_p50']:8.3f}/{latency['semantic_p99']:.2f}ms")
    ratio = net_semantic / embed_p50
    print(f"{'semantic hit p50 net of /health ÷ embedding':44} {ratio:11.2f}x {'≤ 1.5x':>14}"
          f"  {'PASS' if ratio <= 1.5 else 'MISS'}")
    used, missed = latency["early_used"], latency["early_missed"]
    print(f"{'  early verification: guesses used / missed':44} {used:6.0f} / {missed:.0f}")
    late_ratio = (late["semantic_p50"] - late["health_p50"]) / late["embedding_p50"]
    print(f"{'  the same without early verification':44} {late_ratio:11.2f}x  "
          f"(p50 {late['semantic_p50']:.3f}ms, embedding {late['embedding_p50']:.3f}ms)")
    print(f"{'semantic hits/s, batching (max batch 32)':44} {batched:10.0f}/s {'≥ 300/s':>14}"
          f"  {'PASS' if batched >= 300 else 'MISS'}  (non-hits: {batched_other})")
    print(f"{'semantic hits/s, no batching (max batch 1)':44} {unbatched:10.0f}/s"
          f"  (non-hits: {unbatched_other})")
    print(f"{'batching speed-up':44} {batched / unbatched if unbatched else float('nan'):11.2f}x")
    print(f"{'mock LLM miss p50 (default demo delays)':44} {latency['miss_p50']:10.1f}ms"
          f"  = {latency['miss_p50'] / latency['exact_p50']:.0f}x an exact hit")
    print(f"command: .venv/bin/python bench/cache_latency.py --requests {args.requests} --seconds {args.seconds}"
          f" --concurrency {args.concurrency}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
