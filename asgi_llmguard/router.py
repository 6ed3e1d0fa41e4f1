"""The model router: a request naming an alias gets a concrete model, and the body is rewritten."""

from __future__ import annotations

from ._layer import GuardLayer
from ._types import Receive, Scope, Send
from .exchange import Exchange
from .openai_protocol import ParsedRequest

LONG_PROMPT_CHARS = 2000


def choose_model(request: ParsedRequest, models: tuple[str, ...]) -> str:
    """Cheapest model unless the request looks demanding (a first estimate: size and depth)."""
    if len(models) == 1:
        return models[0]
    size = len(request.last_user_text() or "") + sum(len(str(m.get("content", ""))) for m in request.messages[:-1])
    demanding = size > LONG_PROMPT_CHARS or len(request.messages) > 8 or (request.max_tokens or 0) > 1024
    return models[-1] if demanding else models[0]


class ModelRouterMiddleware(GuardLayer):
    """Rewrites a model alias (``LLMGUARD_ROUTER_ALIASES``) into the model chosen for this request."""

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        models = self.guard.settings.router_aliases.get(exchange.request.model)
        if models:
            chosen = choose_model(exchange.request, models)
            exchange.routed_model = chosen
            exchange.set_field("model", chosen)
            exchange.set_header("X-LLMGuard-Model", chosen)
        await self.app(scope, receive, send)
