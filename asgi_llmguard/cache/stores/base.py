"""The cache storage protocol; memory and Redis implementations pass one test suite.

Storage knows no middleware: an entry's answer is the core's :class:`Answer`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...core.openai_protocol import Answer
from ...errors import LLMGuardError


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """A stored answer with what it takes to find it again."""

    id: int
    namespace: str
    exact_key: str
    prompt: str | None
    answer: Answer
    vector: np.ndarray | None
    created_at: float
    expires_at: float

    @property
    def size(self) -> int:
        """Approximate bytes held: the answer text, the prompt and the vector dominate."""
        vector = 0 if self.vector is None else int(self.vector.nbytes)
        return 256 + len(self.answer.text) + len(self.prompt or "") + vector + len(str(self.answer.tool_calls))


class StorageUnavailable(LLMGuardError):
    """Redis did not answer within its time budget, or failed: the cache serves a miss instead."""


class CacheStore(Protocol):
    async def next_id(self, namespace: str | None = None) -> int:
        """A new entry id; the cluster store numbers ids per partition, so it needs the entry's namespace."""
        ...

    async def put(self, entry: CacheEntry) -> list[CacheEntry]:
        """Store ``entry``; returns the entries evicted (or replaced) to make room."""
        ...

    async def get(self, entry_id: int, *, touch: bool = True) -> CacheEntry | None:
        """The live entry ``entry_id``; ``touch`` marks it used (the LRU's most recent)."""
        ...

    async def touch(self, entry_id: int) -> None:
        """Mark an entry used (a semantic candidate once the verifier accepted it)."""
        ...

    async def get_exact(self, exact_key: str) -> CacheEntry | None: ...

    async def delete(self, entry_id: int) -> CacheEntry | None: ...

    async def delete_namespace(self, namespace: str) -> list[CacheEntry]: ...

    async def flush(self) -> None: ...

    async def count(self) -> int: ...

    async def close(self) -> None: ...
