"""Confidence bounds of a wrong-hit rate from ``wrong`` out of ``n`` judged hits.

The Wilson score interval: unlike the normal approximation it stays inside [0, 1] and is usable at
zero wrong hits, where the question "how many clean audits before I may claim under 1%?" lives
(about 270 at 95% one-sided).
"""

from __future__ import annotations

import math

Z_95_ONE_SIDED = 1.6448536269514722


def wilson_interval(wrong: float, n: float, z: float = Z_95_ONE_SIDED) -> tuple[float, float]:
    """(lower, upper) of the rate ``wrong / n``; (0, 1) when nothing was judged."""
    if n <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, wrong / n))
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def wilson_upper(wrong: float, n: float, z: float = Z_95_ONE_SIDED) -> float:
    """The one-sided 95% upper bound of the rate (1.0 with no data)."""
    return wilson_interval(wrong, n, z)[1]
