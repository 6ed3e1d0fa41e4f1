"""A mock OpenAI-compatible LLM: chat and legacy completions, streamed or not, with fake delays.

Its answer contains the last user message verbatim, so a client can tell which prompt an
answer was made for::

    You said: "<last user message>". Here is a mock answer.

Streamed, the answer is cut into word-sized pieces whose concatenation equals the non-stream
content exactly. The answer builders are plain functions, so the Django demo answers with the
same bytes as the Starlette app made by :func:`create_mock_llm`.

Test knobs, read from request headers:

- ``X-Mock-Fail: <status>`` answers with an OpenAI-style error JSON and that status (500 if not a number).
- ``X-Mock-Cut-After: <n>`` aborts a stream after ``n`` content chunks (the generator raises, so the
  server drops the connection without the final chunk or ``[DONE]``).

Answers that follow meaning: ``LLMGUARD_DEMO_ANSWERS`` (``python -m demo_app --answers FILE``) names a
CSV of ``prompt,answer`` rows (a header row is optional); a prompt found there (spaces and case
normalised) is answered with its row's text instead of the echo, so rewordings of one question
(a paraphrase cluster given one answer) get the same answer and a near-duplicate with another
meaning gets another: shadow mode and audits can then be watched telling them apart.

A whole process can misbehave, for the proxy's chaos tests: ``LLMGUARD_DEMO_FAULT`` (or
``POST /mock/fault`` with ``{"mode": ...}`` at run time) is ``none``, ``error`` (every completion
answers 500) or ``hang-mid-stream`` (a stream stops after its first content chunk and never ends;
a non-stream answer never comes). A slow backend is just a large ``LLMGUARD_DEMO_TTFT_MS``.

Counters for tests live on ``app.state``: ``calls`` (completion requests that reached the mock),
``models`` (a Counter of the models asked for) and ``last_request`` (the last parsed body);
over HTTP, ``GET /mock/stats`` shows the same.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

__all__ = [
    "ANSWER_TAIL",
    "FAULT_MODES",
    "MOCK_MODELS",
    "SSE_DONE",
    "Completion",
    "Delays",
    "MockLLM",
    "MockRequestError",
    "MockStreamCut",
    "build_answer",
    "completion_body",
    "count_tokens",
    "create_mock_llm",
    "cut_after_from_headers",
    "error_body",
    "failure_status_from_headers",
    "fault_from_env",
    "last_user_message",
    "load_answers",
    "models_body",
    "parse_json_body",
    "plan_chat_completion",
    "plan_text_completion",
    "sleep_for_full_answer",
    "split_into_pieces",
    "sse_data",
    "stream_events",
]

TTFT_ENV = "LLMGUARD_DEMO_TTFT_MS"
FAULT_ENV = "LLMGUARD_DEMO_FAULT"
FAULT_MODES = ("none", "error", "hang-mid-stream")
TOKEN_ENV = "LLMGUARD_DEMO_TOKEN_MS"
ANSWERS_ENV = "LLMGUARD_DEMO_ANSWERS"
DEFAULT_TTFT_MS = 200.0
DEFAULT_TOKEN_MS = 20.0

MOCK_MODELS = ("mock-small", "mock-large", "gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct")
ANSWER_TAIL = "Here is a mock answer."
SSE_DONE = b"data: [DONE]\n\n"
SYSTEM_FINGERPRINT = "fp_llmguard_mock"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

FAIL_HEADER = "x-mock-fail"
CUT_HEADER = "x-mock-cut-after"

CompletionKind = Literal["chat", "text"]


class MockRequestError(Exception):
    """A request the mock refuses, answered as OpenAI does: ``{"error": {...}}`` with a 4xx status."""

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        error_type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code
        self.status = status
        self.error_type = error_type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, error_type=self.error_type, param=self.param, code=self.code)


class MockStreamCut(RuntimeError):
    """Raised inside a stream that ``X-Mock-Cut-After`` asked to break; the server aborts the connection."""


@dataclass(frozen=True)
class Delays:
    """Fake generation time: ``ttft_s`` before the first token, ``token_s`` between tokens."""

    ttft_s: float
    token_s: float

    @classmethod
    def resolve(cls, ttft_ms: float | None = None, token_ms: float | None = None) -> Delays:
        """Explicit values win; ``None`` reads ``LLMGUARD_DEMO_TTFT_MS`` / ``LLMGUARD_DEMO_TOKEN_MS``."""
        ttft = _ms_from_env(TTFT_ENV, DEFAULT_TTFT_MS) if ttft_ms is None else ttft_ms
        token = _ms_from_env(TOKEN_ENV, DEFAULT_TOKEN_MS) if token_ms is None else token_ms
        return cls(ttft_s=max(0.0, ttft) / 1000.0, token_s=max(0.0, token) / 1000.0)


def fault_from_env() -> str:
    """The process-wide fault mode from ``LLMGUARD_DEMO_FAULT`` (``none`` when unset)."""
    raw = os.environ.get(FAULT_ENV, "").strip().lower() or "none"
    if raw not in FAULT_MODES:
        raise ValueError(f"{FAULT_ENV} must be one of {', '.join(FAULT_MODES)}, got {raw!r}")
    return raw


def _ms_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of milliseconds, got {raw!r}") from None


@dataclass(frozen=True)
class Completion:
    """Everything needed to answer one request, streamed or not."""

    kind: CompletionKind
    id: str
    model: str
    created: int
    content: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    stream: bool
    include_usage: bool

    @property
    def usage(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }

    def pieces(self) -> list[str]:
        return split_into_pieces(self.content)


# --- text helpers ---------------------------------------------------------------------------------


def count_tokens(text: str) -> int:
    """A word count: close enough to tokens for a mock, and the same on every side."""
    return len(text.split())


_PIECE = re.compile(r"\S+\s*")


def split_into_pieces(text: str) -> list[str]:
    """Word-sized pieces (each word with its trailing whitespace); ``"".join(pieces) == text``."""
    pieces = _PIECE.findall(text)
    leading = text[: len(text) - len(text.lstrip())]
    if leading:
        if pieces:
            pieces[0] = leading + pieces[0]
        else:
            pieces = [leading]
    return pieces


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a list of parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(part.get("text", ""))
            for part in content
            if isinstance(part, Mapping) and part.get("type", "text") == "text"
        ]
        return "\n".join(texts)
    return str(content)


def last_user_message(messages: list[Any]) -> str:
    """The text of the last ``user`` message, or ``""`` when there is none."""
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


_SPACES = re.compile(r"\s+")
_answers_loaded: tuple[str, dict[str, str]] | None = None


def _key(prompt: str) -> str:
    return _SPACES.sub(" ", prompt).strip().casefold()


def load_answers(path: str | os.PathLike[str]) -> dict[str, str]:
    """The ``prompt,answer`` rows of a CSV file (header optional), keyed by the normalised prompt."""
    import csv

    table: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.reader(handle):
            if len(row) < 2 or (not table and [c.strip().lower() for c in row[:2]] == ["prompt", "answer"]):
                continue
            table[_key(row[0])] = row[1]
    if not table:
        raise ValueError(f"{path}: no prompt,answer rows")
    return table


def known_answer(prompt: str) -> str | None:
    """The answer ``LLMGUARD_DEMO_ANSWERS`` gives ``prompt``, if the variable is set and lists it."""
    global _answers_loaded
    path = os.environ.get(ANSWERS_ENV, "").strip()
    if not path:
        return None
    if _answers_loaded is None or _answers_loaded[0] != path:
        _answers_loaded = (path, load_answers(path))
    return _answers_loaded[1].get(_key(prompt))


def build_answer(prompt: str, max_tokens: int | None = None) -> tuple[str, str]:
    """The answer to ``prompt`` and its finish reason.

    ``max_tokens`` is honoured loosely: it may shorten the tail, never the verbatim echo, and a
    shortened answer finishes with ``"length"``. A prompt listed in ``LLMGUARD_DEMO_ANSWERS`` gets
    its listed answer, whole.
    """
    known = known_answer(prompt)
    if known is not None:
        return known, "stop"
    echo = f'You said: "{prompt}".'
    tail_words = ANSWER_TAIL.split()
    finish_reason = "stop"
    if max_tokens is not None:
        room = max(0, max_tokens - count_tokens(echo))
        if room < len(tail_words):
            tail_words = tail_words[:room]
            finish_reason = "length"
    content = " ".join([echo, *tail_words])
    return content, finish_reason


# --- request parsing ------------------------------------------------------------------------------


def parse_json_body(body: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a :class:`MockRequestError` as OpenAI words it."""
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MockRequestError(
            f"We could not parse the JSON body of your request. ({exc})",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise MockRequestError("The request body must be a JSON object.", code="invalid_json")
    try:  # json.loads keeps a lone surrogate escape ("\ud800"); the answer, which echoes it, could not be sent
        json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise MockRequestError("The request body holds a lone UTF-16 surrogate escape (such as \\ud800): "
                               "a string that is not Unicode text.", code="invalid_json") from None
    except RecursionError:
        raise MockRequestError("The request body nests too deeply.", code="invalid_json") from None
    return payload


def _model(payload: Mapping[str, Any]) -> str:
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise MockRequestError("you must provide a model parameter", param="model", code="missing_required_parameter")
    return model


def _max_tokens(payload: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise MockRequestError(
                f"Invalid value for '{name}': expected an integer of at least 1.",
                param=name,
                code="invalid_value",
            )
        return value
    return None


def _stream_flags(payload: Mapping[str, Any]) -> tuple[bool, bool]:
    stream = payload.get("stream") is True
    options = payload.get("stream_options")
    include_usage = stream and isinstance(options, Mapping) and options.get("include_usage") is True
    return stream, include_usage


def plan_chat_completion(payload: Mapping[str, Any]) -> Completion:
    """Validate a ``/v1/chat/completions`` body and decide the answer."""
    model = _model(payload)
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise MockRequestError(
            "'messages' must be a non-empty array of messages.", param="messages", code="invalid_value"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise MockRequestError(
                f"'messages[{index}]' must be an object with a 'role'.",
                param=f"messages[{index}]",
                code="invalid_value",
            )
    max_tokens = _max_tokens(payload, "max_completion_tokens", "max_tokens")
    stream, include_usage = _stream_flags(payload)
    content, finish_reason = build_answer(last_user_message(messages), max_tokens)
    prompt_tokens = sum(count_tokens(message_text(message.get("content"))) for message in messages)
    return Completion(
        kind="chat",
        id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
        model=model,
        created=int(time.time()),
        content=content,
        finish_reason=finish_reason,
        prompt_tokens=prompt_tokens,
        completion_tokens=count_tokens(content),
        stream=stream,
        include_usage=include_usage,
    )


def plan_text_completion(payload: Mapping[str, Any]) -> Completion:
    """Validate a legacy ``/v1/completions`` body and decide the answer."""
    model = _model(payload)
    prompt = payload.get("prompt")
    if isinstance(prompt, list):
        texts = [item for item in prompt if isinstance(item, str)]
        prompt_text = texts[-1] if texts else ""
        all_text = " ".join(texts)
    elif isinstance(prompt, str):
        prompt_text = all_text = prompt
    else:
        raise MockRequestError(
            "'prompt' must be a string or an array of strings.", param="prompt", code="invalid_value"
        )
    max_tokens = _max_tokens(payload, "max_tokens")
    stream, include_usage = _stream_flags(payload)
    content, finish_reason = build_answer(prompt_text, max_tokens)
    return Completion(
        kind="text",
        id=f"cmpl-{uuid.uuid4().hex[:24]}",
        model=model,
        created=int(time.time()),
        content=content,
        finish_reason=finish_reason,
        prompt_tokens=count_tokens(all_text),
        completion_tokens=count_tokens(content),
        stream=stream,
        include_usage=include_usage,
    )


def failure_status_from_headers(headers: Mapping[str, str]) -> int | None:
    """The status asked for by ``X-Mock-Fail`` (500 when it is not a 4xx/5xx number), or ``None``."""
    raw = _header(headers, FAIL_HEADER)
    if raw is None:
        return None
    try:
        status = int(raw)
    except ValueError:
        return 500
    return status if 400 <= status <= 599 else 500


def cut_after_from_headers(headers: Mapping[str, str]) -> int | None:
    """The number of content chunks after which ``X-Mock-Cut-After`` breaks a stream, or ``None``."""
    raw = _header(headers, CUT_HEADER)
    if raw is None:
        return None
    try:
        return max(0, int(raw))
    except ValueError:
        return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # Starlette's and Django's header maps are case-insensitive; a plain dict may not be.
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


# --- response building ----------------------------------------------------------------------------


def error_body(
    message: str,
    *,
    error_type: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def completion_body(completion: Completion) -> dict[str, Any]:
    """The non-stream JSON answer: a ``chat.completion`` or a ``text_completion``."""
    if completion.kind == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": completion.content, "refusal": None},
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }
        obj = "chat.completion"
    else:
        choice = {
            "text": completion.content,
            "index": 0,
            "logprobs": None,
            "finish_reason": completion.finish_reason,
        }
        obj = "text_completion"
    return {
        "id": completion.id,
        "object": obj,
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [choice],
        "usage": completion.usage,
    }


def _chunk(completion: Completion, choices: list[dict[str, Any]]) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion.chunk" if completion.kind == "chat" else "text_completion",
        "created": completion.created,
        "model": completion.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": choices,
    }
    if completion.include_usage:
        # OpenAI sends "usage": null on every chunk but the last when usage was asked for.
        chunk["usage"] = None
    return chunk


def _choice(
    completion: Completion, text: str | None, *, role: bool = False, finish: str | None = None
) -> dict[str, Any]:
    if completion.kind == "chat":
        delta: dict[str, Any] = {}
        if role:
            delta = {"role": "assistant", "content": "", "refusal": None}
        elif text is not None:
            delta = {"content": text}
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"text": text or "", "index": 0, "logprobs": None, "finish_reason": finish}


def sse_data(obj: Mapping[str, Any]) -> bytes:
    """One SSE event carrying ``obj`` as JSON."""
    return b"data: " + json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def stream_events(
    completion: Completion, delays: Delays, cut_after: int | None = None, *, hang_after: int | None = None
) -> AsyncIterator[bytes]:
    """The SSE bytes of a streamed answer, paced by ``delays``.

    Chat: a role chunk, one chunk per piece, a final chunk with the finish reason, a usage chunk when
    ``stream_options.include_usage`` was set, then ``data: [DONE]``. Text completions: the same
    without the role chunk. Sleeping with :func:`asyncio.sleep` lets a disconnect cancel the stream.
    """
    if delays.ttft_s:
        await asyncio.sleep(delays.ttft_s)
    if completion.kind == "chat":
        yield sse_data(_chunk(completion, [_choice(completion, None, role=True)]))
    for index, piece in enumerate(completion.pieces()):
        if cut_after is not None and index >= cut_after:
            raise MockStreamCut(f"stream cut after {cut_after} content chunks (X-Mock-Cut-After)")
        if hang_after is not None and index >= hang_after:
            await asyncio.Event().wait()  # a backend stuck mid-answer: only a disconnect ends this
        if index and delays.token_s:
            await asyncio.sleep(delays.token_s)
        yield sse_data(_chunk(completion, [_choice(completion, piece)]))
    if cut_after is not None:
        # Fewer pieces than asked for: the stream still breaks, before its final chunk.
        raise MockStreamCut(f"stream cut after {cut_after} content chunks (X-Mock-Cut-After)")
    yield sse_data(_chunk(completion, [_choice(completion, None, finish=completion.finish_reason)]))
    if completion.include_usage:
        usage_chunk = _chunk(completion, [])
        usage_chunk["usage"] = completion.usage
        yield sse_data(usage_chunk)
    yield SSE_DONE


async def sleep_for_full_answer(completion: Completion, delays: Delays) -> None:
    """Wait as long as the streamed answer would take, so stream and non-stream cost the same."""
    total = delays.ttft_s + delays.token_s * max(0, len(completion.pieces()) - 1)
    if total:
        await asyncio.sleep(total)


def models_body(models: tuple[str, ...] = MOCK_MODELS) -> dict[str, Any]:
    return {"object": "list", "data": [model_body(model) for model in models]}


def model_body(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 1_700_000_000, "owned_by": "llmguard-mock"}


# --- the Starlette app ----------------------------------------------------------------------------


class MockLLM:
    """The mock's endpoints. Counters go to ``state`` (an app's ``state``) so any app can host them."""

    def __init__(self, *, delays: Delays, state: State) -> None:
        self.delays = delays
        self.state = state
        state.calls = 0
        state.models = Counter()
        state.last_request = None
        state.fault = fault_from_env()
        state.streams_open = 0  # streams being generated now
        state.streams_cancelled = 0  # streams whose client (or proxy) went away before the end

    async def chat_completions(self, request: Request) -> Response:
        """OpenAI-compatible chat completions (mock): JSON, or SSE with ``"stream": true``."""
        return await self._complete(request, "chat")

    async def completions(self, request: Request) -> Response:
        """OpenAI-compatible legacy text completions (mock): JSON, or SSE with ``"stream": true``."""
        return await self._complete(request, "text")

    async def list_models(self, request: Request) -> Response:
        """The models the mock claims to serve (it answers for any name)."""
        return JSONResponse(models_body())

    async def retrieve_model(self, request: Request) -> Response:
        """One model; every name exists."""
        return JSONResponse(model_body(str(request.path_params["model"])))

    async def stats(self, request: Request) -> Response:
        """How many completion requests reached the mock, and for which models."""
        return JSONResponse({"calls": self.state.calls, "models": dict(self.state.models),
                             "streams_open": self.state.streams_open,
                             "streams_cancelled": self.state.streams_cancelled})

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def set_fault(self, request: Request) -> Response:
        """Change the process-wide fault mode (test knob): ``{"mode": "none" | "error" | "hang-mid-stream"}``."""
        try:
            mode = parse_json_body(await request.body()).get("mode")
        except MockRequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        if mode not in FAULT_MODES:
            body = error_body(f"mode must be one of {', '.join(FAULT_MODES)}", param="mode")
            return JSONResponse(body, status_code=400)
        self.state.fault = mode
        return JSONResponse({"mode": mode})

    async def _complete(self, request: Request, kind: CompletionKind) -> Response:
        self.state.calls += 1
        status = failure_status_from_headers(request.headers)
        if status is None and self.state.fault == "error":
            status = 500
        if status is not None:
            error_type = "server_error" if status >= 500 else "invalid_request_error"
            body = error_body(f"mock failure requested by X-Mock-Fail ({status})", error_type=error_type)
            return JSONResponse(body, status_code=status)
        try:
            payload = parse_json_body(await request.body())
            self.state.last_request = payload
            completion = plan_chat_completion(payload) if kind == "chat" else plan_text_completion(payload)
        except MockRequestError as exc:
            return JSONResponse(exc.body(), status_code=exc.status)
        self.state.models[completion.model] += 1
        hang = self.state.fault == "hang-mid-stream"
        if completion.stream:
            events = stream_events(completion, self.delays, cut_after_from_headers(request.headers),
                                   hang_after=1 if hang else None)
            return StreamingResponse(self._counted(events), media_type="text/event-stream", headers=SSE_HEADERS)
        await sleep_for_full_answer(completion, self.delays)
        if hang:
            await asyncio.Event().wait()
        return JSONResponse(completion_body(completion))

    async def _counted(self, events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """``events``, counted in ``streams_open`` while running and ``streams_cancelled`` when abandoned."""
        self.state.streams_open += 1
        try:
            async for event in events:
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            self.state.streams_cancelled += 1
            raise
        finally:
            self.state.streams_open -= 1

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self.chat_completions, methods=["POST"]),
            Route("/v1/completions", self.completions, methods=["POST"]),
            Route("/v1/models", self.list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", self.retrieve_model, methods=["GET"]),
            Route("/mock/stats", self.stats, methods=["GET"]),
            Route("/mock/fault", self.set_fault, methods=["POST"]),
        ]


def create_mock_llm(*, ttft_ms: float | None = None, token_ms: float | None = None) -> Starlette:
    """The mock LLM as a Starlette app; a ``None`` delay is read from ``LLMGUARD_DEMO_*_MS``."""
    app = Starlette()
    llm = MockLLM(delays=Delays.resolve(ttft_ms, token_ms), state=app.state)
    app.state.mock = llm
    for route in [*llm.routes(), Route("/health", llm.health, methods=["GET"])]:
        app.router.routes.append(route)
    return app
