"""One structlog event per guarded request, emitted when the exchange finishes.

The library configures no logging: it asks structlog for a logger and the app's
structlog configuration decides where the event goes and how it looks. The
identity in the event is the hash the stack uses (never a key in clear); the
prompt is included only with ``log_prompts``; headers, and so API keys, never.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

from ..core.exchange import Exchange

log = structlog.get_logger("asgi_llmguard.request")

MAX_PROMPT_CHARS = 2000


def _ms(start: float, end: float | None) -> float | None:
    return None if end is None else round((end - start) * 1000, 3)


def request_event(exchange: Exchange, *, log_prompts: bool = False) -> dict[str, Any]:
    """The fields of a request's log event: what was asked, what the stack decided, how it went."""
    observer = exchange.response
    usage = observer.usage or {}
    event: dict[str, Any] = {
        "request_id": exchange.request_id,
        "identity": exchange.identity,
        "route": exchange.scope.get("path"),
        "model": exchange.requested_model,
        "routed_model": exchange.routed_model,
        "complexity": exchange.extras.get("complexity"),
        "backend": exchange.backend,
        "stream": exchange.request.stream,
        "cache": exchange.cache_status,
        "cache_reason": exchange.cache_reason,
        "similarity": None if exchange.similarity is None else round(exchange.similarity, 4),
        "status": observer.status,
        "disconnected": observer.disconnected and not observer.completed,
        "finish_reason": observer.finish_reason,
        "latency_ms": _ms(exchange.started_at, time.perf_counter()),
        "ttft_ms": _ms(exchange.started_at, observer.first_token_at),
        "inter_token_mean_ms": _ms(0.0, observer.inter_token_mean),
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
    }
    if "cache.cut" in exchange.extras:  # the error budget's cut-off in force for this lookup (cache/audit/)
        cut = exchange.extras["cache.cut"]
        event["cache_cut"] = None if cut == float("inf") else cut
    if "cache.shadow" in exchange.extras:  # shadow mode: what the cache would have done
        event["shadow"] = exchange.extras["cache.shadow"]
    if log_prompts:
        prompt = exchange.request.last_user_text()
        event["prompt"] = None if prompt is None else prompt[:MAX_PROMPT_CHARS]
    return event


def log_finisher(log_prompts: bool) -> Callable[[Exchange], Awaitable[None]]:
    """A finisher that logs the exchange as ``llmguard.request``."""

    async def log_request(exchange: Exchange) -> None:
        log.info("llmguard.request", **request_event(exchange, log_prompts=log_prompts))

    return log_request
