"""An OpenAI-compatible embedding server: the semantic cache's embedding tier in its own process.

    python -m asgi_llmguard.embedding_server --host 127.0.0.1 --port 8100   (or: llmguard serve-embeddings ...)
    LLMGUARD_EMBEDDING_URL=http://127.0.0.1:8100/v1 python -m demo_app --workers 2

It loads the model the app would (``LLMGUARD_EMBEDDING_MODEL``, ``LLMGUARD_EMBEDDING_MODEL_DIR``,
``LLMGUARD_EMBEDDING_THREADS``, ``LLMGUARD_EMBEDDING_MAX_BATCH``, ``LLMGUARD_EMBEDDING_MAX_PENDING``)
into one :class:`~asgi_llmguard.embedding.local.FastEmbedEmbedder`, whose worker thread micro-batches the
texts of every concurrent request together, and serves:

- ``POST /v1/embeddings``: OpenAI's shape. ``input`` is a string or a list of strings (token arrays
  are refused), ``encoding_format`` ``float`` (default) or ``base64``; bad input is an OpenAI-style 400,
  an unknown model a 404, a body over ``--max-body-bytes`` a 413, a full queue or an answer over the
  time budget a 503. With ``LLMGUARD_EMBEDDING_API_KEY`` set, ``/v1/*`` needs that bearer token.
- ``GET /v1/models``: the one model served; ``GET /health``: liveness; ``GET /stats``: request,
  input and batching counters (JSON).

The time budget of a request is the server's ``--timeout-ms`` or, when shorter, the budget a
:class:`~asgi_llmguard.embedding.remote.RemoteEmbedder` sends in ``x-llmguard-timeout-ms``: work
nobody waits for any more leaves the queue. ``usage`` counts tokens as ``tokens.py`` estimates them
(characters / 4), not with the model's tokenizer. uvicorn (the ``demo`` extra) is imported only by
:func:`main`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hmac
import json
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..config import Settings
from ..core.asgi import ClientDisconnected, read_body
from ..core.openai_protocol import dump_json, error_payload
from ..core.tokens import estimate_text_tokens
from ..core.types import Vector
from ..errors import ConfigurationError, RequestError
from .local import EmbeddingUnavailable, FastEmbedEmbedder
from .remote import TIMEOUT_HEADER

__all__ = ["DEFAULT_PORT", "EmbeddingService", "create_app", "main"]

DEFAULT_PORT = 8100
DEFAULT_MAX_INPUTS = 256
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_TIMEOUT_MS = 10_000.0


def _json(status: int, payload: Any) -> Response:
    return Response(dump_json(payload), status_code=status, media_type="application/json")


def _error(error: RequestError) -> Response:
    return _json(error.status, error.to_payload())


class EmbeddingService:
    """The endpoints, around one started embedder (``create_app`` starts and closes it)."""

    def __init__(
        self,
        embedder: FastEmbedEmbedder,
        *,
        api_key: str | None = None,
        max_inputs: int = DEFAULT_MAX_INPUTS,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        timeout_ms: float = DEFAULT_TIMEOUT_MS,
    ) -> None:
        self.embedder = embedder
        self.model = embedder.model_name
        self.api_key = api_key
        self.max_inputs = max_inputs
        self.max_body_bytes = max_body_bytes
        self.timeout_ms = timeout_ms
        self.requests = 0  # embedding requests answered with vectors
        self.inputs = 0  # texts in them
        self.refused = 0  # 4xx answers
        self.unavailable = 0  # 503 answers: queue full or over budget

    def routes(self) -> list[Route]:
        return [
            Route("/v1/embeddings", self.embeddings, methods=["POST"]),
            Route("/v1/models", self.models, methods=["GET"]),
            Route("/health", self.health, methods=["GET"]),
            Route("/stats", self.stats, methods=["GET"]),
        ]

    async def health(self, request: Request) -> Response:
        return _json(200, {"status": "ok" if self.embedder.ready else "starting", "model": self.model})

    async def stats(self, request: Request) -> Response:
        return _json(200, {
            "model": self.model, "dimensions": self.embedder.dimensions if self.embedder.ready else None,
            "requests": self.requests,
            "inputs": self.inputs, "refused": self.refused, "unavailable": self.unavailable,
            "embedder": dataclasses.asdict(self.embedder.stats()),
        })

    async def models(self, request: Request) -> Response:
        if (denied := self._check_key(request)) is not None:
            return denied
        return _json(200, {"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 0, "owned_by": "asgi_llmguard"}]})

    async def embeddings(self, request: Request) -> Response:
        if (denied := self._check_key(request)) is not None:
            return denied
        try:
            body = await read_body(request.scope, request.receive, self.max_body_bytes)
            texts, encoding = self._parse(body)
        except ClientDisconnected:
            return Response(status_code=499)
        except RequestError as exc:
            self.refused += 1
            return _error(exc)
        timeout = self._budget(request) / 1000
        stats = self.embedder.stats()
        if stats.pending + len(texts) > self.embedder.max_pending:
            return self._unavailable(f"The embedding queue is full ({stats.pending} texts waiting); retry later.")
        results = await asyncio.gather(*(self.embedder.embed(text, timeout=timeout) for text in texts),
                                       return_exceptions=True)
        failed = next((r for r in results if isinstance(r, BaseException)), None)
        if failed is not None:
            if not isinstance(failed, EmbeddingUnavailable):
                raise failed
            return self._unavailable(f"No embedding: {failed}")
        vectors: list[Vector] = [r for r in results if not isinstance(r, BaseException)]
        self.requests += 1
        self.inputs += len(texts)
        tokens = sum(estimate_text_tokens(text) for text in texts)
        return _json(200, {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": _encode(v, encoding)}
                     for i, v in enumerate(vectors)],
            "model": self.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })

    # -- helpers ---------------------------------------------------------------------------------------

    def _check_key(self, request: Request) -> Response | None:
        if not self.api_key:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.api_key.encode()):
            return None
        self.refused += 1
        return _error(RequestError("Incorrect or missing API key: send it as 'Authorization: Bearer <key>'.",
                                   status=401, code="invalid_api_key"))

    def _budget(self, request: Request) -> float:
        """Milliseconds: the server's budget, or the caller's when it sent a shorter one."""
        raw = request.headers.get(TIMEOUT_HEADER)
        if raw is None:
            return self.timeout_ms
        try:
            asked = float(raw)
        except ValueError:
            return self.timeout_ms
        return min(self.timeout_ms, asked) if asked > 0 else self.timeout_ms

    def _unavailable(self, message: str) -> Response:
        self.unavailable += 1
        return _json(503, error_payload(message, type="server_error", code="overloaded"))

    def _parse(self, body: bytes) -> tuple[list[str], str]:
        try:
            payload = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(payload, dict):
            raise RequestError("The request body must be a JSON object.")
        model = payload.get("model", self.model)
        if not isinstance(model, str) or model.lower() != self.model.lower():
            raise RequestError(f"The model {model!r} does not exist here; this server serves {self.model!r}.",
                               status=404, param="model", code="model_not_found")
        raw = payload.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if raw is None:
            raise RequestError("'input' is required: a string or a list of strings.", param="input",
                               code="missing_required_parameter")
        if not isinstance(texts, list) or not texts:
            raise RequestError("'input' must be a non-empty string or a non-empty list of strings.", param="input")
        if not all(isinstance(t, str) for t in texts):
            raise RequestError("'input' must hold strings: token arrays are not supported here.", param="input")
        if any(not t for t in texts):
            raise RequestError("'input' cannot contain an empty string.", param="input")
        if len(texts) > self.max_inputs:
            raise RequestError(f"'input' holds {len(texts)} texts; at most {self.max_inputs} per request.",
                               param="input")
        encoding = payload.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise RequestError("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
        dimensions = payload.get("dimensions")
        if dimensions is not None and dimensions != self.embedder.dimensions:
            raise RequestError(f"'dimensions' cannot be changed: this model answers {self.embedder.dimensions}.",
                               param="dimensions")
        return texts, encoding


def _encode(vector: Vector, encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
    return vector.tolist()  # type: ignore[no-any-return]


def create_app(
    settings: Settings | None = None,
    *,
    embedder: FastEmbedEmbedder | None = None,
    max_inputs: int = DEFAULT_MAX_INPUTS,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    timeout_ms: float = DEFAULT_TIMEOUT_MS,
    threads: int | None = None,
) -> Starlette:
    """The server's Starlette app; it loads the model (or starts ``embedder``) at lifespan startup.

    Settings come from ``LLMGUARD_*`` variables unless given; ``threads`` overrides
    ``LLMGUARD_EMBEDDING_THREADS``.
    """
    if max_inputs < 1 or max_body_bytes < 1 or timeout_ms <= 0:
        raise ConfigurationError("max_inputs, max_body_bytes and timeout_ms must be positive")
    s = settings if settings is not None else Settings.from_env()
    if embedder is None:
        embedder = FastEmbedEmbedder(s.embedding_model, s.embedding_model_dir,
                                     threads=threads or s.embedding_threads, max_batch=s.embedding_max_batch,
                                     max_pending=max(s.embedding_max_pending, max_inputs), timeout=timeout_ms / 1000)
    service = EmbeddingService(embedder, api_key=s.embedding_api_key, max_inputs=max_inputs,
                               max_body_bytes=max_body_bytes, timeout_ms=timeout_ms)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.embedder.start()  # a model that cannot load stops the server: it has no other job
        try:
            yield
        finally:
            await service.embedder.close()

    app = Starlette(routes=service.routes(), lifespan=lifespan)
    app.state.service = service
    return app


PROG = "python -m asgi_llmguard.embedding_server"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Serve the semantic cache's embedding model as an OpenAI-compatible POST /v1/embeddings.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to bind (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=None,
                        help="ONNX threads of the model (default: LLMGUARD_EMBEDDING_THREADS, else 1)")
    parser.add_argument("--max-inputs", type=int, default=DEFAULT_MAX_INPUTS,
                        help="most texts in one request (default: %(default)s)")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY_BYTES,
                        help="largest request body (default: %(default)s)")
    parser.add_argument("--timeout-ms", type=float, default=DEFAULT_TIMEOUT_MS,
                        help="longest a request's texts may take, queue included (default: %(default)s)")
    parser.add_argument("--log-level", default="info",
                        choices=["critical", "error", "warning", "info", "debug", "trace"],
                        help="uvicorn log level (default: %(default)s)")
    parser.add_argument("--no-access-log", action="store_true", help="turn off uvicorn's access log")
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Serve until stopped; ``prog`` names the command in messages (``llmguard serve-embeddings``)."""
    args = build_parser(prog).parse_args(argv)
    try:
        app = create_app(max_inputs=args.max_inputs, max_body_bytes=args.max_body_bytes,
                         timeout_ms=args.timeout_ms, threads=args.threads)
    except ConfigurationError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        import uvicorn
    except ImportError:
        print(f"{prog}: error: needs uvicorn: pip install 'asgi-llmguard[demo]'", file=sys.stderr)
        return 2
    # One process: a second worker would load a second model and batch apart; use --threads instead.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=not args.no_access_log,
                lifespan="on", timeout_graceful_shutdown=5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
