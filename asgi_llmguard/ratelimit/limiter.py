"""The rate limiter: requests and tokens per window per identity, and a global requests ceiling.

Each guarded request is one decision over every limit that is on (see
:mod:`asgi_llmguard.ratelimit.store` for the algorithm, GCRA): admitted and charged
to all of them, or refused with OpenAI's 429 and charged to none. Tokens are
reserved at admission (an estimate, :mod:`asgi_llmguard.core.tokens`) and reconciled
when the exchange finishes with the usage the response observer saw; a cache hit
is settled by the ``rate_limit_count_cache_hits`` and
``rate_limit_cache_hits_cost_tokens`` settings. Every guarded response carries
OpenAI's ``x-ratelimit-*`` headers, so the ``openai`` SDK's retry logic works
unchanged. Nothing waits in a queue: the answer is now or 429.

When the shared store cannot decide (Redis slow or down), the replica decides alone against
its local share of each limit (:mod:`.local_share`); with ``rate_limit_fail_closed`` a Redis that
is unreachable (not merely slow) gets a 503 instead. A metric counts each such decision; the outage is
logged once, by the store's health. The layer that asks it is :mod:`.middleware`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ..core.exchange import Exchange
from ..core.openai_protocol import error_payload
from ..core.tokens import estimate_prompt_tokens, estimate_request_tokens, estimate_text_tokens
from .local_share import LocalShare
from .store import MICROS, Charge, Decision, LimitState, RateLimitStore, RateLimitStoreError

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.types import LabelledCounter

__all__ = ["LimitMetrics", "LimitOverrides", "RateLimiter", "RateLimits", "Verdict", "format_duration"]

REQUESTS, TOKENS, GLOBAL = "requests", "tokens", "global_requests"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """One identity's own limits (a plan or tier): ``None`` keeps the setting, ``0`` turns the limit off."""

    rpm: int | None = None
    tpm: int | None = None


