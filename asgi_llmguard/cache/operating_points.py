"""A strictness level as the verifier applies it: a cosine floor, a cut-off on the combined log-odds, and two
measured exceptions that move a pair's log-odds before the cut: short prompts judged under the floor
(:class:`Reach`, which costs log-odds), long prompts restated in other words (:class:`Restatement`, which
earns some back) and prompts off the medical topic reworded (:class:`Rewording`, which earns some too). Read
from the ``strictness`` part of the verifier's weight file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .question_kinds import asks_yes_or_no
from .wording import changed_share, same_polarity, same_quantities

__all__ = ["OperatingPoint", "Reach", "Restatement", "Rewording", "operating_point"]


@dataclass(frozen=True, slots=True)
class Reach:
    """How far under its cosine floor a strictness point looks, for short prompts only.

    Short everyday rewordings often sit under the floor that keeps long prompts apart: "Recommend a good
    science fiction book" / "Can you suggest a good sci-fi novel?" meet at cosine 0.80, while two of a
    doctor's questions about one drug that differ in what they ask meet at 0.84. Down to ``floor``, a pair
    of prompts of at most ``max_words`` words each is judged as usual, its log-odds lowered by ``penalty``
    (so it must be that much surer); from ``near`` (when set) up to the point's floor it pays no penalty:
    most short rewordings under the floor sit just under it ("How do tides work?" / "What causes ocean
    tides?", cosine 0.80), while the long doctors' questions the floor keeps apart are out of reach anyway.
    Measured in docs/cache-quality.md."""

    floor: float
    penalty: float
    max_words: int
    near: float | None = None

    def penalty_at(self, similarity: float) -> float:
        """What a short pair at ``similarity`` (under the point's floor, at or over the reach's) pays."""
        return 0.0 if self.near is not None and similarity >= self.near else self.penalty

    def short(self, text: str) -> bool:
        return len(text.split()) <= self.max_words

    def fits(self, query: str, candidate: str) -> bool:
        """Whether the pair is one the reach judges, whatever its similarity: both short, both asking yes or no
        or neither (under the floor, "Is it safe to clear my browser cache?" / "How do I clear my browser
        cache?" is another question the pair model was sure of)."""
        return self.short(query) and self.short(candidate) and asks_yes_or_no(query) == asks_yes_or_no(candidate)

    def admits(self, query: str, candidate: str, similarity: float) -> bool:
        return similarity >= self.floor and self.fits(query, candidate)


@dataclass(frozen=True, slots=True)
class Restatement:
    """Credit for a long prompt said again in other words, with its numbers kept.

    The pair model learnt that a small edit to a prompt changes its answer ("ten minutes" / "ten days",
    "ascending" / "descending"), and it reads a long prompt told again in other words as many such
    edits: "My wife and I are planning a 10-day trip to Italy in May ..." / "We're a couple going to
    Italy for ten days this May ..." (cosine 0.94) scored under the cut. A near-duplicate trap changes
    one detail and keeps the rest word for word. So a pair of prompts of at least ``min_words`` words
    each, over the floor, with at least ``min_changed`` of their words not shared (word order ignored:
    words that only trade places change nothing, as in PAWS's swaps), the same numbers and units, as
    many negations and "other" on both sides or neither, has its log-odds raised by ``credit``, up to
    the point's cut. Short prompts get none: there one changed word is the question ("removes
    duplicates" / "returns the duplicated values"). Measured in docs/cache-quality.md."""

    min_words: int
    min_changed: float
    credit: float

    def admits(self, query: str, candidate: str) -> bool:
        return (len(query.split()) >= self.min_words and len(candidate.split()) >= self.min_words
                and changed_share(query, candidate) >= self.min_changed and same_quantities(query, candidate)
                and same_polarity(query, candidate))


@dataclass(frozen=True, slots=True)
class Rewording:
    """Credit for a prompt asked again in other words, off the medical topic.

    The pair model is unsure of real rewordings that share few words: "How can I reduce stress naturally?" /
    "What are natural ways to manage stress?" (cosine 0.88), "Who first climbed K2?" / "Which climbers made
    the first ascent of K2?". The cut that keeps doctors' look-alike questions apart refuses them. A
    near-duplicate trap keeps most words and changes one; these change many. So a pair with at least
    ``min_changed`` of its words not shared (word order ignored), the same numbers and units, as many
    negations and "other" on both sides or neither, whose query the topic probe does not read as a health
    question (:mod:`.topic`), has its log-odds raised by ``credit``, up to the point's cut (the verifier also
    asks that no opposite and no direction differ). Measured in docs/cache-quality.md."""

    min_changed: float
    credit: float

    def admits(self, query: str, candidate: str) -> bool:
        return (changed_share(query, candidate) >= self.min_changed and same_quantities(query, candidate)
                and same_polarity(query, candidate))


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One strictness level: the cosine floor a candidate must reach, the combiner's cut-off, how far under
    the floor short prompts may still be judged, what a restated long prompt and a reworded one off the
    medical topic earn (None: none)."""

    threshold: float
    cut: float
    reach: Reach | None = None
    restatement: Restatement | None = None
    rewording: Rewording | None = None


def _numbers(data: Any, keys: tuple[str, ...], where: str, what: str) -> dict[str, float]:
    if not isinstance(data, dict) or not all(
            isinstance(data.get(k), int | float) and not isinstance(data.get(k), bool) for k in keys):
        raise ValueError(f"verifier weights {where}: {what} needs numeric {list(keys)}")
    return {k: float(data[k]) for k in keys}


def operating_point(data: Any, where: str, name: str) -> OperatingPoint:
    """One strictness level of the weight file, checked: a clear error names the file and the level."""
    point = _numbers(data, ("threshold", "cut"), where, f"strictness {name!r}")
    threshold = point["threshold"]
    reach = None
    if data.get("reach") is not None:
        r = _numbers(data["reach"], ("floor", "penalty", "max_words"), where, f"strictness {name!r} reach")
        if not 0.0 < r["floor"] <= threshold or r["penalty"] < 0 or r["max_words"] < 1:
            raise ValueError(f"verifier weights {where}: strictness {name!r} reach needs 0 < floor <= threshold, "
                             "penalty >= 0 and max_words >= 1")
        near = data["reach"].get("near")
        if near is not None and (not isinstance(near, int | float) or isinstance(near, bool)
                                 or not r["floor"] <= near <= threshold):
            raise ValueError(f"verifier weights {where}: strictness {name!r} reach needs floor <= near <= "
                             "threshold")
        reach = Reach(r["floor"], r["penalty"], int(r["max_words"]), None if near is None else float(near))
    restatement = None
    if data.get("restatement") is not None:
        s = _numbers(data["restatement"], ("min_words", "min_changed", "credit"), where,
                     f"strictness {name!r} restatement")
        if s["min_words"] < 1 or not 0.0 < s["min_changed"] <= 1.0 or s["credit"] < 0:
            raise ValueError(f"verifier weights {where}: strictness {name!r} restatement needs min_words >= 1, "
                             "0 < min_changed <= 1 and credit >= 0")
        restatement = Restatement(int(s["min_words"]), s["min_changed"], s["credit"])
    rewording = None
    if data.get("rewording") is not None:
        w = _numbers(data["rewording"], ("min_changed", "credit"), where, f"strictness {name!r} rewording")
        if not 0.0 < w["min_changed"] <= 1.0 or w["credit"] < 0:
            raise ValueError(f"verifier weights {where}: strictness {name!r} rewording needs 0 < min_changed <= 1 "
                             "and credit >= 0")
        rewording = Rewording(w["min_changed"], w["credit"])
    return OperatingPoint(threshold=threshold, cut=point["cut"], reach=reach, restatement=restatement,
                          rewording=rewording)
