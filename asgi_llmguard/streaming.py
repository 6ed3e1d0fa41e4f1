"""The SSE passthrough layer: the innermost guard, next to the app's endpoint.

The response observer (installed with the exchange) already sees every byte
without holding any back; this layer is where disconnect handling and keep-alive
belong. For now it passes the request on.
"""

from __future__ import annotations

from ._layer import GuardLayer


class SSEPassthroughMiddleware(GuardLayer):
    """Streams the app's response straight through (pass-through for now)."""
