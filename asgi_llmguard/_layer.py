"""What every layer shares: pass-through of what is not guarded, and opening the exchange.

The first layer a guarded request meets reads the body (capped), parses it, builds
the exchange and installs the one send wrapper; the layers after it find the
exchange in the scope. So each layer works alone as well as in the stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from ._asgi import ClientDisconnected, get_header, read_body, send_error
from ._types import ASGIApp, Receive, Scope, Send
from .errors import RequestError
from .exchange import SCOPE_KEY, Exchange, get_exchange
from .openai_protocol import kind_of_path, parse_request

if TYPE_CHECKING:
    from .guard import Guard

log = structlog.get_logger("asgi_llmguard")


class GuardLayer:
    """Base of the stack's middlewares: ``Layer(app, guard=guard)`` or ``Layer(app, **settings)``."""

    def __init__(self, app: ASGIApp, guard: Guard | None = None, **settings: Any) -> None:
        from .guard import Guard

        self.app = app
        self.guard = guard if guard is not None else Guard(**settings)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self.app(scope, self.guard.lifespan_receive(receive), send)
            return
        if kind != "http":
            await self.app(scope, receive, send)
            return
        if not self.guard.guards(scope):
            if not await self.serve_endpoint(scope, receive, send):
                await self.app(scope, receive, send)
            return
        exchange = get_exchange(scope)
        if exchange is not None:
            await self.handle(exchange, scope, receive, send)
            return
        await self._open_and_handle(scope, receive, send)

    async def _open_and_handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.guard.ensure_started()
        except Exception:  # the stack's trouble never fails a request: serve it unguarded
            log.exception("llmguard.startup_failed")
            await self.app(scope, receive, send)
            return
        try:
            body = await read_body(scope, receive, self.guard.settings.max_body_bytes)
            request = parse_request(body, kind_of_path(scope["path"]), get_header(scope, b"content-type"))
        except ClientDisconnected:
            return
        except RequestError as error:
            await send_error(send, error)
            return
        exchange = Exchange(scope=scope, request=request, raw_body=body,
                            identity=self.guard.identify(scope, request))
        scope[SCOPE_KEY] = exchange
        if self.guard.tracing is not None:  # the request span: current while the stack and the app run
            self.guard.tracing.open(exchange)
        try:
            await self.handle(exchange, scope, exchange.wrap_receive(receive), exchange.wrap_send(send))
        except BaseException as exc:
            exchange.response.failed = True
            if exchange.trace is not None:
                exchange.trace.record_failure(exc)
            raise
        finally:
            try:
                await exchange.finish()
            except Exception:  # a bookkeeping failure must never fail a served request
                log.exception("llmguard.finish_failed", request_id=exchange.request_id)
            if exchange.trace is not None:  # after the finishers: the response is over, the attributes final
                exchange.trace.end(exchange)

    async def serve_endpoint(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Answer one of this layer's own endpoints (metrics, admin...); False when not one."""
        return False

    async def handle(self, exchange: Exchange, scope: Scope, receive: Receive, send: Send) -> None:
        """This layer's work on a guarded request; the base passes it on."""
        await self.app(scope, receive, send)
