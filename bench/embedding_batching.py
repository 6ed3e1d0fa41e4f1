"""How much micro-batching buys: embeds per second by concurrent callers, batched vs not.

    .venv/bin/python bench/embedding_batching.py [--seconds 1.2] [--model-dir DIR]

For 1, 8, 32 and 64 concurrent callers, each awaiting ``embed`` in a loop, it
measures FastEmbedEmbedder with max_batch=32 against max_batch=1 (one ONNX
call per text), alternating the two in short rounds so machine noise hits both
alike, and prints each as a ratio against the max_batch=1 baseline of the same
run. One bare ``TextEmbedding.embed`` call's p50 is printed for reference.
Prompts are of mixed length, one in eight long, since a batch costs as many
tokens as its longest text times its size. Takes about 30 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asgi_llmguard.embedding.local import FastEmbedEmbedder, load_text_embedding  # noqa: E402

CALLERS = (1, 8, 32, 64)
ROUNDS = 2

_SUBJECTS = ["my password", "a Python list", "the router", "an invoice", "my flight", "a refund", "the API key"]
_ASKS = [
    "How do I reset {}?",
    "What is the fastest way to sort {} in place without extra memory?",
    "Can you explain why {} stopped working after the last update?",
    "Write a short summary of {} for a customer",
]


_LONG = (
    "Here is the traceback I get when I deploy {}: File app.py, line 12, in handler; "
    "KeyError: 'session'. I already cleared the cache, restarted the workers and checked the "
    "environment variables, and the staging server works fine. What else should I look at first?"
)


def prompts() -> list[str]:
    """Prompts of mixed length, like real chat questions: one in eight is long (padding costs)."""
    short = [ask.format(subject) for ask, subject in itertools.product(_ASKS, _SUBJECTS)]
    return short + [_LONG.format(subject) for subject in _SUBJECTS[:4]]


async def throughput(embedder: FastEmbedEmbedder, callers: int, seconds: float, texts: list[str]) -> int:
    """Embeds completed by ``callers`` concurrent loops in ``seconds``."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def caller(offset: int) -> None:
        nonlocal done
        for i in itertools.count(offset):
            if time.perf_counter() >= deadline:
                return
            await embedder.embed(texts[i % len(texts)])
            done += 1

    await asyncio.gather(*(caller(n * 7) for n in range(callers)))
    return done


def bare_p50(model_dir: str | None, texts: list[str], calls: int = 60) -> float:
    model = load_text_embedding("sentence-transformers/all-MiniLM-L6-v2", model_dir, 1)
    list(model.embed([texts[0]]))  # warm up
    timings = []
    for i in range(calls):
        started = time.perf_counter()
        list(model.embed([texts[i % len(texts)]]))
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=1.2, help="length of one measuring round")
    parser.add_argument(
        "--model-dir",
        default=os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2")),
    )
    args = parser.parse_args()
    texts = prompts()

    p50 = await asyncio.to_thread(bare_p50, args.model_dir, texts)
    print(f"bare TextEmbedding.embed, one text, threads=1: p50 {p50 * 1000:.2f} ms ({1 / p50:.0f}/s)")

    unbatched = FastEmbedEmbedder(model_dir=args.model_dir, max_batch=1, max_pending=256, timeout=None)
    batched = FastEmbedEmbedder(model_dir=args.model_dir, max_batch=32, max_pending=256, timeout=None)
    await asyncio.gather(unbatched.start(), batched.start())
    try:
        print(f"\n{args.seconds:.1f} s x {ROUNDS} rounds per cell, both alternating; ratios vs max_batch=1")
        print(
            f"{'callers':>7}  {'max_batch=1':>12}  {'max_batch=32':>13}  {'ratio':>6}"
            f"  {'texts/batch':>11}  {'calls/batch':>11}"
        )
        for callers in CALLERS:
            counts = {1: 0, 32: 0}
            before = batched.stats()
            for _ in range(ROUNDS):
                counts[1] += await throughput(unbatched, callers, args.seconds, texts)
                counts[32] += await throughput(batched, callers, args.seconds, texts)
            after = batched.stats()
            batches = max(1, after.batches - before.batches)
            texts_per_batch = (after.texts_embedded - before.texts_embedded) / batches
            calls_per_batch = (after.model_calls - before.model_calls) / batches
            elapsed = args.seconds * ROUNDS
            rate_1, rate_32 = counts[1] / elapsed, counts[32] / elapsed
            print(
                f"{callers:>7}  {rate_1:>10.0f}/s  {rate_32:>11.0f}/s  {rate_32 / rate_1:>5.2f}x"
                f"  {texts_per_batch:>11.1f}  {calls_per_batch:>11.1f}"
            )
        baseline = await throughput(unbatched, 1, args.seconds, texts) / args.seconds
        print(f"\n(single caller, max_batch=1, measured again at the end: {baseline:.0f}/s)")
    finally:
        await asyncio.gather(unbatched.close(), batched.close())


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(main())
