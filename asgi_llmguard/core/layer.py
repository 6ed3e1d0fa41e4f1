"""What every layer shares: pass-through of what is not guarded, and opening the exchange.

The first layer a guarded request meets reads the body (capped), parses it, builds
the exchange and installs the one send wrapper; the layers after it find the
exchange in the scope. So each layer works alone as well as in the stack.

A layer knows its guard only as a :class:`LayerHost`: the few things it calls. ``guard.py``
composes the stack and registers :class:`~asgi_llmguard.Guard` as the host a layer builds from
keyword arguments (``Layer(app, cache_ttl_seconds=60)``), so no layer imports the composition root.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast

import structlog

from ..errors import RequestError
from .asgi import ClientDisconnected, get_header, read_body, send_error
from .exchange import SCOPE_KEY, Exchange, get_exchange
from .openai_protocol import ParsedRequest, kind_of_path, parse_request
from .types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from ..config import Settings
    from .tracing import Tracing

log = structlog.get_logger("asgi_llmguard")


class LayerHost(Protocol):
    """What every layer needs of its guard; each capability adds what its own layer reads."""

    @property
    def settings(self) -> Settings: ...

    @property
    def tracing(self) -> Tracing | None: ...

    def guards(self, scope: Scope) -> bool: ...

    def identify(self, scope: Scope, request: ParsedRequest) -> str: ...

    def refused(self, scope: Scope, status: int) -> None:
        """A guarded request was refused before it had an exchange (400, 413, 415): count it."""
        ...

    async def ensure_started(self) -> None: ...

    def lifespan_receive(self, receive: Receive) -> Receive: ...


HostT = TypeVar("HostT", bound=LayerHost)

_default_host: Callable[..., LayerHost] | None = None


def set_default_host(factory: Callable[..., LayerHost]) -> None:
    """What ``Layer(app, **settings)`` builds; ``guard.py`` registers ``Guard`` when it is imported
    (importing any part of the package imports it: ``asgi_llmguard/__init__.py`` does)."""
    global _default_host
    _default_host = factory


class GuardLayer(Generic[HostT]):
    """Base of the stack's middlewares: ``Layer(app, guard=guard)`` or ``Layer(app, **settings)``."""

    def __init__(self, app: ASGIApp, guard: HostT | None = None, **settings: Any) -> None:
        self.app = app
        if guard is None:
            if _default_host is None:  # pragma: no cover - asgi_llmguard/__init__ registers it
                raise TypeError(f"{type(self).__name__} needs guard=... (no default guard is registered)")
            guard = cast(HostT, _default_host(**settings))
        self.guard: HostT = guard

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
            self.guard.refused(scope, error.status)
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
