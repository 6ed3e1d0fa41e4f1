"""Long prompts through the guarded demo: memory stays bounded, and reworded long prompts are hits.

    .venv/bin/python bench/long_prompts.py                       # 2 000 prompts of 16 KB, 16 at a time
    .venv/bin/python bench/long_prompts.py --prompts 300         # what tests/cache/test_long_prompts.py runs
    .venv/bin/python bench/long_prompts.py --concurrency 2       # no more than the embedder can take
    .venv/bin/python bench/long_prompts.py --semantic off        # the same load without the semantic tier

Starts ``python -m demo_app`` on 127.0.0.1 (the whole stack, in-memory cache, the mock LLM with no
delays, uvicorn's access log off) and stops it when it ends. Each prompt is an instruction and a
document of plain words drawn at random (``--chars`` characters, 16 000 by default), all distinct.
It sends a few to warm up, reads the server's resident memory (``VmRSS`` of its process), sends
``--prompts`` of them, ``--concurrency`` at a time, and reads it again; then it asks the last four
again (one per instruction) with the instruction reworded around the same document: each should
be a semantic hit, unless its embedding was one that failed under the load. Last, with the load
over, it sends one more long prompt and then its rewording, which must be a hit (it tries again
with another, half a second later, up to five times, while the embedder works off what the load left
queued: texts admitted in the last half second, and the answers kept after their responses).

Prints the memory before and after and its peak (``VmHWM``), the growth against the issue's bound
(300 MB), the embeddings that failed (``llmguard_degraded_total{part="embedding"}``), the time, and
the rewordings' cache statuses and similarities. The load generator shares the machine's cores with
the server. The embedder reads a long prompt in about 0.1 s here (one ONNX thread, 2 busy cores), and
the mock answers at once: 16 clients offer far more than that, and the prompts beyond what fits the
500 ms budget are refused at once and are misses. That load is the memory test (batches of 32 long
texts are what grew the old process); ``--concurrency 2`` is the hit test under load.

Before issue 16 (embedding texts whole, in batches of 32, with ONNX Runtime's memory arena), 500
such prompts took the server from 280 MB to 1 707 MB and every embedding failed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import ROOT, demo_server, pick_free_port

MODEL_DIR = str(ROOT / ".models" / "all-MiniLM-L6-v2")
BOUND_MB = 300
# Plain nouns, none of them a time cue ("weather", "news"...), which would make the cache bypass. Each
# document draws its words from a topic of its own (TOPIC_WORDS of them), so that documents differ as
# much in meaning as real ones do; drawn from one common list, they would all embed alike, and a
# rewording's own document would not always be among the nearest four.
_NOUNS = """
river mountain account invoice shipment harbour orchard engine ledger station garden bridge customer
contract meeting village library council market budget report season quarry timber cargo schedule
pipeline warehouse district canal furnace textile vineyard railway tunnel clinic museum ferry apple
bakery barley basket battery beach bicycle blanket boiler bottle brick bucket cabin camera candle
canyon carpet castle cathedral cattle cellar cement chapel cheese chimney circus cliff coffee
compass copper cotton cottage crane crystal dairy desert diamond dolphin dragon drum eagle elephant
factory falcon farm feather fence fisherman flour forest fountain fox glacier goat granite guitar
hammer helmet honey horse hospital island jacket jungle kettle kitchen ladder lake lantern lemon
lighthouse lion marble meadow mill mirror monastery monkey needle oak ocean olive orange owl painter
palace paper parrot pearl pencil pepper piano pilot pine pirate plough pottery prison pump rabbit
radio reef rice ribbon rocket saddle sailor salmon satellite scarf school shepherd silver soap
soldier spider sugar swan tailor teacher telescope temple tiger tobacco tomato tower tractor trumpet
turtle umbrella valley violin volcano wagon walnut whale wheat window wolf wool zebra
"""
WORDS = _NOUNS.split()
TOPIC_WORDS = 12
INSTRUCTIONS = ("Summarise the following document in three bullet points:",
                "List the five most important facts in the following document:",
                "Write a one-paragraph abstract of the following document:",
                "Which decisions does the following document record?")
REWORDED = {INSTRUCTIONS[0]: "Give me a three-bullet summary of the following document:",
            INSTRUCTIONS[1]: "What are the five most important facts in the following document? List them:",
            INSTRUCTIONS[2]: "Write an abstract, one paragraph long, of the following document:",
            INSTRUCTIONS[3]: "What decisions does the following document record?"}


def document(seed: int, chars: int) -> str:
    rng = random.Random(seed)
    topic = rng.sample(WORDS, TOPIC_WORDS)
    words: list[str] = []
    length = 0
    while length < chars:
        word = rng.choice(topic)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)


def prompt(n: int, chars: int, *, reworded: bool = False) -> str:
    instruction = INSTRUCTIONS[n % len(INSTRUCTIONS)]
    return f"{REWORDED[instruction] if reworded else instruction}\n\n{document(n, chars)}"


def memory_mb(pid: int) -> tuple[float, float]:
    """(resident, peak resident) of a process, in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def body(text: str) -> dict[str, object]:
    return {"model": "mock-small", "messages": [{"role": "user", "content": text}]}


