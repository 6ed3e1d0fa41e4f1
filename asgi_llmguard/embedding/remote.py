"""Embeddings from a remote OpenAI-compatible endpoint: the embedding tier apart from the app.

With ``LLMGUARD_EMBEDDING_URL`` set, the semantic cache embeds through ``POST <url>/embeddings``,
the endpoint TEI, vLLM, Ollama, OpenAI and ``python -m asgi_llmguard.embedding_server`` serve.
The URL is the OpenAI *base* URL, ``/v1`` included (``http://127.0.0.1:8100/v1``), as an OpenAI
client's ``base_url`` and ``LLMGUARD_UPSTREAMS`` take it.

Concurrent callers are micro-batched: while a call is in flight, the first text to wait starts a
short collection window (``batch_wait``, 1 ms), and when it ends (or ``max_batch`` texts wait) one
HTTP call carries every waiting text, ``{"model": ..., "input": [texts]}``. When no call is in
flight, the text leaves at the event loop's next turn, with whatever arrived in the same turn: an
idle app pays no window. At most ``max_in_flight`` calls run at once; texts arriving meanwhile wait
for a free call and ride together in the next one, so batches grow with load.

Each caller has a strict time budget: over it, the queue full, the server down, slow, or
answering an error, the caller gets :class:`EmbeddingUnavailable` and the request goes on as a
miss. Vectors come back as float32 unit vectors, normalised as the in-process embedder's are.

httpx (the ``proxy`` extra) is imported only when a remote embedder is built.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from ..core.openai_protocol import dump_json
from ..core.types import Vector
from ..errors import ConfigurationError
from .local import DEFAULT_MODEL, EmbeddingStats, EmbeddingUnavailable, _unit_rows

if TYPE_CHECKING:
    import httpx

    from ..config import Settings

__all__ = ["PROBE_TEXT", "TIMEOUT_HEADER", "RemoteEmbedder", "parse_embeddings"]

PROBE_TEXT = "warm up"  # embedded at start() to learn the vector size and check the server answers
# The model reads at most 256 tokens; a token spans at most a word (BERT gives up on words over 100
# characters), so this keeps every token the model can see while bounding what one text costs to send.
MAX_TEXT_CHARS = 32_768
# The call's remaining budget in milliseconds: our embedding server drops work nobody waits for (others ignore it).
TIMEOUT_HEADER = "x-llmguard-timeout-ms"
# A call without any caller's budget (timeout=None everywhere) still ends.
_UNBOUNDED_CALL_S = 30.0


class _ServerUnavailable(EmbeddingUnavailable):
    """Unreachable, timed out or a 5xx: worth another try at start(); a 4xx or a bad answer is not."""


@dataclass(slots=True, eq=False)
class _Job:
    text: str
    future: asyncio.Future[Vector]
    deadline: float | None  # loop time; None: no budget


def parse_embeddings(payload: Any, count: int, dimensions: int | None = None) -> Vector:
    """The ``count`` x dimensions unit-vector matrix of an OpenAI embeddings response, rows in input order.

    Accepts ``embedding`` as a list of numbers or as base64 little-endian float32 (``encoding_format``
    ``base64``). Raises :class:`EmbeddingUnavailable` when the answer is not one vector per input, of
    one size (``dimensions`` when given), all finite.
    """
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != count:
        got = len(data) if isinstance(data, list) else type(data).__name__
        raise EmbeddingUnavailable(f"the embedding server answered {got} vectors for {count} inputs")
    rows: list[Vector | None] = [None] * count
    for position, item in enumerate(data):
        index = item.get("index", position) if isinstance(item, dict) else None
        raw = item.get("embedding") if isinstance(item, dict) else None
        if not isinstance(index, int) or not 0 <= index < count or rows[index] is not None:
            raise EmbeddingUnavailable(f"the embedding server answered a bad index {index!r}")
        if isinstance(raw, str):
            try:
                vector = np.frombuffer(base64.b64decode(raw, validate=True), dtype="<f4").astype(np.float32)
            except ValueError:
                raise EmbeddingUnavailable("the embedding server answered a vector that is not base64") from None
        elif isinstance(raw, list) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw):
            vector = np.asarray(raw, dtype=np.float32)
        else:
            raise EmbeddingUnavailable("the embedding server answered an embedding that is not a list of numbers")
        rows[index] = vector
    sizes = {int(row.shape[0]) for row in rows if row is not None}
    if len(sizes) != 1 or 0 in sizes or (dimensions is not None and sizes != {dimensions}):
        expected = f" (expected {dimensions})" if dimensions is not None else ""
        raise EmbeddingUnavailable(f"the embedding server answered vectors of sizes {sorted(sizes)}{expected}")
    matrix = np.vstack([row for row in rows if row is not None])
    if not np.isfinite(matrix).all():
        raise EmbeddingUnavailable("the embedding server answered a vector with NaN or infinity")
    return _unit_rows(matrix)


def _error_message(response: httpx.Response) -> str:
    """The ``error.message`` of an OpenAI-style error body, else the body's start."""
    try:
        error = response.json().get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message[:300]
    except Exception:  # not JSON, or not a dict: the raw text says enough
        pass
    return response.text[:300]


