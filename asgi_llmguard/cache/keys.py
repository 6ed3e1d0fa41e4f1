"""Namespaces and exact keys: what decides which stored answers a request may see."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..core.openai_protocol import ParsedRequest

_SPACES = re.compile(r"\s+")

# Prompts whose right answer changes with the clock bypass the cache by default. Two kinds of cue:
# what only the world's present state answers (news, weather, prices, "the latest") always counts;
# a bare time word counts only in a clause that is not about the asker. "What's on TV tonight?" asks
# the clock; "I have had a cough for a week now" or "my doctor said yesterday ..." tells a story whose
# answer does not change tomorrow (in MQP, 343 of 3064 questions carry such words, nearly all narrative).
TIME_SENSITIVE = re.compile(
    r"\b(news|headlines?|weather|forecast|stock price|share price|stock market|exchange rate|live score|"
    r"breaking|latest|up[- ]to[- ]date|as of (?:now|today)|what time is it|what day is it|today'?s date|"
    r"current (?:price|time|date|president|prime minister|ceo|leader|champion|version|status|rate|events?)|"
    r"this (?:week|month|year|weekend)'s)\b",
    re.IGNORECASE,
)
_TIME_WORDS = re.compile(
    r"\b(now|today|tonight|tomorrow|yesterday|currently|current|recent|recently|this (?:week|month|year|"
    r"morning|afternoon|evening|weekend)|at the moment|right now)\b",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|us|our|ours)\b", re.IGNORECASE)
_CLAUSES = re.compile(r"[.!?;\n]+|,\s*(?:but|and|so)\s+")


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


def is_time_sensitive(text: str) -> bool:
    """Whether the right answer depends on when it is asked (see ``TIME_SENSITIVE``)."""
    if TIME_SENSITIVE.search(text) is not None:
        return True
    if _TIME_WORDS.search(text) is None:
        return False
    return any(_TIME_WORDS.search(clause) and not _FIRST_PERSON.search(clause) for clause in _CLAUSES.split(text))