async def embedding_failures(http: httpx.AsyncClient, base_url: str) -> float:
    text = (await http.get(base_url + "/metrics")).text
    found = re.search(r'^llmguard_degraded_total\{part="embedding"\} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


@dataclass(frozen=True)
class Figures:
    prompts: int
    chars: int
    rss_before_mb: float
    rss_after_mb: float
    peak_mb: float
    seconds: float
    failed_embeddings: float
    statuses: dict[int, int]
    rewordings: list[tuple[str, str]]  # (X-LLMGuard-Cache, X-LLMGuard-Similarity) of the last four, reworded
    quiet_rewording: tuple[str, str]  # the same for a prompt sent, then reworded, after the load
    quiet_attempts: int  # how many such pairs it took (the first that hit, or the last)

    @property
    def growth_mb(self) -> float:
        return self.rss_after_mb - self.rss_before_mb


async def run(base_url: str, pid: int, *, prompts: int, chars: int, concurrency: int, warmup: int = 8) -> Figures:
    """Warm up, measure memory, send ``prompts`` distinct long prompts, measure again, ask a paraphrase."""
    statuses: dict[int, int] = {}
    async with httpx.AsyncClient(timeout=120) as http:
        for n in range(warmup):
            await http.post(base_url + "/v1/chat/completions", json=body(prompt(10**6 + n, chars)))
        before, _ = memory_mb(pid)
        failed_before = await embedding_failures(http, base_url)
        queue = iter(range(prompts))
        started = time.perf_counter()

        async def worker() -> None:
            for n in queue:
                response = await http.post(base_url + "/v1/chat/completions", json=body(prompt(n, chars)))
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        after, peak = memory_mb(pid)
        failed = await embedding_failures(http, base_url) - failed_before
        rewordings = []
        for n in range(max(0, prompts - len(INSTRUCTIONS)), prompts):
            reply = await http.post(base_url + "/v1/chat/completions", json=body(prompt(n, chars, reworded=True)),
                                    headers={"cache-control": "no-store"})
            rewordings.append(cache_status(reply))
        for attempt in range(1, 6):
            if attempt > 1:
                await asyncio.sleep(0.5)
            fresh = prompts + len(INSTRUCTIONS) * 1000 * attempt  # a new document, with the first instruction
            await http.post(base_url + "/v1/chat/completions", json=body(prompt(fresh, chars)))
            quiet = cache_status(await http.post(base_url + "/v1/chat/completions",
                                                 json=body(prompt(fresh, chars, reworded=True)),
                                                 headers={"cache-control": "no-store"}))
            if quiet[0] == "hit":
                break
    return Figures(prompts, chars, before, after, peak, seconds, failed, statuses, rewordings, quiet, attempt)


def cache_status(reply: httpx.Response) -> tuple[str, str]:
    return reply.headers.get("x-llmguard-cache", ""), reply.headers.get("x-llmguard-similarity", "")


def server_env(*, semantic: bool) -> dict[str, str]:
    return {"LLMGUARD_EMBEDDING_MODEL_DIR": MODEL_DIR, "HF_HUB_OFFLINE": "1", "LLMGUARD_DEMO_TTFT_MS": "0",
            "LLMGUARD_DEMO_TOKEN_MS": "0", "LLMGUARD_CACHE_SEMANTIC": "true" if semantic else "false"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--chars", type=int, default=16_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--semantic", choices=["on", "off"], default="on")
    args = parser.parse_args()
    semantic = args.semantic == "on"
    with demo_server(pick_free_port(), guarded=True, env=server_env(semantic=semantic)) as server:
        figures = asyncio.run(run(server.base_url, server.pid, prompts=args.prompts, chars=args.chars,
                                  concurrency=args.concurrency))
    print(f"\n{figures.prompts} distinct prompts of {figures.chars} characters, {args.concurrency} at a time, "
          f"semantic tier {args.semantic}: {figures.seconds:.0f} s ({figures.prompts / figures.seconds:.1f}/s)")
    print(f"  statuses                 {figures.statuses}")
    print(f"  server RSS before        {figures.rss_before_mb:8.0f} MB (after warm-up)")
    print(f"  server RSS after         {figures.rss_after_mb:8.0f} MB (peak {figures.peak_mb:.0f} MB)")
    print(f"  growth                   {figures.growth_mb:8.0f} MB   (bound: {BOUND_MB} MB) "
          f"{'ok' if figures.growth_mb <= BOUND_MB else 'OVER'}")
    print(f"  embeddings that failed   {figures.failed_embeddings:8.0f}      (a miss each, served by the app)")
    if semantic:
        hits = sum(cache == "hit" for cache, _ in figures.rewordings)
        shown = ", ".join(f"{cache} {similarity}".strip() for cache, similarity in figures.rewordings)
        print(f"  reworded long prompts    {hits} of {len(figures.rewordings)} hit ({shown})")
        print(f"  after the load           {' '.join(figures.quiet_rewording)} "
              f"(one more, then its rewording; attempt {figures.quiet_attempts} of 5)")


if __name__ == "__main__":
    main()
