"""The OpenAI wire format: request validation, and answers rebuilt as JSON or SSE.

Validation is deliberately shallow: it rejects what would make the stack (or a
typical app) fail — bodies that are not JSON objects, wrong types in the fields
the stack reads — and leaves everything else for the app to judge.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import RequestError

Kind = Literal["chat", "completion"]
MAX_NESTING = 64
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
JSON_TYPES = (b"application/json",)
# A \uD800-\uDFFF escape: one half of a UTF-16 surrogate pair, which may stand alone in JSON.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")

# Request fields that do not change the answer: they never enter a cache namespace.
NON_SHAPING_FIELDS = frozenset(
    {"messages", "prompt", "stream", "stream_options", "user", "metadata", "store", "service_tier"}
)


@dataclass(slots=True)
class ParsedRequest:
    """A validated request; ``payload`` is the JSON object, the rest are typed views of it."""

    kind: Kind
    payload: dict[str, Any]
    model: str
    stream: bool
    include_usage: bool
    user: str | None
    n: int
    max_tokens: int | None
    messages: list[dict[str, Any]] = field(default_factory=list)
    prompt: str | None = None

    @property
    def tools(self) -> Any:
        return self.payload.get("tools") or self.payload.get("functions")

    @property
    def response_format(self) -> Any:
        return self.payload.get("response_format")

    def shaping_params(self) -> dict[str, Any]:
        """Everything besides the prompt that can change the answer (model included)."""
        return {k: v for k, v in self.payload.items() if k not in NON_SHAPING_FIELDS}

    def last_user_text(self) -> str | None:
        """The text of the last message if it is the user's (what the cache compares by meaning)."""
        if self.kind == "completion":
            return self.prompt
        if not self.messages or self.messages[-1].get("role") != "user":
            return None
        return message_text(self.messages[-1])

    def context_messages(self) -> list[dict[str, Any]]:
        """Everything before the last message: system prompt and earlier turns."""
        return self.messages[:-1] if self.kind == "chat" else []


def message_text(message: dict[str, Any]) -> str | None:
    """Plain text of a message; None when it carries anything but text parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                return None
            parts.append(part["text"])
        return "\n".join(parts)
    return None


def kind_of_path(path: str) -> Kind:
    return "completion" if path.rstrip("/").endswith("/completions") and "/chat/" not in path else "chat"


def check_content_type(content_type: bytes | None) -> None:
    if content_type is None:
        return
    media = content_type.split(b";", 1)[0].strip().lower()
    if media in JSON_TYPES or media.endswith(b"+json"):
        return
    raise RequestError(
        f"Unsupported content type {media.decode('latin-1')!r}; send the body as application/json.",
        status=415,
        code="unsupported_media_type",
    )


def parse_request(body: bytes, kind: Kind, content_type: bytes | None = None) -> ParsedRequest:
    """Validate a request body and return its parsed form, or raise :class:`RequestError`."""
    check_content_type(content_type)
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):
        raise RequestError(
            "We could not parse the JSON body of your request. The body must be valid JSON.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise RequestError("The request body must be a JSON object.", code="invalid_json")
    if _too_deep(payload):
        raise RequestError(f"The request body nests deeper than {MAX_NESTING} levels.", code="invalid_json")
    if _SURROGATE_ESCAPE.search(body) is not None and _has_lone_surrogate(payload):
        raise RequestError("The request body holds a lone UTF-16 surrogate escape (such as \\ud800): "
                           "a string that is not Unicode text. Send each surrogate with its pair.",
                           code="invalid_json")
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise _field_error("model", "a non-empty string", model, missing="model" not in payload)
    stream = _optional(payload, "stream", bool, "a boolean", False)
    stream_options = _optional(payload, "stream_options", dict, "an object", None)
    include_usage = bool(stream_options and stream_options.get("include_usage") is True)
    user = _optional(payload, "user", str, "a string", None)
    n = _optional(payload, "n", int, "an integer", 1)
    if n < 1:
        raise _field_error("n", "an integer ≥ 1", n)
    max_tokens = _optional(payload, "max_tokens", int, "an integer", None)
    if max_tokens is None:
        max_tokens = _optional(payload, "max_completion_tokens", int, "an integer", None)
    if max_tokens is not None and max_tokens < 1:
        raise _field_error("max_tokens", "an integer ≥ 1", max_tokens)
    for name in ("temperature", "top_p", "presence_penalty", "frequency_penalty"):
        value = payload.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _field_error(name, "a number", value)
    for name in ("tools", "functions"):
        _optional(payload, name, list, "an array", None)
    for name in ("response_format",):
        _optional(payload, name, dict, "an object", None)
    request = ParsedRequest(
        kind=kind, payload=payload, model=model, stream=stream, include_usage=include_usage,
        user=user, n=n, max_tokens=max_tokens,
    )
    if kind == "chat":
        request.messages = _messages(payload)
    else:
        request.prompt = _prompt(payload)
    return request


def _has_lone_surrogate(payload: Any) -> bool:
    """Whether a string holds half a surrogate pair (json.loads keeps them; UTF-8 cannot carry them,
    so the app, a tokenizer or Redis would fail on them later)."""
    try:
        json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return True
    return False


def _too_deep(value: Any) -> bool:
    """Refuse bodies nested so deep that re-encoding them would exhaust the recursion limit."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_NESTING:
            return True
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values() if isinstance(child, dict | list))
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item if isinstance(child, dict | list))
    return False


