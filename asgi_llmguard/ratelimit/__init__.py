"""Rate limits: the layer, the limiter, the GCRA store protocol and its memory and Redis twins (Lua).

``asgi_llmguard.ratelimit`` was one module before 0.2.0; this package's face re-exports what that
module exported (without a warning: a module and a package cannot share the name).
"""

from .limiter import LimitMetrics, LimitOverrides, RateLimiter, RateLimits, Verdict, format_duration
from .middleware import RateLimitHost, RateLimitMiddleware

__all__ = [
    "LimitMetrics",
    "LimitOverrides",
    "RateLimitHost",
    "RateLimitMiddleware",
    "RateLimiter",
    "RateLimits",
    "Verdict",
    "format_duration",
]
