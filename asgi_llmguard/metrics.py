"""Prometheus metrics and the /stats summary, fed by each exchange when it finishes.

Labels are bounded: route is the guarded path (a configured, finite set), outcome
and cache status are small enums. No prompt, identity or raw path becomes a label.
"""

from __future__ import annotations

import time
from collections import deque
from statistics import median
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from ._asgi import send_bytes, send_json
from ._layer import GuardLayer
from ._types import Receive, Scope, Send
from .exchange import Exchange

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
SIMILARITY_BUCKETS = (0.8, 0.85, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99, 1.0)


def outcome_of(exchange: Exchange) -> str:
    observer = exchange.response
    if observer.disconnected and not observer.completed:
        return "499"
    status = observer.status
    return "none" if status is None else f"{status // 100}xx"


class Metrics:
    """The stack's metrics; pass ``registry`` to put them in an app's own registry."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
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
        self.degraded = Counter("llmguard_degraded", "Optional dependencies that failed open.", ["part"],
                                registry=r)
        # rate limits (ratelimit.py)
        self.rate_limited = Counter("llmguard_rate_limited", "Requests refused with a 429, by the limit that refused.",
                                    ["limit"], registry=r)
        self.ratelimit_degraded = Counter("llmguard_ratelimit_degraded",
                                          "Rate-limit calls made without their store (Redis down), by fail mode.",
                                          ["mode"], registry=r)
        self._recent: dict[str, deque[float]] = {"hit": deque(maxlen=2048), "miss": deque(maxlen=2048)}
        self._counts = {"hit": 0, "miss": 0, "bypass": 0}
        self._saved_tokens = 0

    def observe(self, exchange: Exchange) -> None:
        observer = exchange.response
        cache = exchange.cache_status or "none"
        route = exchange.scope.get("path", "")
        elapsed = time.perf_counter() - exchange.started_at
        self.requests.labels(route, outcome_of(exchange), cache).inc()
        self.latency.labels(cache).observe(elapsed)
        if exchange.cache_status is not None:
            self.cache.labels(exchange.cache_status).inc()
            self._counts[exchange.cache_status] += 1
        if exchange.similarity is not None:
            self.similarity.observe(exchange.similarity)
        if observer.first_token_at is not None:
            self.ttft.labels(cache).observe(observer.first_token_at - exchange.started_at)
        usage = observer.usage or {}
        source = "cache" if exchange.cache_status == "hit" else "upstream"
        for direction in ("prompt", "completion"):
            count = usage.get(f"{direction}_tokens")
            if isinstance(count, int) and count > 0:
                self.tokens.labels(direction, source).inc(count)
                if source == "cache":
                    self._saved_tokens += count
        if exchange.cache_status in self._recent and observer.status == 200:
            self._recent[exchange.cache_status].append(elapsed)

    def stats(self) -> dict[str, Any]:
        looked = self._counts["hit"] + self._counts["miss"]
        return {
            "requests": dict(self._counts),
            "hit_rate": round(self._counts["hit"] / looked, 4) if looked else 0.0,
            "tokens_saved": self._saved_tokens,
            "latency_p50_ms": {k: round(median(v) * 1000, 3) if v else None for k, v in self._recent.items()},
        }


class MetricsMiddleware(GuardLayer):
    """Records each guarded exchange and serves the metrics and /stats paths."""

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        settings = self.guard.settings
        metrics = self.guard.metrics
        path = scope["path"]
        if metrics is None or scope["method"] not in ("GET", "HEAD"):
            return False
        if path == settings.metrics_path:
            await send_bytes(send, 200, generate_latest(metrics.registry), content_type=CONTENT_TYPE_LATEST.encode())
            return True
        if path == settings.stats_path:
            await send_json(send, 200, metrics.stats())
            return True
        return False

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        metrics = self.guard.metrics
        if metrics is not None:
            exchange.on_finish(_record(metrics))
        await self.app(scope, receive, send)


def _record(metrics: Metrics) -> Any:
    async def record(exchange: Exchange) -> None:
        metrics.observe(exchange)

    return record
