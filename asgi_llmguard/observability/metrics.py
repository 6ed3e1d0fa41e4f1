"""Prometheus metrics, fed by each exchange when it finishes (the /stats summary is :mod:`.stats`).

Labels are bounded: route is the guarded path (a configured, finite set), outcome
and cache status are small enums, model and backend come from configuration (the
price table, the router's aliases, the upstreams). No prompt, identity or raw
path becomes a label.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` to an empty
directory shared by the workers (prometheus-client's multiprocess mode): each
worker writes its values there, and whichever worker answers a scrape, or
``/stats``, reads and sums them all. ``/stats`` is computed from the same
samples, so it is right across workers too.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from ..core.exchange import Exchange
from .stats import BREAKER_STATES, stats_from

LATENCY_BUCKETS = (0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
TOKEN_GAP_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
SIMILARITY_BUCKETS = (0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0)
OTHER_MODEL = "other"


def multiprocess_dir() -> str | None:
    """The directory of prometheus-client's multiprocess mode, when the workers share one."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def outcome_of(exchange: Exchange) -> str:
    observer = exchange.response
    if observer.disconnected and not observer.completed:
        return "499"
    status = observer.status
    return "none" if status is None else f"{status // 100}xx"


class Metrics:
    """The stack's metrics; pass ``registry`` to put them in an app's own registry.

    ``price_table`` (model -> USD per 1M prompt/completion tokens) prices what
    cache hits saved and what misses spent. A hit asked for a router alias
    (served before the router chose) is priced as the alias' cheapest model:
    the saving is never overstated.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 price_table: Mapping[str, Mapping[str, float]] | None = None,
                 aliases: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.multiprocess = multiprocess_dir() is not None
        self.prices: Mapping[str, Mapping[str, float]] = price_table or {}
        self.aliases: Mapping[str, tuple[str, ...]] = aliases or {}
        r = self.registry
        self.requests = Counter("llmguard_requests", "Guarded requests by route, outcome and cache status.",
                                ["route", "outcome", "cache"], registry=r)
        self.cache = Counter("llmguard_cache_lookups", "Cache decisions: hit, miss or bypass.", ["result"],
                             registry=r)
        self.similarity = Histogram("llmguard_cache_similarity", "Similarity of served semantic hits.",
                                    buckets=SIMILARITY_BUCKETS, registry=r)
        self.latency = Histogram("llmguard_request_duration_seconds", "Guarded request latency to the last byte.",
                                 ["cache"], buckets=LATENCY_BUCKETS, registry=r)
        self.ttft = Histogram("llmguard_time_to_first_token_seconds", "Time to the first token.", ["cache"],
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tokens = Counter("llmguard_tokens", "Tokens by direction (prompt, completion) and source.",
                              ["direction", "source"], registry=r)
        self.early_verify = Counter("llmguard_cache_early_verify", "Pair-model calls started before the embedding "
                                    "was ready, by outcome: used (the embedding found the guessed prompt) or missed.",
                                    ["outcome"], registry=r)
        self.degraded = Counter("llmguard_degraded", "Optional dependencies that failed open.", ["part"],
                                registry=r)
        # rate limits (ratelimit/)
        self.rate_limited = Counter("llmguard_rate_limited", "Requests refused with a 429, by the limit that refused.",
                                    ["limit"], registry=r)
        self.ratelimit_degraded = Counter("llmguard_ratelimit_degraded",
                                          "Rate-limit decisions made without Redis (local share, closed), "
                                          "and reconciliations dropped.",
                                          ["mode"], registry=r)
        # streaming, cache stages, savings, routing, backends
        self.inter_token = Histogram("llmguard_inter_token_latency_seconds",
                                     "Time between two token events of a streamed response.", ["cache"],
                                     buckets=TOKEN_GAP_BUCKETS, registry=r)
        self.embedding_latency = Histogram("llmguard_embedding_duration_seconds",
                                           "Time to embed a prompt (queue and model).", buckets=STAGE_BUCKETS,
                                           registry=r)
        self.index_latency = Histogram("llmguard_index_search_duration_seconds",
                                       "Time to search the vector index of a namespace.", buckets=STAGE_BUCKETS,
                                       registry=r)
        self.tokens_saved = Counter("llmguard_tokens_saved", "Tokens a cache hit did not ask upstream for.",
                                    ["direction"], registry=r)
        self.cost_saved = Counter("llmguard_cost_saved_usd", "USD cache hits saved, by the price table.",
                                  ["model"], registry=r)
        self.cost_spent = Counter("llmguard_cost_usd", "USD spent upstream by misses and bypasses, by the price table.",
                                  ["model"], registry=r)
        self.routed = Counter("llmguard_routed_requests", "Requests the router sent to a model of an alias.",
                              ["model"], registry=r)
        self.backend_up = Gauge("llmguard_backend_up", "1 when a backend is healthy, 0 when not.", ["backend"],
                                multiprocess_mode="livemax", registry=r)
        self.backend_breaker = Gauge("llmguard_backend_breaker_state",
                                     "Circuit breaker of a backend: 0 closed, 1 half-open, 2 open.", ["backend"],
                                     multiprocess_mode="livemax", registry=r)
        # knowing the cache's wrong-hit rate (cache/audit/): audits, shadow comparisons, audit spend
        self.audits = Counter("llmguard_cache_audits", "Audits of served semantic hits, by outcome: right, wrong, "
                              "unjudged, skipped (all slots busy), paused (upstream failing), failed.",
                              ["outcome"], registry=r)
        self.shadow = Counter("llmguard_cache_shadow", "Shadow-mode lookups that would have hit, by the judge's "
                              "outcome: right, wrong, unjudged.", ["outcome"], registry=r)
        self.audit_tokens = Counter("llmguard_cache_audit_tokens", "Tokens audits spent upstream, by direction.",
                                    ["direction"], registry=r)
        self.audit_cost = Counter("llmguard_cache_audit_cost_usd", "USD audits spent upstream, by the price table.",
                                  ["model"], registry=r)
        self.auditing = False  # set by the guard when shadow mode or audits are on: /stats then shows them
        # the request log (observability/request_log.py)
        self.request_log_rows = Counter("llmguard_request_log_rows", "Rows the request log wrote to PostgreSQL.",
                                        registry=r)
        self.request_log_dropped = Counter("llmguard_request_log_dropped",
                                           "Request log rows lost: queue full, refused, or unwritten at shutdown.",
                                           registry=r)

    # -- recording -----------------------------------------------------------------------------------

    def observe(self, exchange: Exchange) -> None:
        """Record one finished exchange (runs after the response, never on the streaming path)."""
        observer = exchange.response
        status = exchange.cache_status
        cache = status or "none"
        elapsed = time.perf_counter() - exchange.started_at
        self.requests.labels(exchange.scope.get("path", ""), outcome_of(exchange), cache).inc()
        if observer.status == 200 and observer.completed:
            self.latency.labels(cache).observe(elapsed)
        if status is not None:
            self.cache.labels(status).inc()
        if exchange.similarity is not None:
            self.similarity.observe(exchange.similarity)
        if exchange.routed_model is not None:
            self.routed.labels(exchange.routed_model).inc()
        if observer.first_token_at is not None:
            self.ttft.labels(cache).observe(observer.first_token_at - exchange.started_at)
        if observer.token_gaps:
            gaps = self.inter_token.labels(cache)
            for gap in observer.token_gaps:
                gaps.observe(gap)
        self._count_tokens(exchange)

    def refused(self, route: str, status: int) -> None:
        """A guarded request refused before it had an exchange (bad body, too large): no cache decision."""
        self.requests.labels(route, f"{status // 100}xx", "none").inc()

    def _count_tokens(self, exchange: Exchange) -> None:
        hit = exchange.cache_status == "hit"
        source = "cache" if hit else "upstream"
        counts = token_counts(exchange.response.usage)
        for direction, count in counts.items():
            self.tokens.labels(direction, source).inc(count)
            if hit:
                self.tokens_saved.labels(direction).inc(count)
        if not counts:
            return
        priced = price_tokens(counts, exchange.request.model, self.prices, self.aliases)
        if priced is None:
            return
        model, cost = priced
        (self.cost_saved if hit else self.cost_spent).labels(model).inc(cost)

    def audited(self, kind: str, outcome: str) -> None:
        """One audit (``kind`` "audit") or shadow would-hit (``kind`` "shadow") outcome."""
        (self.audits if kind == "audit" else self.shadow).labels(outcome).inc()

    def audit_spend(self, usage: Mapping[str, Any] | None, model: str) -> None:
        """Tokens and money an audit spent upstream: counted apart from the app's own traffic."""
        counts = token_counts(usage)
        for direction, count in counts.items():
            self.audit_tokens.labels(direction).inc(count)
        priced = price_tokens(counts, model, self.prices, self.aliases) if counts else None
        if priced is not None:
            self.audit_cost.labels(priced[0]).inc(priced[1])

    def set_backend(self, backend: str, *, up: bool, breaker: str = "closed") -> None:
        """For a balancer: a configured backend's health and breaker state (``BREAKER_STATES``)."""
        self.backend_up.labels(backend).set(1 if up else 0)
        self.backend_breaker.labels(backend).set(BREAKER_STATES[breaker])

    def instrument(self, embedder: object | None, index: object | None) -> None:
        """Time the embedder's ``embed`` and the index's ``search`` on these instances (no wrapper type,
        so the cache keeps the very objects it was given)."""
        if embedder is not None:
            _wrap_async(embedder, "embed", self.embedding_latency)
        if index is not None:
            _wrap_sync(index, "search", self.index_latency)

    # -- reading -------------------------------------------------------------------------------------

    def scrape_registry(self) -> CollectorRegistry:
        """The registry to expose: in multiprocess mode, one that sums every worker's files."""
        if not self.multiprocess:
            return self.registry
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry

    def exposition(self) -> bytes:
        return generate_latest(self.scrape_registry())

    def stats(self) -> dict[str, Any]:
        """The /stats summary, from the same samples a scrape sees (so every worker's when shared)."""
        return stats_from(self.scrape_registry().collect(), auditing=self.auditing)

    def mark_process_dead(self) -> None:
        """At a worker's shutdown: drop its live gauges (backend health) from the shared directory."""
        if self.multiprocess:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def token_counts(usage: Mapping[str, Any] | None) -> dict[str, int]:
    """The positive prompt and completion token counts of a response's usage."""
    counts: dict[str, int] = {}
    for direction in ("prompt", "completion"):
        count = (usage or {}).get(f"{direction}_tokens")
        if isinstance(count, int) and not isinstance(count, bool) and count > 0:
            counts[direction] = count
    return counts


