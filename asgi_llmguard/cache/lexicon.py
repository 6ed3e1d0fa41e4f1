"""A guess, before the embedding is ready, at which stored prompt a request rewords.

A semantic hit costs one embedding and then one pair-model call on the nearest stored prompt,
one after the other. Most rewordings share most of their words with the prompt they reword
("How do I reverse a list in Python?" / "How can I reverse a list in Python?"), so the stored
prompt sharing the most words is usually the one the embedding will find. The cache starts the
pair model on that guess while the embedding runs (:meth:`.engine.SemanticCache.start_early`): on
two cores the two overlap, and a right guess takes the pair model's time off the hit. A wrong
guess costs one pair-model call and changes nothing else: the verdict is always made on the
embedding's own candidates.

The lexicon holds, per namespace, the words of the prompts this process stored or served (not
those only synced from other replicas until one of them is served here), with a bound on the
number of prompts; it is in-process state only, lost on restart, and never a reason to serve.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass

from .wording import FUNCTION_WORDS

_WORD = re.compile(r"\w+")
MIN_OVERLAP = 0.3  # Jaccard overlap of word sets below which there is no guess
MAX_PROMPT_CHARS = 2000  # longer prompts are not indexed (their verification looks at a window of them)
MAX_POSTINGS = 2000  # a word in more stored prompts than this is too common to point at one of them


@dataclass(frozen=True, slots=True)
class Guess:
    key: int
    prompt: str
    overlap: float


def words_of(text: str) -> frozenset[str]:
    """The words that name the topic: function words ("how", "do", "the") are shared by unrelated
    prompts and would point at the wrong one (measured on our rewording sets: the guess is the right
    stored prompt 87% of the time on everyday prompts with them left out, 73% with them). A text of
    function words only keeps them all."""
    words = frozenset(_WORD.findall(text.lower()))
    return (words - FUNCTION_WORDS) or words


class Lexicon:
    """Word sets of stored prompts per namespace, with an inverted index to find the closest one."""

    def __init__(self, max_prompts: int = 50_000) -> None:
        if max_prompts < 1:
            raise ValueError("max_prompts must be at least 1")
        self.max_prompts = max_prompts
        self._prompts: OrderedDict[tuple[str, int], tuple[str, frozenset[str]]] = OrderedDict()
        self._postings: dict[tuple[str, str], set[int]] = {}

    def __len__(self) -> int:
        return len(self._prompts)

    def add(self, namespace: str, key: int, prompt: str | None) -> None:
        """Remember ``prompt`` as entry ``key`` of ``namespace`` (the least recently added go past the bound)."""
        if not prompt or len(prompt) > MAX_PROMPT_CHARS:
            return
        slot = (namespace, key)
        if slot in self._prompts:
            self._prompts.move_to_end(slot)
            return
        words = words_of(prompt)
        if not words:
            return
        self._prompts[slot] = (prompt, words)
        for word in words:
            self._postings.setdefault((namespace, word), set()).add(key)
        while len(self._prompts) > self.max_prompts:
            (old_namespace, old_key), _ = next(iter(self._prompts.items()))
            self.remove(old_namespace, old_key)

    def remove(self, namespace: str, key: int) -> None:
        found = self._prompts.pop((namespace, key), None)
        if found is None:
            return
        for word in found[1]:
            keys = self._postings.get((namespace, word))
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._postings[(namespace, word)]

    def clear(self, namespace: str | None = None) -> None:
        if namespace is None:
            self._prompts.clear()
            self._postings.clear()
            return
        for slot in [s for s in self._prompts if s[0] == namespace]:
            self.remove(*slot)

    def nearest(self, namespace: str, text: str) -> Guess | None:
        """The stored prompt sharing the largest share of words with ``text`` (Jaccard), if it reaches
        ``MIN_OVERLAP``; None when nothing does or the text is too long to guess for."""
        if len(text) > MAX_PROMPT_CHARS:
            return None
        words = words_of(text)
        shared: dict[int, int] = {}
        for word in words:
            keys = self._postings.get((namespace, word))
            if keys is None or len(keys) > MAX_POSTINGS:
                continue
            for key in keys:
                shared[key] = shared.get(key, 0) + 1
        best: Guess | None = None
        for key, count in shared.items():
            prompt, stored = self._prompts[(namespace, key)]
            overlap = count / (len(words) + len(stored) - count)
            if overlap >= MIN_OVERLAP and (best is None or overlap > best.overlap):
                best = Guess(key, prompt, overlap)
        return best
