"""The model router: a request naming an alias gets a concrete model, and the body is rewritten.

The alias's models are tiers, cheapest first (``LLMGUARD_ROUTER_ALIASES``). The request's
complexity score (:mod:`asgi_llmguard.routing.complexity`) picks the tier, with the boundaries of
``LLMGUARD_ROUTER_THRESHOLDS`` or an even split. A request naming a concrete model passes
untouched. Without LLMProxy this rewrite is all the router does; with it, LLMProxy then picks
the backend that serves the chosen model.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..core.exchange import Exchange
from ..core.layer import GuardLayer, LayerHost
from ..core.openai_protocol import ParsedRequest
from ..core.types import Receive, Scope, Send
from .complexity import choose_tier, estimate_complexity

__all__ = ["ModelRouterMiddleware", "choose_model"]


def choose_model(request: ParsedRequest, models: Sequence[str], thresholds: Sequence[float] | None = None
                 ) -> tuple[str, float]:
    """The model for this request among ``models`` (cheapest first), and the complexity score behind it."""
    if len(models) == 1:
        return models[0], 0.0
    score = estimate_complexity(request).score
    usable = thresholds if thresholds is not None and len(thresholds) == len(models) - 1 else None
    return models[choose_tier(score, len(models), usable)], score


class ModelRouterMiddleware(GuardLayer[LayerHost]):
    """Rewrites a model alias (``LLMGUARD_ROUTER_ALIASES``) into the model chosen for this request."""

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.guard.settings
        models = settings.router_aliases.get(exchange.request.model)
        if models:
            chosen, score = choose_model(exchange.request, models, settings.router_thresholds)
            exchange.routed_model = chosen
            exchange.extras["complexity"] = round(score, 3)
            exchange.set_field("model", chosen)
            exchange.set_header("X-LLMGuard-Model", chosen)
        await self.app(scope, receive, send)
