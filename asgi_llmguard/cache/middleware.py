"""The semantic cache layer: decides per exchange, serves trusted hits, keeps complete answers."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np

from ..core import tracing
from ..core.asgi import encode_headers, get_header, send_json
from ..core.exchange import Exchange
from ..core.layer import GuardLayer
from ..core.openai_protocol import Answer, answer_chunks, answer_json, sse_event
from ..core.types import Receive, Scope, Send
from .admin import serve_cache_admin
from .engine import CacheHost, Hit, SemanticCache
from .keys import exact_key_of
from .stores.base import StorageUnavailable
from .time_sensitive import is_time_sensitive


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where a request stands with the cache before the app is called."""

    namespace: str
    exact_key: str
    read: bool
    write: bool
    semantic: bool
    vector: np.ndarray | None = None



def cache_control(scope: Scope) -> set[str]:
    raw = get_header(scope, b"cache-control")
    if raw is None:
        return set()
    return {part.strip().split("=", 1)[0].lower() for part in raw.decode("latin-1").split(",")}


class SemanticCacheMiddleware(GuardLayer[CacheHost]):
    """Serves trusted hits, lets misses through and keeps their complete answers."""

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path = self.guard.settings.cache_admin_path
        if path is None or scope["path"] != path:
            return False
        await serve_cache_admin(self.guard, scope, receive, send)
        return True

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.guard.cache
        lookup = self._decide(cache, exchange, scope) if cache is not None else None
        if cache is None or lookup is None:
            await self.app(scope, receive, send)
            return
        request = exchange.request
        text = request.last_user_text()
        hit: Hit | None = None
        vector: np.ndarray | None = None
        leader: asyncio.Future[None] | None = None
        auditor = self.guard.auditor
        shadow = auditor is not None and auditor.shadow
        if lookup.read:
            hit = await self._find(cache, exchange, lookup, text)
            vector = exchange.extras.get("cache.vector")
            if shadow and hit is not None:  # shadow mode: looked up and recorded, never served
                exchange.extras["cache.shadow"] = "exact" if hit.similarity is None else "hit"
                exchange.set_header("X-LLMGuard-Shadow", exchange.extras["cache.shadow"])
                if hit.similarity is not None:
                    exchange.set_header("X-LLMGuard-Similarity", f"{hit.similarity:.4f}")
                hit = None
            elif shadow:
                exchange.extras["cache.shadow"] = "miss"
                exchange.set_header("X-LLMGuard-Shadow", "miss")
            if hit is None and lookup.write and not shadow:
                leader = cache.lead(lookup.exact_key)
                if leader is None:  # an identical request is asking upstream: wait for its answer
                    with tracing.span(exchange.trace, "llmguard.cache.wait"):
                        await cache.wait_for_leader(lookup.exact_key)
                        hit = await cache.find_exact(lookup.exact_key)
        if hit is not None:
            with tracing.span(exchange.trace, "llmguard.cache.replay") as span:
                if span:
                    span.set_many({"llmguard.cache.tier": "exact" if hit.similarity is None else "semantic",
                                   "llmguard.cache.entry_id": hit.entry.id, "llmguard.stream": exchange.request.stream})
                if auditor is not None and hit.similarity is not None:
                    probe = exchange.extras.get("cache.probe")
                    keep = _keep_audited(cache, lookup, text, vector) if lookup.write else None
                    audit = (auditor.audit_hit(self.app, lookup.namespace, probe, keep) if probe is not None
                             else None)
                    if audit is not None:
                        exchange.on_finish(audit)
                await self._replay(exchange, hit, scope, receive, send)
            return
        exchange.cache_status = "miss"
        exchange.set_header("X-LLMGuard-Cache", "miss")
        if lookup.write:
            exchange.on_finish(_keep(cache, lookup, text if lookup.semantic else None, vector))
        if leader is not None:  # after _keep: waiters wake up to a stored answer
            exchange.on_finish(_release(cache, lookup.exact_key, leader))
        if auditor is not None:  # shadow mode's comparison, the error budget's probe, the upstream's health
            compare = auditor.compare_miss(lookup.namespace, exchange.extras.get("cache.probe"), self.app)
            if compare is not None:
                exchange.on_finish(compare)
        await self.app(scope, receive, send)

    def _decide(self, cache: SemanticCache, exchange: Exchange, scope: Scope) -> Lookup | None:
        """None when the request has nothing to do with the cache; otherwise what it may do."""
        settings = self.guard.settings
        request = exchange.request
        reason: str | None = None
        if not settings.cache_enabled:
            reason = "disabled"
        elif request.n > 1:
            reason = "n_gt_1"
        text = request.last_user_text()
        if reason is None and settings.cache_bypass_time_sensitive and text and is_time_sensitive(text):
            reason = "time_sensitive"
        control = cache_control(scope)
        read = "no-cache" not in control
        write = "no-store" not in control
        if reason is None and not read and not write:
            reason = "cache_control"
        if reason is not None:
            exchange.cache_status = "bypass"
            exchange.cache_reason = reason
            exchange.set_header("X-LLMGuard-Cache", "bypass")
            return None
        namespace = cache.namespace_for(exchange)
        semantic = bool(settings.cache_semantic and text and not request.tools)
        return Lookup(namespace=namespace, exact_key=exact_key_of(namespace, request), read=read, write=write,
                      semantic=semantic)

    async def _find(self, cache: SemanticCache, exchange: Exchange, lookup: Lookup, text: str | None) -> Hit | None:
        trace = exchange.trace
        with tracing.span(trace, "llmguard.cache.exact") as span:
            hit = await cache.find_exact(lookup.exact_key)
            if span:
                span.set("llmguard.cache.found", hit is not None)
        if hit is not None or not lookup.semantic or text is None:
            return hit
        early = cache.start_early(lookup.namespace, text)
        with tracing.span(trace, "llmguard.embedding") as span:
            vector = await cache.embed(text)
            if span:
                span.set("llmguard.embedding.ok", vector is not None)
        if vector is None:
            return None
        exchange.extras["cache.vector"] = vector
        auditor = self.guard.auditor
        if auditor is None:
            return await cache.find_similar(lookup.namespace, text, vector, trace=trace, early=early)
        cut = auditor.cut_for(lookup.namespace)
        exchange.extras["cache.cut"] = cut
        found, probe = await cache.probe_similar(lookup.namespace, text, vector, cut=cut, floor=auditor.floor,
                                                 trace=trace, early=early)
        exchange.extras["cache.probe"] = probe
        return found

    async def _replay(self, exchange: Exchange, hit: Hit, scope: Scope, receive: Receive, send: Send) -> None:
        exchange.cache_status = "hit"
        exchange.similarity = hit.similarity
        exchange.set_header("X-LLMGuard-Cache", "hit")
        if hit.similarity is not None:
            exchange.set_header("X-LLMGuard-Similarity", f"{hit.similarity:.4f}")
        request = exchange.request
        answer = hit.entry.answer
        # The model that made the answer: for a routed alias ("auto") that is the router's choice.
        model = answer.model or request.model
        if model != request.model:
            exchange.set_header("X-LLMGuard-Model", model)
        if not request.stream:
            await send_json(send, 200, answer_json(answer, request.kind, model))
            return
        headers = encode_headers([("content-type", "text/event-stream; charset=utf-8"),
                                  ("cache-control", "no-cache"), ("x-accel-buffering", "no")])
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for chunk in answer_chunks(answer, request.kind, model, include_usage=request.include_usage):
            await send({"type": "http.response.body", "body": sse_event(chunk), "more_body": True})
        await send({"type": "http.response.body", "body": sse_event("[DONE]"), "more_body": False})


