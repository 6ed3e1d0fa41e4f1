"""How demanding a request is, from its text and parameters alone: a score the model router maps to a tier.

No model, no network, no tokenizer: word counts and a few regular expressions,
tens of microseconds for an ordinary prompt (bench/router_complexity.py), a few
milliseconds at most for a huge one. Each *signal* below is a number in [0, 1]
that saturates (a fifth code line says little more than the third); its
*contribution* is the signal times its weight, and the score is

    score = 1 - exp(-max(0, Σ contributions))

so it stays in [0, 1), rises with every contribution, and saturates smoothly.
The two-tier boundary, score 0.5, is a sum of ln 2 ≈ 0.69: one strong cue of
hard work (a proof, code to debug, a long document to write) crosses it on its
own; size, depth or format alone do not — long but easy requests exist.

| signal      | weight | what raises it (each signal saturates at 1) |
|-------------|-------:|----------------------------------------------|
| `length`    |   0.45 | the conversation's text, about chars/4 tokens, log-scaled from 40 to 3000 |
| `code`      |   1.40 | fenced blocks, code-like lines, stack traces, asking for code |
| `reasoning` |   1.40 | prove, derive, design, optimise, trade-offs, O(n) ...; several questions; |
|             |        | numbered sub-tasks; math notation; (weaker) why, explain, compare, solve |
| `depth`     |   0.40 | earlier user turns, log-scaled up to 10 |
| `output`    |   1.10 | ``max_tokens`` above 2048 (log-scaled to 16k); N words / pages asked for; |
|             |        | "detailed", "comprehensive", an essay, a report, a story |
| `structure` |   0.35 | tools (the more, the more), ``response_format`` (a schema more than JSON mode) |
| `brevity`   |  -0.30 | a short answer asked for: in one word / sentence, yes or no, briefly |

Cue words match whole words, case-insensitively ("prove" is not "provenance";
the inflections meant are listed). The last message is read for cues at full
strength; earlier turns add length and depth, and their cues count at half
strength (a debugging thread stays hard when its last message is "still
broken"). System and developer messages are ignored: they are the app's
constant, not the request's difficulty. A text longer than 16k characters is
searched for cues in its first 12k and last 4k (its length still counts whole).

Adding code, reasoning cues, earlier turns or a larger ``max_tokens`` never
lowers the score: every part of every signal only grows with what it counts.
Only an explicit request for a short answer (``brevity``) subtracts.

The cues were chosen and the weights tuned on the dev half of
tests/data/router_prompts.jsonl; bench/router_complexity.py measures both halves.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from collections.abc import KeysView, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from ..core.openai_protocol import ParsedRequest

__all__ = ["WEIGHTS", "Complexity", "choose_tier", "default_thresholds", "estimate_complexity"]

WEIGHTS: Mapping[str, float] = {
    "length": 0.45,
    "code": 1.40,
    "reasoning": 1.40,
    "depth": 0.40,
    "output": 1.10,
    "structure": 0.35,
    "brevity": -0.30,
}

CHARS_PER_TOKEN = 4
LENGTH_FLOOR_TOKENS = 40  # shorter prompts add nothing for their size
LENGTH_CEIL_TOKENS = 3000  # the length signal saturates here
DEPTH_CEIL_TURNS = 10
MAX_TOKENS_FLOOR = 2048  # clients often send up to 4k as a default: only more than that says "long answer"
MAX_TOKENS_CEIL = 16384
CONTEXT_DISCOUNT = 0.5  # cues in earlier turns count at this strength
SCAN_HEAD, SCAN_TAIL = 12_000, 4_000  # cues in a huge text are looked for in its head and tail only

# -- cue vocabularies ------------------------------------------------------------------------------
#
# Cue words are matched as whole words of the lower-cased text, counted from one tokenisation (a
# hash lookup each, not a regex pass each); prefixes match words that start with them; a phrase
# regex runs only when a word every one of its matches holds occurs, and the other patterns only
# when something they cannot match without is present. The gates never change a count, only skip
# work (tests/test_complexity.py checks them against the plain patterns).

_WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class _Cues:
    words: frozenset[str] = frozenset()
    prefixes: tuple[tuple[str, int], ...] = ()  # (prefix, shortest word that counts)
    phrases: re.Pattern[str] | None = None  # on the lower-cased text, whole words
    needs: frozenset[str] = frozenset()  # every phrase holds one of these words: without them, no pass
    heads: re.Pattern[str] | None = None  # a prefix and the rest of its word, wherever it starts

    def count(self, text: _Text) -> int:
        counts, low = text.counts, text.low
        found = counts.keys() & self.words
        total = sum(map(counts.__getitem__, found)) if found else 0
        if self.heads is not None:
            for match in self.heads.finditer(low):
                start, word = match.start(), match.group()
                if (start == 0 or not _is_word_char(low[start - 1])) and any(
                        word.startswith(p) and len(word) >= m for p, m in self.prefixes):
                    total += 1
        if self.phrases is not None and not counts.keys().isdisjoint(self.needs):
            total += len(self.phrases.findall(low))
        return total


def _is_word_char(char: str) -> bool:
    """What ``\\w`` matches in a str pattern."""
    return char.isalnum() or char == "_"


def _cues(words: str = "", prefixes: str = "", phrases: str = "", needs: str = "") -> _Cues:
    """Cues from space-separated ``words``, ``prefix:min_length`` pairs, and a ``|``-joined ``phrases``
    regex each of whose alternatives holds one of the space-separated words ``needs`` (the rarest)."""
    pairs = tuple((p.split(":")[0], int(p.split(":")[1])) for p in prefixes.split())
    pattern = re.compile(r"\b(?:" + phrases + r")\b") if phrases else None
    heads = re.compile("(?:" + "|".join(p for p, _ in pairs) + r")\w*") if pairs else None
    return _Cues(_words(words), pairs, pattern, _words(needs), heads)


@dataclass(frozen=True, slots=True)
class _Text:
    """A text as the cues read it: as sent, lower-cased, and its words counted."""

    raw: str
    low: str
    counts: Counter[str]

    @classmethod
    def of(cls, text: str) -> _Text:
        low = text.lower()
        return cls(text, low, Counter(_WORD.findall(low)))


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _any_in(text: str, needles: tuple[str, ...]) -> bool:
    return any(map(text.__contains__, needles))


# -- code -------------------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s*(?:```|~~~)", re.MULTILINE)
_CODE_LINE = re.compile(
    r"""^[ \t]*(?:
        (?:def|class|import|from\s+\S+\s+import|return|async\s+def|await|fn|func|function|const|let|var|
           public|private|protected|static|package|using|namespace|struct|enum|impl|interface|template|
           \#include|\#define|SELECT|INSERT|UPDATE|DELETE|CREATE\s+TABLE|FROM\s+\S+:|RUN|CMD|COPY|WORKDIR)\b
      | .*(?:[;{}]\s*$|=>|->|::|\)\s*:\s*$|==|!=|&&|\|\|)
      | (?:if|for|while|switch|catch)\s*\(.*\)
      | [A-Za-z_][\w.]*\s*=\s*[\w\[\](){'"-]
      | [A-Za-z_][\w.]*\(.*\)\s*;?\s*$
    )""",
    re.MULTILINE | re.VERBOSE,
)
_TRACE_LINES = re.compile(r"^\s+File \".+\", line \d+|^\s+at [\w$.<>/]+\(.*\)", re.IGNORECASE | re.MULTILINE)
_TRACE_WORDS = re.compile(
    r"traceback \(most recent call last\)|\b(?:\w+(?:error|exception)):|\bexception in thread\b|\bpanic:|"
    r"\bstack ?trace\b|\boomkilled\b|\bdeadlock\b|\brace condition\b|\bmemory leak\b"
)
_TRACE = re.compile(_TRACE_LINES.pattern + "|" + _TRACE_WORDS.pattern, re.IGNORECASE | re.MULTILINE)
_TRACE_NEEDLES = ("traceback (most recent call last)", "error:", "exception:", "exception in thread", "panic:",
                  "stack", "oomkilled", "deadlock", "race condition", "memory leak")
_CODE_VERBS = _words("write implement build code create generate refactor debug fix port convert optimise optimize "
                     "rewrite")
_CODE_NOUNS = ("function|method|class|script|program (?:that|to|which)|query|regex|regexp|api|endpoint|module|"
               "component|unit tests?|algorithm|cli|library|parser|schema|pipeline|code")
_CODE_ASK = re.compile(
    r"\b(?:write|implement|build|code|create|generate|refactor|debug|fix|port|convert|optimi[sz]e|rewrite)\b"
    r"[^.?!\n]{0,60}?\b(?:" + _CODE_NOUNS + r")\b"
)
_CODE_NOUN_STARTS = frozenset(alt.split(" ")[0] for alt in _CODE_NOUNS.split("|"))
_LANGUAGES = (r"python|javascript|typescript|java|rust|golang|c\+\+|c#|kotlin|swift|ruby|php|scala|haskell|"
              r"sql|bash|powershell")
_LANGUAGE_STARTS = frozenset({"c", *(w for w in _LANGUAGES.split("|") if w.isalpha())})
_CODE_ASK_LANG = re.compile(
    r"\b(?:write|implement|build|code|create|generate|refactor|port|convert|rewrite)\b[^.?!\n]{0,80}?"
    r"\b(?:in|using|with) (?:" + _LANGUAGES + r")\b"
)
_CODE_WORDS = _cues(
    words=" ".join(w for w in _LANGUAGES.split("|") if w.isalpha()) + " react node flask django kubernetes "
    "docker asyncio pytest compiler runtime recursion threadsafe mutex async index indexes indexing",
    prefixes="concurren:10 refactor:8",
    phrases=r"c\+\+|c#|shell script|thread-safe|unit tests?",
    needs="c shell thread unit",
)

# -- reasoning -------------------------------------------------------------------------------------
_STRONG = _cues(
    words="prove proof derive derivation induction contradiction theorem lemma formally tradeoff tradeoffs "
    "architecture architecting critique evaluate justify implication implications counterargument "
    "counterarguments weigh strategy complexity",
    prefixes="rigorous:8 optimis:8 optimiz:8 analys:7 analyz:7 debug:5 algorithm:9",
    phrases=r"step[- ]by[- ]step|compare and contrast|trade-offs?|pros and cons|design(?:ing)? (?:a|an|the|our)|"
    r"plan (?:a|an|the|our|for)|root cause|edge cases?|estimate how|what would happen if",
    needs="step contrast trade cons design designing plan root edge estimate happen",
)
_BIG_O = re.compile(r"\b[OΘΩ]\((?:[^()]|\([^()]*\))+\)")  # complexity notation: O(1), O(n log n)
_WEAK = _cues(
    words="why explain compare versus vs improve verify solve cause causes caused causing",
    prefixes="reason:6 consider:8 assum:6",
    phrases=r"difference between|should (?:i|we)|best way|given (?:that|a|an|the)|find all|how many ways|"
    r"what could|walk (?:me )?through",
    needs="difference should best given find ways could walk",
)
_CONSTRAINT = _cues(words="must without ensure keeping including", phrases=r"at most|at least|only if|in o\(",
                    needs="most least only o")
_NUMBERED = re.compile(r"^\s*(?:\d{1,2}[.)]|\(?[a-h]\))\s+\S", re.MULTILINE)  # bullets are often pasted
_MATH_VOCABULARY = ("integral derivative polynomial logarithm equation inequality prime primes modulo permutation "
                    "permutations variance median distribution")
_MATH_WORDS = _cues(words=_MATH_VOCABULARY, prefixes="combinatori:12")
_MATH_SIGNS = re.compile(
    r"[a-z]\s*\^\s*\d|\d\s*\^\s*\d|\\(?:frac|int|sum|sqrt|lim)|[∫∑∏√∂∞≤≥≠]|"
    r"\b(?:sin|cos|tan|ln|log|exp)\s*\(|\b[a-z]\s*[+\-*/]\s*\d|\d\s*[a-z]\s*[+\-=]"
)
_MATH = re.compile(  # the words and the signs in one pass: a sign glued to a word counts once
    _MATH_SIGNS.pattern + r"|\b(?:" + "|".join(_MATH_VOCABULARY.split()) + r"|combinatori\w+)\b"
)
_MATH_MARKS = tuple("^\\∫∑∏√∂∞≤≥≠")  # the signs that need no operator
_MATH_FUNCTIONS = frozenset(("sin", "cos", "tan", "ln", "log", "exp"))
_OPERATOR = re.compile(r"[+\-*/=]")


def _math_sign_count(low: str, words: KeysView[str]) -> int:
    """Matches of ``_MATH_SIGNS``, found without a pass over the text when none can exist.

    Beyond its marks and function calls, a sign is arithmetic on a variable: an operator
    with a one-letter word before it (and a digit after), or a digit and a letter before it.
    Operators in prose (dates, ranges, hyphens) rarely fit, and are checked where they stand.
    """
    if not (_any_in(low, _MATH_MARKS) or ("(" in low and not words.isdisjoint(_MATH_FUNCTIONS))
            or any(_arithmetic_at(low, match.start()) for match in _OPERATOR.finditer(low))):
        return 0
    return len(_MATH_SIGNS.findall(low))


def _arithmetic_at(low: str, at: int) -> bool:
    """Whether an arithmetic sign of ``_MATH_SIGNS`` could hold the operator at ``at``."""
    before = _skip_space_back(low, at - 1)
    if before < 0 or not "a" <= low[before] <= "z":
        return False
    operator = low[at]
    if operator in "+-*/" and (before == 0 or not _is_word_char(low[before - 1])):
        after = at + 1
        while after < len(low) and low[after].isspace():
            after += 1
        if after < len(low) and low[after].isdecimal():
            return True
    if operator in "+-=":
        digit = _skip_space_back(low, before - 1)
        return digit >= 0 and low[digit].isdecimal()
    return False


def _skip_space_back(text: str, index: int) -> int:
    while index >= 0 and text[index].isspace():
        index -= 1
    return index


# -- output size and format ------------------------------------------------------------------------
_WORDS_ASKED = re.compile(r"\b(\d[\d,]*)[- ]?(words?|pages?|paragraphs?|sections?|chapters?|slides?)\b")
_UNIT_NEEDLES = ("word", "page", "paragraph", "section", "chapter", "slide")
_UNIT_WORDS = {"word": 1, "page": 400, "paragraph": 120, "section": 250, "chapter": 2000, "slide": 60}
_LONG_ASK = _cues(
    words="detailed comprehensive indepth exhaustive essay report whitepaper longform tutorial story",
    prefixes="thorough:8",
    phrases=r"in-depth|white paper|long-form|complete guide|design doc\w*|full (?:code|implementation|program)",
    needs="depth paper form guide design full",
)
_FORMAT_ASK = _cues(words="json yaml csv xml schema table")

# -- brevity ----------------------------------------------------------------------------------------
_BRIEF = re.compile(
    r"\bin (?:one|a single|a|1) (?:word|sentence|line)\b|\bone-(?:word|line|sentence)\b|\byes or no\b|"
    r"\bbrief(?:ly)?\b|\bin short\b|\btl;?dr\b|\bshort answer\b|\bkeep it short\b|"
    r"\bjust (?:the (?:word|name|number|answer|result|date|value)|(?:tell|give) me the)\b"
)
_BRIEF_NEEDS = _words("word sentence line yes brief briefly short tl tldr just")  # one is in every match


@dataclass(frozen=True, slots=True)
class Complexity:
    """A request's estimated difficulty: ``score`` in [0, 1], and each signal's contribution to it."""

    score: float
    signals: Mapping[str, float]


def _sat(x: float) -> float:
    """A count turned into [0, 1): 1 - 2**-x (one hit 0.5, two 0.75, three 0.875 ...)."""
    return 1.0 - 2.0 ** -x if x > 0 else 0.0


def _log_ramp(value: float, floor: float, ceil: float) -> float:
    """0 at or below ``floor``, 1 at or above ``ceil``, log-linear in between."""
    if value <= floor:
        return 0.0
    if value >= ceil:
        return 1.0
    return math.log(value / floor) / math.log(ceil / floor)


def _either(*parts: float) -> float:
    """Independent pieces of evidence combined (a noisy OR): each raises the result, none lowers it."""
    rest = 1.0
    for part in parts:  # each in [0, 1] by construction
        rest *= 1.0 - part
    return 1.0 - rest


def _scan(text: str) -> str:
    if len(text) <= SCAN_HEAD + SCAN_TAIL:
        return text
    return text[:SCAN_HEAD] + "\n" + text[-SCAN_TAIL:]


def _code_signal(text: _Text) -> float:
    raw, low, words = text.raw, text.low, text.counts.keys()
    fence_lines = len(_FENCE.findall(raw)) if "```" in raw or "~~~" in raw else 0
    fences = fence_lines // 2 + fence_lines % 2
    code_lines = len(_CODE_LINE.findall(raw))
    if _TRACE_LINES.search(raw):  # a trace line may swallow words after it: one pass over both
        traces = len(_TRACE.findall(raw))
    else:
        traces = len(_TRACE_WORDS.findall(low)) if _any_in(low, _TRACE_NEEDLES) else 0
    asks = 0
    if not words.isdisjoint(_CODE_VERBS):
        if not words.isdisjoint(_CODE_NOUN_STARTS):
            asks += len(_CODE_ASK.findall(low))
        if not words.isdisjoint(_LANGUAGE_STARTS) and not words.isdisjoint(("in", "using", "with")):
            asks += len(_CODE_ASK_LANG.findall(low))
    return _either(
        0.7 * _sat(2 * fences),
        0.6 * _sat((code_lines - 1) / 2),
        0.6 * _sat(traces / 1.5),
        0.8 * _sat(2 * asks),
        0.25 * _sat(_CODE_WORDS.count(text)),
    )


def _reasoning_signal(text: _Text) -> float:
    raw, low = text.raw, text.low
    strong = _STRONG.count(text)
    if _any_in(raw, ("O(", "Θ(", "Ω(")):
        strong += len(_BIG_O.findall(raw))
    math_hits = _MATH_WORDS.count(text)
    signs = _math_sign_count(low, text.counts.keys())
    if signs:
        math_hits = len(_MATH.findall(low)) if math_hits else signs
    return _either(
        0.8 * _sat(2 * strong),
        0.5 * _sat(_WEAK.count(text) / 1.5),
        0.3 * _sat(raw.count("?") - 1),
        0.6 * _sat((len(_NUMBERED.findall(raw)) - 1) / 1.5),
        0.2 * _sat(_CONSTRAINT.count(text) / 2),
        0.7 * _sat(math_hits / 1.2),
    )


def _output_signal(text: _Text, max_tokens: int | None) -> float:
    asked = 0.0
    if _any_in(text.low, _UNIT_NEEDLES):
        for number, unit in _WORDS_ASKED.findall(text.low):
            words = int(number.replace(",", "") or 0) * _UNIT_WORDS[unit.rstrip("s")]
            asked = max(asked, _log_ramp(words, 150, 2000))
    return _either(
        _log_ramp(max_tokens or 0, MAX_TOKENS_FLOOR, MAX_TOKENS_CEIL),
        asked,
        0.6 * _sat(_LONG_ASK.count(text)),
    )


def _structure_signal(request: ParsedRequest, text: _Text) -> float:
    tools = request.tools
    n_tools = len(tools) if isinstance(tools, list) else 0
    fmt = request.response_format
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    schema = 0.7 if kind == "json_schema" else 0.4 if kind == "json_object" else 0.0
    return _either(0.7 * _sat(n_tools / 2), schema, 0.25 * _sat(_FORMAT_ASK.count(text)))


def _brief(text: _Text) -> bool:
    return not text.counts.keys().isdisjoint(_BRIEF_NEEDS) and _BRIEF.search(text.low) is not None


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part["text"] for part in content
                         if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _texts(request: ParsedRequest) -> tuple[str, str, int]:
    """The last message's text, the earlier turns' text (system prompts left out), and the earlier user turns."""
    if request.kind == "completion":
        return request.prompt or "", "", 0
    turns = [m for m in request.messages if isinstance(m, dict) and m.get("role") not in ("system", "developer")]
    if not turns:
        return "", "", 0
    last, earlier = turns[-1], turns[:-1]
    depth = sum(1 for m in earlier if m.get("role") == "user")
    return _text_of(last), "\n".join(_text_of(m) for m in earlier), depth


def estimate_complexity(request: ParsedRequest) -> Complexity:
    """How demanding ``request`` looks, in [0, 1]; see the module's table for the signals and weights."""
    last, context, depth = _texts(request)
    tokens = (len(last) + len(context)) / CHARS_PER_TOKEN
    text = _Text.of(_scan(last))
    code = _code_signal(text)
    reasoning = _reasoning_signal(text)
    if context:
        earlier = _Text.of(_scan(context))
        code = max(code, CONTEXT_DISCOUNT * _code_signal(earlier))
        reasoning = max(reasoning, CONTEXT_DISCOUNT * _reasoning_signal(earlier))
    signals = {
        "length": _log_ramp(tokens, LENGTH_FLOOR_TOKENS, LENGTH_CEIL_TOKENS),
        "code": code,
        "reasoning": reasoning,
        "depth": _log_ramp(1 + depth, 1, 1 + DEPTH_CEIL_TURNS),
        "output": _output_signal(text, request.max_tokens),
        "structure": _structure_signal(request, text),
        "brevity": 1.0 if _brief(text) else 0.0,
    }
    contributions = {name: round(WEIGHTS[name] * value, 4) for name, value in signals.items()}
    total = sum(WEIGHTS[name] * value for name, value in signals.items())
    return Complexity(score=1.0 - math.exp(-max(0.0, total)), signals=contributions)


def default_thresholds(tiers: int) -> tuple[float, ...]:
    """The even split of [0, 1] into ``tiers`` buckets: 1/tiers, 2/tiers, ..."""
    if tiers < 1:
        raise ValueError(f"tiers must be at least 1, got {tiers}")
    return tuple(i / tiers for i in range(1, tiers))


def choose_tier(score: float, tiers: int, thresholds: Sequence[float] | None = None) -> int:
    """The index, cheapest first, of the model for ``score``: how many thresholds it reaches.

    ``thresholds`` (``tiers - 1`` increasing numbers strictly between 0 and 1) default to
    the even split; a score equal to a threshold goes to the stronger tier.
    """
    if isinstance(tiers, bool) or not isinstance(tiers, int) or tiers < 1:
        raise ValueError(f"tiers must be an integer ≥ 1, got {tiers!r}")
    if math.isnan(score):
        raise ValueError("score is NaN")
    if thresholds is None:
        bounds: tuple[float, ...] = default_thresholds(tiers)
    else:
        bounds = tuple(float(t) for t in thresholds)
        if len(bounds) != tiers - 1:
            raise ValueError(f"{tiers} tiers need {tiers - 1} thresholds, got {len(bounds)}")
        if not all(0.0 < t < 1.0 for t in bounds):
            raise ValueError(f"thresholds must lie strictly between 0 and 1, got {list(bounds)}")
        if any(b <= a for a, b in pairwise(bounds)):
            raise ValueError(f"thresholds must be strictly increasing, got {list(bounds)}")
    return bisect_right(bounds, score)
