"""The /stats summary: hit rate, savings and latencies, computed from the metrics' own samples.

Computed from what a scrape sees, so with several workers (prometheus-client's multiprocess
mode) it sums them all, like the metrics path does.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client.metrics_core import Metric

from ..core.bounds import wilson_upper

BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


# -- /stats from samples ---------------------------------------------------------------------------


class _Samples:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.by_name: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for family in families:
            if family.name.startswith("llmguard_"):
                for sample in family.samples:
                    self.by_name[sample.name].append((sample.labels, sample.value))

    def total(self, name: str, **match: str) -> float:
        return sum(v for labels, v in self.by_name.get(name, ()) if _matches(labels, match))

    def by(self, name: str, label: str) -> dict[str, float]:
        result: dict[str, float] = defaultdict(float)
        for labels, value in self.by_name.get(name, ()):
            result[labels.get(label, "")] += value
        return dict(result)

    def quantile(self, q: float, name: str, **match: str) -> float | None:
        """Prometheus' histogram_quantile over the buckets of ``name`` (linear inside a bucket)."""
        buckets: dict[float, float] = defaultdict(float)
        for labels, value in self.by_name.get(name + "_bucket", ()):
            if _matches(labels, match):
                buckets[float(labels["le"])] += value
        return bucket_quantile(q, sorted(buckets.items()))


def _matches(labels: Mapping[str, str], match: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in match.items())


def bucket_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """The ``q`` quantile of cumulative ``(upper bound, count)`` buckets, as Prometheus estimates it."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= rank:
            if math.isinf(upper):
                return lower
            if count == below:
                return upper
            return lower + (upper - lower) * (rank - below) / (count - below)
        lower, below = upper, count
    return lower


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


def stats_from(families: Iterable[Metric], *, auditing: bool = False) -> dict[str, Any]:
    """Hit rate, savings and latencies: what a hosted gateway shows its users, from metric samples.
    With ``auditing`` (shadow mode or audits on) also the ``audit`` and ``shadow`` outcomes."""
    s = _Samples(families)
    summary = _summary(s)
    if auditing:
        summary.update(audit_stats(s))
    return summary


def _rate(wrong: int, judged: int) -> dict[str, float | None]:
    return {"wrong_rate": round(wrong / judged, 6) if judged else None,
            "wrong_rate_upper": round(wilson_upper(wrong, judged), 6)}


def audit_stats(s: _Samples) -> dict[str, Any]:
    """``audit``: served semantic hits re-asked upstream and judged; ``shadow``: would-hits judged against the
    fresh answer. Rates with their one-sided 95% Wilson upper bound (1.0 before anything was judged)."""
    audits = {o: int(v) for o, v in s.by("llmguard_cache_audits_total", "outcome").items()}
    shadow = {o: int(v) for o, v in s.by("llmguard_cache_shadow_total", "outcome").items()}
    audited = audits.get("right", 0) + audits.get("wrong", 0)
    judged = shadow.get("right", 0) + shadow.get("wrong", 0)
    spent = {d: int(s.total("llmguard_cache_audit_tokens_total", direction=d)) for d in ("prompt", "completion")}
    return {
        "audit": {"audited": audited, "wrong": audits.get("wrong", 0), **_rate(audits.get("wrong", 0), audited),
                  **{o: audits.get(o, 0) for o in ("unjudged", "skipped", "paused", "failed")},
                  "tokens": {**spent, "total": spent["prompt"] + spent["completion"]},
                  "cost_usd": round(s.total("llmguard_cache_audit_cost_usd_total"), 6)},
        "shadow": {"would_hit": judged + shadow.get("unjudged", 0), "would_hit_wrong": shadow.get("wrong", 0),
                   "judged": judged, **_rate(shadow.get("wrong", 0), judged)},
    }


def _summary(s: _Samples) -> dict[str, Any]:
    lookups = {r: int(s.total("llmguard_cache_lookups_total", result=r)) for r in ("hit", "miss", "bypass")}
    looked = lookups["hit"] + lookups["miss"]
    saved = {d: int(s.total("llmguard_tokens_saved_total", direction=d)) for d in ("prompt", "completion")}
    backends = {name: {"up": bool(up), "breaker": _breaker_name(s.total("llmguard_backend_breaker_state",
                                                                          backend=name))}
                for name, up in s.by("llmguard_backend_up", "backend").items()}
    return {
        "requests": int(s.total("llmguard_requests_total")),
        "outcomes": {k: int(v) for k, v in sorted(s.by("llmguard_requests_total", "outcome").items())},
        "cache": lookups,
        "hit_rate": round(lookups["hit"] / looked, 4) if looked else 0.0,
        "tokens_saved": {**saved, "total": saved["prompt"] + saved["completion"]},
        "money_saved_usd": round(s.total("llmguard_cost_saved_usd_total"), 6),
        "money_spent_usd": round(s.total("llmguard_cost_usd_total"), 6),
        "latency_p50_ms": {c: _ms(s.quantile(0.5, "llmguard_request_duration_seconds", cache=c))
                           for c in ("hit", "miss")},
        "latency_p95_ms": {c: _ms(s.quantile(0.95, "llmguard_request_duration_seconds", cache=c))
                           for c in ("hit", "miss")},
        "ttft_p50_ms": {c: _ms(s.quantile(0.5, "llmguard_time_to_first_token_seconds", cache=c))
                        for c in ("hit", "miss")},
        "inter_token_p50_ms": _ms(s.quantile(0.5, "llmguard_inter_token_latency_seconds", cache="miss")),
        "similarity_p50": s.quantile(0.5, "llmguard_cache_similarity"),
        "rate_limited": {k: int(v) for k, v in sorted(s.by("llmguard_rate_limited_total", "limit").items())},
        "routed": {k: int(v) for k, v in sorted(s.by("llmguard_routed_requests_total", "model").items())},
        "backends": backends,
        "degraded": {k: int(v) for k, v in sorted(s.by("llmguard_degraded_total", "part").items())},
        "quantiles": "estimated from histogram buckets, like Prometheus' histogram_quantile",
    }


def _breaker_name(value: float) -> str:
    for name, number in BREAKER_STATES.items():
        if number == int(value):
            return name
    return "unknown"
