"""Metrics, /stats and the per-request log event: what they count, what they price, what they never show.

The multiprocess test runs the demo with two uvicorn workers sharing
``PROMETHEUS_MULTIPROC_DIR`` and checks, with prometheus-client's own parser,
that any worker's scrape sums both workers' requests.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from apps import CHAT, FakeLLM, chat, client
from prometheus_client.parser import text_string_to_metric_families
from servers import run_server

from asgi_llmguard import ConfigurationError, Guard, Settings
from asgi_llmguard.observability.stats import bucket_quantile

PRICES = {"gpt-test": {"prompt": 2.0, "completion": 8.0}}
# FakeLLM's JSON answers carry usage prompt 3, completion 7.
COST = (3 * 2.0 + 7 * 8.0) / 1_000_000


def sample(guard: Guard, name: str, **labels: str) -> float:
    assert guard.metrics is not None
    return guard.metrics.registry.get_sample_value(name, labels) or 0.0


async def test_a_hit_counts_the_tokens_and_money_it_saved_and_stats_show_it() -> None:
    llm = FakeLLM()
    guard = Guard(cache_semantic=False, price_table=PRICES, stats_path="/stats")
    async with client(guard.wrap(llm.app)) as c:
        first = await c.post(CHAT, json=chat("price me"))
        second = await c.post(CHAT, json=chat("price me"))
        stats = (await c.get("/stats")).json()
    assert (first.headers["x-llmguard-cache"], second.headers["x-llmguard-cache"]) == ("miss", "hit")
    assert llm.calls == 1
    assert sample(guard, "llmguard_tokens_saved_total", direction="prompt") == 3
    assert sample(guard, "llmguard_tokens_saved_total", direction="completion") == 7
    assert sample(guard, "llmguard_cost_saved_usd_total", model="gpt-test") == pytest.approx(COST)
    assert sample(guard, "llmguard_cost_usd_total", model="gpt-test") == pytest.approx(COST)
    assert stats["cache"] == {"hit": 1, "miss": 1, "bypass": 0}
    assert stats["hit_rate"] == 0.5
    assert stats["tokens_saved"] == {"prompt": 3, "completion": 7, "total": 10}
    assert stats["money_saved_usd"] == pytest.approx(COST)
    assert stats["latency_p50_ms"]["hit"] is not None and stats["latency_p50_ms"]["miss"] is not None
    assert stats["outcomes"] == {"2xx": 2}


async def test_refusals_before_the_app_are_counted_as_4xx_requests() -> None:
    llm = FakeLLM()
    guard = Guard(cache_semantic=False, max_body_bytes=1024, stats_path="/stats")
    async with client(guard.wrap(llm.app)) as c:
        bad = await c.post(CHAT, content=b"{not json", headers={"content-type": "application/json"})
        large = await c.post(CHAT, json=chat("x" * 4096))
        served = await c.post(CHAT, json=chat("fine"))
        stats = (await c.get("/stats")).json()
    assert (bad.status_code, large.status_code, served.status_code) == (400, 413, 200) and llm.calls == 1
    assert sample(guard, "llmguard_requests_total", route=CHAT, outcome="4xx", cache="none") == 2
    assert sample(guard, "llmguard_requests_total", route=CHAT, outcome="2xx", cache="miss") == 1
    assert stats["requests"] == 3 and stats["outcomes"] == {"2xx": 1, "4xx": 2}


async def test_a_hit_on_a_router_alias_is_priced_as_its_cheapest_model() -> None:
    guard = Guard(cache_semantic=False, price_table=PRICES, router_aliases={"auto": ["gpt-test", "gpt-big"]})
    async with client(guard.wrap(FakeLLM().app)) as c:
        for _ in range(2):
            await c.post(CHAT, json=chat("alias", model="auto"))
    assert sample(guard, "llmguard_cost_saved_usd_total", model="gpt-test") == pytest.approx(COST)
    assert sample(guard, "llmguard_routed_requests_total", model="gpt-test") == 1


async def test_streamed_misses_record_ttft_and_inter_token_latency() -> None:
    guard = Guard(cache_semantic=False)
    async with client(guard.wrap(FakeLLM().app)) as c:
        await c.post(CHAT, json=chat("stream me", stream=True))
    assert sample(guard, "llmguard_time_to_first_token_seconds_count", cache="miss") == 1
    assert sample(guard, "llmguard_inter_token_latency_seconds_count", cache="miss") > 1


async def test_labels_stay_bounded_whatever_the_prompts_and_models() -> None:
    guard = Guard(cache_semantic=False, price_table=PRICES)
    async with client(guard.wrap(FakeLLM().app)) as c:
        for index in range(20):
            await c.post(CHAT, json=chat(f"prompt number {index}", model=f"model-{index}"))
    assert guard.metrics is not None
    text = guard.metrics.exposition().decode()
    assert "prompt number" not in text
    assert not re.search(r'model="model-\d+"', text)  # models outside the price table are no label


def test_bucket_quantile_interpolates_inside_a_bucket_like_prometheus() -> None:
    buckets = [(0.001, 0.0), (0.002, 10.0), (float("inf"), 10.0)]
    assert bucket_quantile(0.5, buckets) == pytest.approx(0.0015)
    assert bucket_quantile(0.5, [(0.001, 0.0), (float("inf"), 0.0)]) is None
    assert bucket_quantile(0.99, [(1.0, 5.0), (float("inf"), 10.0)]) == 1.0  # beyond the last bound


def test_price_table_is_read_from_the_environment_and_checked() -> None:
    settings = Settings.from_env({"LLMGUARD_PRICE_TABLE": '{"gpt-4o": {"prompt": 2.5, "completion": 10}}'})
    assert settings.price_table["gpt-4o"] == {"prompt": 2.5, "completion": 10.0}
    with pytest.raises(ConfigurationError, match="LLMGUARD_PRICE_TABLE"):
        Settings.from_env({"LLMGUARD_PRICE_TABLE": '{"gpt-4o": {"prompt": -1, "completion": 10}}'})
    with pytest.raises(ConfigurationError, match="LLMGUARD_PRICE_TABLE"):
        Settings(price_table={"gpt-4o": {"input": 1.0}})


# --- the log event -------------------------------------------------------------------------------------


async def test_one_log_event_per_request_with_hashed_identity_and_no_prompt_or_key() -> None:
    guard = Guard(cache_semantic=False)
    with structlog.testing.capture_logs() as events:
        async with client(guard.wrap(FakeLLM().app), authorization="Bearer sk-very-secret-key") as c:
            await c.post(CHAT, json=chat("my private question"))
            await c.post(CHAT, json=chat("my private question"))
    requests = [e for e in events if e["event"] == "llmguard.request"]
    assert len(requests) == 2
    first, second = requests
    assert (first["cache"], second["cache"]) == ("miss", "hit")
    assert first["identity"].startswith("key:") and first["identity"] == second["identity"]
    assert first["status"] == 200 and first["model"] == "gpt-test"
    assert first["prompt_tokens"] == 3 and first["completion_tokens"] == 7
    assert first["latency_ms"] > 0 and len(first["request_id"]) == 32
    assert "prompt" not in first
    logged = json.dumps(events, default=str)
    assert "sk-very-secret-key" not in logged and "my private question" not in logged


async def test_log_prompts_adds_the_prompt_text() -> None:
    guard = Guard(cache_semantic=False, log_prompts=True)
    with structlog.testing.capture_logs() as events:
        async with client(guard.wrap(FakeLLM().app)) as c:
            await c.post(CHAT, json=chat("show this prompt"))
    (event,) = [e for e in events if e["event"] == "llmguard.request"]
    assert event["prompt"] == "show this prompt"


async def test_log_event_keeps_the_model_asked_for_beside_the_routed_one() -> None:
    guard = Guard(cache_semantic=False, router_aliases={"auto": ["small-model", "large-model"]})
    with structlog.testing.capture_logs() as events:
        async with client(guard.wrap(FakeLLM().app)) as c:
            await c.post(CHAT, json=chat("hi", model="auto"))
            await c.post(CHAT, json=chat("hi", model="gpt-test"))
    routed, plain = [e for e in events if e["event"] == "llmguard.request"]
    assert (routed["model"], routed["routed_model"]) == ("auto", "small-model")
    assert (plain["model"], plain["routed_model"]) == ("gpt-test", None)


# --- two uvicorn workers, one scrape ---------------------------------------------------------------------


def _post_all(base_url: str, prompts: list[str]) -> list[int]:
    """Each request on its own connection, all at once, so the kernel spreads them over the workers."""
    statuses: list[int] = []

    def one(prompt: str) -> None:
        with httpx.Client(base_url=base_url, timeout=30) as c:
            statuses.append(c.post(CHAT, json=chat(prompt, model="mock-small")).status_code)

    threads = [threading.Thread(target=one, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return statuses


def _families(text: str) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def _total(families: dict[str, Any], family: str, sample_name: str) -> float:
    return sum(s.value for s in families[family].samples if s.name == sample_name)


@pytest.mark.slow
def test_two_workers_are_summed_by_one_scrape(tmp_path: Path, free_port: int, model_dir: Path) -> None:
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {"PROMETHEUS_MULTIPROC_DIR": str(shared), "LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir),
           "LLMGUARD_DEMO_TTFT_MS": "100", "LLMGUARD_DEMO_TOKEN_MS": "0"}
    with run_server(["demo_app", "--workers", "2", "--no-access-log", "--log-level", "warning"], free_port,
                    env=env) as base_url:
        sent = 0
        for round_ in range(10):  # bounded: until both workers have counted requests
            statuses = _post_all(base_url, [f"worker spread {round_} {i}" for i in range(12)])
            assert statuses == [200] * 12
            sent += 12
            writers = {re.sub(r"\D", "", p.name) for p in shared.glob("counter_*.db")}
            if len(writers) >= 2:
                break
        assert len(writers) == 2, f"requests reached only the workers {writers}"
        for _ in range(6):  # whichever worker answers, the scrape and /stats hold both workers' counts
            with httpx.Client(base_url=base_url, timeout=30) as c:
                families = _families(c.get("/metrics").text)
                stats = c.get("/stats").json()
            assert _total(families, "llmguard_requests", "llmguard_requests_total") == sent
            assert _total(families, "llmguard_cache_lookups", "llmguard_cache_lookups_total") == sent
            assert _total(families, "llmguard_request_duration_seconds",
                          "llmguard_request_duration_seconds_count") == sent
            assert stats["requests"] == sent
            assert stats["cache"]["miss"] == sent


# --- the Grafana dashboard --------------------------------------------------------------------------


def test_the_grafana_dashboard_only_queries_metrics_the_stack_exports() -> None:
    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json").read_text())
    exported = Guard(cache_semantic=False).metrics
    assert exported is not None
    names = {s.name for f in exported.registry.collect() for s in f.samples} | {
        f.name + suffix for f in exported.registry.collect() for suffix in ("_total", "_bucket", "_count", "_sum", "")}
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"llmguard_\w+", target["expr"])}
    assert queried and queried <= names, queried - names
