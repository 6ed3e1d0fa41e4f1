"""The per-request exchange: parsed once, shared by every layer through the ASGI scope."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import structlog

from .asgi import BodyReplay, bearer_token, set_request_header
from .observer import ResponseObserver
from .openai_protocol import ParsedRequest, dump_json
from .types import Message, Receive, Scope, Send

log = structlog.get_logger("asgi_llmguard")

SCOPE_KEY = "llmguard.exchange"
CacheStatus = Literal["hit", "miss", "bypass"]
Finisher = Callable[["Exchange"], Awaitable[None]]
IdentityFunc = Callable[[Scope, ParsedRequest], str | None]


class Trace(Protocol):
    """What an exchange keeps of its request span when tracing is on (:class:`.tracing.RequestTrace`)."""

    def record_failure(self, exc: BaseException) -> None: ...

    def end(self, exchange: Exchange) -> None: ...


def get_exchange(scope: Scope) -> Exchange | None:
    """The exchange of a guarded request, or None outside one."""
    exchange: Exchange | None = scope.get(SCOPE_KEY)
    return exchange


def hash_identity(kind: str, value: str) -> str:
    """Identities are hashed before they are stored, logged or used as keys: no key in clear."""
    return kind + ":" + hashlib.sha256(value.encode()).hexdigest()[:24]


def default_identity(scope: Scope, request: ParsedRequest) -> str:
    """Bearer token, else the client address: never anything from the body.

    A client chooses its body, so the body's ``user`` field cannot name an identity (it would
    spend another's limits and read another's answers); it only narrows cache sharing within the
    identity it came with (:attr:`Exchange.cache_identity`). An app that vouches for ``user``
    says so with ``Guard(identity=lambda scope, request: request.user)``. The client address is
    what the server reports: behind a proxy, uvicorn's ``--forwarded-allow-ips`` decides whose
    ``X-Forwarded-For`` it believes.
    """
    token = bearer_token(scope)
    if token:
        return hash_identity("key", token)
    client = scope.get("client")
    return hash_identity("addr", str(client[0]) if client else "unknown")


@dataclass(eq=False)
class Exchange:
    """One guarded request on its way through the stack.

    Layers read and write this object; none parses the body again. A layer that
    changes the request calls :meth:`set_field`, and the body handed to the app
    is rebuilt from the payload.
    """

    scope: Scope
    request: ParsedRequest
    raw_body: bytes
    identity: str
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    started_at: float = field(default_factory=time.perf_counter)
    cache_status: CacheStatus | None = None
    cache_reason: str | None = None
    similarity: float | None = None
    routed_model: str | None = None
    backend: str | None = None
    reserved_tokens: int = 0
    response: ResponseObserver = field(default_factory=ResponseObserver)
    response_headers: dict[str, str] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)
    trace: Trace | None = None  # the request span when tracing is on (core/tracing.py)
    _finishers: list[Finisher] = field(default_factory=list)
    _body: bytes | None = None
    requested_model: str = field(init=False)  # as the client sent it, before any router rewrote it

    def __post_init__(self) -> None:
        self.requested_model = self.request.model

    @property
    def cache_identity(self) -> str:
        """Whose answers this request may be served: :attr:`identity`, narrowed by the body's ``user``
        field when it has one (so one API key serving many end users keeps their answers apart)."""
        user = self.request.user
        return self.identity if not user else self.identity + "/" + hash_identity("user", user)

    # -- the request -------------------------------------------------------------------------------

    def body(self) -> bytes:
        """The body the app receives: the original bytes unless a layer changed the request."""
        return self.raw_body if self._body is None else self._body

    def set_field(self, name: str, value: Any) -> None:
        """Change one request field; the body and its Content-Length follow."""
        self.request.payload[name] = value
        if name == "model":
            self.request.model = value
        self._body = dump_json(self.request.payload)
        set_request_header(self.scope, b"content-length", str(len(self._body)).encode())

    # -- the response --------------------------------------------------------------------------------

    def set_header(self, name: str, value: str) -> None:
        """A header for the guarded response, whoever answers it (app, cache or an error)."""
        self.response_headers[name.lower()] = value

    def on_finish(self, finisher: Finisher) -> None:
        """Run ``finisher`` once the response is over (sent, failed or abandoned)."""
        self._finishers.append(finisher)

    async def finish(self) -> None:
        """Run every finisher; one failing never stops the others (a waiter may depend on them)."""
        for finisher in self._finishers:
            try:
                await finisher(self)
            except Exception:
                log.exception("llmguard.finisher_failed", request_id=self.request_id)

    def wrap_send(self, send: Send) -> Send:
        """The one send wrapper: adds the stack's headers and feeds the observer."""
        observer = self.response

        async def observed_send(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.start":
                message = self._with_headers(message)
                observer.on_start(message)
            elif kind == "http.response.body":
                try:
                    observer.on_body(message)
                except Exception:  # an odd answer must reach the client as it is, just not be kept
                    observer.undecodable = True
            try:
                await send(message)
            except BaseException:
                observer.disconnected = True
                raise
            try:
                observer.on_sent(message)
            except Exception:
                observer.undecodable = True

        return observed_send

    def wrap_receive(self, receive: Receive) -> Receive:
        replay = BodyReplay(self.body, receive)
        replay.on_disconnect = self._mark_disconnected
        return replay

    def _mark_disconnected(self) -> None:
        # Servers answer a disconnect listener once the response is over (uvicorn does); only a
        # disconnect before the last byte means the client left.
        if not self.response.completed:
            self.response.disconnected = True

    def _with_headers(self, message: Message) -> Message:
        if not self.response_headers:
            return message
        ours = {k.encode("latin-1"): v.encode("latin-1") for k, v in self.response_headers.items()}
        headers = [(k, v) for k, v in message.get("headers", ()) if bytes(k).lower() not in ours]
        headers.extend(ours.items())
        return {**message, "headers": headers}
