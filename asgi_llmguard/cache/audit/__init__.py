"""Knowing the cache's own wrong-hit rate: shadow mode, audited hits and a per-namespace error budget.

- :mod:`.bounds`: the upper confidence bound of a wrong-hit rate (Wilson score interval).
- :mod:`.judge`: whether two answers say the same thing (embedding judge; LLM judge through LLMProxy).
- :mod:`.budget`: outcomes per namespace, and the verifier cut-off each namespace is held to so that
  its wrong-hit rate stays under ``LLMGUARD_CACHE_MAX_WRONG_RATE`` (in memory, or shared in Redis).
- :mod:`.auditor`: re-asks upstream in the background (bounded, paused while upstream fails) and
  compares; in shadow mode compares every would-hit with the fresh answer.
"""

from __future__ import annotations

from ...core.bounds import wilson_interval, wilson_upper
from .auditor import Auditor, UpstreamGate
from .budget import ErrorBudget, NamespaceOutcomes
from .judge import EmbeddingJudge, Judge, Judgement, LLMJudge
from .probe import Probe

__all__ = ["Auditor", "EmbeddingJudge", "ErrorBudget", "Judge", "Judgement", "LLMJudge", "NamespaceOutcomes",
           "Probe", "UpstreamGate", "wilson_interval", "wilson_upper"]
