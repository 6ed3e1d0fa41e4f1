"""OpenTelemetry tracing of guarded requests: one span per request, a child span per stage.

Off unless ``LLMGUARD_TRACING`` is true. Off, a layer's ``with tracing.span(exchange.trace, ...)``
is an ``is None`` check that hands back :data:`NO_SPAN`, and opentelemetry is never imported:
this module imports it only when a :class:`Tracing` is built (by the Guard, or by a standalone
LLMProxy), and fails then, at startup, with a :class:`ConfigurationError` when it is missing.

The library configures no exporter: spans go to the global ``TracerProvider`` the app set up
(or the one given to ``Guard(tracer_provider=...)``). The request span continues the client's
W3C ``traceparent`` (or nests under the app's own current span, e.g. an OpenTelemetry ASGI
middleware's server span), is the current span while the app runs, and ends after the
exchange's finishers, when the response is over (the last byte of a stream). LLMProxy's upstream
span is what the upstream sees as its parent in the ``traceparent`` it receives.

Privacy: attributes carry hashed identities, model names, counts and enums. Prompt text, and
exception messages (which may quote a request), appear only with ``LLMGUARD_TRACE_PROMPTS``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import structlog

from ..errors import ConfigurationError
from .exchange import Exchange, Trace, get_exchange
from .version import __version__

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, SpanKind, Tracer, TracerProvider

    from .types import Scope

log = structlog.get_logger("asgi_llmguard")

__all__ = ["NO_SPAN", "REQUEST_SPAN", "RequestTrace", "StageSpan", "Tracing", "span", "upstream_span"]

REQUEST_SPAN = "llmguard.request"
UPSTREAM_SPAN = "llmguard.upstream"
MAX_PROMPT_CHARS = 2000
INSTRUMENTATION_NAME = "asgi_llmguard"
Attributes = Mapping[str, Any]


class _NoSpan:
    """What every tracing call returns when tracing is off: falsy, and does nothing."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        return None

    def __bool__(self) -> bool:
        return False

    def set(self, key: str, value: Any) -> None:
        return None

    def set_many(self, attributes: Attributes) -> None:
        return None

    def fail(self, description: str, attributes: Attributes | None = None) -> None:
        return None

    def inject(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        return headers


NO_SPAN = _NoSpan()


class StageSpan:
    """One child span, used as a context manager; truthy, so ``if span:`` guards attribute work.

    Inside the ``with`` it is the current span, so what the stage calls nests under it (an
    instrumented httpx client under LLMProxy's upstream span, a remote embedder's call under the
    embedding span)."""

    __slots__ = ("_parent", "_token", "_tracing", "span")

    def __init__(self, tracing: Tracing, span: Span, parent: Context | None) -> None:
        self._tracing = tracing
        self._parent = parent
        self._token: object = None
        self.span = span

    def __enter__(self) -> StageSpan:
        self._token = self._tracing.context_api.attach(self._context())
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._tracing.context_api.detach(self._token)
        if exc is not None:
            self._tracing.record_failure(self.span, exc)
        self.span.end()

    def _context(self) -> Context:
        context: Context = self._tracing.trace_api.set_span_in_context(self.span, self._parent)
        return context

    def __bool__(self) -> bool:
        return True

    def set(self, key: str, value: Any) -> None:
        if value is not None:
            self.span.set_attribute(key, value)

    def set_many(self, attributes: Attributes) -> None:
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def fail(self, description: str, attributes: Attributes | None = None) -> None:
        """Mark the stage failed without an exception (an upstream's 5xx, a cut stream)."""
        self._tracing.set_error(self.span, description)
        if attributes:
            self.set_many(attributes)

    def inject(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` with the caller's trace headers replaced by this span's (``traceparent``...)."""
        return self._tracing.inject(headers, self._context())


class RequestTrace:
    """The request span of one exchange (``exchange.trace``), and what its children hang from."""

    __slots__ = ("_token", "context", "span", "tracing")

    def __init__(self, tracing: Tracing, span: Span, context: Context, token: object) -> None:
        self.tracing = tracing
        self.span = span
        self.context = context  # the parent context of every child span: the request span in it
        self._token = token

    def child(self, name: str, *, kind: SpanKind | None = None) -> StageSpan:
        return self.tracing.start(name, self.context, kind)

    def record_failure(self, exc: BaseException) -> None:
        """The app (or a layer) raised while handling the request."""
        self.tracing.record_failure(self.span, exc)

    def end(self, exchange: Exchange) -> None:
        """Set the final attributes, end the request span and leave its context (after the finishers).
        Never raises: tracing trouble must not fail a served request."""
        try:
            if self.span.is_recording():
                self.span.set_attributes(final_attributes(exchange, prompts=self.tracing.trace_prompts))
                observer = exchange.response
                status = observer.status
                if status is None and not observer.disconnected and not observer.failed:  # failed: recorded
                    self.tracing.set_error(self.span, "no response")
                elif status is not None and status >= 500:
                    self.tracing.set_error(self.span, f"HTTP {status}")
            self.span.end()
        except Exception:
            log.exception("llmguard.trace_failed", request_id=exchange.request_id)
        finally:
            self.tracing.context_api.detach(self._token)


class Tracing:
    """The tracer of a Guard (or a standalone LLMProxy); built only when ``LLMGUARD_TRACING`` is on."""

    def __init__(self, *, trace_prompts: bool = False, tracer_provider: TracerProvider | None = None) -> None:
        try:
            from opentelemetry import context, propagate, trace
            from opentelemetry.trace import SpanKind, Status, StatusCode
        except ImportError as exc:
            raise ConfigurationError(
                "LLMGUARD_TRACING: expected the OpenTelemetry packages when tracing is on; install the `otel` "
                f"extra (pip install 'asgi-llmguard[otel]') or set LLMGUARD_TRACING=false (import failed: {exc})"
            ) from None

        self.trace_prompts = trace_prompts
        self.trace_api = trace
        self.context_api = context
        self._propagate = propagate
        self._kinds = SpanKind
        self._status = Status
        self._error = StatusCode.ERROR
        self.tracer: Tracer = (trace.get_tracer(INSTRUMENTATION_NAME, __version__) if tracer_provider is None
                               else tracer_provider.get_tracer(INSTRUMENTATION_NAME, __version__))

    # -- the request span ----------------------------------------------------------------------------

    def open(self, exchange: Exchange) -> RequestTrace | None:
        """Start the request span of a new exchange and make it the current span (``exchange.trace``).
        Never raises: if tracing fails (a broken propagator...), the request goes on untraced."""
        try:
            parent, nested = self.parent_context(exchange.scope)
            kind = self._kinds.INTERNAL if nested else self._kinds.SERVER
            span = self.tracer.start_span(REQUEST_SPAN, context=parent, kind=kind)
            if span.is_recording():
                span.set_attributes(initial_attributes(exchange))
            context = self.trace_api.set_span_in_context(span, parent)
        except Exception:
            log.exception("llmguard.trace_failed", request_id=exchange.request_id)
            return None
        trace = RequestTrace(self, span, context, self.context_api.attach(context))
        exchange.trace = trace
        return trace

    def parent_context(self, scope: Scope) -> tuple[Context, bool]:
        """``(parent, nested)``: the app's current span when there is one (``nested``), else the
        client's ``traceparent`` from the request headers (or a new trace)."""
        current = self.context_api.get_current()
        if self.trace_api.get_current_span(current).get_span_context().is_valid:
            return current, True
        fields = self._propagate.get_global_textmap().fields
        carrier: dict[str, list[str]] = {}
        for key, value in scope.get("headers", ()):
            name = bytes(key).decode("latin-1").lower()
            if name in fields:
                carrier.setdefault(name, []).append(bytes(value).decode("latin-1"))
        if not carrier:
            return current, False
        return self._propagate.extract(carrier, context=current), False

    # -- child spans -----------------------------------------------------------------------------------

    def start(self, name: str, parent: Context | None, kind: SpanKind | None = None) -> StageSpan:
        span = self.tracer.start_span(name, context=parent, kind=self._kinds.INTERNAL if kind is None else kind)
        return StageSpan(self, span, parent)

    def inject(self, headers: list[tuple[bytes, bytes]], context: Context) -> list[tuple[bytes, bytes]]:
        """Drop the propagator's headers (the client's ``traceparent``...) and add ours for ``context``."""
        try:
            textmap = self._propagate.get_global_textmap()
            fields = {name.lower().encode("latin-1") for name in textmap.fields}
            carrier: dict[str, str] = {}
            textmap.inject(carrier, context=context)
            ours = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in carrier.items()]
        except Exception:  # a broken propagator must not fail the upstream call
            log.exception("llmguard.trace_failed")
            return headers
        return [(k, v) for k, v in headers if k.lower() not in fields] + ours

    # -- status ----------------------------------------------------------------------------------------

    def set_error(self, span: Span, description: str) -> None:
        span.set_status(self._status(self._error, description))

    def record_failure(self, span: Span, exc: BaseException) -> None:
        """An exception left a span: its type always; its message and stack only with prompts allowed
        (an app's error message may quote the request). A cancellation is no error: the client left."""
        if not isinstance(exc, Exception):
            span.set_attribute("llmguard.cancelled", True)
            return
        kind = type(exc).__qualname__
        if self.trace_prompts:
            span.record_exception(exc)
        else:
            span.add_event("exception", {"exception.type": kind})
        self.set_error(span, kind)


# -- what the layers call -------------------------------------------------------------------------------


def span(trace: Trace | None, name: str) -> StageSpan | _NoSpan:
    """A child span of the request span, or :data:`NO_SPAN` when the request is not traced."""
    if not isinstance(trace, RequestTrace):  # None: tracing is off (a RequestTrace is the only kind made)
        return NO_SPAN
    return trace.child(name)


def upstream_span(tracing: Tracing | None, scope: Scope, backend: str, attempt: int) -> StageSpan | _NoSpan:
    """LLMProxy's span for one attempt: a child of the request span behind the stack; alone, a child of
    the client's ``traceparent`` when the proxy itself has tracing on."""
    exchange = get_exchange(scope)
    trace = exchange.trace if exchange is not None else None
    if isinstance(trace, RequestTrace):
        tracing = trace.tracing
        stage = tracing.start(UPSTREAM_SPAN, trace.context, tracing._kinds.CLIENT)
    elif tracing is not None:
        stage = tracing.start(UPSTREAM_SPAN, tracing.parent_context(scope)[0], tracing._kinds.CLIENT)
    else:
        return NO_SPAN
    if stage.span.is_recording():
        stage.set_many({"llmguard.backend": backend, "llmguard.upstream.attempt": attempt})
    return stage


# -- attributes -------------------------------------------------------------------------------------------


def initial_attributes(exchange: Exchange) -> dict[str, Any]:
    """What is known when the request span starts, the model as the client asked for it among them
    (the router may rewrite it later)."""
    request = exchange.request
    return {
        "http.request.method": exchange.scope.get("method", "POST"),
        "url.path": exchange.scope.get("path", ""),
        "llmguard.request_id": exchange.request_id,
        "llmguard.identity": exchange.identity,  # the stack's hash, never a key or user id in clear
        "gen_ai.operation.name": "text_completion" if request.kind == "completion" else "chat",
        "gen_ai.request.model": request.model,
        "llmguard.stream": request.stream,
    }


def final_attributes(exchange: Exchange, *, prompts: bool = False) -> dict[str, Any]:
    """What the stack decided and what the response was, when the exchange finishes."""
    observer = exchange.response
    usage = observer.usage or {}
    attributes: dict[str, Any] = {
        "llmguard.cache.status": exchange.cache_status,
        "llmguard.cache.reason": exchange.cache_reason,
        "llmguard.cache.similarity": exchange.similarity,
        "llmguard.routed_model": exchange.routed_model,
        "llmguard.complexity": exchange.extras.get("complexity"),
        "llmguard.backend": exchange.backend,
        "gen_ai.response.model": observer.model,
        "http.response.status_code": observer.status,
    }
    tokens_in, tokens_out = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
    if exchange.cache_status == "hit":  # the answer's usage was spent once, by the request that made it
        attributes["llmguard.cache.tier"] = "exact" if exchange.similarity is None else "semantic"
        attributes["llmguard.tokens_saved.input"] = tokens_in
        attributes["llmguard.tokens_saved.output"] = tokens_out
    else:
        attributes["gen_ai.usage.input_tokens"] = tokens_in
        attributes["gen_ai.usage.output_tokens"] = tokens_out
    if observer.finish_reason is not None:
        attributes["gen_ai.response.finish_reasons"] = (observer.finish_reason,)
    if observer.first_token_at is not None:
        attributes["llmguard.time_to_first_token_ms"] = round((observer.first_token_at - exchange.started_at) * 1000,
                                                              3)
    if observer.disconnected and not observer.completed:
        attributes["llmguard.disconnected"] = True
    if observer.failed:
        attributes["llmguard.failed"] = True
    if prompts:
        prompt = exchange.request.last_user_text()
        attributes["llmguard.prompt"] = None if prompt is None else prompt[:MAX_PROMPT_CHARS]
    return {k: v for k, v in attributes.items() if v is not None}


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
