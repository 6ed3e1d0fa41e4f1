"""The rate-limit layer: asks the limiter, adds OpenAI's headers, refuses with a 429 (or a 503)."""

from __future__ import annotations

import math
from typing import Protocol

from ..core import tracing
from ..core.asgi import send_json
from ..core.exchange import Exchange
from ..core.layer import GuardLayer, LayerHost
from ..core.openai_protocol import error_payload
from ..core.types import Receive, Scope, Send
from .limiter import TOKENS, RateLimiter, Verdict, headers_for, refusal
from .store import Decision

__all__ = ["RateLimitHost", "RateLimitMiddleware"]


class RateLimitHost(LayerHost, Protocol):
    """What the rate-limit layer needs of its guard: the limiter, once started."""

    @property
    def limiter(self) -> RateLimiter | None: ...


UNAVAILABLE = error_payload(
    "Rate limits cannot be checked right now (their store is unreachable); please try again shortly.",
    "service_unavailable", code="rate_limit_unavailable")


def _span_attributes(verdict: Verdict) -> dict[str, object]:
    """The rate-limit span's attributes (tracing on only): the limits checked, and which one refused."""
    attributes: dict[str, object] = {"llmguard.ratelimit.admitted": verdict.admitted,
                                     "llmguard.ratelimit.limits": verdict.kinds}
    if verdict.decision is not None and not verdict.admitted:
        attributes["llmguard.ratelimit.limit"] = next(
            (kind for kind, state in zip(verdict.kinds, verdict.decision.states, strict=True) if not state.allowed),
            None)
        attributes["llmguard.ratelimit.retry_after_ms"] = math.ceil(verdict.decision.retry_us / 1000)
    elif verdict.admitted and TOKENS in verdict.kinds:
        attributes["llmguard.ratelimit.reserved_tokens"] = verdict.reserved_tokens
    return attributes


class RateLimitMiddleware(GuardLayer[RateLimitHost]):
    """Requests and tokens per window per identity, a global ceiling, and OpenAI's headers and 429."""

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        limiter = self.guard.limiter
        if limiter is None:
            await self.app(scope, receive, send)
            return
        with tracing.span(exchange.trace, "llmguard.ratelimit") as span:
            verdict = await limiter.admit(exchange)
            if span:
                span.set_many(_span_attributes(verdict))
        if verdict.decision is not None:
            for name, value in headers_for(verdict.kinds, verdict.decision).items():
                exchange.set_header(name, value)
        if not verdict.admitted:
            if verdict.decision is None:  # the store could not decide and the setting says fail closed
                await send_json(send, 503, UNAVAILABLE, [("retry-after", "1")])
            else:
                await self._refuse(limiter, verdict, verdict.decision, send)
            return
        exchange.reserved_tokens = verdict.reserved_tokens
        if verdict.charges:
            exchange.on_finish(lambda finished: limiter.settle(finished, verdict))
        await self.app(scope, receive, send)

    async def _refuse(self, limiter: RateLimiter, verdict: Verdict, decision: Decision, send: Send) -> None:
        window = limiter.settings.rate_limit_window_seconds
        kind, payload, retryable = refusal(verdict.kinds, decision, verdict.charges, window)
        limiter.refused(kind)
        retry_ms = max(1, math.ceil(decision.retry_us / 1000))
        headers = [("retry-after", str(max(1, math.ceil(retry_ms / 1000)))), ("retry-after-ms", str(retry_ms))]
        if not retryable:
            headers.append(("x-should-retry", "false"))
        await send_json(send, 429, payload, headers)
