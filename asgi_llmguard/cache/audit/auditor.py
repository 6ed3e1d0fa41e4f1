"""The auditor: compares what the cache served, or would have served, with a fresh upstream answer.

Three kinds of comparison, all after the client has its response:

- **audit** (serve mode, ``LLMGUARD_CACHE_AUDIT_RATE``): a sampled semantic hit is asked upstream
  again in the background, through the layers below the cache (router, app or LLMProxy), and the
  fresh answer is judged against the one served. At most ``LLMGUARD_CACHE_AUDIT_CONCURRENCY`` run
  at once (an audit that finds them all busy is skipped, never queued); while the upstream fails
  (an audit or a miss got a 5xx or no answer) audits pause for ``LLMGUARD_CACHE_AUDIT_PAUSE_SECONDS``,
  doubling while it keeps failing. Their tokens and money are counted apart (audit spend).
- **shadow** (``LLMGUARD_CACHE_MODE=shadow``): every request goes upstream; a lookup that would
  have hit is judged against the fresh answer, which costs nothing extra.
- **probe** (with ``LLMGUARD_CACHE_MAX_WRONG_RATE``): a miss whose best candidate was accepted at
  the floor but not at the namespace's cut is judged against the miss's own fresh answer: free
  evidence of what a looser cut would serve.

Outcomes go to the error budget (:mod:`.budget`), the metrics (through ``on_outcome`` and
``on_spend``, wired by the guard) and one ``llmguard.cache.audit`` log event each.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal

import structlog

from ...config import Settings
from ...core.asgi import get_header
from ...core.exchange import SCOPE_KEY, Exchange
from ...core.openai_protocol import Answer, kind_of_path, parse_request
from ...core.types import ASGIApp, Message
from .budget import ErrorBudget
from .judge import Judge
from .probe import Probe

log = structlog.get_logger("asgi_llmguard")

Kind = Literal["audit", "shadow", "probe"]
Finisher = Callable[[Exchange], Awaitable[None]]
Keeper = Callable[[Answer], Awaitable[None]]
MAX_PENDING_COMPARISONS = 256
AUDIT_HEADER = (b"x-llmguard-audit", b"1")
# The request being judged and the layers below the cache, for the LLM judge's question (ask_judge).
_JUDGING: contextvars.ContextVar[tuple[ASGIApp, Exchange] | None] = contextvars.ContextVar(
    "llmguard_judging", default=None)


class UpstreamGate:
    """Open while the upstream answers; after a failure, closed for ``pause`` seconds, doubling up to 60 s."""

    def __init__(self, pause: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.base = pause
        self.clock = clock
        self.pause = pause
        self.closed_until = 0.0

    @property
    def open(self) -> bool:
        return self.clock() >= self.closed_until

    def failed(self) -> None:
        if self.open:  # one failure per spell doubles the pause, not every audit that saw it
            self.closed_until = self.clock() + self.pause
            self.pause = min(60.0, self.pause * 2)

    def succeeded(self) -> None:
        self.pause = self.base


class Auditor:
    """Shadow comparisons, audits and probes for one cache (see the module's docstring)."""

    def __init__(self, settings: Settings, budget: ErrorBudget, judge: Judge, *,
                 on_outcome: Callable[[Kind, str], None] | None = None,
                 on_spend: Callable[[Mapping[str, Any] | None, str], None] | None = None,
                 rng: random.Random | None = None) -> None:
        self.settings = settings
        self.shadow = settings.cache_mode == "shadow"
        self.rate = settings.cache_audit_rate
        self.budget = budget
        self.judge = judge
        self.on_outcome = on_outcome
        self.on_spend = on_spend
        self.rng = rng or random.Random()
        self.gate = UpstreamGate(settings.cache_audit_pause_seconds)
        self.concurrency = settings.cache_audit_concurrency
        self._slots = asyncio.Semaphore(self.concurrency)
        self.in_flight = 0
        self.max_in_flight = 0
        self._tasks: set[asyncio.Task[object]] = set()

    # -- what the cache layer asks ---------------------------------------------------------------------

    @property
    def learning(self) -> bool:
        """Whether misses' refused candidates are judged too (the error budget learns from them)."""
        return self.budget.target is not None

    def cut_for(self, namespace: str) -> float:
        return self.budget.cut_for(namespace)

    @property
    def floor(self) -> float:
        return self.budget.floor

    def audit_hit(self, app: ASGIApp, namespace: str, probe: Probe, keep: Keeper | None = None) -> Finisher | None:
        """For a served semantic hit: a finisher that audits it in the background, when sampled. ``keep``
        stores the audit's fresh answer as the request's own entry when the served one is judged wrong:
        the audit paid for it, and the next such request then finds its own answer first."""
        if self.rate <= 0 or self.rng.random() >= self.rate:
            return None

        async def start_audit(exchange: Exchange) -> None:
            if exchange.response.completed:
                self._spawn(self._audit(app, exchange, namespace, probe, keep))

        return start_audit

    def compare_miss(self, namespace: str, probe: Probe | None, app: ASGIApp | None = None) -> Finisher | None:
        """For a request that went upstream: a finisher that watches the upstream's health and, when a
        candidate would have been served (shadow) or was refused above the floor (probe), judges it."""
        kind: Kind = "shadow" if self.shadow else "probe"
        if probe is not None and kind == "probe" and not self.learning:
            probe = None
        if probe is None and self.rate <= 0:
            return None

        async def compare(exchange: Exchange) -> None:
            answer = self._upstream_answer(exchange)
            if probe is None:
                return
            if answer is None or len(self._tasks) >= MAX_PENDING_COMPARISONS:
                await self._recorded(kind, namespace, probe, None, exchange.request_id)
            else:
                question = exchange.request.last_user_text() or ""
                self._spawn(self._judged(kind, namespace, probe, question, answer, exchange.request_id,
                                         (app, exchange) if app is not None else None))

        return compare

    def _upstream_answer(self, exchange: Exchange) -> Answer | None:
        """The fresh answer of a request that went upstream; a 5xx or a failure closes the gate."""
        observer = exchange.response
        if observer.failed or (observer.status is not None and observer.status >= 500):
            self.gate.failed()
            return None
        answer = observer.answer()
        if answer is not None:
            self.gate.succeeded()
        return answer

    # -- the work ------------------------------------------------------------------------------------

    async def _audit(self, app: ASGIApp, exchange: Exchange, namespace: str, probe: Probe,
                     keep: Keeper | None = None) -> None:
        if not self.gate.open:
            self._count("audit", "paused")
            return
        if self._slots.locked():  # all slots busy: skip (an audit is a sample, not a debt)
            self._count("audit", "skipped")
            return
        async with self._slots:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                answer, usage, model = await asyncio.wait_for(self._ask(app, exchange),
                                                             self.settings.cache_audit_timeout_seconds)
            except Exception:
                answer, usage, model = None, None, exchange.request.model
            finally:
                self.in_flight -= 1
        if self.on_spend is not None:
            self.on_spend(usage, model)
        if answer is None:
            self.gate.failed()
            self._count("audit", "failed")
            return
        self.gate.succeeded()
        wrong = await self._judged("audit", namespace, probe, exchange.request.last_user_text() or "", answer,
                                   exchange.request_id, (app, exchange))
        if wrong and keep is not None:
            try:
                await keep(answer)
            except Exception as exc:  # the shared store is down: the audit's outcome stands, its answer is lost
                log.warning("llmguard.cache.audit_keep_failed", request_id=exchange.request_id, error=repr(exc))

    async def ask_judge(self, prompt: str) -> str | None:
        """The LLM judge's question, sent as an audit (counted as audit spend) through the layers below the
        cache of the request being judged, to ``LLMGUARD_CACHE_AUDIT_JUDGE_MODEL`` or that request's model."""
        context = _JUDGING.get()
        if context is None:  # no upstream to ask (a comparison without one): unjudged
            return None
        app, exchange = context
        model = self.settings.cache_audit_judge_model or exchange.request.model
        if kind_of_path(exchange.scope["path"]) == "chat":
            payload: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
        else:
            payload = {"model": model, "prompt": prompt}
        payload.update({"temperature": 0, "max_tokens": 3, "stream": False})
        async with self._slots:  # the judge's calls count against the audits' concurrency (waiting, not skipped)
            answer, usage, used = await asyncio.wait_for(self._ask(app, exchange, json.dumps(payload).encode()),
                                                         self.settings.cache_audit_timeout_seconds)
        if self.on_spend is not None:
            self.on_spend(usage, used)
        return None if answer is None else answer.text

    async def _ask(self, app: ASGIApp, exchange: Exchange, body: bytes | None = None
                   ) -> tuple[Answer | None, dict[str, int] | None, str]:
        """The request again (or ``body`` on its path), through the layers below the cache, as a client that
        stays connected."""
        scope = dict(exchange.scope)
        scope["headers"] = [*exchange.scope.get("headers", ()), AUDIT_HEADER]
        body = exchange.raw_body if body is None else body
        request = parse_request(body, kind_of_path(scope["path"]), get_header(scope, b"content-type"))
        audit = Exchange(scope=scope, request=request, raw_body=body, identity=exchange.identity)
        audit.cache_status, audit.cache_reason = "bypass", "audit"
        audit.extras["audit"] = True
        scope[SCOPE_KEY] = audit
        connected = asyncio.Event()

        async def receive() -> Message:
            await connected.wait()  # never set: the auditing "client" never leaves
            return {"type": "http.disconnect"}  # pragma: no cover

        async def discard(message: Message) -> None:
            return None

        try:
            await app(scope, audit.wrap_receive(receive), audit.wrap_send(discard))
        finally:
            with contextlib.suppress(Exception):
                await audit.finish()
        observer = audit.response
        return observer.answer() if observer.status == 200 else None, observer.usage, audit.request.model

    async def _judged(self, kind: Kind, namespace: str, probe: Probe, question: str, fresh: Answer,
                      request_id: str, context: tuple[ASGIApp, Exchange] | None = None) -> bool | None:
        """Judge, record and return whether the cached answer was wrong (None: unjudged)."""
        token = _JUDGING.set(context)
        try:
            judgement = await self.judge.judge(question, probe.entry.answer.text, fresh.text)
        finally:
            _JUDGING.reset(token)
        wrong = None if judgement is None else not judgement.same
        await self._recorded(kind, namespace, probe, wrong, request_id,
                             score=None if judgement is None else judgement.score)
        return wrong

    async def _recorded(self, kind: Kind, namespace: str, probe: Probe, wrong: bool | None, request_id: str,
                        score: float | None = None) -> None:
        outcome = "unjudged" if wrong is None else "wrong" if wrong else "right"
        if kind != "probe" and (kind == "audit" or probe.served):
            self._count(kind, outcome)
        await self.budget.record(namespace, z=probe.z, wrong=wrong, kind=kind, would_hit=probe.served,
                                 entry_id=probe.entry.id)
        log.info("llmguard.cache.audit", kind=kind, outcome=outcome, request_id=request_id,
                 namespace=namespace[:16], entry_id=probe.entry.id, similarity=round(probe.similarity, 4),
                 z=round(probe.z, 3), cut=probe.cut, would_serve=probe.served, judge_score=score,
                 judge=self.settings.cache_audit_judge,
                 cut_now=self.budget.cut_for(namespace))

    def _count(self, kind: Kind, outcome: str) -> None:
        if self.on_outcome is not None:
            self.on_outcome(kind, outcome)

    def _spawn(self, job: Awaitable[object]) -> None:
        task = asyncio.ensure_future(job)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("llmguard.cache.audit_failed", error=repr(task.exception()))

    async def drain(self, within: float = 5.0) -> None:
        """Wait for the comparisons and audits in flight (tests, benches, shutdown)."""
        deadline = time.monotonic() + within
        while self._tasks and time.monotonic() < deadline:
            await asyncio.wait(set(self._tasks), timeout=max(0.0, deadline - time.monotonic()))

    async def close(self) -> None:
        await self.drain(within=2.0)
        for task in list(self._tasks):
            task.cancel()