def _release(cache: SemanticCache, key: str, leader: asyncio.Future[None]) -> Callable[[Exchange], Awaitable[None]]:
    async def release(exchange: Exchange) -> None:
        cache.release(key, leader)

    return release


def _keep_audited(cache: SemanticCache, lookup: Lookup, text: str | None,
                  vector: np.ndarray | None) -> Callable[[Answer], Awaitable[None]]:
    """For an audit that judged the served answer wrong: store the audit's fresh answer as the request's own."""

    async def keep(answer: Answer) -> None:
        await cache.store_answer(lookup.namespace, lookup.exact_key, text, answer, vector)

    return keep


def _keep(cache: SemanticCache, lookup: Lookup, text: str | None,
          vector: np.ndarray | None) -> Callable[[Exchange], Awaitable[None]]:
    """After the response: store its answer if it was a complete 200 the client received."""

    async def keep(exchange: Exchange) -> None:
        answer = exchange.response.answer()
        if answer is None:
            return
        nonlocal vector
        if vector is None and text is not None:
            with tracing.span(exchange.trace, "llmguard.embedding") as span:
                vector = await cache.embed(text)
                if span:
                    span.set("llmguard.embedding.ok", vector is not None)
        with tracing.span(exchange.trace, "llmguard.cache.store") as span:
            try:
                entry = await cache.store_answer(lookup.namespace, lookup.exact_key, text, answer, vector)
            except StorageUnavailable as exc:  # the client has its answer; it is just not kept
                cache._lookup_failed("redis", exc)
                if span:
                    span.fail("storage unavailable")
            else:
                if span:
                    span.set("llmguard.cache.entry_id", entry.id)

    return keep
