"""Whether a prompt is about health, read from its embedding by a linear probe.

Doctor-written medical pairs set the verifier's cut: two of a patient's questions about one drug or one
symptom that ask different things meet at high cosine and read alike to the pair model, so the cut that keeps
their wrong share under budget refuses many ordinary rewordings elsewhere ("How can I reduce stress
naturally?" / "What are natural ways to manage stress?"). A probe on the embedding the cache has already
computed tells the two apart: fitted on MQP's cal and train prompts against our other sets' (see
``bench/research/train_verifier.py``), it flags 98% of MQP's held-out prompts and 1-17% of the others (their
health questions); with its margin (2 log-odds), 88% and fewer of the everyday questions that only touch
the body. A prompt it does not flag may earn the operating point's :class:`~.operating_points.Rewording`
credit; a flagged one is judged exactly as before. The probe belongs to one embedding model: with any other
model, or a vector of another size, every prompt counts as flagged (no credit, no surprise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TopicProbe", "topic_probe"]


@dataclass(frozen=True, slots=True)
class TopicProbe:
    """A logistic probe on one embedding model's vectors: log-odds over ``margin`` read as a health question.

    The margin keeps everyday questions that merely touch the body out of the doctors' side: at 0 the probe
    flagged 12% of the prompts in files written after it was fitted ("How many bones does an adult human
    have?", "How long should I boil an egg for a soft yolk?", "Is Costco membership worth it?"), against 4% of
    the other sets it was fitted on; doctors' questions sit far over it."""

    model: str
    weights: np.ndarray
    bias: float
    margin: float = 0.0

    def medical(self, vector: np.ndarray | None, model: str) -> bool:
        """Whether the prompt embedded as ``vector`` by ``model`` reads as a health question; True when the
        probe cannot tell (no vector, another model, another size): that prompt earns nothing."""
        if vector is None or model != self.model or vector.shape != self.weights.shape:
            return True
        return float(np.dot(vector, self.weights)) + self.bias > self.margin


def topic_probe(data: Any, where: str) -> TopicProbe | None:
    """The weight file's optional ``topic`` part, checked; None when the file has none."""
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise ValueError(f"verifier weights {where}: 'topic' needs a 'model' name, 'weights' and 'bias'")
    weights = data.get("weights")
    bias = data.get("bias")
    margin = data.get("margin", 0.0)
    if (not isinstance(weights, list) or not weights
            or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
            or not isinstance(bias, int | float) or isinstance(bias, bool)):
        raise ValueError(f"verifier weights {where}: 'topic' needs numeric 'weights' (a list) and 'bias'")
    if not isinstance(margin, int | float) or isinstance(margin, bool) or not math.isfinite(margin) or margin < 0:
        raise ValueError(f"verifier weights {where}: 'topic' margin must be a number >= 0, not {margin!r}")
    return TopicProbe(data["model"], np.asarray(weights, dtype=np.float32), float(bias), float(margin))
