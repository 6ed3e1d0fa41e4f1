"""asgi_llmguard: an LLM gateway's rate limits, semantic cache, routing and metrics inside your ASGI app.

The public names are the ones in ``__all__``; the rest lives in the subpackages (``core``,
``cache``, ``embedding``, ``ratelimit``, ``routing``, ``streaming``, ``observability``), composed
by ``guard.py``.
"""

from .cache.engine import SemanticCache
from .cache.middleware import SemanticCacheMiddleware
from .config import Settings, Upstream
from .core.exchange import Exchange, get_exchange
from .core.version import __version__ as __version__
from .errors import ConfigurationError, LLMGuardError, RequestError
from .guard import Guard, LLMGuardMiddleware
from .observability.metrics import Metrics
from .observability.middleware import MetricsMiddleware
from .ratelimit.limiter import RateLimits
from .ratelimit.middleware import RateLimitMiddleware
from .routing.middleware import ModelRouterMiddleware
from .routing.proxy import LLMProxy
from .streaming.middleware import SSEPassthroughMiddleware

__all__ = [
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
