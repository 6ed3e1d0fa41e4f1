"""Judges: does the answer the cache served (or would have served) say what a fresh answer says?

One small protocol, two judges. The default reuses the embedding model the cache already loaded:
identical answers (after normalising spaces and case) are the same without a model call, otherwise
the cosine of the two answers must reach ``LLMGUARD_CACHE_AUDIT_JUDGE_THRESHOLD``. The optional LLM
judge asks a model through the app's upstream a yes/no question. Each judge's own error on labelled
pairs is measured by bench/audit.py and given in docs/cache-quality.md.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...core.types import Embedder

_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Judgement:
    """``same``: one answer serves both; ``score`` the judge's evidence (cosine, 1.0/0.0 for exact/LLM)."""

    same: bool
    score: float
    how: str  # "exact", "embedding" or "llm"


class Judge(Protocol):
    """Compares two answers to ``question``; None when it cannot tell (model down, timeout)."""

    async def judge(self, question: str, served: str, fresh: str) -> Judgement | None: ...


def normalised(text: str) -> str:
    return _SPACES.sub(" ", text).strip().casefold()


class EmbeddingJudge:
    """Cosine of the two answers with the cache's own embedder, after an exact-match shortcut."""

    def __init__(self, embedder: Embedder | None, threshold: float, *, timeout: float = 2.0) -> None:
        self.embedder = embedder
        self.threshold = threshold
        self.timeout = timeout

    async def judge(self, question: str, served: str, fresh: str) -> Judgement | None:
        if normalised(served) == normalised(fresh):
            return Judgement(True, 1.0, "exact")
        if self.embedder is None:
            return None
        # The embedder's low-priority path when it has one (FastEmbedEmbedder.embed_when_idle): a judge's
        # texts wait behind every request's, so audits never delay a served hit.
        embed = getattr(self.embedder, "embed_when_idle", None) or self.embedder.embed
        try:
            a = await embed(served, timeout=self.timeout)
            b = await embed(fresh, timeout=self.timeout)
        except Exception:  # the embedder is busy or down: this comparison is left unjudged
            return None
        cosine = float(np.dot(a, b) / (float(np.linalg.norm(a) * np.linalg.norm(b)) or 1.0))
        return Judgement(cosine >= self.threshold, cosine, "embedding")


JUDGE_PROMPT = (
    "Two answers were given to the same question. Reply with one word: yes if a person who asked the "
    "question would get the same information from either answer, no otherwise.\n\n"
    "Question: {question}\n\nAnswer A: {served}\n\nAnswer B: {fresh}\n\nSame information (yes/no)?"
)
_YES_NO = re.compile(r"\b(yes|no)\b", re.IGNORECASE)


class LLMJudge:
    """Asks a model a yes/no question through ``ask``: the auditor's :meth:`Auditor.ask_judge`, which sends
    it through the layers below the cache (router, then the app's endpoint or LLMProxy) as an audit."""

    def __init__(self, ask: Callable[[str], Awaitable[str | None]]) -> None:
        self.ask = ask

    async def judge(self, question: str, served: str, fresh: str) -> Judgement | None:
        if normalised(served) == normalised(fresh):
            return Judgement(True, 1.0, "exact")
        try:
            reply = await self.ask(JUDGE_PROMPT.format(question=question, served=served, fresh=fresh))
        except Exception:
            return None
        found = _YES_NO.search(reply or "")
        if found is None:
            return None
        same = found.group(1).lower() == "yes"
        return Judgement(same, 1.0 if same else 0.0, "llm")
