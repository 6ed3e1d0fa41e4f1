"""The semantic cache: find (exact tier, then nearest neighbours), verify, replay or store.

The engine, :class:`SemanticCache`, holds no per-request state; the layer,
:class:`SemanticCacheMiddleware`, decides per exchange and serves hits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog

from . import tracing
from ._asgi import encode_headers, get_header, send_json
from ._layer import GuardLayer
from ._types import Receive, Scope, Send
from .cache_keys import exact_key_of, is_time_sensitive, namespace_of
from .exchange import Exchange
from .openai_protocol import Answer, answer_chunks, answer_json, sse_event
from .storage.base import CacheEntry, CacheStore
from .storage.redis import StorageUnavailable

if TYPE_CHECKING:
    from .config import Settings
    from .embedding import Embedder
    from .tracing import RequestTrace
    from .vectorindex import VectorIndex
    from .verify import Verifier

log = structlog.get_logger("asgi_llmguard.cache")


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where a request stands with the cache before the app is called."""

    namespace: str
    exact_key: str
    read: bool
    write: bool
    semantic: bool
    vector: np.ndarray | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    entry: CacheEntry
    similarity: float | None  # None for an exact hit


class SemanticCache:
    """Finds, verifies and stores answers. Used by the middleware and, for invalidation, by apps."""

    def __init__(
        self,
        settings: Settings,
        store: CacheStore,
        *,
        index: VectorIndex | None = None,
        embedder: Embedder | None = None,
        verifier: Verifier | None = None,
        threshold: float,
    ) -> None:
        self.settings = settings
        self.store = store
        self.index = index
        self.embedder = embedder
        self.verifier = verifier
        self.threshold = threshold
        self._in_flight: dict[str, asyncio.Future[None]] = {}
        self.on_lookup_error: Callable[[str, BaseException], None] | None = None

    # -- reading -------------------------------------------------------------------------------------

    async def find_exact(self, exact_key: str) -> Hit | None:
        try:
            entry = await self.store.get_exact(exact_key)
        except StorageUnavailable as exc:  # shared store slow or down: a miss (fail open)
            self._lookup_failed("redis", exc)
            return None
        return None if entry is None else Hit(entry, None)

    async def embed(self, text: str) -> np.ndarray | None:
        """The prompt's vector, or None when the embedder is absent, slow or failing (fail open)."""
        if self.embedder is None:
            return None
        try:
            return await self.embedder.embed(text, timeout=self.settings.embedding_timeout_ms / 1000)
        except Exception as exc:
            self._lookup_failed("embedding", exc)
            return None

    async def find_similar(self, namespace: str, text: str, vector: np.ndarray, *,
                           trace: RequestTrace | None = None) -> Hit | None:
        """The nearest stored prompt above the threshold that the verifier accepts (``trace``: a traced
        request's, for the index search and verify spans)."""
        if self.index is None:
            return None
        with tracing.span(trace, "llmguard.index.search") as span:
            neighbours = self.index.search(namespace, vector, k=4)
            if span:
                span.set_many({"llmguard.index.results": len(neighbours),
                               "llmguard.index.best_similarity": neighbours[0].similarity if neighbours else None})
        for neighbour in neighbours:
            if neighbour.similarity < self.threshold:
                break
            try:
                entry = await self.store.get(neighbour.key)
            except StorageUnavailable as exc:
                self._lookup_failed("redis", exc)
                return None
            if entry is None or entry.prompt is None:
                self.index.remove(namespace, neighbour.key)
                continue
            if self.verifier is not None and self.settings.cache_verify:
                with tracing.span(trace, "llmguard.cache.verify") as span:
                    verdict = self.verifier.check(text, entry.prompt, neighbour.similarity)
                    if span:
                        span.set_many({"llmguard.cache.similarity": neighbour.similarity,
                                       "llmguard.verify.accepted": verdict.accepted,
                                       "llmguard.verify.reason": verdict.reason})
                if not verdict.accepted:
                    continue
            return Hit(entry, neighbour.similarity)
        return None

    def namespace_for(self, exchange: Exchange) -> str:
        """The namespace a request's answers live in (for invalidation from an app's own code)."""
        identity = exchange.identity if self.settings.cache_scope == "identity" else None
        return namespace_of(exchange.request, identity)

    # -- single flight -------------------------------------------------------------------------------

    def lead(self, key: str) -> asyncio.Future[None] | None:
        """Become the one caller that asks upstream for ``key``; None if someone already is."""
        if key in self._in_flight:
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        return future

    async def wait_for_leader(self, key: str) -> None:
        future = self._in_flight.get(key)
        if future is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), self.settings.cache_single_flight_timeout_ms / 1000)

    def release(self, key: str, future: asyncio.Future[None]) -> None:
        if self._in_flight.get(key) is future:
            del self._in_flight[key]
        if not future.done():
            future.set_result(None)

    # -- writing -------------------------------------------------------------------------------------

    async def store_answer(self, namespace: str, exact_key: str, prompt: str | None, answer: Answer,
                           vector: np.ndarray | None) -> CacheEntry:
        now = time.time()
        entry = CacheEntry(id=await self.store.next_id(), namespace=namespace, exact_key=exact_key, prompt=prompt,
                           answer=answer, vector=vector, created_at=now,
                           expires_at=now + self.settings.cache_ttl_seconds)
        for gone in await self.store.put(entry):
            self._unindex(gone)
        if vector is not None and self.index is not None:
            self.index.add(namespace, entry.id, vector)
        return entry

    # -- invalidation (public API) -----------------------------------------------------------------

    async def invalidate_entry(self, entry_id: int) -> bool:
        entry = await self.store.delete(entry_id)
        if entry is not None:
            self._unindex(entry)
        return entry is not None

    async def invalidate_namespace(self, namespace: str) -> int:
        entries = await self.store.delete_namespace(namespace)
        for entry in entries:
            self._unindex(entry)
        return len(entries)

    async def flush(self) -> None:
        await self.store.flush()
        if self.index is not None:
            self.index.clear()

    def _unindex(self, entry: CacheEntry) -> None:
        if self.index is not None and entry.vector is not None:
            self.index.remove(entry.namespace, entry.id)

    def _lookup_failed(self, part: str, exc: BaseException) -> None:
        log.warning("llmguard.cache.degraded", part=part, error=type(exc).__name__)
        if self.on_lookup_error is not None:
            self.on_lookup_error(part, exc)


