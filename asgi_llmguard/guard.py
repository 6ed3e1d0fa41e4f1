"""The Guard: the composition root. Settings -> parts -> stack, and the lifespan that opens them.

This is the one module that knows every capability: it builds each part from the settings and
hands each layer the guard as the host it asks for (``CacheHost``, ``RateLimitHost``...); no
layer imports this module. Optional backends (Redis, OpenTelemetry, the PostgreSQL request log,
a remote embedder...) are named in :data:`BACKENDS` and imported only when the settings choose them.

Resources (the embedder, the index, the cache store, the metrics registry) are
opened at lifespan startup and closed at shutdown. Where the server sends no
lifespan (Django's ASGI handler rejects it), the first guarded request opens
them, once, behind a lock.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any

import structlog

from .cache.engine import SemanticCache
from .cache.middleware import SemanticCacheMiddleware
from .config import Settings
from .core.exchange import IdentityFunc, default_identity, hash_identity
from .core.health import Health
from .core.layer import set_default_host
from .core.openai_protocol import ParsedRequest
from .core.types import ASGIApp, Embedder, Message, Receive, Scope, Send
from .observability.metrics import Metrics
from .observability.middleware import MetricsMiddleware
from .ratelimit.limiter import LimitOverrides, RateLimiter
from .ratelimit.middleware import RateLimitMiddleware
from .routing.middleware import ModelRouterMiddleware
from .streaming.middleware import SSEPassthroughMiddleware

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from prometheus_client import CollectorRegistry
    from redis.asyncio import Redis, RedisCluster

    from .cache.audit.auditor import Auditor
    from .cache.cluster_sync import ClusterIndexSync
    from .cache.engine import CacheHost
    from .cache.index_sync import IndexSync
    from .cache.stores.base import CacheStore
    from .core.tracing import Tracing
    from .observability.middleware import MetricsHost
    from .observability.request_log import RequestLog
    from .ratelimit.local_share import LocalShare
    from .ratelimit.middleware import RateLimitHost
    from .ratelimit.store import RateLimitStore
    from .routing.proxy import ProxyHost

log = structlog.get_logger("asgi_llmguard")

# The optional backends, by name: "module:attribute", imported the first time a Guard's settings
# choose it (as uvicorn's importer and limits' storage_from_string do). A setting that is off costs
# no import, and a missing optional package fails when it is chosen, naming its setting.
BACKENDS: dict[str, str] = {
    "tracing": "asgi_llmguard.core.tracing:Tracing",  # LLMGUARD_TRACING (the otel extra)
    "request_log": "asgi_llmguard.observability.request_log:RequestLog",  # LLMGUARD_REQUEST_LOG_DSN (postgres)
    "redis": "asgi_llmguard.core.redis_client:connect",  # LLMGUARD_REDIS_URL
    "redis_cluster": "asgi_llmguard.core.redis_cluster",  # LLMGUARD_REDIS_URL naming a Redis Cluster
    "cache_store.cluster": "asgi_llmguard.cache.stores.cluster:ClusterCacheStore",  # ... on a cluster
    "index_sync.cluster": "asgi_llmguard.cache.cluster_sync:ClusterIndexSync",  # ... on a cluster
    "cache_store.memory": "asgi_llmguard.cache.stores.memory:MemoryCacheStore",
    "cache_store.redis": "asgi_llmguard.cache.stores.redis:RedisCacheStore",  # LLMGUARD_REDIS_URL
    "index_sync": "asgi_llmguard.cache.index_sync:IndexSync",  # LLMGUARD_REDIS_URL with the semantic tier
    "vector_index": "asgi_llmguard.cache.index:VectorIndex",  # LLMGUARD_CACHE_SEMANTIC
    "verifier": "asgi_llmguard.cache.verify:Verifier",  # LLMGUARD_CACHE_VERIFY, LLMGUARD_CACHE_STRICTNESS
    "embedder.local": "asgi_llmguard.embedding.local:FastEmbedEmbedder",  # LLMGUARD_EMBEDDING_MODEL(_DIR)
    "embedder.remote": "asgi_llmguard.embedding.remote:RemoteEmbedder",  # LLMGUARD_EMBEDDING_URL
    "limit_store.memory": "asgi_llmguard.ratelimit.stores.memory:MemoryRateLimitStore",
    "limit_store.redis": "asgi_llmguard.ratelimit.stores.redis:RedisRateLimitStore",  # LLMGUARD_REDIS_URL
    "local_share": "asgi_llmguard.ratelimit.local_share:LocalShare",  # LLMGUARD_RATE_LIMIT_LOCAL_SHARE
    # LLMGUARD_CACHE_MODE=shadow, LLMGUARD_CACHE_AUDIT_RATE, LLMGUARD_CACHE_MAX_WRONG_RATE
    "auditor": "asgi_llmguard.cache.audit.auditor:Auditor",
    "audit_budget": "asgi_llmguard.cache.audit.budget:ErrorBudget",
    "audit_grid": "asgi_llmguard.cache.audit.budget:default_grid",
    "audit_store.memory": "asgi_llmguard.cache.audit.budget:MemoryOutcomeStore",
    "audit_store.redis": "asgi_llmguard.cache.audit.budget:RedisOutcomeStore",
    "audit_judge.embedding": "asgi_llmguard.cache.audit.judge:EmbeddingJudge",
    "audit_judge.llm": "asgi_llmguard.cache.audit.judge:LLMJudge",
}


#: The cosine floor of a semantic tier without its verifier (LLMGUARD_CACHE_VERIFY=false), unless
#: LLMGUARD_CACHE_THRESHOLD says otherwise.
UNVERIFIED_THRESHOLD = 0.9


def backend(name: str) -> Any:
    """What ``name`` stands for in :data:`BACKENDS`, imported now (once: Python keeps the module)."""
    module, _, attribute = BACKENDS[name].partition(":")
    imported = importlib.import_module(module)
    return getattr(imported, attribute) if attribute else imported


class Guard:
    """The stack's shared state. ``Guard(settings)`` or ``Guard(**setting_overrides)``.

    ``identity`` replaces the default identity (hashed bearer token, else client address; the
    body's ``user`` field only narrows cache sharing within it); ``registry`` puts the metrics in
    an app's own Prometheus registry; ``embedder`` replaces the local fastembed model;
    ``tracer_provider`` takes the spans instead of OpenTelemetry's global provider (with
    ``LLMGUARD_TRACING`` on).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        identity: IdentityFunc | None = None,
        registry: CollectorRegistry | None = None,
        embedder: Embedder | None = None,
        limit_overrides: LimitOverrides | None = None,
        tracer_provider: TracerProvider | None = None,
        **overrides: Any,
    ) -> None:
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            settings = settings.replace(**overrides)
        self.settings = settings
        self._identity = identity
        self._paths = frozenset(settings.guarded_paths)
        self._registry = registry
        self._embedder = embedder
        self.limit_overrides = limit_overrides  # rate limits per identity (ratelimit/limiter.py)
        self.limiter: RateLimiter | None = None
        self._lock = asyncio.Lock()
        self._started = False
        self._owns_redis = False
        self.cache: SemanticCache | None = None
        self.auditor: Auditor | None = None  # shadow mode, audits, the error budget (cache/audit/)
        # Set it before startup to use an app's own client (Sentinel, or a RedisCluster of its own).
        self.redis: Redis | RedisCluster | None = None
        self.redis_health = Health()  # one view of Redis for the cache and the limiter: fail fast, log once
        self._node_health: Any = None  # on a cluster: one Health per node (core/redis_cluster.NodeHealth)
        self.index_sync: IndexSync | ClusterIndexSync | None = None  # keeps the local index in step with Redis
        self.metrics: Metrics | None = None
        self.tracing: Tracing | None = None  # OpenTelemetry spans (core/tracing.py); otel imported only if on
        if settings.tracing:  # otel missing: a ConfigurationError naming LLMGUARD_TRACING, now
            self.tracing = backend("tracing")(trace_prompts=settings.trace_prompts, tracer_provider=tracer_provider)
        elif tracer_provider is not None:
            log.warning("llmguard.tracing_off", hint="tracer_provider is used only when LLMGUARD_TRACING is true")
        self.request_log: RequestLog | None = None  # the PostgreSQL request log, opened at startup
        if settings.metrics_enabled:
            self.metrics = Metrics(registry, price_table=settings.price_table, aliases=settings.router_aliases)

    # -- per request -------------------------------------------------------------------------------

    def guards(self, scope: Scope) -> bool:
        """True for requests the stack works on: POSTs to a guarded path."""
        return scope["path"] in self._paths and scope.get("method") == "POST"

    def identify(self, scope: Scope, request: ParsedRequest) -> str:
        if self._identity is not None:
            custom = self._identity(scope, request)
            if custom:
                return hash_identity("app", custom)
        return default_identity(scope, request)

    def refused(self, scope: Scope, status: int) -> None:
        if self.metrics is not None:
            self.metrics.refused(scope.get("path", ""), status)

    # -- lifecycle ---------------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._started

    async def ensure_started(self) -> None:
        if not self._started:
            await self.startup()

    async def startup(self) -> None:
        async with self._lock:
            if self._started:
                return
            if self.settings.request_log_dsn is not None and self.request_log is None:
                # asyncpg missing: a ConfigurationError, before anything opens
                request_log: RequestLog = backend("request_log").from_settings(self.settings, self.metrics)
                await request_log.start()
                self.request_log = request_log
            if self.redis is None:
                self.redis = await self._open_redis()
                self._owns_redis = self.redis is not None
            if self.cluster:
                self._node_health = backend("redis_cluster").NodeHealth(self.redis)
            await self._check_redis()
            self.cache = await self._open_cache() if self.settings.cache_enabled else None
            self.limiter = self._open_limiter()
            self._started = True
            log.info("llmguard.started", cache=self.cache is not None,
                     semantic=self.cache is not None and self.cache.embedder is not None)

    async def shutdown(self) -> None:
        async with self._lock:
            if not self._started:
                return
            if self.request_log is not None:  # writes what is queued, within a bounded wait
                await self.request_log.close()
                self.request_log = None
            if self.index_sync is not None:
                await self.index_sync.stop()
                self.index_sync = None
            if self.auditor is not None:  # audits in flight finish (bounded) before the embedder closes
                await self.auditor.close()
                self.auditor = None
            if self.cache is not None:
                if self.cache.embedder is not None:
                    await self.cache.embedder.close()
                await self.cache.store.close()
                self.cache.close()
            self.cache = None
            if self.redis is not None and self._owns_redis:  # an app's own client stays the app's to close
                await self.redis.aclose()
                self.redis = None
                self._owns_redis = False
            if self.metrics is not None:
                self.metrics.mark_process_dead()
            self._started = False

    def lifespan_receive(self, receive: Receive) -> Receive:
        """Open the resources when the server starts the app, close them when it stops it."""

        async def lifespan(message_source: Receive = receive) -> Message:
            message = await message_source()
            if message["type"] == "lifespan.startup":
                await self.startup()
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
            return message

        return lifespan

    @property
    def cluster(self) -> bool:
        """Whether the guard's Redis is a Redis Cluster (its keys are then spread by hash tags)."""
        return self.redis is not None and type(self.redis).__name__ == "RedisCluster"

    async def _open_redis(self) -> Redis | RedisCluster | None:
        """A client for ``LLMGUARD_REDIS_URL``: a ``RedisCluster`` when the URL says ``+cluster`` or the
        server says ``cluster_enabled:1`` (core/redis_cluster.py). It connects on first use, so a
        Redis that is down at startup does not stop the app (calls fail open and recover when it returns)."""
        url = self.settings.redis_url
        if url is None:
            return None
        timeout = self.settings.redis_timeout_ms / 1000
        if url.startswith(("redis+cluster://", "rediss+cluster://")):
            cluster: Redis | RedisCluster = backend("redis_cluster").connect_cluster(url, timeout=timeout)
            return cluster
        client: Redis = backend("redis")(url, timeout=timeout)
        if url.startswith("unix://"):
            return client
        probe_timeout = max(1.0, timeout)
        try:
            found = await asyncio.wait_for(backend("redis_cluster").probe_cluster(client), probe_timeout)
        except TimeoutError:
            found = None
        if found:
            await client.aclose()
            log.info("llmguard.redis_cluster_detected")
            cluster = backend("redis_cluster").connect_cluster(url, timeout=timeout)
            return cluster
        return client

    def _open_limiter(self) -> RateLimiter:
        """The limiter over the guard's Redis when it has one, else in this process."""
        settings = self.settings
        store: RateLimitStore
        local: LocalShare | None = None
        if self.redis is not None:  # when Redis cannot decide, this replica's share of each limit does
            node_health = None if self._node_health is None else self._node_health.for_key
            store = backend("limit_store.redis")(self.redis, prefix=settings.redis_prefix + "rl:",
                                                 timeout=settings.redis_timeout_ms / 1000, health=self.redis_health,
                                                 cluster=self.cluster, health_for=node_health)
            local = backend("local_share")(settings.rate_limit_local_share, backend("limit_store.memory")())
        else:
            store = backend("limit_store.memory")()
        return RateLimiter(settings, store, metrics=self.metrics, overrides=self.limit_overrides, local=local)

    async def _check_redis(self) -> None:
        """Open the first connection now, not on the first request, and say so when Redis is down."""
        if self.redis is None:
            return
        try:
            await asyncio.wait_for(self.redis.ping(), max(1.0, self.settings.redis_timeout_ms / 1000))
        except Exception as exc:  # fail open: the stores and limiter cope, and resync when it returns
            log.warning("llmguard.redis_unavailable_at_startup", error=type(exc).__name__)

    async def _open_cache(self) -> SemanticCache:
        settings = self.settings
        store: CacheStore
        if self.redis is not None and self.cluster:  # namespaces spread over the cluster's partitions
            store = backend("cache_store.cluster")(self.redis, prefix=settings.redis_prefix,
                                                   partitions=settings.redis_cluster_partitions,
                                                   timeout=settings.redis_timeout_ms / 1000,
                                                   max_entries=settings.cache_max_entries,
                                                   max_bytes=settings.cache_max_bytes,
                                                   health_for=self._node_health.for_key)
        elif self.redis is not None:  # replicas share one cache through Redis
            store = backend("cache_store.redis")(self.redis, prefix=settings.redis_prefix,
                                                 timeout=settings.redis_timeout_ms / 1000,
                                                 max_entries=settings.cache_max_entries,
                                                 max_bytes=settings.cache_max_bytes, health=self.redis_health)
        else:
            store = backend("cache_store.memory")(max_entries=settings.cache_max_entries,
                                                  max_bytes=settings.cache_max_bytes)
        embedder, index, verifier = None, None, None
        # Unverified, only near-identical prompts may share an answer; the verifier's strictness lowers it.
        threshold = settings.cache_threshold or UNVERIFIED_THRESHOLD
        if settings.cache_semantic:
            embedder = await self._open_embedder()
            if embedder is not None and settings.cache_verify:
                try:
                    verifier = backend("verifier")(strictness=settings.cache_strictness,
                                                    threshold=settings.cache_threshold,
                                                    embedding_model=settings.embedding_model)
                except Exception as exc:  # without its verifier the semantic tier must not serve
                    log.error("llmguard.verifier_unavailable", error=str(exc))
                    await embedder.close()
                    embedder = None
            if embedder is not None:
                # Exact numpy search beats usearch below a few thousand vectors per namespace here.
                index = backend("vector_index")(embedder.dimensions, brute_force_below=4096, background_moves=True)
                if verifier is not None:
                    threshold = verifier.threshold
        cache = SemanticCache(settings, store, index=index, embedder=embedder, verifier=verifier,
                              threshold=threshold)
        if self.metrics is not None:
            self.metrics.instrument(embedder, index)
            degraded = self.metrics.degraded
            cache.on_lookup_error = lambda part, exc: degraded.labels(part).inc()
            early = self.metrics.early_verify
            cache.on_early = lambda outcome: early.labels(outcome).inc()
        if index is not None and self.redis is not None:  # the store is the Redis one
            if self.cluster:  # one task per partition, on a connection of their own (or the app's cluster client)
                self.index_sync = backend("index_sync.cluster")(
                    cache, store, metrics=self.metrics, redis_url=settings.redis_url if self._owns_redis else None,
                    client=None if self._owns_redis else self.redis)
            else:
                self.index_sync = backend("index_sync")(cache, store, metrics=self.metrics,
                                                        redis_url=settings.redis_url)
            self.index_sync.start()
        self.auditor = self._open_auditor(cache)
        return cache

    def _open_auditor(self, cache: SemanticCache) -> Auditor | None:
        """Shadow mode, audits and the error budget, when any is on and the semantic tier works."""
        s = self.settings
        if s.cache_mode != "shadow" and s.cache_audit_rate <= 0 and s.cache_max_wrong_rate is None:
            return None
        if cache.embedder is None or cache.index is None:
            log.warning("llmguard.cache.audit_unavailable",
                        hint="shadow mode, audits and LLMGUARD_CACHE_MAX_WRONG_RATE need the semantic tier")
            return None
        verifier = cache.verifier
        default_cut = verifier.cut if verifier is not None else 0.0
        floor = s.cache_cut_floor if s.cache_cut_floor is not None else (
            min(p.cut for p in verifier.points.values()) if verifier is not None else default_cut)
        store = (backend("audit_store.redis")(self.redis, s.redis_prefix) if self.redis is not None
                 else backend("audit_store.memory")())
        target = s.cache_max_wrong_rate
        start_cut = verifier.start_cut(target) if verifier is not None and target is not None else default_cut
        grid = backend("audit_grid")(floor, default_cut, start_cut)
        budget = backend("audit_budget")(store, default_cut=default_cut, target=target, grid=grid,
                                         start_cut=start_cut)
        judge: Any = (backend("audit_judge.embedding")(cache.embedder, s.cache_audit_judge_threshold)
                      if s.cache_audit_judge == "embedding" else None)
        metrics = self.metrics
        if metrics is not None:
            metrics.auditing = True
        auditor: Auditor = backend("auditor")(s, budget, judge,
                                              on_outcome=metrics.audited if metrics is not None else None,
                                              on_spend=metrics.audit_spend if metrics is not None else None)
        if judge is None:  # the LLM judge asks through the auditor: the layers below the cache, as an audit
            auditor.judge = backend("audit_judge.llm")(auditor.ask_judge)
        log.info("llmguard.cache.auditing", mode=s.cache_mode, audit_rate=s.cache_audit_rate,
                 max_wrong_rate=target, floor=floor, default_cut=default_cut, start_cut=start_cut)
        return auditor

    async def insight(self) -> dict[str, Any]:
        """What /stats adds beyond the metrics: per-namespace audit outcomes and cut-offs (from Redis when shared)."""
        auditor = self.auditor
        if auditor is None:
            return {}
        return {"namespaces": await auditor.budget.summary(), "in_flight": auditor.in_flight,
                "concurrency": auditor.concurrency, "upstream_paused": not auditor.gate.open,
                "max_wrong_rate": self.settings.cache_max_wrong_rate}

    async def _open_embedder(self) -> Embedder | None:
        """The embedding model; a model that cannot load leaves the exact tier working (fail open)."""
        embedder = self._embedder
        if embedder is None and self.settings.embedding_url is not None:  # the embedding tier runs apart
            embedder = backend("embedder.remote").from_settings(self.settings)
        if embedder is None:
            s = self.settings
            embedder = backend("embedder.local")(s.embedding_model, s.embedding_model_dir,
                                                 threads=s.embedding_threads, max_batch=s.embedding_max_batch,
                                                 max_pending=s.embedding_max_pending,
                                                 timeout=s.embedding_timeout_ms / 1000)
        try:
            await embedder.start()
        except Exception as exc:
            log.error("llmguard.embedding_unavailable", error=str(exc),
                      hint="set LLMGUARD_EMBEDDING_MODEL_DIR to a local model folder "
                           "(`llmguard build-model DIR` builds one) or allow the hub download"
                      if self.settings.embedding_url is None else
                      "check that LLMGUARD_EMBEDDING_URL serves POST /embeddings with LLMGUARD_EMBEDDING_MODEL")
            if self.metrics is not None:
                self.metrics.degraded.labels("embedding_load").inc()
            return None
        return embedder

    # -- mounting ----------------------------------------------------------------------------------

    def layers(self) -> list[type[Any]]:
        """The layer classes, outermost first."""
        return [MetricsMiddleware, RateLimitMiddleware, SemanticCacheMiddleware, ModelRouterMiddleware,
                SSEPassthroughMiddleware]

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """The whole stack around any ASGI app (Starlette, FastAPI, Django's ASGI handler...)."""
        wrapped = app
        for layer in reversed(self.layers()):
            wrapped = layer(wrapped, guard=self)
        return wrapped

    def install(self, app: Any) -> None:
        """Add the stack to a Starlette/FastAPI app with ``add_middleware`` (the last added is outermost)."""
        for layer in reversed(self.layers()):
            app.add_middleware(layer, guard=self)


class LLMGuardMiddleware:
    """The whole stack as one middleware: ``app.add_middleware(LLMGuardMiddleware, guard=guard)``."""

    def __init__(self, app: ASGIApp, guard: Guard | None = None, **settings: Any) -> None:
        self.guard = guard if guard is not None else Guard(**settings)
        self._stack = self.guard.wrap(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._stack(scope, receive, send)


# ``Layer(app, **settings)`` builds a Guard: the layers ask the core for it, never this module.
set_default_host(Guard)

if TYPE_CHECKING:  # a Guard is the host each layer and the proxy ask for (mypy checks; nothing runs)

    def _hosts(guard: Guard) -> tuple[CacheHost, RateLimitHost, MetricsHost, ProxyHost]:
        return guard, guard, guard, guard
