"""Deprecated: the cache stores moved to :mod:`asgi_llmguard.cache.stores`, the rate-limit stores to
:mod:`asgi_llmguard.ratelimit.stores` (in 0.2.0; this package goes in 0.3.0)."""

from .._moved import moved
from ..cache import stores as _cache_stores
from ..ratelimit import stores as _ratelimit_stores

__getattr__ = moved(__name__, _cache_stores, _ratelimit_stores)
