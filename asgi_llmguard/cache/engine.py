"""The semantic cache's engine: find (exact tier, then nearest neighbours), verify, store.

:class:`SemanticCache` holds no per-request state; the layer (:mod:`.middleware`) decides per
exchange and serves hits, and the admin endpoint (:mod:`.admin`) invalidates through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from ..core import tracing
from ..core.health import Health
from ..core.layer import LayerHost
from .audit.probe import Probe, log_odds
from .keys import namespace_of
from .lexicon import Lexicon
from .long_prompts import focus
from .stores.base import CacheEntry, CacheStore, StorageUnavailable

if TYPE_CHECKING:
    from ..config import Settings
    from ..core.exchange import Exchange, Trace
    from ..core.openai_protocol import Answer
    from ..core.types import Embedder
    from .audit.auditor import Auditor
    from .index import VectorIndex
    from .verify import Verdict, Verifier

@dataclass(frozen=True, slots=True)
class _Refused:
    """A verdict given without the verifier (its shape: accepted, score, reason)."""

    accepted: bool
    score: float
    reason: str


TOO_LONG = _Refused(False, 0.0, "too_long")  # long prompts that differ over more than the verifier judges


T = TypeVar("T")

#: Early verification overlaps the pair model with the embedding: with one CPU there is nothing to overlap.
SEVERAL_CPUS = len(os.sched_getaffinity(0)) > 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) > 1


@dataclass(frozen=True, slots=True)
class Early:
    """A pair-model call started before the embedding was ready, on the stored prompt the request most
    likely rewords (:mod:`.lexicon`); ``shown`` is the pair as the verifier sees it."""

    key: int
    shown: tuple[str, str]
    future: asyncio.Future[float | None]


@dataclass(frozen=True, slots=True)
class Hit:
    entry: CacheEntry
    similarity: float | None  # None for an exact hit


class CacheHost(LayerHost, Protocol):
    """What the cache's layer and admin endpoint need of their guard: the cache, once started."""

    @property
    def cache(self) -> SemanticCache | None: ...

    @property
    def auditor(self) -> Auditor | None:
        """Shadow mode, audits and the error budget (cache/audit/), when any is on."""
        ...


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
        self._verify_pool: ThreadPoolExecutor | None = None
        self._verifying = 0  # jobs submitted to the verify pool and not finished
        # An embedder that computes elsewhere (the embedding tier) leaves this process's CPU free meanwhile.
        elsewhere = not getattr(embedder, "computes_locally", True)
        self.early = (verifier is not None and index is not None and settings.cache_verify
                      and settings.cache_early_verify and (SEVERAL_CPUS or elsewhere))
        # Prompts kept for early verification's guesses: as many as the cache keeps, 10 000 at most (20 MB
        # of text at worst); none when early verification cannot run.
        self.lexicon = Lexicon(max(1, min(settings.cache_max_entries, 10_000)))
        self.on_lookup_error: Callable[[str, BaseException], None] | None = None
        #: "used" (the embedding found the guessed prompt: its logit served the verdict) or "missed"
        self.on_early: Callable[[str], None] | None = None
        # The embedder's failures are logged once per spell (llmguard.cache.embedding.degraded and
        # .recovered); Redis's are logged by the store's health, shared with the rate limiter.
        self.embedding_health = Health("llmguard.cache.embedding")
        self.verify_health = Health("llmguard.cache.verify")

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
            vector = await self.embedder.embed(text, timeout=self.settings.embedding_timeout_ms / 1000)
        except Exception as exc:
            self.embedding_health.failed("embedding", exc, unreachable=False)
            self._lookup_failed("embedding", exc)
            return None
        self.embedding_health.succeeded()
        return vector

    def start_early(self, namespace: str, text: str) -> Early | None:
        """Before the embedding: start the pair model on the stored prompt ``text`` most likely rewords
        (:mod:`.lexicon`), on the verifier's thread while the embedder's runs. Only while that thread is idle
        (under load it would delay real verifications), and with more than one CPU unless the embedder
        computes elsewhere (``self.early``)."""
        verifier = self.verifier
        if not self.early or verifier is None or self._verifying:
            return None
        guess = self.lexicon.nearest(namespace, text)
        if guess is None:
            return None
        shown = focus(text, guess.prompt)
        if shown is None:
            return None

        def logit() -> float | None:  # in the verify thread: hard rules and shortcuts need no model
            return verifier.pair_logit(*shown) if verifier.needs_pair_model(*shown) else None

        return Early(guess.key, shown, self._submit(logit))

    def _submit(self, job: Callable[[], T]) -> asyncio.Future[T]:
        if self._verify_pool is None:
            self._verify_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmguard-verify")
        future = asyncio.get_running_loop().run_in_executor(self._verify_pool, job)
        self._verifying += 1
        future.add_done_callback(self._verified)
        return future

    def _verified(self, future: asyncio.Future[Any]) -> None:
        self._verifying -= 1
        if not future.cancelled():
            future.exception()  # retrieved: an early call's failure is not worth a warning at exit

    async def find_similar(self, namespace: str, text: str, vector: np.ndarray, *,
                           trace: Trace | None = None, early: Early | None = None) -> Hit | None:
        """The nearest stored prompt above the threshold that the verifier accepts (``trace``: a traced
        request's, for the index search and verify spans; ``early``: :meth:`start_early`'s call)."""
        probe = await self.probe_similar(namespace, text, vector, trace=trace, early=early)
        return probe[0]

    async def probe_similar(self, namespace: str, text: str, vector: np.ndarray, *, cut: float | None = None,
                            floor: float | None = None, trace: Trace | None = None,
                            early: Early | None = None) -> tuple[Hit | None, Probe | None]:
        """The hit at ``cut`` (the verifier's own by default) and, for the error budget and shadow mode,
        the first candidate accepted at ``floor`` (cache/audit/): what would be served at a looser cut."""
        if self.index is None:
            return None, None
        with tracing.span(trace, "llmguard.index.search") as span:
            neighbours = self.index.search(namespace, vector, k=4)
            if span:
                span.set_many({"llmguard.index.results": len(neighbours),
                               "llmguard.index.best_similarity": neighbours[0].similarity if neighbours else None})
        candidates: list[tuple[float, CacheEntry]] = []
        verifier = self.verifier if self.settings.cache_verify else None
        # The verifier may judge short prompts under its floor (its Reach): fetch what it may judge; and the
        # nearest stored prompt further down, which it serves only as the same question in other words.
        lowest = verifier.floor_for(text) if verifier is not None else self.threshold
        nearest_lowest = min(lowest, verifier.same_question_floor) if verifier is not None else lowest
        for rank, neighbour in enumerate(neighbours):
            if neighbour.similarity < (nearest_lowest if rank == 0 else lowest):
                break
            try:
                entry = await self.store.get(neighbour.key, touch=False)  # used only once accepted
            except StorageUnavailable as exc:
                self._lookup_failed("redis", exc)
                return None, None
            if entry is None or entry.prompt is None:
                self.index.remove(namespace, neighbour.key)
                self.lexicon.remove(namespace, neighbour.key)
                continue
            candidates.append((neighbour.similarity, entry))
        if not candidates:
            self._early_outcome(early, used=False)
            return None, None
        accepted = 0
        probe: Probe | None = None
        if verifier is not None:
            general = verifier.general_topic(vector)
            with tracing.span(trace, "llmguard.cache.verify") as span:
                found, verdict, probe = await self._verify(text, candidates, cut, floor, early, general)
                if span:
                    span.set_many({"llmguard.cache.similarity": candidates[0][0],
                                   "llmguard.verify.candidates": len(candidates),
                                   "llmguard.verify.accepted": found is not None,
                                   "llmguard.verify.reason": verdict.reason if verdict else "unavailable"})
            if found is None:
                return None, probe
            accepted = found
        elif floor is not None:  # no verifier: the nearest candidate over the threshold is the would-hit
            probe = Probe(candidates[0][1], candidates[0][0], candidates[0][0], self.threshold, True)
        similarity, entry = candidates[accepted]
        if self.early:  # served here: worth guessing next time
            self.lexicon.add(namespace, entry.id, entry.prompt)
        try:  # a refused neighbour is not "used": it must not outlive newer entries in the LRU
            await self.store.touch(entry.id)
        except StorageUnavailable as exc:  # the hit stands; only its place in the LRU is lost
            self._lookup_failed("redis", exc)
        return Hit(entry, similarity), probe

    def _first_accepted(self, text: str, candidates: list[tuple[float, CacheEntry]], cut: float | None = None,
                        floor: float | None = None, known: tuple[tuple[str, str], float] | None = None,
                        general: bool = False) -> tuple[int | None, Verdict | _Refused | None, Probe | None]:
        """In the worker thread: the candidates in order of similarity, long prompts shown where they differ
        (long_prompts.focus), until the verifier accepts one at ``cut``; a hit costs one pair-model call.
        Returns the accepted candidate's index (or None), the verdict to report (the accepted one, or the
        first) and the probe: the first candidate accepted at ``floor`` (None without a floor). ``known``: a pair
        whose pair-model logit was computed early (:meth:`start_early`); ``general``: the request is off the
        medical topic (``Verifier.general_topic``)."""
        assert self.verifier is not None
        in_force = self.verifier.cut if cut is None else cut
        first: Verdict | _Refused | None = None
        probe: Probe | None = None
        for i, (similarity, entry) in enumerate(candidates):
            shown = focus(text, entry.prompt or "")
            logit = known[1] if known is not None and known[0] == shown else None
            if shown is None:
                verdict: Verdict | _Refused = TOO_LONG
            elif floor is None:
                verdict = self.verifier.check(shown[0], shown[1], similarity, cut=in_force, pair_logit=logit,
                                              general=general)
            else:  # judged at the floor; served only at the cut in force
                verdict = self.verifier.check(shown[0], shown[1], similarity, cut=min(floor, in_force),
                                              pair_logit=logit, general=general)
                if verdict.accepted:
                    z = log_odds(verdict.score)
                    served = z >= in_force
                    if probe is None or served:
                        probe = Probe(entry, similarity, z, in_force, served)
                    if not served:
                        first = first or _Refused(False, verdict.score, "cut")
                        continue
            if verdict.accepted:
                return i, verdict, probe
            first = first or verdict
        return None, first, probe

    async def _verify(self, text: str, candidates: list[tuple[float, CacheEntry]], cut: float | None = None,
                      floor: float | None = None, early: Early | None = None, general: bool = False
                      ) -> tuple[int | None, Verdict | _Refused | None, Probe | None]:
        """The verifier's choice, from its one worker thread: the pair model is a transformer's forward
        pass (milliseconds) and must not stall the event loop. A verifier that fails or overruns the
        embedding budget accepts nothing: the request goes upstream."""
        known: tuple[tuple[str, str], float] | None = None
        decided_without_model = False  # the early call found that a hard rule or a shortcut judges the pair
        if early is not None and any(entry.id == early.key for _, entry in candidates):
            with contextlib.suppress(Exception):  # a failed early call: the verifier asks the model itself
                logit = await asyncio.wait_for(asyncio.shield(early.future), self.settings.embedding_timeout_ms / 1000)
                known = None if logit is None else (early.shown, logit)
                decided_without_model = logit is None
            self._early_outcome(early, used=True)
        else:
            self._early_outcome(early, used=False)
        nearest = candidates[0][1]
        if early is not None and nearest.id == early.key and (
                known is not None or (decided_without_model and focus(text, nearest.prompt or "") == early.shown)):
            # The nearest candidate's model call is done, or needs none: judging it costs microseconds, less than
            # a thread hop. Served, that is the answer the full pass would give; otherwise the pass runs as usual.
            with contextlib.suppress(Exception):
                chosen = self._first_accepted(text, candidates[:1], cut, floor, known, general)
                if chosen[0] == 0:
                    self.verify_health.succeeded()
                    return chosen
        job = functools.partial(self._first_accepted, text, candidates, cut, floor, known, general)
        try:
            future = self._submit(job)
            chosen = await asyncio.wait_for(future, self.settings.embedding_timeout_ms / 1000)
        except Exception as exc:
            self.verify_health.failed("verify", exc, unreachable=False)
            self._lookup_failed("verify", exc)
            return None, None, None
        self.verify_health.succeeded()
        return chosen

    def _early_outcome(self, early: Early | None, *, used: bool) -> None:
        if early is not None and self.on_early is not None:
            self.on_early("used" if used else "missed")

    def close(self) -> None:
        """Let the verifier's worker thread go (at shutdown; a running check finishes first)."""
        if self._verify_pool is not None:
            self._verify_pool.shutdown(wait=False)
            self._verify_pool = None

    def namespace_for(self, exchange: Exchange) -> str:
        """The namespace a request's answers live in (for invalidation from an app's own code)."""
        identity = exchange.cache_identity if self.settings.cache_scope == "identity" else None
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
        entry = CacheEntry(id=await self.store.next_id(namespace), namespace=namespace, exact_key=exact_key,
                           prompt=prompt, answer=answer, vector=vector, created_at=now,
                           expires_at=now + self.settings.cache_ttl_seconds)
        for gone in await self.store.put(entry):
            self._unindex(gone)
        if vector is not None and self.index is not None:
            self.index.add(namespace, entry.id, vector)
            if self.early:
                self.lexicon.add(namespace, entry.id, prompt)
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
        self.lexicon.clear()
        if self.index is not None:
            self.index.clear()

    def _unindex(self, entry: CacheEntry) -> None:
        self.lexicon.remove(entry.namespace, entry.id)
        if self.index is not None and entry.vector is not None:
            self.index.remove(entry.namespace, entry.id)

    def _lookup_failed(self, part: str, exc: BaseException) -> None:
        """Count a failure that the request rides out as a miss (logged by the part's health, once)."""
        if self.on_lookup_error is not None:
            self.on_lookup_error(part, exc)


def describe(entry: CacheEntry) -> dict[str, Any]:
    return {"id": entry.id, "namespace": entry.namespace, "created_at": entry.created_at,
            "expires_at": entry.expires_at, "answer": json.loads(json.dumps(entry.answer.to_dict()))}