def price_tokens(counts: Mapping[str, int], model: str, prices: Mapping[str, Mapping[str, float]],
                 aliases: Mapping[str, tuple[str, ...]]) -> tuple[str, float] | None:
    """The priced model and the USD of ``counts`` by ``prices`` (per 1M tokens); None when unpriced.

    An alias not in the table is priced as its cheapest model: a saving is never overstated.
    """
    if model not in prices and model in aliases:
        model = aliases[model][0]
    price = prices.get(model)
    if price is None:
        return None
    return model, sum(counts.get(d, 0) * price[d] for d in ("prompt", "completion")) / 1_000_000


def _wrap_async(target: object, name: str, histogram: Histogram) -> None:
    method: Callable[..., Awaitable[Any]] | None = getattr(target, name, None)
    if method is None or getattr(method, "_llmguard_timed", False):
        return

    async def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await method(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - start)

    timed._llmguard_timed = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError):  # a slotted object: left untimed rather than replaced
        setattr(target, name, timed)


def _wrap_sync(target: object, name: str, histogram: Histogram) -> None:
    method: Callable[..., Any] | None = getattr(target, name, None)
    if method is None or getattr(method, "_llmguard_timed", False):
        return

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            histogram.observe(time.perf_counter() - start)

    timed._llmguard_timed = True  # type: ignore[attr-defined]
    with contextlib.suppress(AttributeError):
        setattr(target, name, timed)
