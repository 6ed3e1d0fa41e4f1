"""ASGI type aliases and the small protocols the capabilities share; it imports nothing of ours.

Kept local so the core depends on no framework's names. The protocols say what one part needs
of another without importing it: the cache needs an :class:`Embedder` (``embedding/`` has two),
and a layer that counts something needs a :class:`LabelledCounter` (``observability/`` makes
them with prometheus_client).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

Vector = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """What the semantic cache needs from an embedding backend."""

    @property
    def dimensions(self) -> int: ...

    async def start(self) -> None: ...

    # A timeout parameter, not asyncio.timeout around the call: the text must leave the queue
    # when its caller gives up, and the caller gets EmbeddingUnavailable, not TimeoutError.
    async def embed(self, text: str, *, timeout: float | None = None) -> Vector: ...  # noqa: ASYNC109

    async def close(self) -> None: ...



class Counter(Protocol):
    """One counter (a prometheus_client ``Counter`` or one of its labelled children)."""

    def inc(self, amount: float = 1) -> None: ...


class LabelledCounter(Protocol):
    """A counter family with labels: ``family.labels("redis").inc()``."""

    def labels(self, *values: str) -> Counter: ...