class RemoteEmbedder:
    """An :class:`~asgi_llmguard.core.types.Embedder` calling an OpenAI-compatible embeddings endpoint.

    ``url`` is the base URL with ``/v1``; the embedder posts to ``<url>/embeddings``. ``timeout`` is
    the default per-call budget in seconds (``None``: no budget); ``max_pending`` bounds the texts
    waiting or in flight, beyond it :meth:`embed` fails at once. ``start_timeout`` is how long
    :meth:`start` keeps trying to reach a server that is down or starting (5xx) before it gives up.
    """

    #: The vectors are computed by another process: the cache may use this one's CPU meanwhile
    #: (early verification, cache/lexicon.py).
    computes_locally = False

    def __init__(
        self,
        url: str,
        model_name: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        max_batch: int = 32,
        max_pending: int = 256,
        timeout: float | None = 0.5,
        batch_wait: float = 0.001,
        max_in_flight: int = 4,
        start_timeout: float = 5.0,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise ConfigurationError(
                "LLMGUARD_EMBEDDING_URL is set, and remote embeddings need httpx: "
                "pip install 'asgi-llmguard[proxy]' (or unset LLMGUARD_EMBEDDING_URL to embed in process)"
            ) from exc
        if max_batch < 1 or max_pending < 1 or max_in_flight < 1:
            raise ValueError("max_batch, max_pending and max_in_flight must be at least 1")
        self._httpx = httpx
        self.url = url.rstrip("/")
        self.endpoint = self.url + "/embeddings"
        self.model_name = model_name
        self.max_batch = max_batch
        self.max_pending = max_pending
        self.timeout = timeout
        self.batch_wait = batch_wait
        self.max_in_flight = max_in_flight
        self.start_timeout = start_timeout
        self._headers = {"content-type": "application/json", "user-agent": "asgi-llmguard"}
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock: asyncio.Lock | None = None
        self._queue: collections.deque[_Job] = collections.deque()
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()
        self._in_flight_texts = 0
        self._dimensions: int | None = None
        self._ready = False
        self._closed = False
        self._load_error: str | None = None
        self._sent = 0
        self._answered = 0
        self._texts = 0
        self._largest_batch = 0
        self._rejected = 0
        self._timed_out = 0
        self._failed = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RemoteEmbedder:
        """The embedder ``LLMGUARD_EMBEDDING_URL`` and the other embedding settings describe."""
        if settings.embedding_url is None:
            raise ConfigurationError("LLMGUARD_EMBEDDING_URL is not set")
        return cls(settings.embedding_url, settings.embedding_model, api_key=settings.embedding_api_key,
                   max_batch=settings.embedding_max_batch, max_pending=settings.embedding_max_pending,
                   timeout=settings.embedding_timeout_ms / 1000)

    @property
    def dimensions(self) -> int:
        """Vector size, learnt from the server at start()."""
        if self._dimensions is None:
            raise RuntimeError("the embedding size is known once start() has asked the embedding server")
        return self._dimensions

    @property
    def ready(self) -> bool:
        return self._ready and not self._closed

    def stats(self) -> EmbeddingStats:
        """``batches``: HTTP calls made; ``model_calls``: calls answered with vectors."""
        return EmbeddingStats(
            batches=self._sent,
            model_calls=self._answered,
            texts_embedded=self._texts,
            largest_batch=self._largest_batch,
            rejected=self._rejected,
            timed_out=self._timed_out,
            failed=self._failed,
            pending=len(self._queue) + self._in_flight_texts,
        )

    async def start(self) -> None:
        """Embed a probe text: checks the server, model and key, and learns the vector size.

        Retries for ``start_timeout`` seconds while the server is unreachable or answers 5xx; a 4xx
        (unknown model, bad key) or a malformed answer fails at once. Safe to call more than once.
        """
        if self._closed:
            raise EmbeddingUnavailable("the embedder is closed")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._ready:
                return
            loop = self._loop = asyncio.get_running_loop()
            if self._client is None:
                httpx = self._httpx
                limits = httpx.Limits(max_connections=self.max_in_flight, max_keepalive_connections=self.max_in_flight)
                self._client = httpx.AsyncClient(limits=limits, headers=self._headers, trust_env=False,
                                                 follow_redirects=False)
            deadline = loop.time() + self.start_timeout
            while True:
                try:
                    vector = await self._submit(PROBE_TEXT, max(0.001, deadline - loop.time()))
                    break
                except _ServerUnavailable as exc:
                    if loop.time() + 0.2 < deadline:
                        await asyncio.sleep(0.2)
                        continue
                    await self._give_up(f"embedding server {self.endpoint} unavailable: {exc}")
                except EmbeddingUnavailable as exc:
                    await self._give_up(f"embedding server {self.endpoint} refused the probe: {exc}")
            self._dimensions = int(vector.shape[0])
            self._ready = True

    async def _give_up(self, reason: str) -> NoReturn:
        """start() failed: keep the reason for embed(), close the client (a later start() opens another)."""
        self._load_error = reason
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
        raise EmbeddingUnavailable(reason)

    async def embed(self, text: str, *, timeout: float | None = None) -> Vector:  # noqa: ASYNC109
        """The text's embedding as a float32 unit vector, or :class:`EmbeddingUnavailable`."""
        if self._closed:
            raise EmbeddingUnavailable("the embedder is closed")
        if not self._ready:
            raise EmbeddingUnavailable(self._load_error or "the embedder is not started")
        if not text:
            raise EmbeddingUnavailable("an empty text is not embedded")
        return await self._submit(text, self.timeout if timeout is None else timeout)

    async def close(self) -> None:
        """Fail the waiting callers, stop the calls in flight and close the HTTP client. Idempotent."""
        self._closed = True
        self._ready = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._queue:
            job = self._queue.popleft()
            if not job.future.done():
                job.future.set_exception(EmbeddingUnavailable("the embedder was closed"))
        calls = list(self._calls)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # -- batching --------------------------------------------------------------------------------------

    async def _submit(self, text: str, budget: float | None) -> Vector:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            raise EmbeddingUnavailable("the remote embedder serves the event loop that started it")
        if len(self._queue) + self._in_flight_texts >= self.max_pending:
            self._rejected += 1
            raise EmbeddingUnavailable(f"embedding queue full ({self.max_pending} texts waiting or in flight)")
        job = _Job(text[:MAX_TEXT_CHARS], loop.create_future(), None if budget is None else loop.time() + budget)
        self._queue.append(job)
        if len(self._queue) >= self.max_batch:
            self._flush()
        elif self._timer is None:
            # Idle: the next turn of the loop (callers of the same turn still join). Busy: collect a while.
            self._timer = loop.call_later(self.batch_wait if self._calls else 0.0, self._flush)
        try:
            async with asyncio.timeout(budget):
                return await job.future
        except TimeoutError:
            self._withdraw(job)
            self._timed_out += 1
            raise EmbeddingUnavailable(f"no embedding within {budget:.3f} s") from None
        except asyncio.CancelledError:
            self._withdraw(job)
            raise

    def _withdraw(self, job: _Job) -> None:
        """Drop a text whose caller gave up, if no call carries it yet."""
        with contextlib.suppress(ValueError):
            self._queue.remove(job)

    def _flush(self) -> None:
        """Send what waits, in calls of at most ``max_batch`` texts, while a call slot is free."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        assert self._loop is not None
        while self._queue and len(self._calls) < self.max_in_flight and not self._closed:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._in_flight_texts += len(batch)
            call = self._loop.create_task(self._call(batch), name="llmguard-remote-embedding")
            self._calls.add(call)
            call.add_done_callback(self._call_done)

    def _call_done(self, call: asyncio.Task[None]) -> None:
        self._calls.discard(call)
        if self._queue and not self._closed:  # these waited for a free call: send them now
            self._flush()

    async def _call(self, batch: list[_Job]) -> None:
        assert self._loop is not None
        self._sent += 1
        self._largest_batch = max(self._largest_batch, len(batch))
        deadlines = [job.deadline for job in batch]
        budget = (_UNBOUNDED_CALL_S if None in deadlines
                  else max(0.001, max(d for d in deadlines if d is not None) - self._loop.time()))
        try:
            vectors = await self._post([job.text for job in batch], budget)
        except asyncio.CancelledError:
            self._fail(batch, lambda: EmbeddingUnavailable("the embedder was closed"))
            raise
        except EmbeddingUnavailable as exc:
            message, kind = str(exc), type(exc)
            self._fail(batch, lambda: kind(message))
            return
        except Exception as exc:  # never an exception of ours to the request: a miss
            message = f"embedding call failed: {type(exc).__name__}: {exc}"
            self._fail(batch, lambda: EmbeddingUnavailable(message))
            return
        finally:
            self._in_flight_texts -= len(batch)
        self._answered += 1
        self._texts += len(batch)
        for job, row in zip(batch, vectors, strict=True):
            if not job.future.done():  # its caller may have timed out meanwhile
                job.future.set_result(row.copy())  # a kept vector must not hold its batch's matrix

    def _fail(self, batch: list[_Job], error: Callable[[], EmbeddingUnavailable]) -> None:
        self._failed += len(batch)
        for job in batch:
            if not job.future.done():
                job.future.set_exception(error())  # a fresh exception each: tracebacks must not pile up

    async def _post(self, texts: list[str], budget: float) -> Vector:
        client = self._client
        if client is None:
            raise EmbeddingUnavailable("the embedder is closed")
        httpx = self._httpx
        # base64: a quarter of the bytes and a twentieth of the JSON work of float lists. Servers that
        # ignore encoding_format (Ollama) answer float lists, which parse_embeddings reads as well.
        body = dump_json({"model": self.model_name, "input": texts, "encoding_format": "base64"})
        headers = {TIMEOUT_HEADER: f"{budget * 1000:.0f}"}
        try:
            async with asyncio.timeout(budget):
                response = await client.post(self.endpoint, content=body, headers=headers,
                                             timeout=httpx.Timeout(budget))
        except (TimeoutError, httpx.TimeoutException):
            raise _ServerUnavailable(f"no answer from the embedding server within {budget:.3f} s") from None
        except httpx.HTTPError as exc:
            raise _ServerUnavailable(f"embedding server unreachable: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            kind = _ServerUnavailable if response.status_code >= 500 or response.status_code == 429 else \
                EmbeddingUnavailable
            raise kind(f"embedding server answered {response.status_code}: {_error_message(response)}")
        try:
            payload = response.json()
        except ValueError:
            raise EmbeddingUnavailable("the embedding server answered something that is not JSON") from None
        return parse_embeddings(payload, len(texts), self._dimensions)
