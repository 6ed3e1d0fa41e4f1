"""Settings: one frozen object, read once from ``LLMGUARD_*`` variables or keyword arguments.

Every field maps to the environment variable ``LLMGUARD_<FIELD NAME IN CAPITALS>``.
Keyword arguments win over the environment. A value that cannot be used fails at
construction with a :class:`ConfigurationError` naming the variable and what it
expected, so a typo in a deployment fails at startup, not on the first request.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, TypeVar, cast

from .errors import ConfigurationError

ENV_PREFIX = "LLMGUARD_"
DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Upstream:
    """One OpenAI-compatible backend for LLMProxy."""

    url: str
    models: tuple[str, ...] = ()
    api_key_env: str | None = None


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _fail(name: str, expected: str, got: object) -> ConfigurationError:
    return ConfigurationError(f"{env_name(name)}: expected {expected}, got {got!r}")


def _parse_bool(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _fail(name, "a boolean (true/false, 1/0, yes/no, on/off)", raw)


def _parse_number(kind: Callable[[str], T], expected: str) -> Callable[[str, str], T]:
    def parse(name: str, raw: str) -> T:
        try:
            return kind(raw.strip())
        except ValueError:
            raise _fail(name, expected, raw) from None

    return parse


def _parse_optional_str(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _parse_str(name: str, raw: str) -> str:
    return raw.strip()


def _parse_paths(name: str, raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _parse_json(name: str, raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise _fail(name, f"JSON ({exc.msg} at position {exc.pos})", raw) from None


def _parse_optional_path(name: str, raw: str) -> str | None:
    value = raw.strip()
    return None if value.lower() in {"", "off", "none", "false", "0"} else value


def _parse_optional_float(name: str, raw: str) -> float | None:
    value = raw.strip()
    if value.lower() in {"", "off", "none"}:
        return None
    return _parse_float(name, value)


def _env(parse: Callable[[str, str], Any]) -> dict[str, Any]:
    return {"parse": parse}


_parse_int = _parse_number(int, "an integer")
_parse_float = _parse_number(float, "a number")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the stack can be told; see docs/configuration.md for the table."""

    # Shared state
    redis_url: str | None = field(default=None, metadata=_env(_parse_optional_str))
    redis_prefix: str = field(default="llmguard:", metadata=_env(_parse_str))
    # Redis Cluster: how many hash-tagged partitions the cache's namespaces are spread over
    redis_cluster_partitions: int = field(default=64, metadata=_env(_parse_int))
    redis_timeout_ms: float = field(default=100.0, metadata=_env(_parse_float))

    # Which requests are guarded
    guarded_paths: tuple[str, ...] = field(
        default=("/v1/chat/completions", "/v1/completions"), metadata=_env(_parse_paths)
    )
    max_body_bytes: int = field(default=2 * 1024 * 1024, metadata=_env(_parse_int))

    # Semantic cache
    cache_enabled: bool = field(default=True, metadata=_env(_parse_bool))
    cache_threshold: float | None = field(default=None, metadata=_env(_parse_float))
    cache_verify: bool = field(default=True, metadata=_env(_parse_bool))
    # Start the pair model on the likeliest stored prompt while the embedding runs (cache/lexicon.py)
    cache_early_verify: bool = field(default=True, metadata=_env(_parse_bool))
    cache_strictness: Literal["strict", "balanced", "loose"] = field(default="balanced", metadata=_env(_parse_str))
    cache_semantic: bool = field(default=True, metadata=_env(_parse_bool))
    cache_ttl_seconds: int = field(default=3600, metadata=_env(_parse_int))
    cache_scope: Literal["identity", "global"] = field(default="identity", metadata=_env(_parse_str))
    cache_max_entries: int = field(default=10_000, metadata=_env(_parse_int))
    cache_max_bytes: int = field(default=64 * 1024 * 1024, metadata=_env(_parse_int))
    cache_bypass_time_sensitive: bool = field(default=True, metadata=_env(_parse_bool))
    cache_single_flight_timeout_ms: float = field(default=30_000.0, metadata=_env(_parse_float))
    cache_admin_path: str | None = field(default=None, metadata=_env(_parse_optional_path))
    admin_token: str | None = field(default=None, metadata=_env(_parse_optional_str))
    # Knowing the cache's own wrong-hit rate (cache/audit/): shadow mode, audited hits, an error budget
    cache_mode: Literal["serve", "shadow"] = field(default="serve", metadata=_env(_parse_str))
    cache_audit_rate: float = field(default=0.0, metadata=_env(_parse_float))
    cache_audit_concurrency: int = field(default=4, metadata=_env(_parse_int))
    cache_audit_timeout_seconds: float = field(default=60.0, metadata=_env(_parse_float))
    cache_audit_pause_seconds: float = field(default=5.0, metadata=_env(_parse_float))
    cache_audit_judge: Literal["embedding", "llm"] = field(default="embedding", metadata=_env(_parse_str))
    cache_audit_judge_threshold: float = field(default=0.9, metadata=_env(_parse_float))
    cache_audit_judge_model: str | None = field(default=None, metadata=_env(_parse_optional_str))
    cache_max_wrong_rate: float | None = field(default=None, metadata=_env(_parse_optional_float))
    cache_cut_floor: float | None = field(default=None, metadata=_env(_parse_optional_float))

    # Embedding
    embedding_model: str = field(default=DEFAULT_EMBEDDING_MODEL, metadata=_env(_parse_str))
    embedding_model_dir: str | None = field(default=None, metadata=_env(_parse_optional_str))
    embedding_url: str | None = field(default=None, metadata=_env(_parse_optional_str))
    embedding_api_key: str | None = field(default=None, repr=False, metadata=_env(_parse_optional_str))
    embedding_timeout_ms: float = field(default=500.0, metadata=_env(_parse_float))
    embedding_threads: int = field(default=1, metadata=_env(_parse_int))
    embedding_max_batch: int = field(default=32, metadata=_env(_parse_int))
    embedding_max_pending: int = field(default=256, metadata=_env(_parse_int))

    # Rate limits (0 = off)
    rate_limit_rpm: int = field(default=0, metadata=_env(_parse_int))
    rate_limit_tpm: int = field(default=0, metadata=_env(_parse_int))
    global_rpm: int = field(default=0, metadata=_env(_parse_int))
    rate_limit_window_seconds: float = field(default=60.0, metadata=_env(_parse_float))
    rate_limit_fail_closed: bool = field(default=False, metadata=_env(_parse_bool))
    rate_limit_local_share: float = field(default=0.5, metadata=_env(_parse_float))  # of each limit, Redis failing
    rate_limit_count_cache_hits: bool = field(default=True, metadata=_env(_parse_bool))
    rate_limit_cache_hits_cost_tokens: bool = field(default=False, metadata=_env(_parse_bool))

    # Router and proxy
    router_aliases: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), metadata=_env(_parse_json)
    )
    router_thresholds: tuple[float, ...] | None = field(default=None, metadata=_env(_parse_json))
    upstreams: tuple[Upstream, ...] = field(default=(), metadata=_env(_parse_json))
    upstream_connect_timeout_ms: float = field(default=2_000.0, metadata=_env(_parse_float))
    upstream_read_timeout_ms: float = field(default=120_000.0, metadata=_env(_parse_float))
    upstream_max_attempts: int = field(default=3, metadata=_env(_parse_int))
    upstream_retry_backoff_ms: float = field(default=50.0, metadata=_env(_parse_float))
    upstream_affinity: bool = field(default=False, metadata=_env(_parse_bool))
    breaker_failures: int = field(default=5, metadata=_env(_parse_int))
    breaker_open_seconds: float = field(default=5.0, metadata=_env(_parse_float))
    balancer_decay_seconds: float = field(default=10.0, metadata=_env(_parse_float))

    # Insight
    metrics_enabled: bool = field(default=True, metadata=_env(_parse_bool))
    metrics_path: str | None = field(default="/metrics", metadata=_env(_parse_optional_path))
    stats_path: str | None = field(default=None, metadata=_env(_parse_optional_path))
    dashboard_path: str | None = field(default=None, metadata=_env(_parse_optional_path))
    price_table: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: MappingProxyType({}), metadata=_env(_parse_json)
    )
    log_prompts: bool = field(default=False, metadata=_env(_parse_bool))
    tracing: bool = field(default=False, metadata=_env(_parse_bool))  # OpenTelemetry spans (tracing.py)
    trace_prompts: bool = field(default=False, metadata=_env(_parse_bool))
    # repr=False: a DSN may hold a password
    request_log_dsn: str | None = field(default=None, repr=False, metadata=_env(_parse_optional_str))
    request_log_queue: int = field(default=10_000, metadata=_env(_parse_int))
    request_log_batch: int = field(default=1_000, metadata=_env(_parse_int))
    request_log_flush_ms: float = field(default=500.0, metadata=_env(_parse_float))

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``LLMGUARD_*`` variables (``os.environ`` by default); keyword arguments win."""
        env = os.environ if environ is None else environ
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - names)
        if unknown:
            raise ConfigurationError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name in overrides:
                values[f.name] = overrides[f.name]
            elif env_name(f.name) in env:
                values[f.name] = f.metadata["parse"](f.name, env[env_name(f.name)])
        return cls(**values)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _require(ok: bool, name: str, expected: str, got: object) -> None:
    if not ok:
        raise _fail(name, expected, got)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _coerce(settings: Settings, name: str, value: object) -> None:
    object.__setattr__(settings, name, value)


def _validate(s: Settings) -> None:
    for name in ("cache_enabled", "cache_verify", "cache_early_verify", "cache_semantic", "cache_bypass_time_sensitive",
                 "metrics_enabled", "log_prompts", "rate_limit_fail_closed", "rate_limit_count_cache_hits",
                 "rate_limit_cache_hits_cost_tokens", "upstream_affinity", "tracing", "trace_prompts"):
        _require(isinstance(getattr(s, name), bool), name, "a boolean", getattr(s, name))
    for name in ("max_body_bytes", "cache_ttl_seconds", "cache_max_entries", "cache_max_bytes",
                 "embedding_threads", "embedding_max_batch", "embedding_max_pending", "upstream_max_attempts",
                 "breaker_failures", "request_log_queue", "request_log_batch"):
        value = getattr(s, name)
        _require(_is_int(value) and value > 0, name, "a positive integer", value)
    for name in ("rate_limit_rpm", "rate_limit_tpm", "global_rpm"):
        value = getattr(s, name)
        _require(_is_int(value) and value >= 0, name, "an integer ≥ 0 (0 turns the limit off)", value)
    for name in ("redis_timeout_ms", "embedding_timeout_ms", "cache_single_flight_timeout_ms",
                 "rate_limit_window_seconds", "upstream_connect_timeout_ms", "upstream_read_timeout_ms",
                 "breaker_open_seconds", "balancer_decay_seconds", "request_log_flush_ms"):
        value = getattr(s, name)
        unit = "seconds" if name.endswith("seconds") else "milliseconds"
        _require(_is_number(value) and value > 0, name, f"a positive number of {unit}", value)
    _require(_is_number(s.rate_limit_local_share) and 0 < s.rate_limit_local_share <= 1, "rate_limit_local_share",
             "a fraction in (0, 1]: each replica's part of a limit while Redis cannot decide, e.g. 0.5 for "
             "2 replicas", s.rate_limit_local_share)
    _require(_is_number(s.upstream_retry_backoff_ms) and s.upstream_retry_backoff_ms >= 0,
             "upstream_retry_backoff_ms", "a number of milliseconds ≥ 0", s.upstream_retry_backoff_ms)
    if s.cache_threshold is not None:
        _require(_is_number(s.cache_threshold) and 0.0 < s.cache_threshold <= 1.0,
                 "cache_threshold", "a number in (0, 1]", s.cache_threshold)
    _require(s.cache_scope in ("identity", "global"), "cache_scope", "'identity' or 'global'", s.cache_scope)
    _validate_audit(s)
    _require(s.cache_strictness in ("strict", "balanced", "loose"), "cache_strictness",
             "'strict', 'balanced' or 'loose'", s.cache_strictness)
    if s.redis_url is not None:
        _require(isinstance(s.redis_url, str) and s.redis_url.split("://", 1)[0] in
                 {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster"}, "redis_url",
                 "a redis://, rediss://, unix://, redis+cluster:// or rediss+cluster:// URL", s.redis_url)
    _require(_is_int(s.redis_cluster_partitions) and 1 <= s.redis_cluster_partitions <= 1024,
             "redis_cluster_partitions", "an integer from 1 to 1024", s.redis_cluster_partitions)
    dsn = s.request_log_dsn
    if dsn is not None:  # the message never echoes a DSN: it may hold a password
        scheme = dsn.split("://", 1)[0] if isinstance(dsn, str) and "://" in dsn else None
        _require(scheme in {"postgres", "postgresql"}, "request_log_dsn", "a postgresql:// or postgres:// DSN",
                 f"{scheme}://..." if scheme is not None else "a value without a scheme")
    if s.embedding_url is not None:  # the OpenAI base URL: the client appends /embeddings
        _require(isinstance(s.embedding_url, str) and s.embedding_url.startswith(("http://", "https://"))
                 and not s.embedding_url.rstrip("/").endswith("/embeddings"), "embedding_url",
                 "an http(s) base URL with /v1, e.g. http://127.0.0.1:8100/v1 (/embeddings is appended)",
                 s.embedding_url)
        _coerce(s, "embedding_url", s.embedding_url.rstrip("/"))
    for name in ("redis_prefix", "embedding_model"):
        _require(isinstance(getattr(s, name), str) and bool(getattr(s, name)), name, "a non-empty string",
                 getattr(s, name))
    paths = s.guarded_paths
    if isinstance(paths, str):
        paths = (paths,)
    _require(isinstance(paths, tuple | list) and all(isinstance(p, str) and p.startswith("/") for p in paths),
             "guarded_paths", "paths starting with '/', comma-separated", s.guarded_paths)
    _coerce(s, "guarded_paths", tuple(paths))
    for name in ("metrics_path", "stats_path", "dashboard_path", "cache_admin_path"):
        value = getattr(s, name)
        _require(value is None or (isinstance(value, str) and value.startswith("/")), name,
                 "a path starting with '/' (or 'off')", value)
    if s.cache_admin_path is not None:
        _require(bool(s.admin_token), "admin_token",
                 "a token when LLMGUARD_CACHE_ADMIN_PATH is set (admin endpoints require one)", s.admin_token)
    _coerce(s, "router_aliases", _aliases(s.router_aliases))
    _coerce(s, "upstreams", _upstreams(s.upstreams))
    _coerce(s, "router_thresholds", _thresholds(s.router_thresholds))
    if s.router_thresholds is not None:
        for alias, models in s.router_aliases.items():
            _require(len(models) == 1 or len(models) == len(s.router_thresholds) + 1, "router_thresholds",
                     f"one threshold fewer than the models of alias {alias!r} ({len(models)} models)",
                     list(s.router_thresholds))
    _coerce(s, "price_table", _prices(s.price_table))


def _validate_audit(s: Settings) -> None:
    """Shadow mode, audits and the error budget (cache/audit/)."""
    _require(s.cache_mode in ("serve", "shadow"), "cache_mode",
             "'serve' (answer hits from the cache) or 'shadow' (look up and judge, but always ask upstream)",
             s.cache_mode)
    _require(_is_number(s.cache_audit_rate) and 0.0 <= s.cache_audit_rate <= 1.0, "cache_audit_rate",
             "a fraction in [0, 1] of semantic hits to re-ask upstream (0 turns audits off)", s.cache_audit_rate)
    _require(_is_int(s.cache_audit_concurrency) and s.cache_audit_concurrency > 0, "cache_audit_concurrency",
             "a positive integer (audits in flight at once)", s.cache_audit_concurrency)
    for name in ("cache_audit_timeout_seconds", "cache_audit_pause_seconds"):
        value = getattr(s, name)
        _require(_is_number(value) and value > 0, name, "a positive number of seconds", value)
    _require(s.cache_audit_judge in ("embedding", "llm"), "cache_audit_judge",
             "'embedding' (the cosine of the two answers) or 'llm' (a yes/no question through the upstream)",
             s.cache_audit_judge)
    _require(_is_number(s.cache_audit_judge_threshold) and 0.0 < s.cache_audit_judge_threshold <= 1.0,
             "cache_audit_judge_threshold", "a cosine in (0, 1] above which two answers count as the same",
             s.cache_audit_judge_threshold)
    rate = s.cache_max_wrong_rate
    if rate is not None:
        _require(_is_number(rate) and 0.0 < rate < 0.5, "cache_max_wrong_rate",
                 "a fraction in (0, 0.5), e.g. 0.01 for at most 1% wrong hits (or 'off')", rate)
        _require(s.cache_verify, "cache_max_wrong_rate",
                 "the verifier on (LLMGUARD_CACHE_VERIFY=true): the error budget moves its cut-off", rate)
        _require(s.cache_audit_rate > 0 or s.cache_mode == "shadow", "cache_max_wrong_rate",
                 "audits to learn from: set LLMGUARD_CACHE_AUDIT_RATE > 0 or LLMGUARD_CACHE_MODE=shadow", rate)
    if s.cache_cut_floor is not None:
        _require(_is_number(s.cache_cut_floor), "cache_cut_floor", "a number (verifier log-odds)",
                 s.cache_cut_floor)


def _aliases(raw: object) -> Mapping[str, tuple[str, ...]]:
    expected = 'a JSON object of alias to model list, e.g. {"auto": ["small-model", "large-model"]}'
    if not isinstance(raw, Mapping):
        raise _fail("router_aliases", expected, raw)
    aliases: dict[str, tuple[str, ...]] = {}
    for alias, models in raw.items():
        ok = isinstance(alias, str) and isinstance(models, list | tuple) and len(models) > 0
        ok = ok and all(isinstance(m, str) and m for m in models)
        _require(ok, "router_aliases", expected, raw)
        aliases[alias] = tuple(models)
    return MappingProxyType(aliases)


def _prices(raw: object) -> Mapping[str, Mapping[str, float]]:
    """Model to USD per million prompt and completion tokens: what a cache hit saved."""
    expected = 'a JSON object of model to {"prompt": USD, "completion": USD} per 1M tokens, numbers >= 0'
    if not isinstance(raw, Mapping):
        raise _fail("price_table", expected, raw)
    prices: dict[str, Mapping[str, float]] = {}
    for model, price in raw.items():
        ok = isinstance(model, str) and bool(model) and isinstance(price, Mapping)
        ok = ok and set(price) == {"prompt", "completion"}
        ok = ok and all(_is_number(v) and v >= 0 for v in price.values())
        _require(ok, "price_table", expected, raw)
        prices[model] = MappingProxyType({k: float(v) for k, v in price.items()})
    return MappingProxyType(prices)


def _thresholds(raw: object) -> tuple[float, ...] | None:
    if raw is None:
        return None
    expected = "a JSON list of increasing numbers in (0, 1), one fewer than an alias's models, e.g. [0.45]"
    if not isinstance(raw, list | tuple):
        raise _fail("router_thresholds", expected, raw)
    values = list(raw)
    ok = len(values) > 0 and all(_is_number(v) and 0 < v < 1 for v in values)
    ok = ok and all(a < b for a, b in itertools.pairwise(values))
    _require(ok, "router_thresholds", expected, raw)
    return tuple(float(v) for v in values)


def _upstreams(raw: object) -> tuple[Upstream, ...]:
    expected = 'a JSON list of {"url": ..., "models": [...], "api_key_env": ...}'
    if not isinstance(raw, list | tuple):
        raise _fail("upstreams", expected, raw)
    result: list[Upstream] = []
    for item in raw:
        if isinstance(item, Upstream):
            result.append(item)
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("url"), str):
            raise _fail("upstreams", expected, raw)
        url = cast(str, item["url"])
        _require(url.startswith(("http://", "https://")), "upstreams", "upstream URLs with http:// or https://", url)
        models = item.get("models", [])
        _require(isinstance(models, list) and all(isinstance(m, str) for m in models), "upstreams",
                 "a list of model names in 'models'", models)
        key_env = item.get("api_key_env")
        _require(key_env is None or isinstance(key_env, str), "upstreams", "a variable name in 'api_key_env'",
                 key_env)
        result.append(Upstream(url=url.rstrip("/"), models=tuple(models), api_key_env=key_env))
    return tuple(result)
