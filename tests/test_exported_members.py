"""The public API is a tested list (as httpx's tests/test_exported_members.py): changing it is a decision."""

from __future__ import annotations

import importlib
import sys
import warnings

import pytest

import asgi_llmguard

EXPECTED = [
    "ConfigurationError",
    "Exchange",
    "Guard",
    "LLMGuardError",
    "LLMGuardMiddleware",
    "LLMProxy",
    "Metrics",
    "MetricsMiddleware",
    "ModelRouterMiddleware",
    "RateLimitMiddleware",
    "RateLimits",
    "RequestError",
    "SSEPassthroughMiddleware",
    "SemanticCache",
    "SemanticCacheMiddleware",
    "Settings",
    "Upstream",
    "get_exchange",
]

# Where each module of 0.1.0 went: the old path keeps working for one release (docs/changelog.md).
MOVED = {
    "admin": "cache.admin",
    "balancer": "routing.balancer",
    "cache_keys": "cache.keys",
    "complexity": "routing.complexity",
    "dashboard": "observability.dashboard",
    "exchange": "core.exchange",
    "indexsync": "cache.index_sync",
    "logevent": "observability.log_event",
    "metrics": "observability.metrics",
    "observer": "core.observer",
    "openai_protocol": "core.openai_protocol",
    "proxy": "routing.proxy",
    "ratelimit_store": "ratelimit.store",
    "remote_embedding": "embedding.remote",
    "requestlog": "observability.request_log",
    "router": "routing.middleware",
    "storage.base": "cache.stores.base",
    "storage.memory": "cache.stores.memory",
    "storage.redis": "cache.stores.redis",
    "storage.ratelimit_memory": "ratelimit.stores.memory",
    "storage.ratelimit_redis": "ratelimit.stores.redis",
    "tokens": "core.tokens",
    "tracing": "core.tracing",
    "vectorindex": "cache.index",
    "verify": "cache.verify",
}

# An old module that shares its name with a new subpackage: the package re-exports what it exported.
SAME_NAME = {
    "cache": ["SemanticCache", "SemanticCacheMiddleware", "Hit", "Lookup", "cache_control", "describe"],
    "ratelimit": ["LimitOverrides", "RateLimitMiddleware", "RateLimiter", "RateLimits", "Verdict", "format_duration"],
    "embedding": ["DEFAULT_MODEL", "Embedder", "EmbeddingStats", "EmbeddingUnavailable", "FastEmbedEmbedder", "Vector",
                  "load_text_embedding"],
    "streaming": ["SSEPassthroughMiddleware"],
}


def test_all_is_sorted_and_is_the_expected_list() -> None:
    assert asgi_llmguard.__all__ == sorted(asgi_llmguard.__all__)
    assert asgi_llmguard.__all__ == EXPECTED


def test_every_public_name_is_there_and_says_where_it_lives() -> None:
    for name in asgi_llmguard.__all__:
        member = getattr(asgi_llmguard, name)
        assert member.__module__.startswith("asgi_llmguard."), name


def test_the_version_comes_from_the_bottom_module() -> None:
    from asgi_llmguard.core.version import __version__

    assert asgi_llmguard.__version__ == __version__


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_an_old_module_path_still_imports_and_warns(old: str, new: str) -> None:
    target = importlib.import_module(f"asgi_llmguard.{new}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in [f"asgi_llmguard.{old}", *([f"asgi_llmguard.{old.split('.')[0]}"] if "." in old else [])]:
            sys.modules.pop(name, None)
        alias = importlib.import_module(f"asgi_llmguard.{old}")
    messages = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
    assert any(f"asgi_llmguard.{old} moved to" in m and f"asgi_llmguard.{new}" in m for m in messages), messages
    public = [n for n in vars(target) if not n.startswith("_")]
    assert all(getattr(alias, n) is getattr(target, n) for n in public)
    private = [n for n in vars(target) if n.startswith("_") and not n.startswith("__")]
    assert all(getattr(alias, n) is getattr(target, n) for n in private)  # through the alias's __getattr__


@pytest.mark.parametrize(("package", "names"), sorted(SAME_NAME.items()))
def test_a_subpackage_with_an_old_modules_name_exports_what_it_did(package: str, names: list[str]) -> None:
    module = importlib.import_module(f"asgi_llmguard.{package}")
    for name in names:
        assert hasattr(module, name), f"asgi_llmguard.{package}.{name}"


def test_the_embedding_server_path_of_the_docs_still_works_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sys.modules.pop("asgi_llmguard.embedding_server", None)
        module = importlib.import_module("asgi_llmguard.embedding_server")
    from asgi_llmguard.embedding.server import create_app, main

    assert module.main is main and module.create_app is create_app
