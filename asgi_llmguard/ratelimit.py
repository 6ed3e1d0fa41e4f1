"""The rate-limit layer. For now it passes requests on; limits arrive with their own issue."""

from __future__ import annotations

from ._layer import GuardLayer


class RateLimitMiddleware(GuardLayer):
    """Requests and tokens per minute per identity, and a global ceiling (pass-through for now)."""
