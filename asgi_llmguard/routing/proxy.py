"""LLMProxy: an ASGI app that forwards OpenAI-compatible requests to upstream backends.

For teams whose LLM endpoint is a pass-through to providers (OpenAI-compatible
APIs, vLLM, Ollama). It goes where the app's own endpoint would be, behind the
guard stack or alone::

    proxy = LLMProxy(settings=settings)       # upstreams from LLMGUARD_UPSTREAMS
    app = guard.wrap(proxy)

An upstream's ``url`` is its OpenAI base URL, ``/v1`` included
(``https://api.openai.com/v1``, ``http://localhost:11434/v1``); a request to
``/v1/chat/completions`` goes to ``<url>/chat/completions``. The upstreams that
list the request's model (or list none: any model) are the candidates; the
balancer (:mod:`asgi_llmguard.routing.balancer`) picks one by Peak-EWMA cost with power
of two choices, skipping backends whose circuit breaker is open.

Retries: a connection error, a timeout or a 5xx/429 *before the first byte has
reached the client* is retried on another backend (exponential backoff with
jitter, at most ``upstream_max_attempts`` tries). That is why the proxy waits
for the upstream's first body chunk before it answers: until then nothing is
committed. After the first byte a failure cannot be retried: a stream ends
with an OpenAI-style SSE error event, a JSON body is cut short (the client
sees a broken response, never a hang).

Bytes are forwarded as they arrive (no buffering; the upstream is asked for
``identity`` encoding so the stack's observer can read them). A client that
leaves cancels the upstream request at once.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ..config import Settings, Upstream, _upstreams
from ..core import tracing
from ..core.asgi import ClientDisconnected, read_body, send_error, send_json
from ..core.exchange import get_exchange
from ..core.openai_protocol import error_payload, sse_event
from ..core.types import Message, Receive, Scope, Send
from ..errors import ConfigurationError, RequestError
from .balancer import Balancer, BalancerConfig, BreakerState, Lease

if TYPE_CHECKING:
    import httpx

    from ..core.tracing import StageSpan, Tracing, _NoSpan

__all__ = ["LLMProxy"]

log = structlog.get_logger("asgi_llmguard")

FORWARDED_PATHS = frozenset({"/v1/chat/completions", "/v1/completions", "/v1/embeddings"})
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_ERROR_BODY = 64 * 1024
MAX_BACKOFF_S = 1.0
# Never forwarded upstream: hop-by-hop headers, the client's own credentials for *this* gateway,
# and what httpx sets itself.
_DROP_REQUEST_HEADERS = frozenset({
    b"host", b"content-length", b"connection", b"keep-alive", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"transfer-encoding", b"upgrade", b"authorization", b"cookie", b"accept-encoding",
    b"expect",
})
# Never passed back: hop-by-hop headers and what the server in front of us sets itself.
_DROP_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "trailer", "transfer-encoding", "upgrade", "date", "server",
    "set-cookie",
})


class _Failure(Exception):
    """One attempt failed before the first byte reached the client: it may be retried elsewhere."""

    def __init__(self, error: RequestError, headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(error.message)
        self.error = error
        self.headers = tuple(headers)


class BackendMetrics(Protocol):
    """What the proxy reports of each backend (observability's Metrics): up or not, and its breaker."""

    def set_backend(self, backend: str, *, up: bool, breaker: str = "closed") -> None: ...


class ProxyHost(Protocol):
    """What the proxy uses of the guard whose stack it sits behind: settings, metrics, tracer."""

    @property
    def settings(self) -> Settings: ...

    @property
    def metrics(self) -> BackendMetrics | None: ...

    @property
    def tracing(self) -> Tracing | None: ...


class LLMProxy:
    """Forwards OpenAI-compatible requests to the configured upstreams, streaming and unbuffered.

    ``upstreams`` defaults to the settings' ``upstreams`` (``LLMGUARD_UPSTREAMS``). Give
    ``guard`` when the proxy sits behind a :class:`~asgi_llmguard.Guard`'s stack: its settings
    are used and its metrics show each backend's health and breaker state. ``balancer_config``
    replaces the balancer tuning the settings give (e.g. ``policy="round_robin"``).
    """

    def __init__(
        self,
        upstreams: Sequence[Upstream | Mapping[str, Any]] | None = None,
        *,
        settings: Settings | None = None,
        guard: ProxyHost | None = None,
        client: httpx.AsyncClient | None = None,
        environ: Mapping[str, str] | None = None,
        on_backend_state: Callable[[str, BreakerState], None] | None = None,
        balancer_config: BalancerConfig | None = None,
    ) -> None:
        if settings is None:
            settings = guard.settings if guard is not None else Settings.from_env()
        self.settings = settings
        self.upstreams = _upstreams(list(upstreams)) if upstreams is not None else settings.upstreams
        if not self.upstreams:
            raise ConfigurationError(
                'LLMGUARD_UPSTREAMS: expected at least one upstream for LLMProxy, e.g. '
                '[{"url": "http://127.0.0.1:8001/v1", "models": ["llama3"]}]'
            )
        urls = [u.url for u in self.upstreams]
        if len(set(urls)) != len(urls):
            raise ConfigurationError(f"LLMGUARD_UPSTREAMS: expected distinct upstream URLs, got {urls!r}")
        env = os.environ if environ is None else environ
        self._api_keys: dict[str, str | None] = {}
        for upstream in self.upstreams:
            key = None
            if upstream.api_key_env is not None:
                key = env.get(upstream.api_key_env)
                if not key:
                    raise ConfigurationError(
                        f"LLMGUARD_UPSTREAMS: the upstream {upstream.url} takes its API key from "
                        f"{upstream.api_key_env}, which is not set"
                    )
            self._api_keys[upstream.url] = key
        self._metrics = guard.metrics if guard is not None else None
        # Behind a traced stack the request's own tracer is used; alone, the proxy traces with its settings.
        self._tracing = guard.tracing if guard is not None else None
        if self._tracing is None and settings.tracing:
            self._tracing = tracing.Tracing(trace_prompts=settings.trace_prompts)
        self._on_backend_state = on_backend_state
        config = balancer_config or BalancerConfig(
            decay_seconds=settings.balancer_decay_seconds,
            failure_threshold=settings.breaker_failures,
            open_seconds=max(settings.breaker_open_seconds, 0.001),
            max_open_seconds=max(60.0, settings.breaker_open_seconds),
        )
        self.balancer = Balancer(urls, config, on_state=self._state_changed)
        for url in urls:
            self._report_state(url, "closed")
        self._client = client
        self._owns_client = client is None
        self._random = random.Random()

    # -- ASGI ------------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            if kind == "websocket":
                await send({"type": "websocket.close", "code": 1000})
            return
        path = _route_path(scope)
        method = scope["method"]
        if path == "/v1/models" and method in ("GET", "HEAD"):
            await send_json(send, 200, self._models_body())
        elif path in FORWARDED_PATHS and method == "POST":
            await self._forward(scope, receive, send, path)
        elif path in FORWARDED_PATHS or path == "/v1/models":
            await send_error(send, RequestError(f"Method {method} is not allowed on {path}.", status=405,
                                                code="method_not_allowed"), [("allow", "POST")])
        else:
            await send_error(send, RequestError(f"Unknown endpoint {path}.", status=404, code="unknown_url"))

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._get_client()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        """Close the HTTP client the proxy opened (a client passed in stays open)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def _get_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
                follow_redirects=False,
                trust_env=False,
            )
        return self._client

    # -- forwarding ------------------------------------------------------------------------------------

    async def _forward(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        try:
            body = await read_body(scope, receive, self.settings.max_body_bytes)
            model, affinity_key = self._request_facts(scope, body)
        except ClientDisconnected:
            return
        except RequestError as error:
            await send_error(send, error)
            return
        candidates = [u.url for u in self.upstreams if not u.models or model in u.models]
        if not candidates:
            await send_error(send, RequestError(f"The model `{model}` does not exist or you do not have access "
                                                "to it.", status=404, param="model", code="model_not_found"))
            return
        forwarding = asyncio.ensure_future(self._attempts(scope, send, path, body, candidates, affinity_key))
        watcher = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({forwarding, watcher}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server (or a layer) cancelled us: stop the upstream too
            forwarding.cancel()
            watcher.cancel()
            await asyncio.gather(forwarding, watcher, return_exceptions=True)
            raise
        if not forwarding.done():  # the client left before the answer was over
            forwarding.cancel()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        try:
            await forwarding
        except asyncio.CancelledError:
            if not watcher.cancelled() and watcher.done():
                return  # cancelled because the client left: nothing to answer
            raise

    def _request_facts(self, scope: Scope, body: bytes) -> tuple[str, str | None]:
        """The model to route on and the affinity key; from the exchange when the stack parsed the body."""
        exchange = get_exchange(scope)
        if exchange is not None:
            payload: Any = exchange.request.payload
        else:
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):
                raise RequestError("We could not parse the JSON body of your request.", param=None,
                                   code="invalid_json") from None
        if not isinstance(payload, dict):
            raise RequestError("The request body must be a JSON object.", code="invalid_json")
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise RequestError("You must provide a model parameter.", param="model", code="missing_model")
        affinity_key = _system_prompt(payload) if self.settings.upstream_affinity else None
        return model, affinity_key

    async def _attempts(self, scope: Scope, send: Send, path: str, body: bytes, candidates: list[str],
                        affinity_key: str | None) -> None:
        tried: list[str] = []
        failure: _Failure | None = None
        for attempt in range(self.settings.upstream_max_attempts):
            lease = self.balancer.acquire(candidates, affinity_key=affinity_key, exclude=tried)
            if lease is None:
                break
            tried.append(lease.backend)
            if attempt:
                await asyncio.sleep(self._backoff(attempt))
            with tracing.upstream_span(self._tracing, scope, lease.backend, attempt + 1) as span:
                try:
                    await self._attempt(lease, scope, send, path, body, span)
                    return
                except _Failure as exc:
                    failure = exc
                    if span:
                        span.fail(exc.error.code or "upstream_error",
                                  {"http.response.status_code": exc.error.status, "error.type": exc.error.code})
                    log.warning("llmguard.upstream_attempt_failed", backend=lease.backend, attempt=attempt + 1,
                                status=exc.error.status, reason=exc.error.code)
                finally:
                    lease.released()  # no-op when the attempt already ended it
        if failure is None:
            failure = _Failure(RequestError(
                "No upstream can take this request now: every backend for this model is failing "
                "and its circuit breaker is open.", status=503, type="server_error", code="no_healthy_upstream",
            ), [("retry-after", str(max(1, round(self.settings.breaker_open_seconds))))])
        await send_error(send, failure.error, failure.headers)

    def _backoff(self, attempt: int) -> float:
        base = self.settings.upstream_retry_backoff_ms / 1000 * 2 ** (attempt - 1)
        return float(min(MAX_BACKOFF_S, base * (0.5 + self._random.random())))

    async def _attempt(self, lease: Lease, scope: Scope, send: Send, path: str, body: bytes,
                       span: StageSpan | _NoSpan = tracing.NO_SPAN) -> None:
        import httpx

        client = self._get_client()
        started = time.perf_counter()
        request = client.build_request(
            "POST",
            _upstream_url(lease.backend, path),
            content=body,
            headers=span.inject(self._headers(scope, lease.backend)),  # tracing on: our traceparent
            timeout=httpx.Timeout(
                connect=self.settings.upstream_connect_timeout_ms / 1000,
                read=self.settings.upstream_read_timeout_ms / 1000,
                write=self.settings.upstream_read_timeout_ms / 1000,
                pool=self.settings.upstream_connect_timeout_ms / 1000,
            ),
        )
        try:
            response = await client.send(request, stream=True)
        except httpx.TransportError as exc:  # timeouts included
            raise _transport_failure(lease, exc) from None
        if span:
            span.set("http.response.status_code", response.status_code)
        try:
            if response.status_code in RETRY_STATUSES:
                raise await self._retryable(lease, response)
            chunks = response.aiter_raw()
            try:
                first = await anext(chunks, b"")
            except httpx.TransportError as exc:
                raise _transport_failure(lease, exc) from None
            first_byte_s = time.perf_counter() - started
            # From here on the client has the answer's start: no retry, whatever happens.
            exchange = get_exchange(scope)
            if exchange is not None:
                exchange.backend = lease.backend
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": _response_headers(response)})
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            streamed = _is_sse(response)
            try:
                async for chunk in chunks:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                lease.failed()
                if span:
                    span.fail("upstream_stream_cut", {"error.type": type(exc).__name__})
                await self._cut(send, lease.backend, exc, streamed=streamed)
                return
            lease.succeeded(first_byte_s)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()

    async def _retryable(self, lease: Lease, response: httpx.Response) -> _Failure:
        """An upstream 5xx or 429 as a failure to retry; the last one tried is what the client gets."""
        import httpx

        try:
            raw = await _read_capped(response, MAX_ERROR_BODY)
        except (httpx.TimeoutException, httpx.TransportError):
            raw = b""
        if response.status_code == 429:
            lease.released()  # busy, not broken: the breaker stays out of it
        else:
            lease.failed()
        headers = [("retry-after", v) for k, v in response.headers.items() if k.lower() == "retry-after"]
        return _Failure(_upstream_error(lease.backend, response.status_code, raw), headers)

    async def _cut(self, send: Send, backend: str, exc: Exception, *, streamed: bool) -> None:
        """After the first byte: end a stream with an SSE error event; cut a JSON body short."""
        log.warning("llmguard.upstream_cut", backend=backend, error=type(exc).__name__)
        if not streamed:
            raise _UpstreamCut(f"upstream {backend} broke off its answer ({type(exc).__name__})") from exc
        timeout = "Timeout" in type(exc).__name__
        error = error_payload(
            f"The upstream stopped {'answering' if timeout else 'its answer'} in the middle of the stream.",
            type="server_error", code="upstream_timeout" if timeout else "upstream_stream_cut",
        )
        await send({"type": "http.response.body", "body": sse_event(error), "more_body": False})

    def _headers(self, scope: Scope, backend: str) -> list[tuple[bytes, bytes]]:
        headers = [(bytes(k).lower(), bytes(v)) for k, v in scope.get("headers", ())
                   if bytes(k).lower() not in _DROP_REQUEST_HEADERS]
        headers.append((b"accept-encoding", b"identity"))
        key = self._api_keys.get(backend)
        if key:
            headers.append((b"authorization", b"Bearer " + key.encode("latin-1")))
        return headers

    def _models_body(self) -> dict[str, Any]:
        names = sorted({model for upstream in self.upstreams for model in upstream.models})
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0,
                                            "owned_by": "llmguard-proxy"} for name in names]}

    # -- backend state -----------------------------------------------------------------------------------

    def _state_changed(self, backend: str, state: BreakerState) -> None:
        log.info("llmguard.backend_state", backend=backend, state=state)
        self._report_state(backend, state)

    def _report_state(self, backend: str, state: BreakerState) -> None:
        if self._metrics is not None:
            self._metrics.set_backend(backend, up=state != "open", breaker=state)
        if self._on_backend_state is not None:
            self._on_backend_state(backend, state)


class _UpstreamCut(Exception):
    """A non-stream answer broke off after its first byte; raising makes the server drop the connection."""


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _read_capped(response: httpx.Response, limit: int) -> bytes:
    data = bytearray()
    async for chunk in response.aiter_raw():
        data += chunk
        if len(data) >= limit:
            break
    return bytes(data[:limit])


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root):] or "/"
    return path


def _upstream_url(base: str, path: str) -> str:
    suffix = path[len("/v1"):] if path.startswith("/v1/") else path
    return base + suffix


def _system_prompt(payload: Mapping[str, Any]) -> str | None:
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        if isinstance(message, dict) and message.get("role") in ("system", "developer"):
            content = message.get("content")
            return content if isinstance(content, str) else json.dumps(content, sort_keys=True)
    return None


def _is_sse(response: httpx.Response) -> bool:
    content_type = str(response.headers.get("content-type", ""))
    return content_type.split(";", 1)[0].strip().lower() == "text/event-stream"


def _response_headers(response: httpx.Response) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.multi_items()
            if k.lower() not in _DROP_RESPONSE_HEADERS]


def _transport_failure(lease: Lease, exc: Exception) -> _Failure:
    """No answer before the first byte (timeout, refused, reset): the backend failed, another may be tried."""
    import httpx

    lease.failed()
    timed_out = isinstance(exc, httpx.TimeoutException)
    return _Failure(_upstream_timeout(lease.backend) if timed_out else _upstream_unavailable(lease.backend, exc))


def _upstream_timeout(backend: str) -> RequestError:
    return RequestError(f"The upstream {backend} did not answer in time.", status=504, type="server_error",
                        code="upstream_timeout")


def _upstream_unavailable(backend: str, exc: Exception) -> RequestError:
    return RequestError(f"The upstream {backend} could not be reached ({type(exc).__name__}).", status=502,
                        type="server_error", code="upstream_unavailable")


def _upstream_error(backend: str, status: int, raw: bytes) -> RequestError:
    """The upstream's own error, OpenAI-shaped, with its status (the SDK retries 429 and 5xx itself)."""
    message = f"The upstream {backend} answered {status}."
    error_type = "rate_limit_exceeded" if status == 429 else "server_error"
    code: str | None = "upstream_error"
    try:
        found = json.loads(raw)
        inner = found.get("error") if isinstance(found, dict) else None
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            message = f"{message} {inner['message']}"
            found_type, found_code = inner.get("type"), inner.get("code")
            error_type = found_type if isinstance(found_type, str) else error_type
            code = found_code if isinstance(found_code, str) else code
    except ValueError:
        pass
    return RequestError(message, status=status, type=error_type, code=code)
