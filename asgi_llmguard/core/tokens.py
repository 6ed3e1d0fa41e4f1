"""Token estimates for the tokens-per-minute limit: cheap, offline, and reconciled later.

No tokenizer runs here. ``tiktoken`` downloads its BPE tables at first use, which a
gateway must not depend on, and the models behind the stack are not all OpenAI's.
So the admission charge is an estimate, documented in docs/ratelimit.md, that the
limiter corrects with the real ``usage`` once the response has been observed:

- text: one token per ``CHARS_PER_TOKEN`` characters, rounded up (English averages
  about four characters per token with OpenAI's tokenizers);
- chat messages: ``MESSAGE_OVERHEAD`` tokens each for role and separators, plus
  ``REPLY_PRIMING`` for the reply (the counts OpenAI's cookbook gives);
- an image part: ``IMAGE_TOKENS`` (the price of a low-detail image);
- tools / functions / response_format: their JSON text, as text;
- the completion: ``max_tokens`` (or ``DEFAULT_COMPLETION_TOKENS`` without it), times ``n``.
"""

from __future__ import annotations

import json
from typing import Any

from .openai_protocol import ParsedRequest

CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD = 4
REPLY_PRIMING = 3
IMAGE_TOKENS = 85
DEFAULT_COMPLETION_TOKENS = 256

__all__ = [
    "CHARS_PER_TOKEN",
    "DEFAULT_COMPLETION_TOKENS",
    "IMAGE_TOKENS",
    "MESSAGE_OVERHEAD",
    "REPLY_PRIMING",
    "estimate_completion_tokens",
    "estimate_prompt_tokens",
    "estimate_request_tokens",
    "estimate_text_tokens",
]


def estimate_text_tokens(text: str) -> int:
    """Tokens in ``text``: its length in characters over ``CHARS_PER_TOKEN``, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return estimate_text_tokens(content)
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            total += estimate_text_tokens(part["text"])
        elif part.get("type") in ("image_url", "input_image", "image"):
            total += IMAGE_TOKENS
        else:  # audio, files...: their JSON is a rough but monotone stand-in
            total += estimate_text_tokens(json.dumps(part, separators=(",", ":")))
    return total


def _json_tokens(value: Any) -> int:
    if value is None:
        return 0
    return estimate_text_tokens(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str))


def estimate_prompt_tokens(request: ParsedRequest) -> int:
    """The prompt side of a request: messages (or prompt), tools and response format."""
    if request.kind == "completion":
        prompt = request.payload.get("prompt")
        total = estimate_text_tokens(prompt) if isinstance(prompt, str) else _json_tokens(prompt)
    else:
        total = REPLY_PRIMING
        for message in request.messages:
            total += MESSAGE_OVERHEAD + _content_tokens(message.get("content"))
            if message.get("tool_calls") is not None:
                total += _json_tokens(message["tool_calls"])
    return total + _json_tokens(request.tools) + _json_tokens(request.response_format)


def estimate_completion_tokens(request: ParsedRequest) -> int:
    """The most the answer may cost: ``max_tokens`` (or the default) for each of the ``n`` choices."""
    return (request.max_tokens or DEFAULT_COMPLETION_TOKENS) * request.n


def estimate_request_tokens(request: ParsedRequest) -> int:
    """What a request reserves against its tokens-per-minute limit at admission."""
    return estimate_prompt_tokens(request) + estimate_completion_tokens(request)
