"""asgi_llmguard: an LLM gateway's rate limits, semantic cache, routing and metrics inside your ASGI app."""

from .cache import SemanticCache, SemanticCacheMiddleware
from .config import Settings, Upstream
from .errors import ConfigurationError, LLMGuardError, RequestError
from .exchange import Exchange, get_exchange
from .guard import Guard, LLMGuardMiddleware
from .metrics import Metrics, MetricsMiddleware
from .proxy import LLMProxy
from .ratelimit import RateLimitMiddleware, RateLimits
from .router import ModelRouterMiddleware
from .streaming import SSEPassthroughMiddleware

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
__version__ = "0.1.0"
