"""The semantic cache: its layer, engine, keys, verifier, vector index, index sync and stores.

``asgi_llmguard.cache`` was one module before 0.2.0; this package's face re-exports what that
module exported (without a warning: a module and a package cannot share the name).
"""

from .engine import CacheHost, Hit, SemanticCache, describe
from .middleware import Lookup, SemanticCacheMiddleware, cache_control

__all__ = ["CacheHost", "Hit", "Lookup", "SemanticCache", "SemanticCacheMiddleware", "cache_control", "describe"]
