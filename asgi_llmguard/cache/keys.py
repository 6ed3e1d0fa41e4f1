"""Namespaces and exact keys: what decides which stored answers a request may see."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..core.openai_protocol import ParsedRequest

_SPACES = re.compile(r"\s+")


def _digest(value: Any) -> str:
    raw = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def namespace_of(request: ParsedRequest, scope_identity: str | None) -> str:
    """Everything that changes the answer besides the last user message, hashed.

    Model, system prompt and earlier turns, output-shaping parameters and, with
    ``LLMGUARD_CACHE_SCOPE=identity``, the caller's identity.
    """
    return _digest({
        "kind": request.kind,
        "params": request.shaping_params(),
        "context": request.context_messages(),
        "identity": scope_identity,
    })


def normalise(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


def exact_key_of(namespace: str, request: ParsedRequest) -> str:
    text = request.last_user_text()
    last: Any = normalise(text) if text is not None else (
        request.messages[-1] if request.kind == "chat" else request.payload.get("prompt"))
    return namespace + ":" + _digest(last)