def cache_control(scope: Scope) -> set[str]:
    raw = get_header(scope, b"cache-control")
    if raw is None:
        return set()
    return {part.strip().split("=", 1)[0].lower() for part in raw.decode("latin-1").split(",")}


class SemanticCacheMiddleware(GuardLayer):
    """Serves trusted hits, lets misses through and keeps their complete answers."""

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        path = self.guard.settings.cache_admin_path
        if path is None or scope["path"] != path:
            return False
        from .admin import serve_cache_admin

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
        if lookup.read:
            hit = await self._find(cache, exchange, lookup, text)
            vector = exchange.extras.get("cache.vector")
            if hit is None and lookup.write:
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
                await self._replay(exchange, hit, scope, receive, send)
            return
        exchange.cache_status = "miss"
        exchange.set_header("X-LLMGuard-Cache", "miss")
        if lookup.write:
            exchange.on_finish(_keep(cache, lookup, text if lookup.semantic else None, vector))
        if leader is not None:  # after _keep: waiters wake up to a stored answer
            exchange.on_finish(_release(cache, lookup.exact_key, leader))
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
        with tracing.span(trace, "llmguard.embedding") as span:
            vector = await cache.embed(text)
            if span:
                span.set("llmguard.embedding.ok", vector is not None)
        if vector is None:
            return None
        exchange.extras["cache.vector"] = vector
        return await cache.find_similar(lookup.namespace, text, vector, trace=trace)

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


def describe(entry: CacheEntry) -> dict[str, Any]:
    return {"id": entry.id, "namespace": entry.namespace, "created_at": entry.created_at,
            "expires_at": entry.expires_at, "answer": json.loads(json.dumps(entry.answer.to_dict()))}
