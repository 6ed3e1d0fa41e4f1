"""Whether a prompt is about health, read from its embedding by a linear probe.

Doctor-written medical pairs set the verifier's cut: two of a patient's questions about one drug or one
symptom that ask different things meet at high cosine and read alike to the pair model, so the cut that keeps
their wrong share under budget refuses many ordinary rewordings elsewhere ("How can I reduce stress
naturally?" / "What are natural ways to manage stress?"). A probe on the embedding the cache has already
computed tells the two apart: fitted on MQP's cal and train prompts against our other sets' (see
``bench/research/train_verifier.py``), it flags 98% of MQP's held-out prompts and 1-17% of the others (their
health questions). A prompt it does not flag may earn the operating point's :class:`~.operating_points.Rewording`
credit; a flagged one is judged exactly as before. The probe belongs to one embedding model: with any other
model, or a vector of another size, every prompt counts as flagged (no credit, no surprise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TopicProbe", "topic_probe"]


@dataclass(frozen=True, slots=True)
class TopicProbe:
    """A logistic probe on one embedding model's vectors: positive log-odds read as a health question."""

    model: str
    weights: np.ndarray
    bias: float

    def medical(self, vector: np.ndarray | None, model: str) -> bool:
        """Whether the prompt embedded as ``vector`` by ``model`` reads as a health question; True when the
        probe cannot tell (no vector, another model, another size): that prompt earns nothing."""
        if vector is None or model != self.model or vector.shape != self.weights.shape:
            return True
        return float(np.dot(vector, self.weights)) + self.bias > 0.0


def topic_probe(data: Any, where: str) -> TopicProbe | None:
    """The weight file's optional ``topic`` part, checked; None when the file has none."""
    if data is None:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("model"), str):
        raise ValueError(f"verifier weights {where}: 'topic' needs a 'model' name, 'weights' and 'bias'")
    weights = data.get("weights")
    bias = data.get("bias")
    if (not isinstance(weights, list) or not weights
            or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
            or not isinstance(bias, int | float) or isinstance(bias, bool)):
        raise ValueError(f"verifier weights {where}: 'topic' needs numeric 'weights' (a list) and 'bias'")
    return TopicProbe(data["model"], np.asarray(weights, dtype=np.float32), float(bias))
