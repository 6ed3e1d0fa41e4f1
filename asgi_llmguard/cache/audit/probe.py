"""What a semantic lookup found, beyond the hit it may serve: the candidate the error budget learns from."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..stores.base import CacheEntry


@dataclass(frozen=True, slots=True)
class Probe:
    """The first candidate the verifier accepts at the floor cut (``z`` its log-odds), and whether it
    clears the cut in force (``served``: a hit in serve mode, a would-hit in shadow mode)."""

    entry: CacheEntry
    similarity: float
    z: float
    cut: float
    served: bool


def log_odds(probability: float) -> float:
    """The verifier's combined log-odds back from its score (a logistic of them, clipped at ±30)."""
    p = min(1.0 - 1e-13, max(1e-13, probability))
    return math.log(p / (1.0 - p))
