"""The one response observer: it reads OpenAI JSON or SSE as the bytes pass, and never holds them.

The cache, the token limits and the metrics all read what it saw (status, first
byte and first token times, text, tool calls, usage, finish reason, whether the
response completed and the client stayed).
"""

from __future__ import annotations

import json
import time
from typing import Any

from .openai_protocol import Answer
from .types import Message

MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_GAPS = 4096  # inter-token gaps kept per response: enough for the histogram, bounded for long streams


def _list(value: Any) -> list[Any]:
    """The app's answer is not ours to trust: a field of the wrong type reads as empty."""
    return value if isinstance(value, list) else []


class ResponseObserver:
    __slots__ = (
        "_json_chunks",
        "_json_size",
        "_line_tail",
        "_text",
        "_tool_calls",
        "choices_seen",
        "completed",
        "content_type",
        "disconnected",
        "done_marker",
        "failed",
        "finish_reason",
        "first_byte_at",
        "first_token_at",
        "last_token_at",
        "model",
        "started_at",
        "status",
        "token_events",
        "token_gaps",
        "undecodable",
        "usage",
    )

    def __init__(self) -> None:
        self.status: int | None = None
        self.content_type = b""
        self.started_at: float | None = None
        self.first_byte_at: float | None = None
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.token_events = 0
        self.token_gaps: list[float] = []  # seconds between token events, the first MAX_GAPS of them
        self.completed = False
        self.disconnected = False
        self.done_marker = False
        self.undecodable = False
        self.failed = False  # the app raised, even if it had sent a whole response first
        self.finish_reason: str | None = None
        self.usage: dict[str, int] | None = None
        self.model: str | None = None
        self.choices_seen: set[int] = set()
        self._text: list[str] = []
        self._tool_calls: dict[int, dict[str, Any]] = {}
        self._line_tail = b""
        self._json_chunks: list[bytes] = []
        self._json_size = 0

    # -- feeding -----------------------------------------------------------------------------------

    @property
    def is_sse(self) -> bool:
        return self.content_type.startswith(b"text/event-stream")

    def on_start(self, message: Message) -> None:
        self.status = int(message["status"])
        self.started_at = time.perf_counter()
        for key, value in message.get("headers", ()):
            if key.lower() == b"content-type":
                self.content_type = bytes(value).lower()

    def on_body(self, message: Message) -> None:
        chunk: bytes = message.get("body", b"")
        if chunk and self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
        if self.status == 200 and chunk:
            if self.is_sse:
                self._feed_sse(chunk)
            elif self._json_size + len(chunk) <= MAX_JSON_BYTES:
                self._json_chunks.append(chunk)
                self._json_size += len(chunk)
            else:
                self.undecodable = True

    def on_sent(self, message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.completed = True
            if self.status == 200 and not self.is_sse and self._json_chunks:
                self._parse_json(b"".join(self._json_chunks))
                self._json_chunks.clear()

    # -- SSE -----------------------------------------------------------------------------------------

    def _feed_sse(self, chunk: bytes) -> None:
        data = self._line_tail + chunk
        lines = data.split(b"\n")
        self._line_tail = lines.pop()
        for line in lines:
            line = line.rstrip(b"\r")
            if line.startswith(b"data:"):
                self._on_event(line[5:].strip())

    def _on_event(self, data: bytes) -> None:
        if data == b"[DONE]":
            self.done_marker = True
            return
        try:
            event = json.loads(data)
        except ValueError:
            self.undecodable = True
            return
        if not isinstance(event, dict):
            return
        if "error" in event:
            self.finish_reason = "error"
            return
        model = event.get("model", self.model)
        if model is None or isinstance(model, str):  # an odd value is not a model name: keep what we had
            self.model = model
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in _list(event.get("choices")):
            self._on_choice(choice, delta=True)

    # -- JSON ----------------------------------------------------------------------------------------

    def _parse_json(self, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            self.undecodable = True
            return
        if not isinstance(payload, dict):
            self.undecodable = True
            return
        model = payload.get("model")
        self.model = model if isinstance(model, str) else None
        if isinstance(payload.get("usage"), dict):
            self.usage = payload["usage"]
        for choice in _list(payload.get("choices")):
            self._on_choice(choice, delta=False)
        if self._text:
            self._mark_token()

    def _on_choice(self, choice: Any, *, delta: bool) -> None:
        if not isinstance(choice, dict):
            return
        index = choice.get("index", 0)
        self.choices_seen.add(index if isinstance(index, int) else 0)
        reason = choice.get("finish_reason")
        if reason:
            if isinstance(reason, str):
                self.finish_reason = reason
            else:
                self.undecodable = True
        part = choice.get("delta" if delta else "message")
        if isinstance(part, dict):
            content = part.get("content")
            if isinstance(content, str) and content:
                self._text.append(content)
                if delta:
                    self._mark_token()
            for call in _list(part.get("tool_calls")):
                self._merge_tool_call(call)
        text = choice.get("text")
        if isinstance(text, str) and text:
            self._text.append(text)
            if delta:
                self._mark_token()

    def _merge_tool_call(self, call: Any) -> None:
        if not isinstance(call, dict):
            return
        index = call.get("index", len(self._tool_calls))
        if not isinstance(index, int):
            self.undecodable = True
            return
        slot = self._tool_calls.setdefault(index, {"id": None, "type": "function",
                                                   "function": {"name": "", "arguments": ""}})
        if call.get("id"):
            slot["id"] = call["id"]
        function = call.get("function") or {}
        if isinstance(function, dict):
            name, arguments = function.get("name") or "", function.get("arguments") or ""
            if not (isinstance(name, str) and isinstance(arguments, str)):
                self.undecodable = True
                return
            slot["function"]["name"] += name
            slot["function"]["arguments"] += arguments
        self._mark_token()

    def _mark_token(self) -> None:
        now = time.perf_counter()
        if self.first_token_at is None:
            self.first_token_at = now
        elif len(self.token_gaps) < MAX_GAPS and self.last_token_at is not None:
            self.token_gaps.append(now - self.last_token_at)
        self.last_token_at = now
        self.token_events += 1

    # -- reading -------------------------------------------------------------------------------------

    @property
    def inter_token_mean(self) -> float | None:
        """Mean seconds between token events (streamed responses with two or more tokens)."""
        return sum(self.token_gaps) / len(self.token_gaps) if self.token_gaps else None

    @property
    def inter_token_max(self) -> float | None:
        """The longest stall between two token events: what a reader of the stream notices."""
        return max(self.token_gaps) if self.token_gaps else None

    @property
    def text(self) -> str:
        return "".join(self._text)

    @property
    def complete_ok(self) -> bool:
        """A whole 200 the client received: the only kind of response worth keeping."""
        if self.status != 200 or not self.completed or self.disconnected or self.undecodable or self.failed:
            return False
        if self.finish_reason in (None, "content_filter", "error"):
            return False
        return self.done_marker if self.is_sse else True

    def answer(self) -> Answer | None:
        """The answer as the cache keeps it, or None when it is not a single complete choice."""
        if not self.complete_ok or self.choices_seen - {0}:
            return None
        tool_calls = tuple(self._tool_calls[i] for i in sorted(self._tool_calls))
        return Answer(text=self.text, finish_reason=self.finish_reason, tool_calls=tool_calls,
                      usage=self.usage, model=self.model)
