"""The embedding tier apart: two app workers embedding in process against two sharing one embedding server.

    .venv/bin/python bench/embedding_tier.py [--seconds 8] [--concurrency 32] [--samples 200]

Starts, on 127.0.0.1 only, and stops when it ends (also on errors or Ctrl-C):
- ``in-process``: ``python -m demo_app --workers 2``, each worker loading the model (1 ONNX thread);
- ``remote``: ``python -m asgi_llmguard.embedding_server`` (``--threads 1``, then ``--threads 2``) and
  ``python -m demo_app --workers 2`` with ``LLMGUARD_EMBEDDING_URL`` pointing at it.
Every demo runs the mock LLM with no delays, so a non-hit does not hold a client.

Prints:
- semantic hits per second of each setup under ``--concurrency`` connections for ``--seconds``, and the
  ratio remote / in-process (requests carry ``cache-control: no-store``: a miss stores nothing);
- the added latency of the remote call: embed p50 of a RemoteEmbedder against the server and of a
  FastEmbedEmbedder in this process (sequential, alternating, ``--samples`` each), with the server's
  bare HTTP round trip (``GET /health``) for scale; and the semantic-hit p50 through each app.
The load generator (httpx) shares the machine's cores with the servers, so the throughput figures are a
floor, and what the ratio means depends on the core count (the bench says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _servers import HOST, ROOT, ServerError, pick_free_port
from cache_latency import PAIRS, chat_body, hits_per_second

from asgi_llmguard.embedding.local import FastEmbedEmbedder
from asgi_llmguard.embedding.remote import RemoteEmbedder
from demo_app.processes import read_log, stop_process_group, wait_ready

MODEL_DIR = os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2"))
BASE_ENV = {"LLMGUARD_EMBEDDING_MODEL_DIR": MODEL_DIR, "HF_HUB_OFFLINE": "1",
            "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}
QUIET = ["--no-access-log", "--log-level", "warning"]
SEED_CONNECTIONS = 12  # each seed prompt over this many new connections, so every worker stores it


@contextlib.contextmanager
def serve(module_args: list[str], port: int, env: Mapping[str, str], name: str) -> Iterator[str]:
    """Run ``python -m <module_args> --host 127.0.0.1 --port P`` until the block ends; yields its base URL."""
    command = [sys.executable, "-m", *module_args, "--host", HOST, "--port", str(port)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=err, start_new_session=True)
        try:
            why = wait_ready(proc, f"http://{HOST}:{port}/health", 90.0)
            if why is not None:
                raise ServerError(f"{name} ({' '.join(command)}) {why}\n{read_log(err, last_chars=4000)}")
            yield f"http://{HOST}:{port}"
            if proc.poll() is not None:
                raise ServerError(f"{name} died during the bench:\n{read_log(err, last_chars=4000)}")
        finally:
            stop_process_group(proc)


def p50_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000 if samples else float("nan")


async def seed(base_url: str) -> list[str]:
    """Store the seed prompts in every worker; returns the rewordings that then hit."""
    for original, _ in PAIRS:
        for _ in range(SEED_CONNECTIONS):  # a new connection each time: the kernel spreads them over workers
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
                await client.post("/v1/chat/completions", json=chat_body(original))
    hitting = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for _, reworded in PAIRS:
            response = await client.post("/v1/chat/completions", json=chat_body(reworded),
                                         headers={"cache-control": "no-store"})
            if response.headers.get("x-llmguard-similarity"):
                hitting.append(reworded)
    return hitting


async def sequential_p50(base_url: str, prompts: list[str], samples: int) -> tuple[float, float]:
    """(semantic hit p50, GET /health p50), taking turns, a new connection each (``connection: close``).

    A new connection each time: on keep-alive connections the 2-worker demo answers ~40 ms late (uvicorn
    --workers leaves Nagle on, Kludex/uvicorn#3149), which would drown what is measured here.
    """
    hits: list[float] = []
    health: list[float] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers={"connection": "close"}) as client:
        for i in range(samples):
            started = time.perf_counter()
            response = await client.post("/v1/chat/completions", json=chat_body(prompts[i % len(prompts)]),
                                         headers={"cache-control": "no-store"})
            if response.headers.get("x-llmguard-similarity"):
                hits.append(time.perf_counter() - started)
            started = time.perf_counter()
            await client.get("/health")
            health.append(time.perf_counter() - started)
    return p50_ms(hits), p50_ms(health)


async def measure_app(base_url: str, args: argparse.Namespace) -> dict[str, float]:
    hitting = await seed(base_url)
    if not hitting:
        raise ServerError(f"no rewording was served as a semantic hit by {base_url}")
    hit_p50, health_p50 = await sequential_p50(base_url, hitting, min(args.samples, 100))
    rate, others = await hits_per_second(base_url, hitting, args.seconds, args.concurrency)
    return {"hitting": len(hitting), "hit_p50": hit_p50, "health_p50": health_p50, "rate": rate, "others": others}


async def embed_latency(embedding_url: str, samples: int) -> dict[str, float]:
    """Sequential embeds, alternating remote and in-process on the same texts, so drift hits both."""
    remote = RemoteEmbedder(embedding_url + "/v1", timeout=10.0)
    local = FastEmbedEmbedder(model_dir=MODEL_DIR, timeout=10.0)
    await asyncio.gather(remote.start(), local.start())
    texts = [reworded for _, reworded in PAIRS]
    far: list[float] = []
    near: list[float] = []
    health: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=embedding_url, timeout=10) as client:
            for i in range(samples + 20):  # the first 20 warm up
                text = texts[i % len(texts)]
                started = time.perf_counter()
                await remote.embed(text)
                middle = time.perf_counter()
                await local.embed(text)
                ended = time.perf_counter()
                await client.get("/health")
                if i >= 20:
                    far.append(middle - started)
                    near.append(ended - middle)
                    health.append(time.perf_counter() - ended)
    finally:
        await remote.close()
        await local.close()
    return {"remote": p50_ms(far), "local": p50_ms(near), "health": p50_ms(health)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="load time per setup (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=32, help="client connections (default: %(default)s)")
    parser.add_argument("--samples", type=int, default=200, help="sequential embeds timed each way")
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120 or not 1 <= args.concurrency <= 256 or not 10 <= args.samples <= 5000:
        parser.error("keep --seconds in [1, 120], --concurrency in [1, 256], --samples in [10, 5000]")

    load = os.getloadavg()
    app = ["demo_app", "--workers", "2", *QUIET]
    with serve(app, pick_free_port(), BASE_ENV, "in-process demo") as url:
        local = asyncio.run(measure_app(url, args))
    remote: dict[int, dict[str, float]] = {}
    latency: dict[str, float] = {}
    for threads in (1, 2):
        server = ["asgi_llmguard.embedding_server", "--threads", str(threads), *QUIET]
        with serve(server, pick_free_port(), BASE_ENV, f"embedding server ({threads} threads)") as embedding_url:
            env = {**BASE_ENV, "LLMGUARD_EMBEDDING_URL": embedding_url + "/v1"}
            with serve(app, pick_free_port(), env, "remote demo") as url:
                remote[threads] = asyncio.run(measure_app(url, args))
            if threads == 1:  # the app stopped: nothing else loads the server
                latency = asyncio.run(embed_latency(embedding_url, args.samples))

    cores = os.cpu_count() or 1
    print(f"semantic hits/s, 2 app workers, {args.concurrency} connections, {args.seconds:.0f} s each "
          f"(rewordings hitting: in-process {local['hitting']:.0f}/{len(PAIRS)}, "
          f"remote {remote[1]['hitting']:.0f}/{len(PAIRS)})")
    print(f"{'setup':48} {'hits/s':>8} {'ratio':>7} {'non-hits':>9} {'hit p50':>9} {'net':>9}")
    rows = [("in process (each worker loads the model)", local)] + [
        (f"remote, one embedding server ({threads} ONNX thread{'s' if threads > 1 else ''})", figures)
        for threads, figures in remote.items()]
    for label, figures in rows:
        print(f"{label:48} {figures['rate']:8.0f} {figures['rate'] / local['rate']:7.2f} {figures['others']:9.0f} "
              f"{figures['hit_p50']:7.2f}ms {figures['hit_p50'] - figures['health_p50']:7.2f}ms")
    print("  (hit p50: one client, sequential, a new connection each; net: minus the same app's GET /health p50;"
          " the load runs over keep-alive connections, which the 2-worker demo answers ~40 ms late: uvicorn"
          " --workers leaves Nagle on, Kludex/uvicorn#3149, the same for both setups)")
    print()
    print(f"embed p50, sequential, one caller ({args.samples} each):")
    print(f"  in process (FastEmbedEmbedder)              {latency['local']:7.2f} ms")
    print(f"  remote (RemoteEmbedder -> embedding server) {latency['remote']:7.2f} ms")
    print(f"  added by the remote call                    {latency['remote'] - latency['local']:+7.2f} ms"
          f"  (the server's bare GET /health round trip: {latency['health']:.2f} ms)")
    local_net = local["hit_p50"] - local["health_p50"]
    remote_net = remote[1]["hit_p50"] - remote[1]["health_p50"]
    print(f"  semantic hit p50 through the app, net of /health: in process {local_net:.2f} ms, "
          f"remote {remote_net:.2f} ms ({remote_net - local_net:+.2f} ms)")
    print()
    print(f"this machine has {cores} core{'s' if cores != 1 else ''} (load average {load[0]:.1f} before the run, "
          f"{os.getloadavg()[0]:.1f} after): the two app workers, the embedding server and the load generator "
          "share them.")
    if cores <= 4:
        print("  Splitting the tier adds no compute here: the ratio says what the extra hop costs (serialising, one "
              "more HTTP round trip) against what one shared model saves (one ONNX thread instead of one per worker, "
              "batches formed across both workers); near 1 means the hop is cheap, not that splitting is faster. "
              "The gain of a separate tier comes where it gets cores (or a GPU) of its own while app replicas grow. "
              "More ONNX threads than free cores make things worse (the 2-thread row).")
    print(f"command: .venv/bin/python bench/embedding_tier.py --seconds {args.seconds:g} "
          f"--concurrency {args.concurrency} --samples {args.samples}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