def _optional(payload: dict[str, Any], name: str, kind: type, expected: str, default: Any) -> Any:
    value = payload.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _field_error(name, expected, value)
    return value


def _field_error(name: str, expected: str, value: object, *, missing: bool = False) -> RequestError:
    if missing:
        return RequestError(f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    shown = json.dumps(value)[:60] if _jsonable(value) else type(value).__name__
    return RequestError(f"Invalid type for '{name}': expected {expected}, but got {shown}.", param=name,
                        code="invalid_type")


def _jsonable(value: object) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return False
    return True


def _messages(payload: dict[str, Any]) -> list[dict[str, Any]]:
    if "messages" not in payload:
        raise _field_error("messages", "an array", None, missing=True)
    messages = payload["messages"]
    if not isinstance(messages, list):
        raise _field_error("messages", "an array of message objects", messages)
    if not messages:
        raise RequestError("'messages' must contain at least one message.", param="messages", code="empty_array")
    for index, message in enumerate(messages):
        param = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _field_error(param, "a message object", message)
        role = message.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise RequestError(f"Invalid value for '{param}.role': expected one of {', '.join(sorted(ROLES))}.",
                               param=f"{param}.role", code="invalid_value")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _field_error(f"{param}.content", "a string or an array of content parts", content)
    return messages


def _prompt(payload: dict[str, Any]) -> str | None:
    if "prompt" not in payload:
        raise _field_error("prompt", "a string", None, missing=True)
    prompt = payload["prompt"]
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and all(isinstance(p, str) for p in prompt):
        return prompt[0] if len(prompt) == 1 else None
    if isinstance(prompt, list) and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        return None
    raise _field_error("prompt", "a string or an array of strings or tokens", prompt)


# --- answers --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    """What the cache keeps of a response: the answer, not its bytes."""

    text: str
    finish_reason: str | None = "stop"
    tool_calls: tuple[dict[str, Any], ...] = ()
    usage: dict[str, int] | None = None
    model: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "finish_reason": self.finish_reason, "tool_calls": list(self.tool_calls),
                "usage": self.usage, "model": self.model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        return cls(text=data["text"], finish_reason=data.get("finish_reason"),
                   tool_calls=tuple(data.get("tool_calls") or ()), usage=data.get("usage"), model=data.get("model"))


def new_id(kind: Kind) -> str:
    return ("chatcmpl-" if kind == "chat" else "cmpl-") + uuid.uuid4().hex[:24]


def answer_json(answer: Answer, kind: Kind, model: str) -> dict[str, Any]:
    """A complete (non-streamed) response body carrying ``answer``."""
    created = int(time.time())
    usage = answer.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    if kind == "completion":
        return {"id": new_id(kind), "object": "text_completion", "created": created, "model": model,
                "choices": [{"index": 0, "text": answer.text, "logprobs": None,
                             "finish_reason": answer.finish_reason}], "usage": usage}
    message: dict[str, Any] = {"role": "assistant", "content": answer.text if answer.text or not answer.tool_calls
                               else None, "refusal": None}
    if answer.tool_calls:
        message["tool_calls"] = list(answer.tool_calls)
    return {"id": new_id(kind), "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
            "usage": usage, "system_fingerprint": None}


def answer_chunks(answer: Answer, kind: Kind, model: str, *, include_usage: bool,
                  piece_chars: int = 48) -> Iterator[dict[str, Any]]:
    """The ``answer`` as OpenAI stream chunks (without the final ``[DONE]``)."""
    ident, created = new_id(kind), int(time.time())
    pieces = [answer.text[i:i + piece_chars] for i in range(0, len(answer.text), piece_chars)]
    if kind == "completion":
        for piece in pieces or [""]:
            yield {"id": ident, "object": "text_completion", "created": created, "model": model,
                   "choices": [{"index": 0, "text": piece, "logprobs": None, "finish_reason": None}]}
        yield {"id": ident, "object": "text_completion", "created": created, "model": model,
               "choices": [{"index": 0, "text": "", "logprobs": None, "finish_reason": answer.finish_reason}]}
    else:
        base = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": None}
        yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "logprobs": None, "finish_reason": None}]}
        for piece in pieces:
            yield {**base, "choices": [{"index": 0, "delta": {"content": piece}, "logprobs": None,
                                        "finish_reason": None}]}
        for index, call in enumerate(answer.tool_calls):
            yield {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": index, **call}]},
                                        "logprobs": None, "finish_reason": None}]}
        yield {**base, "choices": [{"index": 0, "delta": {}, "logprobs": None,
                                    "finish_reason": answer.finish_reason}]}
        base = {**base}
    if include_usage:
        yield {"id": ident, "object": "chat.completion.chunk" if kind == "chat" else "text_completion",
               "created": created, "model": model, "choices": [],
               "usage": answer.usage or {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}}


def dump_json(value: Any) -> bytes:
    """Compact UTF-8 JSON; falls back to ASCII escapes for strings UTF-8 cannot carry (lone surrogates)."""
    try:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()


def sse_event(data: dict[str, Any] | str) -> bytes:
    raw = data.encode() if isinstance(data, str) else dump_json(data)
    return b"data: " + raw + b"\n\n"


def error_payload(message: str, type: str = "invalid_request_error", param: str | None = None,
                  code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "param": param, "code": code}}
