"""What the verifier is shown of two long prompts: the stretch where they differ, in its sentence.

The verifier judges prompts the size people type (its rules and features were measured on
questions and paragraphs, docs/cache-quality.md). A long prompt is mostly material (a report, a
page, a thread) with an instruction around it, and two long prompts that are near-duplicates
share most of it: they can only differ where they differ. So when either prompt is longer than
``VERIFIABLE_CHARS``, the common beginning and end are cut away, word by word, and the verifier
compares what is left with ``CONTEXT_WORDS`` words either side: "Summarise the report below in
three points: <16 KB>" and "Give me a three-point summary of the report below: <the same 16 KB>"
become the two instructions; "... the dose is 5 mg ..." and "... the dose is 8 mg ..." deep in
two copies of a leaflet become "... the dose is 5 mg ..." and "... the dose is 8 mg ...".

When what is left is still longer than ``VERIFIABLE_CHARS`` (the prompts differ all over, or
one is long and the other short), the pair is refused without asking the verifier: it would be
judging text it was not made for, and its features cost tens of milliseconds on the event loop
at that length (30 to 55 ms for 16 KB, measured). A refusal is only a miss.

The embedding reads the first 256 tokens of a prompt and no more; this, not the embedding, is
what keeps two long prompts that differ after their first page apart.
"""

from __future__ import annotations

__all__ = ["CONTEXT_WORDS", "VERIFIABLE_CHARS", "focus"]

VERIFIABLE_CHARS = 1000
# A frame for the difference, no more: the verifier reads every word it is shown, and shared words of
# a document around an instruction lowered its scores (measured on 400 reworded instructions around
# 4 KB documents: all accepted with 3 words either side, 3 in 4 with 4 to 12; with 3, "take 5 mg" /
# "take 8 mg", "safe" / "not safe", "three" / "five points", "French" / "German", "English to French" /
# "French to English", "largest" / "smallest" and "recommend" / "reject" inside or after a document
# are all still refused).
CONTEXT_WORDS = 3


def _common_prefix(a: str, b: str) -> int:
    """Length of the longest common prefix (binary search over slices: C-speed compares)."""
    low, high = 0, min(len(a), len(b))
    while low < high:
        mid = (low + high + 1) // 2
        if a[:mid] == b[:mid]:
            low = mid
        else:
            high = mid - 1
    return low


def _cut(a: str, b: str) -> tuple[str, str]:
    """``a`` and ``b`` without their common beginning and end, each kept to ``CONTEXT_WORDS`` words.

    Both cuts fall on whitespace, so a word that the difference runs into stays with the difference.
    """
    prefix = _common_prefix(a, b)
    while prefix > 0 and not a[prefix - 1].isspace():
        prefix -= 1
    suffix = _common_prefix(a[prefix:][::-1], b[prefix:][::-1])
    while suffix > 0 and not a[len(a) - suffix].isspace():
        suffix -= 1
    before = " ".join(a[:prefix].split()[-CONTEXT_WORDS:])
    after = " ".join(a[len(a) - suffix:].split()[:CONTEXT_WORDS])

    def around(middle: str) -> str:
        return " ".join(part for part in (before, " ".join(middle.split()), after) if part)

    return around(a[prefix:len(a) - suffix]), around(b[prefix:len(b) - suffix])


def focus(query: str, candidate: str) -> tuple[str, str] | None:
    """The two texts the verifier should compare, or None when they differ over more than it can judge."""
    if len(query) <= VERIFIABLE_CHARS and len(candidate) <= VERIFIABLE_CHARS:
        return query, candidate
    cut_query, cut_candidate = _cut(query, candidate)
    if len(cut_query) > VERIFIABLE_CHARS or len(cut_candidate) > VERIFIABLE_CHARS:
        return None
    return cut_query, cut_candidate
