"""The SSE passthrough layer, the innermost of the stack.

``asgi_llmguard.streaming`` was one module before 0.2.0; this package's face re-exports what that
module exported (without a warning: a module and a package cannot share the name).
"""

from .middleware import SSEPassthroughMiddleware

__all__ = ["SSEPassthroughMiddleware"]