LimitOverrides = Callable[[Exchange], RateLimits | None] | Mapping[str, RateLimits]
"""Per-identity limits: a callable given the exchange, or a mapping keyed by ``exchange.identity``."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """One admission decision: what was (or would have been) charged, and what the store said.

    ``decision`` is None when no limit is on, or when nothing could decide (fail closed).
    ``local``: decided by this replica's local share, because the shared store could not.
    """

    admitted: bool
    charges: tuple[Charge, ...]
    kinds: tuple[str, ...]
    decision: Decision | None
    local: bool = False

    @property
    def reserved_tokens(self) -> int:
        return self.charges[self.kinds.index(TOKENS)].cost if TOKENS in self.kinds else 0


def format_duration(micros: int) -> str:
    """A reset time as OpenAI writes it: ``20ms``, ``1.5s``, ``6m0s``."""
    if micros <= 0:
        return "0s"
    if micros < MICROS:
        return f"{math.ceil(micros / 1000)}ms"
    seconds = math.ceil(micros / 1000) / 1000
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{round(seconds, 3):g}s"
    if minutes or hours:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _window_text(window: float) -> str:
    return "minute" if window == 60 else f"{window:g} seconds"


class LimitMetrics(Protocol):
    """What the limiter counts (observability's Metrics): refusals by limit, and decisions made without
    the shared store (``mode``: ``local``, ``closed``, or ``unsettled`` for a reconciliation dropped)."""

    @property
    def rate_limited(self) -> LabelledCounter: ...

    @property
    def ratelimit_degraded(self) -> LabelledCounter: ...


class RateLimiter:
    """Decides admission and reconciles afterwards; holds no per-request state."""

    def __init__(
        self,
        settings: Settings,
        store: RateLimitStore,
        *,
        metrics: LimitMetrics | None = None,
        overrides: LimitOverrides | None = None,
        local: LocalShare | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.overrides = overrides
        # A shared store's fallback, charged with every admission the store makes; None for the memory
        # store, which always decides (one is made at the first failure of a store that can fail).
        self.local = local

    # -- admission -----------------------------------------------------------------------------------

    def limits_for(self, exchange: Exchange) -> tuple[int, int]:
        """``(rpm, tpm)`` of this exchange's identity, overrides applied (0 = off)."""
        rpm, tpm = self.settings.rate_limit_rpm, self.settings.rate_limit_tpm
        override: RateLimits | None = None
        if callable(self.overrides):
            override = self.overrides(exchange)
        elif self.overrides is not None:
            override = self.overrides.get(exchange.identity)
        if override is not None:
            rpm = rpm if override.rpm is None else override.rpm
            tpm = tpm if override.tpm is None else override.tpm
        return rpm, tpm

    def charges_for(self, exchange: Exchange) -> tuple[tuple[Charge, ...], tuple[str, ...]]:
        rpm, tpm = self.limits_for(exchange)
        window = self.settings.rate_limit_window_seconds
        charges: list[Charge] = []
        kinds: list[str] = []
        if rpm > 0:
            charges.append(Charge("req:" + exchange.identity, rpm, window, 1))
            kinds.append(REQUESTS)
        if tpm > 0:
            charges.append(Charge("tok:" + exchange.identity, tpm, window, estimate_request_tokens(exchange.request)))
            kinds.append(TOKENS)
        if self.settings.global_rpm > 0:
            charges.append(Charge("global", self.settings.global_rpm, window, 1))
            kinds.append(GLOBAL)
        return tuple(charges), tuple(kinds)

    async def admit(self, exchange: Exchange) -> Verdict:
        """Charge the request to every limit that is on, or to none if one refuses it."""
        charges, kinds = self.charges_for(exchange)
        if not charges:
            return Verdict(True, (), (), None)
        try:
            decision = await self.store.acquire(charges)
        except RateLimitStoreError as exc:
            return await self._without_store(exc, charges, kinds)
        if decision.allowed and self.local is not None:
            await self.local.record(charges)
        return Verdict(decision.allowed, charges, kinds, decision)

    async def _without_store(self, exc: RateLimitStoreError, charges: tuple[Charge, ...],
                             kinds: tuple[str, ...]) -> Verdict:
        """The shared store could not decide: this replica's local share does, unless Redis is unreachable
        and the settings say fail closed (a slow call is never an outage)."""
        if exc.unreachable and self.settings.rate_limit_fail_closed:
            self._count("closed")
            return Verdict(False, (), (), None)
        if self.local is None:  # a store of the app's own that can fail: its share starts now
            self.local = LocalShare(self.settings.rate_limit_local_share)
        self._count("local")
        scaled, decision = await self.local.acquire(charges)
        return Verdict(decision.allowed, scaled, kinds, decision, local=True)

    # -- reconciliation --------------------------------------------------------------------------------

    async def settle(self, exchange: Exchange, verdict: Verdict) -> None:
        """Give back what the request did not use (or charge what it used beyond its reservation)."""
        hit = exchange.cache_status == "hit"
        adjustments: list[Charge] = []
        for charge, kind in zip(verdict.charges, verdict.kinds, strict=True):
            if kind == TOKENS:
                delta = self.tokens_used(exchange, hit) - charge.cost
            else:
                delta = -1 if hit and not self.settings.rate_limit_count_cache_hits else 0
            if delta:
                adjustments.append(Charge(charge.key, charge.limit, charge.window, delta))
        if not adjustments:
            return
        if verdict.local and self.local is not None:
            await self.local.adjust(adjustments)
            return
        try:
            await self.store.adjust(adjustments)
        except RateLimitStoreError:  # the request was served; its reconciliation is lost
            self._count("unsettled")

    def tokens_used(self, exchange: Exchange, hit: bool) -> int:
        """The request's real cost: the observed ``usage``, else an estimate from what was seen."""
        if hit and not self.settings.rate_limit_cache_hits_cost_tokens:
            return 0
        observer = exchange.response
        usage = observer.usage or {}
        total = usage.get("total_tokens")
        if isinstance(total, int) and total >= 0:
            return total
        parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
        if all(isinstance(part, int) for part in parts):
            return sum(part for part in parts if isinstance(part, int))
        if observer.status is None or observer.status >= 400:
            return 0  # nothing was generated
        return estimate_prompt_tokens(exchange.request) + estimate_text_tokens(observer.text)

    # -- reporting -------------------------------------------------------------------------------------

    def _count(self, mode: str) -> None:
        if self.metrics is not None:
            self.metrics.ratelimit_degraded.labels(mode).inc()

    def refused(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.rate_limited.labels(kind).inc()


def headers_for(kinds: tuple[str, ...], decision: Decision) -> dict[str, str]:
    """OpenAI's ``x-ratelimit-*`` headers. The requests trio describes whichever requests limit binds
    harder (the identity's or the global ceiling: the fewer remaining); the tokens trio the identity's."""
    by_kind = dict(zip(kinds, decision.states, strict=True))
    headers: dict[str, str] = {}
    requests = [by_kind[k] for k in (REQUESTS, GLOBAL) if k in by_kind]
    if requests:
        _put(headers, "requests", min(requests, key=lambda s: (s.allowed, s.remaining)))
    if TOKENS in by_kind:
        _put(headers, "tokens", by_kind[TOKENS])
    return headers


def _put(headers: dict[str, str], name: str, state: LimitState) -> None:
    headers[f"x-ratelimit-limit-{name}"] = str(state.limit)
    headers[f"x-ratelimit-remaining-{name}"] = str(state.remaining)
    headers[f"x-ratelimit-reset-{name}"] = format_duration(state.reset_us)


def refusal(kinds: tuple[str, ...], decision: Decision, charges: tuple[Charge, ...],
            window: float) -> tuple[str, dict[str, object], bool]:
    """``(limit kind, OpenAI error JSON, whether a retry can ever succeed)`` for a refused request."""
    for kind, state, charge in zip(kinds, decision.states, charges, strict=True):
        if state.allowed:
            continue
        unit = "tokens" if kind == TOKENS else "requests"
        scope = "global requests" if kind == GLOBAL else unit
        label = {REQUESTS: "RPM", TOKENS: "TPM", GLOBAL: "global RPM"}[kind]
        if charge.cost > charge.limit:
            message = (f"Request too large for {scope} per {_window_text(window)} ({label}): "
                       f"Limit {charge.limit}, Requested {charge.cost}. Reduce the prompt or max_tokens.")
            return kind, error_payload(message, "rate_limit_exceeded", code="rate_limit_exceeded"), False
        used = charge.limit - state.remaining
        wait = format_duration(state.retry_us)
        message = (f"Rate limit reached for {scope} per {_window_text(window)} ({label}): "
                   f"Limit {charge.limit}, Used {used}, Requested {charge.cost}. Please try again in {wait}.")
        return kind, error_payload(message, "rate_limit_exceeded", code="rate_limit_exceeded"), True
    raise ValueError("refusal() called for an admitted decision")
