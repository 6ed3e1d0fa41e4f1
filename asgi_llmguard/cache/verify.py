"""Verification of a semantic-cache candidate: do two near prompts share an answer?

Embedding similarity alone cannot tell "5 km to miles" from "8 km to miles", or "English to French"
from "French to English": the vectors are nearly the same while the answers differ. Nor can it tell
that "What's the capital city of France?" asks what "What is the capital of France?" asks while
"... of Spain?" does not. The cache therefore asks this module, after finding a neighbour above the
strictness's cosine floor, whether the two prompts differ in a way that changes the answer.

The check has three parts: hard rules for differences that words hide from every model (codes,
operators, the kind of question), a small cross-encoder that reads both prompts together
(:mod:`.pair_model`), and a logistic combiner over its verdict, the cosine and cheap word-level
features of the pair (numbers, negation, direction, opposites, named things). The combiner's
weights and the cut-offs of the three strictness levels ship as a small JSON file made by
``bench/research/train_verifier.py``; docs/cache-quality.md has the measurements and the limits.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Protocol

__all__ = [
    "DEFAULT_STRICTNESS",
    "FEATURE_NAMES",
    "PAIR_MODEL",
    "STRICTNESS_LEVELS",
    "OperatingPoint",
    "PairScorer",
    "Verdict",
    "Verifier",
    "alternatives_swapped",
    "asks_differ",
    "hard_rule_refusal",
    "identifiers_differ",
    "only_numbers_differ",
    "only_synonyms_differ",
    "pair_features",
    "same_question_in_other_words",
    "symbols_differ",
]

#: The three operating points of the weight file, from fewest wrong answers to most hits.
STRICTNESS_LEVELS: tuple[str, ...] = ("strict", "balanced", "loose")
DEFAULT_STRICTNESS = "balanced"
#: The combiner's name for the cross-encoder's logit among its inputs.
PAIR_MODEL = "pair_model"

_DEFAULT_WEIGHTS = "verifier.json"
#: A calibrated cut with fewer hits than this says too little about its wrong share to start from.
_MIN_CALIBRATION_HITS = 50


def _words(text: str) -> list[str]:
    """Split a space-separated word list: keeps the long lists below readable."""
    return text.split()


# Letters of any script: "München", "Zürich" and "São Paulo" are words, not fragments around an accent.
# A comma separates thousands only before three digits: "1,000" is one number, "(2,3)" two.
_WORD = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_]+")
_RAW_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\-])*|\d+(?:[.,]\d+)*")
_CONTRACTIONS = (
    (re.compile(r"\s*(?:->|=>|→)\s*"), " to "),  # "JSON -> YAML" points the way "JSON to YAML" does
    (re.compile(r"\b(can)'?t\b"), r"\1 not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'(s|re|m|ll|ve|d)\b"), ""),
)

# Function words carry no topic; wording changes among them rarely change an answer.
_STOP = frozenset(
    _words(
        "a an the this that these those it its i me my mine we us our you your yours he him his she "
        "her they them their is are was were be been being am do does did done doing have has had "
        "having can could would should will shall may might must of in on at for with by about as "
        "into onto and or but so if then than there here please tell know want need like just also "
        "any some very really get got make let give show help explain someone something way thing "
        "things one ones s t ok okay hi hello hey thanks thank kindly quick question best calculate compute"
    )
)
#: Function words, for modules that look at a prompt's topic words (cache/lexicon.py).
FUNCTION_WORDS = _STOP
_QWORDS = frozenset(_words("what how why when where which who whom whose"))
_AUX_START = frozenset(_words("is are was were do does did can could would should will shall may might"))
_NEGATIONS = frozenset(
    _words(
        "not no never none nor neither without nothing nobody nowhere cannot avoid "
        # the plain negations of the other languages people most often prompt in
        "nicht kein keine keinen keiner niemals nie pas jamais aucun aucune nunca ningún ninguna não niet geen nooit"
    )
)
_CONTRAST = frozenset(_words("other others else besides apart alternative alternatives instead except tried already"))
# Words whose change flips direction, order or degree. General antonyms, not a
# domain list: each pair is stored once and looked up both ways.
_OPPOSITES = (
    "before:after above:below over:under up:down increase:decrease "
    "raise:lower buy:sell import:export upload:download encode:decode encrypt:decrypt send:receive "
    "push:pull enable:disable add:remove start:stop open:close win:lose gain:lose first:last "
    "early:late earlier:later earliest:latest min:max minimum:maximum more:less more:fewer most:least "
    "best:worst better:worse high:low higher:lower highest:lowest big:small bigger:smaller "
    "biggest:smallest large:small larger:smaller largest:smallest fast:slow faster:slower "
    "fastest:slowest cheap:expensive cheaper:pricier cheapest:priciest long:short longer:shorter "
    "longest:shortest old:young older:younger oldest:youngest hot:cold warm:cool heavy:light "
    "north:south east:west left:right positive:negative true:false safe:dangerous good:bad "
    "pros:cons advantage:disadvantage benefit:risk allow:block accept:reject "
    "ascending:descending forward:backward forwards:backwards inside:outside top:bottom "
    "morning:evening morning:night day:night summer:winter upper:lower am:pm "
    "warm:cold warmer:colder warmest:coldest hottest:coldest ok:bad okay:bad fine:bad right:wrong ok:wrong okay:wrong "
    "necessary:unnecessary necessary:pointless continue:stop continue:pause work:fail"
)
_OPPOSITE: dict[str, frozenset[str]] = {}
for _pair in _OPPOSITES.split():
    _a, _b = _pair.split(":")
    _OPPOSITE[_a] = _OPPOSITE.get(_a, frozenset()) | {_b}
    _OPPOSITE[_b] = _OPPOSITE.get(_b, frozenset()) | {_a}
_DEGREE = frozenset(
    _words(
        "more less fewer most least best worst better worse max maximum min minimum highest lowest "
        "higher lower largest smallest larger smaller biggest bigger fastest slowest faster slower "
        "cheapest cheaper longest shortest longer shorter oldest youngest older younger earliest "
        "latest top first last"
    )
)
_SUFFIXES = tuple(_words("ational ations ation ated ates ate ating ions ion ings ing ed ness ments ment ly"))
_NOT_SUPERLATIVE = frozenset(
    _words("interest request forest honest harvest suggest digest protest contest invest arrest manifest modest")
)
_SPECIFIC = frozenset(_words("numbers_differ negation direction comparative"))
_DIRECTION_MARKERS = frozenset(_words("to from into in than before after over under"))
# Joining words whose two sides can swap without changing the question: "X and Y", "X vs Y".
_SYMMETRIC = frozenset(_words("and or vs versus between et ou und oder"))
# Words that make the sides of "and" a sequence: "eat and then exercise" is not "exercise and then eat".
_SEQUENCE = frozenset(_words("then followed first next afterwards later before after"))
_ARTICLES = frozenset(_words("the a an my your our their this that"))
_MARKER_SAME_WAY = {"to": ("to", "into"), "into": ("to", "into")}
_MARKER_OPPOSITE = {
    "to": frozenset({"from"}),
    "from": frozenset({"to", "into"}),
    "into": frozenset({"from"}),
    "before": frozenset({"after"}),
    "after": frozenset({"before"}),
    "over": frozenset({"under"}),
    "under": frozenset({"over"}),
}
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        _words(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
            "fifteen sixteen seventeen eighteen nineteen twenty"
        )
    )
}
_NUMBER_WORDS.update(
    {
        "thirty": "30",
        "forty": "40",
        "fifty": "50",
        "sixty": "60",
        "seventy": "70",
        "eighty": "80",
        "ninety": "90",
        "hundred": "100",
        "thousand": "1000",
        "million": "1000000",
        "dozen": "12",
        "half": "0.5",
        "twice": "2",
        "once": "1",
        "single": "1",
        "double": "2",
        "triple": "3",
    }
)
# Spellings of one unit map to one token, so "5 km" and "5 kilometres" agree.
_UNITS = {
    "kilometer": "km",
    "kilometre": "km",
    "kms": "km",
    "meter": "m",
    "metre": "m",
    "centimeter": "cm",
    "centimetre": "cm",
    "millimeter": "mm",
    "millimetre": "mm",
    "mile": "mi",
    "foot": "ft",
    "feet": "ft",
    "inch": "inch",
    "inches": "inch",
    "yard": "yd",
    "kilogram": "kg",
    "kilo": "kg",
    "kgs": "kg",
    "gram": "g",
    "grams": "g",
    "pound": "lb",
    "lbs": "lb",
    "ounce": "oz",
    "liter": "l",
    "litre": "l",
    "milliliter": "ml",
    "millilitre": "ml",
    "gallon": "gal",
    "celsius": "c",
    "centigrade": "c",
    "fahrenheit": "f",
    "hour": "h",
    "hr": "h",
    "hrs": "h",
    "minute": "min",
    "mins": "min",
    "second": "sec",
    "secs": "sec",
    "megabyte": "mb",
    "gigabyte": "gb",
    "kilobyte": "kb",
    "terabyte": "tb",
    "dollar": "usd",
    "euro": "eur",
    "percent": "pct",
    "per": "per",
    "cent": "pct",
    "mph": "mph",
    "kph": "kmh",
    "kmph": "kmh",
}

# Currency signs read as their unit words after the amount, so "$100" and "100 dollars" agree and "$100" and
# "€100" do not.
_CURRENCY_UNITS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr", "₩": "krw", "₽": "rub"}
_CURRENCY = re.compile("[" + "".join(_CURRENCY_UNITS) + "]")
_CURRENCY_AMOUNT = re.compile("([" + "".join(_CURRENCY_UNITS) + r"])\s*(\d[\d,]*(?:\.\d+)?)")

FEATURE_NAMES: tuple[str, ...] = (
    "cos",
    "cos_sq",
    "jaccard",
    "sub_min",
    "sub_max",
    "focused_sub",
    "add_only",
    "len_ratio",
    "cap_sub",
    "num_diff",
    "num_diff_focus",
    "num_one_side",
    "neg_diff",
    "neg_diff_focus",
    "direction",
    "order_inv",
    "order_inv_focus",
    "opposite",
    "opposite_focus",
    "degree",
    "degree_focus",
    "swap",
    "num_unit_diff",
    "qtype_diff",
    "contrast_diff",
    "identical",
    "drift",
)
# Which reason a rejection is blamed on, by the feature that pushed hardest.
_REASONS = {
    "num_diff": "numbers_differ",
    "num_diff_focus": "numbers_differ",
    "num_one_side": "numbers_differ",
    "neg_diff": "negation",
    "neg_diff_focus": "negation",
    "direction": "direction",
    "order_inv": "direction",
    "order_inv_focus": "direction",
    "opposite": "comparative",
    "opposite_focus": "comparative",
    "degree": "comparative",
    "degree_focus": "comparative",
    "swap": "direction",
    "num_unit_diff": "numbers_differ",
    "cap_sub": "entity",
    "focused_sub": "entity",
    "sub_min": "entity",
    "qtype_diff": "question_type",
    "contrast_diff": "question_type",
    "add_only": "more_specific",
    "drift": "entity",
    PAIR_MODEL: "pair_model",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """The verifier's answer: serve the cached answer or not, and why not."""

    accepted: bool
    score: float
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One prompt reduced to what the features compare."""

    tokens: tuple[str, ...]
    stems: tuple[str, ...]
    content: frozenset[str]
    numbers: tuple[str, ...]
    number_order: tuple[str, ...]
    negations: int
    proper: frozenset[str]
    qtype: str
    contrast: bool


# British and American spellings of one word: summarise/summarize, colour/color, centre/center,
# analyse/analyze, travelled/traveled, catalogue/catalog, anaemia/anemia. General orthography, applied
# to both prompts, and only to words long enough that no two different words meet.
_SPELLING = (
    (re.compile(r"^(\w{3,})is(e|es|ed|ing|ation|ations|er|ers)$"), r"\1iz\2"),
    (re.compile(r"^(\w{2,}[^aeiou])our(s|ed|ing|ful|ite|ites)?$"), r"\1or\2"),
    (re.compile(r"^(\w{2,}[^aeiou])re(s|d)?$"), r"\1er\2"),
    (re.compile(r"^(\w{2,})ys(e|es|ed|ing)$"), r"\1yz\2"),
    (re.compile(r"^(\w{3,}e)ll(ed|ing|er|ers)$"), r"\1l\2"),
    (re.compile(r"^(\w{3,})ogue(s)?$"), r"\1og\2"),
    (re.compile(r"^(\w+)ae(\w{3,})$"), r"\1e\2"),
)


def _american(word: str) -> str:
    """One spelling for words that British and American English spell differently."""
    if len(word) < 6:
        return word
    for pattern, repl in _SPELLING:
        word = pattern.sub(repl, word)
    return word


_SMALL = {w: i for i, w in enumerate(_words(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen"))}
_TENS = {w: 10 * i for i, w in enumerate(_words("_ _ twenty thirty forty fifty sixty seventy eighty ninety")) if i >= 2}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000}
_NUMBER_WORD = "|".join([*_SMALL, *_TENS, *_SCALES])
# Two or more number words in a row ("twenty five", "one hundred and twenty", "two-thousand"); one alone is
# folded word by word by _norm_word.
_NUMBER_RUN = re.compile(
    rf"\b(?:{_NUMBER_WORD})(?:(?:[\s-]+|(?<=hundred)\s+and\s+|(?<=thousand)\s+and\s+)(?:{_NUMBER_WORD}))+\b"
)


def _number_run_value(match: re.Match[str]) -> str:
    """The value of a run of number words, as digits: "one hundred and twenty five" -> "125"."""
    total = current = 0
    for word in re.split(r"[\s-]+", match.group()):
        if word in _SMALL:
            current += _SMALL[word]
        elif word in _TENS:
            current += _TENS[word]
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word in _SCALES:
            total += max(current, 1) * _SCALES[word]
            current = 0
    return f" {total + current} "


@lru_cache(maxsize=1 << 16)
def _norm_word(word: str) -> str:
    """Fold number words, unit spellings, plurals and British spellings so that wording alone does not differ."""
    if word in _NUMBER_WORDS:
        return _NUMBER_WORDS[word]
    if word in _UNITS:
        return _UNITS[word]
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        stem = word[:-1]
        return _UNITS.get(stem, _american(stem))
    return _american(word)


@lru_cache(maxsize=1 << 16)
def _stem(word: str) -> str:
    """A crude suffix strip for comparing topic words: "dehydrated" and "dehydration" agree.

    Comparative endings are left alone; they carry meaning ("faster" vs "fast").
    """
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


# Ordinals, written in digits or as words ("first" and "second" are left alone: "at first", "a second").
_ORDINAL_WORDS = {w: str(i) for i, w in enumerate(_words(
    "third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth"), start=3)}
_ORDINAL_WORDS["twentieth"] = "20"
_ORDINAL = re.compile(r"\b(?:(\d+)(?:st|nd|rd|th)|(" + "|".join(_ORDINAL_WORDS) + r"))\b")


@lru_cache(maxsize=1024)
def _parse(text: str) -> _Parsed:
    """Tokenise a prompt once into normalised tokens plus the facts the features need.

    Cached: the cache checks one query against up to a few neighbours, and a popular
    stored prompt is checked again and again.
    """
    lowered = text.lower().replace("%", " percent ")
    if _CURRENCY.search(lowered):  # "$100" reads as "100 usd", as "100 dollars" does
        lowered = _CURRENCY_AMOUNT.sub(lambda m: f" {m.group(2)} {_CURRENCY_UNITS[m.group(1)]} ", lowered)
        lowered = _CURRENCY.sub(lambda m: f" {_CURRENCY_UNITS[m.group()]} ", lowered)
    for pattern, repl in _CONTRACTIONS:
        lowered = pattern.sub(repl, lowered)
    if _ORDINAL.search(lowered):  # "3rd" and "third" are one ordinal, "3 th"; "2nd" / "3rd" then differ as numbers
        lowered = _ORDINAL.sub(lambda m: f"{m.group(1) or _ORDINAL_WORDS[m.group(2)]} th", lowered)
    if _NUMBER_RUN.search(lowered):  # "twenty five" and "one hundred" are one number each, as 25 and 100 are
        lowered = _NUMBER_RUN.sub(_number_run_value, lowered)
    tokens = tuple(_norm_word(w) for w in _WORD.findall(lowered))
    number_order = tuple(t.replace(",", "") for t in tokens if t[0].isdigit())
    numbers = tuple(sorted(number_order))
    content = frozenset(
        _stem(t)
        for t in tokens
        if not t[0].isdigit()
        and t not in _STOP
        and t not in _QWORDS
        and t not in _NEGATIONS
        and t not in _DIRECTION_MARKERS
    )
    proper: set[str] = set()
    for match in _RAW_WORD.finditer(text):
        word = match.group()
        # A capital inside a sentence (or an acronym) marks a name: a city, a drug, a library.
        if not word[0].isupper():
            continue
        i = match.start() - 1
        while i >= 0 and text[i].isspace():
            i -= 1
        mid_sentence = i >= 0 and text[i] not in ".?!:;\"'("
        if (
            word[0].isupper()
            and (mid_sentence or word.isupper())
            and len(word) > 1
            and word.lower() not in _STOP
            and word != "I"
        ):
            proper.add(_norm_word(word.lower().replace("'", "")))
    qtype = ""
    for i, tok in enumerate(tokens):
        if tok in _QWORDS:
            qtype = tok
            if (
                tok == "how"
                and i + 1 < len(tokens)
                and tokens[i + 1] in ("much", "many", "long", "often", "far", "old")
            ):
                qtype = "how " + tokens[i + 1]
            break
    if not qtype and tokens and tokens[0] in _AUX_START:
        qtype = "yesno"
    return _Parsed(
        tokens=tokens,
        stems=tuple(_stem(t) for t in tokens),
        content=content,
        numbers=numbers,
        number_order=number_order,
        negations=sum(1 for t in tokens if t in _NEGATIONS),
        proper=frozenset(proper),
        qtype=qtype,
        contrast=any(t in _CONTRAST for t in tokens),
    )


_IDENTIFIER = re.compile(r"[a-z0-9][a-z0-9_.\-]*")
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)([a-z]{1,5})")  # a number with its unit glued on: 100mg, 2pm, 6days
_COUNTED = re.compile(r"(\d+(?:\.\d+)?)-[a-z]{3,}")  # a number and what it counts: 3-bullet, 5-year, 10-minute


@lru_cache(maxsize=1024)
def _identifiers(text: str) -> frozenset[str]:
    """Codes that name one thing: letters and digits mixed (ES2015, gpt-4o, hsv1, a hex ID) or a whole
    number of four digits or more (a year, an order number). A number with a short unit glued on
    (100mg, 2pm, 11th) is a quantity, not a code: it counts only through its digits, like "100 mg"."""
    found = set()
    for token in _IDENTIFIER.findall(text.lower().replace(",", "")):
        counted = _COUNTED.fullmatch(token.rstrip(".-_"))
        if counted is not None:  # "a 3-bullet summary" says three bullets, as "3 bullet points" does
            token = counted.group(1)
        code = token.rstrip(".-_").replace("-", "").replace("_", "")
        quantity = _QUANTITY.fullmatch(code)
        if quantity is not None:
            code = quantity.group(1)
        digits = sum(c.isdigit() for c in code)
        if not digits:
            continue
        if code.isdigit():
            if len(code) >= 4:
                found.add(code)
        elif any(c.isalpha() for c in code):
            found.add(code)
    return frozenset(found)


def identifiers_differ(query: str, candidate: str) -> bool:
    """Whether both prompts name things by code (an order number, a hex ID, ES2015, gpt-4o, a year)
    and the codes differ.

    A hard rule before the learned heads, which see such codes only as number fragments: two
    prompts about different IDs differ in nothing else, so the heads can take them for rewordings.
    Plain small numbers are left to the heads: "1 week" and "7 days" ask the same thing, and a
    hard rule on every number costs real paraphrase hits (measured with bench/cache_quality.py).
    """
    a, b = _identifiers(query), _identifiers(candidate)
    if a and b:
        return a != b
    # A name with a number on one side only: "CO2" / "CO", "vitamin B12" / "vitamin B", "gpt-4o" / "gpt".
    return _bare_name_of_code(a, candidate) or _bare_name_of_code(b, query)


def _bare_name_of_code(codes: frozenset[str], other: str) -> bool:
    """Whether ``other`` names, without its number, a thing that ``codes`` names with one.

    Only short names count (CO, B, GPT, HSV): a longer word glued to a number is a typo ("surgery13",
    "my5yr"), not a name."""
    if not codes:
        return False
    words = set(_WORD.findall(other.lower()))
    for code in codes:
        name = code[: len(code) - len(code.lstrip("abcdefghijklmnopqrstuvwxyz"))]
        if 0 < len(name) <= 4 and name not in _STOP and name in words:
            return True
    return False


# Operators and brackets of code and formulas. Prose punctuation (.,;:?!'"`()%$&/) is left out: a rewording
# changes it freely, and "15%" / "15 percent" or "`ls`" / "ls" ask the same thing.
_OPERATOR_CHARS = frozenset("+*=<>^|~[]{}#")
_CODE_TOKEN = re.compile(r"\S*[\[\]{}<>=^|~*]\S*")
_SIGN = re.compile(r"[-+*=<>^|~\[\]{}#!]")


_OPERAND_END = frozenset("0123456789)]")
_OPERAND_START = frozenset("0123456789([")
_PROSE_PLUS = re.compile(r"(?<=[^\W\d_]) \+ (?=[^\W\d_])")  # "name, email + city": "and"
_PROSE_ARROW = re.compile(r" (?:->|=>|→) ")  # "JSON -> YAML": "to"


@lru_cache(maxsize=1024)
def _symbols(text: str) -> tuple[str, frozenset[str]]:
    """A prompt's operators (sorted: a reworded snippet may move them), and its code-like tokens as
    written (case kept).

    Prose uses some of these signs too, so they count only where they cannot be prose: a minus only
    as the sign of a number ("-5", not "3-4 days", "5-year" or a dash), a plus not right after a
    number ("7+2", not "5+ years") nor between two words, an arrow not between spaces, "!" only in
    "!=". Code tokens keep their case because "[a-z]" and "[A-Z]" match different strings."""
    text = _PROSE_ARROW.sub(" to ", _PROSE_PLUS.sub(" and ", text))
    found = []
    last = len(text) - 1
    for match in _SIGN.finditer(text):
        i, char = match.start(), match.group()
        before = text[i - 1] if i > 0 else " "
        after = text[i + 1] if i < last else " "
        if char == "+":
            if not before.isdigit() or after.isdigit():
                found.append(char)
        elif char in _OPERATOR_CHARS:
            found.append(char)
        elif char == "-":
            if after.isdigit() and not before.isalnum():
                found.append("±")  # the sign of a number: compared even when the other side has no operator
            elif before == " " and after == " " and text[i - 2 : i - 1] in _OPERAND_END and \
                    text[i + 2 : i + 3] in _OPERAND_START:
                found.append(char)  # "7 - 2", not a dash in prose ("allergy - is it worth ...")
        elif char == "!" and after == "=":
            found.append(char)
    tokens = frozenset(t.strip(".,;:?!`'\"") for t in _CODE_TOKEN.findall(text))
    return "".join(sorted(found)), tokens


_ASKS = {"who": "person", "whom": "person", "when": "time", "where": "place", "why": "reason", "how": "manner"}
_ASKED_AS = {("how", "soon"): "time", ("how", "come"): "reason", ("what", "time"): "time"}
_AUXILIARIES = frozenset(
    _words("is are was were do does did can could should would will shall may might must has have had")
)
_ALWAYS_ASKS = frozenset(_words("who whom why"))  # "when" and "where" also open clauses: "When I run, ..."


def _asks_for(tokens: tuple[str, ...]) -> str | None:
    """What kind of answer a question that opens with a question word and a verb asks for: a person, a
    time, a place, a reason or a manner ("When did ...", "Where is ...", "How do ...", "How soon can
    ...", "How come ..."). None for other openings: "how many/much/long ..." (a quantity), and "when"
    as a conjunction ("When I run, ...")."""
    if len(tokens) < 2:
        return None
    kind = _ASKED_AS.get((tokens[0], tokens[1]))
    if kind is not None:
        return kind if tokens[1] == "come" or (len(tokens) > 2 and tokens[2] in _AUXILIARIES) else None
    kind = _ASKS.get(tokens[0])
    if kind is None:
        return None
    return kind if tokens[0] in _ALWAYS_ASKS or tokens[1] in _AUXILIARIES else None


def asks_differ(query: str, candidate: str) -> bool:
    """Whether both prompts open by asking for different kinds of answer: "When did the Berlin Wall fall?"
    and "Where did the Berlin Wall fall?", "How should I store basil?" and "Why should I store basil?".
    "What" and "which" ask for anything and are left to the heads: "what causes migraines?" and "why do
    people get migraines?" are one question."""
    a, b = _asks_for(_parse(query).tokens), _asks_for(_parse(candidate).tokens)
    if a is None or b is None or a == b:
        return False
    # "How" is asked loosely: "How do I check my refund?" = "Where can I track my refund?", "How do I know
    # it's time for new tires?" = "When should I replace my tires?" (measured: counting "how" against the
    # others refused as many of our rewordings as traps). A person, a time, a place and a reason stay apart.
    return "manner" not in (a, b)


def symbols_differ(query: str, candidate: str) -> bool:
    """Whether the prompts' operators or code-like tokens differ: "print(7 + 2)" / "print(7 - 2)",
    "age > 30" / "age < 30", "== 0.3" / "=== 0.3", "[::-1]" / "[::1]", "^[a-z]+$" / "^[A-Z]+$".

    A hard rule beside :func:`identifiers_differ`: the word features read letters and digits only, so
    two snippets that differ in an operator look the same to them. Only when both prompts hold operators:
    a terse rewording writes "+" for "and", "->" for "to" and "5 / 2 = ?" for "5 divided by 2", and
    such a sign on one side only is no code that differs (measured: with one side enough, the rule
    refused twice as many of our rewordings as traps)."""
    (ops_a, code_a), (ops_b, code_b) = _symbols(query), _symbols(candidate)
    if ops_a.count("±") != ops_b.count("±"):  # "-5 C" / "5 C"
        return True
    if not ops_a or not ops_b:
        return False
    if ops_a != ops_b:
        return True
    # The same code written in another case on the other side: "^[a-z]+$" / "^[A-Z]+$".
    lower_b: dict[str, set[str]] = {}
    for token in code_b:
        lower_b.setdefault(token.lower(), set()).add(token)
    return any(token not in lower_b.get(token.lower(), {token}) for token in code_a)


def only_numbers_differ(query: str, candidate: str) -> bool:
    """Whether the two prompts use the same words and differ in their numbers: "Convert 5 km to miles" /
    "convert 8 km to miles", "Summarise this in 3 bullet points" / "... in 5 bullet points".

    Number words and digits are read alike ("one hundred" = 100, "twenty five percent" = "25%"), so a
    number only spelt differently is no difference. Where other words changed too, the numbers are left
    to the combiner: doctors rewording a question write "39 y/o" for "age 39" and round "192.9" to "193".
    Measured on our pair sets (bench/cache_quality.py), this refuses no everyday rewording and about one
    trap in nine of them."""
    a, b = _parse(query), _parse(candidate)
    return bool(a.numbers) and bool(b.numbers) and a.numbers != b.numbers and a.content == b.content


# "per" joins two units; a bare "m" is metres to some writers and minutes to others ("2h35m").
_UNIT_WORDS = (frozenset(_UNITS.values()) | frozenset(_CURRENCY_UNITS.values())) - {"per", "m"}
_RATE_UNITS = {"mph": ("mi", "h"), "kmh": ("km", "h")}


def _amount_units(tokens: tuple[str, ...]) -> dict[str, set[str]]:
    """The units after each number: the unit itself and, for a rate, the rate, so "60 miles per hour",
    "60 mph" and "60 miles an hour" share "mi" and "100 km/h" and "100 kilometres per hour" share "km/h"."""
    units: dict[str, set[str]] = {}
    for i in range(len(tokens) - 1):
        if not tokens[i][0].isdigit() or tokens[i + 1] not in _UNIT_WORDS:
            continue
        unit = tokens[i + 1]
        found = units.setdefault(tokens[i], set())
        if unit in _RATE_UNITS:
            base, per = _RATE_UNITS[unit]
            found.update((base, f"{base}/{per}"))
            continue
        found.add(unit)
        rest = tokens[i + 2 : i + 4]
        if rest and rest[0] in _UNIT_WORDS:  # "km/h" reads as "km h"
            found.add(f"{unit}/{rest[0]}")
        elif len(rest) == 2 and rest[0] == "per" and rest[1] in _UNIT_WORDS:
            found.add(f"{unit}/{rest[1]}")
    return units


def units_differ(query: str, candidate: str) -> bool:
    """Whether one amount carries a different unit on each side: "$100 in yen" / "€100 in yen", "5 km" /
    "5 mi". Units are compared after their spellings are made one ("5 km" = "5 kilometres" = "5 kms",
    "$100" = "100 dollars", "60 mph" = "60 miles per hour"), and only known units count, so "5 apples" /
    "5 pears" is left to the combiner."""
    a, b = _parse(query), _parse(candidate)
    if not a.numbers or not b.numbers:
        return False
    units_a, units_b = _amount_units(a.tokens), _amount_units(b.tokens)
    return any(number in units_a and not (units & units_a[number]) for number, units in units_b.items())


# Words whose presence never changes what a prompt asks: "How many miles are (there) in 5 km?", "(Please)
# tell me ...", "What is (the) capital of France?". Pronouns, modals and negations are not among them.
_FILLER = frozenset(_words("there please pls kindly just actually really the a an"))
# Greetings and thanks are filler only where a greeting stands, before or after the request: "Hi, what is
# ...", "... thanks". Inside it they are what is asked about ("Translate hello into French").
_GREETING = frozenset(_words("hi hello hey thanks thank you"))
_MIN_REQUEST_TOKENS = 3


# "What's" (and "whats") is "What is": the parse drops every "'s", a possessive's as well as a verb's.
_WH_IS = re.compile(r"\b(?:(what|who|where|how|when|why|that)'?s|(which|it|there|here)'s)\b", re.IGNORECASE)


# A possessive that ends the question, of something a place, a company or a person has, reads as an "of":
# "What is Canada's capital?" = "What is the capital of Canada?". Not a name that holds a possessive ("Occam's
# razor", "Alzheimer's disease"): only these heads.
_ATTRIBUTES = ("capital|population|president|currency|language|languages|flag|anthem|area|size|height|age|"
               "leader|ceo|founder|gdp|climate|economy|motto|birthday|birthplace|nickname|national animal|"
               "prime minister|capital city|official language|time zone|phone number|address|headquarters")
_POSSESSIVE_END = re.compile(r"\b([^\W\d_]+)'s (" + _ATTRIBUTES + r")(?=\s*[?.!]*\s*$)", re.IGNORECASE)


def _without_filler(text: str) -> list[str]:
    text = _POSSESSIVE_END.sub(r"\2 of \1", _WH_IS.sub(lambda m: (m.group(1) or m.group(2)) + " is", text))
    tokens = list(_parse(text).tokens)
    start, end = 0, len(tokens)
    while start < end and tokens[start] in _GREETING:
        start += 1
    while end > start and tokens[end - 1] in _GREETING:
        end -= 1
    if end - start < _MIN_REQUEST_TOKENS:  # "Hello in French?": the greeting is the request
        start, end = 0, len(tokens)
    return [t for t in tokens[start:end] if t not in _FILLER]


# Words that name the same thing in any question, each group's first word standing for the rest (after
# _parse's folding: plurals, British spellings). A pair that differs in these alone asks the same.
_SYNONYM_GROUPS = (
    "symptom sign", "big large", "bigger larger", "biggest largest", "tallest highest", "film movie",
    "begin start", "fix repair", "buy purchase", "children kids", "child kid", "car automobile",
    "doctor physician", "medicine medication", "cheap inexpensive", "afraid scared", "mother mom mum",
    "father dad", "television tv", "information info", "us usa america", "uk britain", "dictionary dict",
    "integer int", "fastest quickest", "stop quit", "tire tyre", "aluminum aluminium",
    # a verb agreeing with a singular or a plural subject ("does a spider have" / "do spiders have")
    "do does", "is are", "was were", "has have",
)
_SYNONYM = {word: group.split()[0] for group in _SYNONYM_GROUPS for word in group.split()}
# Phrases that name one thing in two or one words (tokens as _parse makes them).
_SYNONYM_PHRASES = ((("united", "state", "of", "america"), "us"), (("united", "state"), "us"),
                    (("united", "kingdom"), "uk"), (("capital", "city"), "capital"),
                    (("at", "same", "time"), "together"), (("time", "complexity"), "bigo"), (("big", "o"), "bigo"))


# The generic "you" of a how-to question: "How do you change a tyre?" asks what "How do I change a tyre?"
# does. Not before a verb that asks about the one addressed ("How do you feel about ...?").
_GENERIC_YOU = frozenset({("how", "do"), ("how", "can")})
_PERSONAL_VERBS = frozenset(_words("feel like do think want rate see mean prefer pronounce"))


# "Which land animal is the fastest?" asks "What is the fastest land animal?": a superlative question is
# read in the second order (articles are filler by then; at most three words name the thing).
_SUPERLATIVE = frozenset(_words(
    "best worst biggest largest smallest tallest highest lowest longest shortest fastest slowest oldest "
    "youngest newest cheapest closest nearest farthest furthest hottest coldest warmest deepest richest "
    "poorest heaviest lightest strongest easiest hardest safest healthiest busiest loudest"))


def _superlative_first(tokens: list[str]) -> list[str]:
    if len(tokens) < 4 or tokens[0] != "what":
        return tokens
    for k in range(1, 4):  # "what/which <thing> is <superlative> ..." -> "what is <superlative> <thing> ..."
        if k + 1 < len(tokens) and tokens[k] in ("is", "are") and tokens[k + 1] in _SUPERLATIVE:
            return ["what", tokens[k], tokens[k + 1], *tokens[1:k], *tokens[k + 2 :]]
    return tokens


# Where a superlative holds: "the tallest building in the world" = "... on Earth" = "the world's tallest building".
_IN_WORLD = (("on", "planet", "earth"), ("in", "whole", "world"), ("on", "earth"), ("on", "planet"))


def _world_phrases(tokens: list[str]) -> list[str]:
    out: list[str] = []
    moved = False
    i = 0
    while i < len(tokens):
        if tokens[i] == "world" and i + 1 < len(tokens) and tokens[i + 1] in _SUPERLATIVE:
            moved = True  # "the world's smallest country": the superlative, and "in the world" at the end
            i += 1
            continue
        for phrase in _IN_WORLD:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out += ["in", "world"]
                i += len(phrase)
                break
        else:
            out.append(tokens[i])
            i += 1
    if moved and out[-2:] != ["in", "world"]:
        out += ["in", "world"]
    return out


# "Who is the author of Dune?" asks "Who wrote Dune?": the one who made a thing, named by the verb.
_MAKER = {"painter": "painted", "author": "wrote", "writer": "wrote", "inventor": "invented", "founder": "founded",
          "creator": "created", "composer": "composed", "director": "directed", "discoverer": "discovered",
          "designer": "designed", "architect": "designed", "builder": "built", "singer": "sang",
          "maker": "made", "developer": "developed", "sculptor": "sculpted"}
# Asked in the passive or of "people": "What languages are spoken in Switzerland?" = "Which languages do people
# speak in Switzerland?" (verb -> participle).
_PARTICIPLE = {"speak": "spoken", "eat": "eaten", "grow": "grown", "use": "used", "celebrate": "celebrated",
               "play": "played", "wear": "worn", "drink": "drunk", "make": "made", "sell": "sold", "call": "called",
               "produce": "produced", "practice": "practiced", "cook": "cooked", "teach": "taught",
               "read": "read", "write": "written"}
# What one asks of a place's people and of a distance, in the forms people write them.
_POPULATION = (("what", "is", "population", "of"), ("how", "many", "people", "live", "in"),
               ("how", "many", "people", "are", "in"), ("how", "many", "people", "are", "living", "in"))
# Openings of a distance question and the word between its two places, the longest opening tried first.
_DISTANCE = sorted(((("how", "far", "away", "is"), "from"), (("how", "far", "is"), "from"),
                    (("how", "far", "is", "it", "from"), "to"), (("what", "is", "distance", "from"), "to"),
                    (("distance", "from"), "to"), (("what", "is", "distance", "between"), "and"),
                    (("distance", "between"), "and")), key=lambda item: -len(item[0]))
_WHAT_TO_DO = (("what", "should", "i", "do"), ("what", "can", "i", "do"), ("what", "do", "i", "do"))


def _split_once(span: list[str], word: str) -> tuple[list[str], list[str]] | None:
    if span.count(word) != 1:
        return None
    k = span.index(word)
    return (span[:k], span[k + 1 :]) if k and k + 1 < len(span) else None


def _distance(tokens: list[str]) -> list[str]:
    """A distance asked as "How far is A from B?", "What is the distance from B to A?" or "... between A and B":
    one question, read as "distance" and the two places in a fixed order (a unit asked for, "in km", kept last)."""
    unit: list[str] = []
    if len(tokens) > 2 and tokens[-2] == "in" and tokens[-1] in _UNIT_WORDS:
        tokens, unit = tokens[:-2], tokens[-2:]
    places = None
    for opening, joint in _DISTANCE:
        if tuple(tokens[: len(opening)]) == opening:
            places = _split_once(tokens[len(opening) :], joint)
            break
    if places is None or any(t in _DIRECTION_MARKERS or t in _QWORDS for t in places[0] + places[1]):
        return tokens + unit
    first, second = sorted(places)
    return ["distance", *first, "|", *second, *unit]


_VERSUS = frozenset({"vs", "versus"})
_QUALIFIERS = frozenset(_words("for with of on at by about"))
_ASKING = ("what", "is", "difference")  # "A vs B - what's the difference?": the asking words after the pair


def _pair_and_context(span: list[str], joint: frozenset[str]) -> tuple[list[str], list[str], list[str]] | None:
    """Two things joined once by a word of ``joint`` (and a context "in X" after the second: "let and const in
    JavaScript"), or None."""
    at = [k for k, t in enumerate(span) if t in joint]
    if len(at) != 1 or not 0 < at[0] < len(span) - 1:
        return None
    first, second = span[: at[0]], span[at[0] + 1 :]
    context: list[str] = []
    if "in" in second[1:]:
        k = len(second) - 1 - second[::-1].index("in")
        second, context = second[:k], second[k:]
    if any(t in _QWORDS or t in _DIRECTION_MARKERS or t in _ALTERNATIVE or t in _AND for t in first + second):
        return None
    return first, second, context


def _difference(tokens: list[str]) -> list[str]:
    """A difference asked as "What's the difference between A and B?", "How is A different from B?", "How do A
    and B differ?", "How can I tell A from B?" or "A vs B (- what's the difference?)": one question, read as
    "difference", the two things in a fixed order and the context ("in JavaScript", before or after)."""
    if not tokens:
        return tokens
    prefix: list[str] = []
    if tokens[:1] == ["in"] and len(tokens) > 3:  # "In JavaScript, how is let different from const?"
        for k in range(2, min(len(tokens), 5)):
            if tokens[k] in _QWORDS:
                prefix, tokens = tokens[:k], tokens[k:]
                break
    found = None
    if tokens[:4] == ["what", "is", "difference", "between"] or tokens[:2] == ["difference", "between"]:
        start = 4 if tokens[0] == "what" else 2
        found = _pair_and_context(tokens[start:], _AND)
    elif tokens[:1] == ["how"] and len(tokens) > 4 and tokens[1] in ("is", "are") and "different" in tokens:
        k = tokens.index("different")  # "how is A different from B"
        if tokens[k + 1 : k + 2] == ["from"]:
            found = _pair_and_context([*tokens[2:k], "and", *tokens[k + 2 :]], _AND)
    elif tokens[:2] in (["how", "do"], ["how", "does"]) and tokens[-1:] == ["differ"]:
        found = _pair_and_context(tokens[2:-1], _AND)
    elif tokens[:4] in (["how", "do", "i", "tell"], ["how", "can", "i", "tell"]) and "from" in tokens:
        found = _pair_and_context(tokens[4:], frozenset({"from"}))
    else:
        end = len(tokens)
        for tail in (_ASKING, _ASKING[::2], _ASKING[2:]):
            if len(tokens) > len(tail) + 2 and tuple(tokens[-len(tail) :]) == tail:
                end = len(tokens) - len(tail)
                break
        if end < len(tokens) or (len(tokens) <= 8 and tokens[0] not in _QWORDS and tokens[0] not in _AUX_START):
            found = _pair_and_context(tokens[:end], _VERSUS)  # "RAM vs storage", "python list vs tuple"
            if found is not None and end == len(tokens) and any(t in _QUALIFIERS for t in found[0] + found[1]):
                found = None  # "Python vs Java for a beginner" asks which to choose, not how they differ
    if found is None:
        return prefix + tokens
    first, second, context = found
    one, other = sorted((first, second))
    return ["difference", *one, "|", *other, "|", *prefix, *context]


_COUNTED_UNITS = (frozenset(_UNITS.values()) - {"per", "pct"}) | frozenset(
    _words("cup tablespoon teaspoon tbsp tsp pint quart day week month year byte bit"))


def _how_many_units(tokens: list[str]) -> list[str]:
    """"How many feet are in a meter?" = "How many feet is one meter?" = "How many ounces in a cup?": a unit
    counted in one of another, read as "how many U in V"."""
    if len(tokens) < 4 or tokens[:2] != ["how", "many"] or tokens[2] not in _COUNTED_UNITS:
        return tokens
    rest = tokens[3:]
    if rest[:1] in (["are"], ["is"]):
        rest = rest[1:]
    if rest[:1] == ["in"]:
        rest = rest[1:]
    if rest[:1] == ["1"]:
        rest = rest[1:]
    if len(rest) != 1 or rest[0] not in _COUNTED_UNITS:
        return tokens
    return ["how", "many", tokens[2], "in", *rest]


# A cause asked as "What causes X?", "What is the cause of X?", "What are (were) the causes of X?", "What
# caused X?" (tense aside: the cause of an event is asked either way).
_CAUSE_OPENINGS = (("what", "cause"), ("what", "caused"), ("what", "is", "cause", "of"), ("what", "are", "cause", "of"),
                   ("what", "was", "cause", "of"), ("what", "were", "cause", "of"))
# What an abbreviation stands for: "What does HTTP stand for?" = "What is HTTP short for?".
_SHORT_FOR = frozenset(_words("short abbreviation acronym"))


def _asks_what_of(tokens: list[str]) -> list[str]:
    for opening in _CAUSE_OPENINGS:
        if tuple(tokens[: len(opening)]) == opening and len(tokens) > len(opening):
            return ["cause", "of", *tokens[len(opening) :]]
    if len(tokens) >= 5 and tokens[-1] == "for" and (
            (tokens[:2] == ["what", "does"] and tokens[-2] == "stand")
            or (tokens[:2] == ["what", "is"] and tokens[-2] in _SHORT_FOR)):
        return ["stand", "for", *tokens[2:-2]]
    if len(tokens) >= 3 and tokens[0] == "is" and tokens[-2:] == ["prime", "number"]:  # "Is 221 a prime number?"
        return ["is", *tokens[1:-2], "prime"]
    if len(tokens) >= 3 and tokens[:2] == ["is", "number"] and tokens[-1] == "prime":  # "Is the number 221 prime?"
        return ["is", *tokens[2:]]
    return tokens


# An instruction's verb, said in other words: "Condense this ..." = "Summarize this ...", "Create a React
# component ..." = "Write a React component ...". Only the request's first word, and after a polite opening
# only when one of these verbs follows it ("Can you summarize ..." = "Summarize ...", "Can you swim?" stays).
_INSTRUCTION = {"summarize": "summarize", "summarise": "summarize", "condense": "summarize",
                "rephrase": "rewrite", "reword": "rewrite", "paraphrase": "rewrite", "rewrite": "rewrite",
                "create": "write", "generate": "write", "compose": "write", "draft": "write", "write": "write",
                "describe": "explain", "explain": "explain", "translate": "translate", "list": "list"}
_POLITE = (("i", "would", "like", "you", "to"), ("i", "like", "you", "to"), ("i", "need", "you", "to"),
           ("i", "want", "you", "to"), ("can", "you"), ("could", "you"), ("would", "you"), ("will", "you"),
           ("help", "me"))


# "I want to cancel my subscription. How do I do that?" asks "How do I cancel my subscription?".
_WANT_TO = (("i", "want", "to"), ("i", "need", "to"), ("i", "would", "like", "to"), ("i", "like", "to"))
_HOW_DO_THAT = (("how", "do", "i", "do", "that"), ("how", "do", "i", "do", "it"), ("how", "do", "i", "do", "this"),
                ("how", "do", "i"), ("how",))


def _wanted(tokens: list[str]) -> list[str]:
    for opening in _WANT_TO:
        if tuple(tokens[: len(opening)]) != opening:
            continue
        for ask in _HOW_DO_THAT:
            if len(tokens) > len(opening) + len(ask) and tuple(tokens[-len(ask) :]) == ask:
                return ["how", "do", "i", *tokens[len(opening) : -len(ask)]]
    return tokens


def _instruction(tokens: list[str]) -> list[str]:
    for opening in _POLITE:
        if tuple(tokens[: len(opening)]) == opening and tokens[len(opening) : len(opening) + 1] != [] \
                and tokens[len(opening)] in _INSTRUCTION:
            tokens = tokens[len(opening) :]
            break
    if tokens[:2] == ["sum", "up"]:
        tokens = ["summarize", *tokens[2:]]
    if tokens and tokens[0] in _INSTRUCTION:
        tokens = [_INSTRUCTION[tokens[0]], *tokens[1:]]
    return _wanted(["to" if t == "into" else t for t in tokens])


def _frames(tokens: list[str]) -> list[str]:
    """The wordings of one everyday question that differ only in frame, brought to one form: "which" as
    "what", "how can I" / "how to" as "how do I", the maker of a thing, a people's population, a
    distance, the passive of a custom, "S, what should I do?" as "What should I do if S?"."""
    tokens = _instruction(_superlative_first(_world_phrases(["what" if t == "which" else t for t in tokens])))
    if tokens[:3] == ["how", "can", "i"]:
        tokens = ["how", "do", "i", *tokens[3:]]
    elif tokens[:2] == ["how", "to"]:
        tokens = ["how", "do", "i", *tokens[2:]]
    if (len(tokens) > 4 and tokens[0] == "who" and tokens[1] in ("is", "was") and tokens[2] in _MAKER
            and tokens[3] == "of"):
        tokens = ["who", _MAKER[tokens[2]], *tokens[4:]]
    for opening in _POPULATION:
        if tuple(tokens[: len(opening)]) == opening and len(tokens) > len(opening):
            tokens = ["population", "of", *tokens[len(opening) :]]
            break
    for i in range(len(tokens) - 2):  # "do people speak" -> "are spoken"
        if tokens[i] in ("do", "does") and tokens[i + 1] in ("people", "they") and tokens[i + 2] in _PARTICIPLE:
            tokens = [*tokens[:i], "are", _PARTICIPLE[tokens[i + 2]], *tokens[i + 3 :]]
            break
        if tokens[i] == "is" and tokens[i + 1] in _PARTICIPLE.values() and i and tokens[i - 1] not in _QWORDS:
            tokens = [*tokens[:i], "are", *tokens[i + 1 :]]  # "what language is spoken" as "are spoken"
            break
    for ask in _WHAT_TO_DO:
        if len(tokens) >= len(ask) + 3 and tuple(tokens[-len(ask) :]) == ask:
            tokens = [*_WHAT_TO_DO[0], "if", *tokens[: -len(ask)]]
        elif len(tokens) >= len(ask) + 4 and tuple(tokens[: len(ask)]) == ask and tokens[len(ask)] == "if":
            tokens = [*_WHAT_TO_DO[0], *tokens[len(ask) :]]
        else:
            continue
        tokens = ["does" if t == "will" and tokens[k + 1 : k + 2] == ["not"] else t for k, t in enumerate(tokens)]
        break
    return _difference(_distance(_asks_what_of(_how_many_units(tokens))))


@lru_cache(maxsize=1024)
def _canonical_words(text: str) -> tuple[str, ...]:
    """The prompt's words as the same-question shortcuts compare them (cached like :func:`_parse`)."""
    tokens = _frames(_without_filler(text))
    for i in range(2, len(tokens) - 1):
        if (tokens[i] == "you" and (tokens[i - 2], tokens[i - 1]) in _GENERIC_YOU
                and tokens[i + 1] not in _PERSONAL_VERBS):
            tokens[i] = "i"
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase, word in _SYNONYM_PHRASES:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out.append(word)
                i += len(phrase)
                break
        else:
            out.append(_SYNONYM.get(tokens[i], tokens[i]))
            i += 1
    return tuple(out)


def _acronyms_differ(query: str, candidate: str) -> bool:
    """Whether a capitalised acronym ending in "S" ("HTTPS") is missing from the other prompt: the parse folds
    plurals, and "HTTPS" would otherwise read as "HTTP"."""
    words_a, words_b = _RAW_WORD.findall(query), _RAW_WORD.findall(candidate)
    lower_a, lower_b = {w.lower() for w in words_a}, {w.lower() for w in words_b}

    def folded(word: str) -> bool:
        return len(word) > 4 and word.isupper() and word.endswith("S") and not word.endswith("SS")

    return (any(folded(w) and w.lower() not in lower_b for w in words_a)
            or any(folded(w) and w.lower() not in lower_a for w in words_b))


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')


def _quotes_differ(query: str, candidate: str) -> bool:
    """Whether both prompts quote text and the quotes are not word for word the same: quoted text is to be
    translated, counted or corrected as written, so neither plurals nor synonyms fold there."""
    quoted_a = [[w.lower() for w in _RAW_WORD.findall("".join(m))] for m in _QUOTED.findall(query)]
    quoted_b = [[w.lower() for w in _RAW_WORD.findall("".join(m))] for m in _QUOTED.findall(candidate)]
    return bool(quoted_a) and bool(quoted_b) and quoted_a != quoted_b


def only_synonyms_differ(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words in the same order but for case, punctuation, filler
    (:data:`_FILLER`, greetings around the request: "How many miles are (there) in 437 km?") and words that
    name the same thing ("symptoms" / "signs", "the US" / "the United States", "capital" / "capital city").
    The pair model reads a single changed word as a changed detail, which these are not (logit -2.4 for
    "What are the symptoms of diabetes?" / "What are the signs of diabetes?"), and distrusts some filler too."""
    a = _canonical_words(query)
    return (bool(a) and a == _canonical_words(candidate) and not symbols_differ(query, candidate)
            and not _acronyms_differ(query, candidate) and not _quotes_differ(query, candidate))


#: Words that join alternatives whose order asks nothing: "tea or coffee", "RAM vs storage" (and French,
#: German and Spanish "or"), and "between A and B". A plain "and" is not among them: joining verbs it
#: often means a sequence ("wash and dry", "grouping and teaching"), which PAWS labels as a changed meaning.
_ALTERNATIVE = frozenset({"or", "vs", "versus", "ou", "oder", "o"})
_AND = frozenset({"and", "et", "und", "y"})
_BETWEEN = frozenset({"between", "entre", "zwischen"})
_MAX_SWAP_TOKENS = 40


def _swapped_around(a: list[str], b: list[str]) -> bool:
    """Whether ``b`` is ``a`` with two spans trading places around one joining word (see alternatives_swapped)."""
    for i, word in enumerate(a):
        between = word in _AND and any(t in _BETWEEN for t in a[:i])
        if word not in _ALTERNATIVE and not between:
            continue
        starts = [max(k for k in range(i) if a[k] in _BETWEEN) + 1] if between else range(i)
        for start in starts:
            for end in range(i + 2, len(a) + 1):
                if a[:start] + a[i + 1 : end] + [word] + a[start:i] + a[end:] == b:
                    return True
    return False


# A negation written on the auxiliary or after the subject: "Why didn't my bread rise?" reads "why did not
# my bread rise", "Why did my bread not rise?" the same question. The subject between is one pronoun or
# a determiner and one word; anything longer may change what is negated ("is it safe not to eat").
_AUXILIARY = frozenset(_words("do does did is are was were can could will would should has have had must may"))
_PRONOUN = frozenset(_words("i you he she it we they this that"))
_DETERMINER = frozenset(_words("my your his her its our their the a an this that these those"))


def _negation_moved(a: list[str], b: list[str]) -> bool:
    if a.count("not") != 1 or b.count("not") != 1:
        return False
    rest = [t for t in a if t != "not"]
    if rest != [t for t in b if t != "not"]:
        return False
    lo, hi = sorted((a.index("not"), b.index("not")))
    skipped = rest[lo:hi]
    return lo > 0 and rest[lo - 1] in _AUXILIARY and (
        (len(skipped) == 1 and skipped[0] in _PRONOUN) or (len(skipped) == 2 and skipped[0] in _DETERMINER))


def alternatives_swapped(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words (filler and synonyms aside) but for two alternatives that
    trade places around "or", "vs" or "between ... and" ("Is a tomato a fruit or a vegetable?" / "Is
    tomato a vegetable or a fruit?", "la différence entre un virus et une bactérie"), or for a
    "not" written on the auxiliary instead of after the subject ("Why didn't my bread rise?" / "Why did my
    bread not rise?"). The pair model learnt from word-swap pairs (PAWS) that order matters and refuses
    these. "From A to B", "A than B" and "A and B" are not alternatives: direction, comparison and
    sequence change the answer."""
    a, b = list(_canonical_words(query)), list(_canonical_words(candidate))
    if (a == b or sorted(a) != sorted(b) or len(a) > _MAX_SWAP_TOKENS or symbols_differ(query, candidate)
            or _acronyms_differ(query, candidate) or _quotes_differ(query, candidate)):
        return False
    # The negation is compared on every word, articles included: "didn't the bread" skips "the bread".
    return _swapped_around(a, b) or _negation_moved(list(_parse(query).tokens), list(_parse(candidate).tokens))


def same_question_in_other_words(query: str, candidate: str) -> bool:
    """The shortcuts that serve a pair without the pair model: only filler or synonyms differ, or
    alternatives swapped."""
    return only_synonyms_differ(query, candidate) or alternatives_swapped(query, candidate)


def hard_rule_refusal(query: str, candidate: str) -> str | None:
    """The reason a hard rule refuses the pair before the combiner sees it, or None: codes, operators,
    numbers alone or kinds of question that differ."""
    if identifiers_differ(query, candidate) or only_numbers_differ(query, candidate) or units_differ(query, candidate):
        return "numbers_differ"
    if symbols_differ(query, candidate):
        return "symbols_differ"
    if asks_differ(query, candidate):
        return "question_type"
    return None


def _marker_pairs(tokens: tuple[str, ...]) -> set[tuple[str, str, str]]:
    """(left word, marker, right word) around direction markers, past articles: "string to (an) integer"."""
    words = [t for t in tokens if t not in _ARTICLES]
    out: set[tuple[str, str, str]] = set()
    for i in range(1, len(words) - 1):
        if words[i] in _DIRECTION_MARKERS:
            out.add((words[i - 1], words[i], words[i + 1]))
    return out


def _marker_objects(tokens: tuple[str, ...]) -> dict[str, set[str]]:
    """The word each direction marker points at, past articles: "from the us" -> from: us."""
    out: dict[str, set[str]] = {}
    for i, tok in enumerate(tokens):
        if tok in _MARKER_OPPOSITE:
            j = i + 1
            while j < len(tokens) and tokens[j] in _ARTICLES:
                j += 1
            if j < len(tokens):
                out.setdefault(tok, set()).add(tokens[j])
    return out


def _direction_swapped(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """1 when the two prompts go opposite ways: "A to B" vs "B to A", "from X" vs "into X"."""
    pairs_b = _marker_pairs(b)
    for left, marker, right in _marker_pairs(a):
        # "turn mp4 into mp3" goes the way "convert mp4 to mp3" does, and against "mp3 to mp4"
        if left != right and any((right, same, left) in pairs_b for same in _MARKER_SAME_WAY.get(marker, (marker,))):
            return 1.0
        if any((left, other, right) in pairs_b for other in _MARKER_OPPOSITE.get(marker, ())):
            return 1.0
    obj_a, obj_b = _marker_objects(a), _marker_objects(b)
    for marker, targets in obj_a.items():
        for other in _MARKER_OPPOSITE[marker]:
            moved = targets & obj_b.get(other, set())
            if moved and not moved & obj_b.get(marker, set()):
                return 1.0
    return 0.0


def _order_inversions(a: tuple[str, ...], b: tuple[str, ...], shared: frozenset[str]) -> float:
    """Share of shared-word pairs that appear in opposite order: "A to B" vs "B to A"."""
    pos_a: dict[str, int] = {}
    pos_b: dict[str, int] = {}
    for i, t in enumerate(a):
        if t in shared:
            pos_a.setdefault(t, i)
    for i, t in enumerate(b):
        if t in shared:
            pos_b.setdefault(t, i)
    words = sorted(pos_a, key=pos_a.__getitem__)
    n = len(words)
    if n < 2:
        return 0.0
    discordant = 0
    total = 0
    for i in range(n):
        for j in range(i + 1, min(n, i + 6)):
            total += 1
            if pos_b[words[i]] > pos_b[words[j]]:
                discordant += 1
    return discordant / total


def _is_degree(word: str) -> bool:
    """A comparative or superlative: listed, or a superlative by its "-est" ending."""
    return word in _DEGREE or (len(word) >= 6 and word.endswith("est") and word not in _NOT_SUPERLATIVE)


def _meaningful(words: set[str]) -> set[str]:
    """Words that can carry an answer: not function words or question words."""
    return {w for w in words if w not in _STOP and w not in _QWORDS}


def _drift(similarity: float, changed: int, total: int) -> float:
    """How far the embedding moved for the share of words that changed.

    A synonym moves the vector little for the words it changes; a different
    city, drug or library moves it a lot, even when it is one word in a long
    prompt. The cosine comes free with the candidate, so this costs nothing.
    """
    if changed == 0 or total == 0:
        return 0.0
    return min(3.0, (1.0 - similarity) / (changed / total))


def _symmetric_swap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True when the words change places across "and"/"or"/"vs": the same question either way.

    Not when the prompt speaks of an order ("sunscreen and then moisturiser", "aspirin followed by
    ibuprofen"): there the two sides are a sequence, and swapping them asks something else.
    """
    if any(t in _SEQUENCE for t in a) or any(t in _SEQUENCE for t in b):
        return False
    return any(t in _SYMMETRIC for t in a) and any(t in _SYMMETRIC for t in b)


def _exchanged(a: tuple[str, ...], b: tuple[str, ...], shared: frozenset[str]) -> bool:
    """True when two words that are apart trade places and all else keeps its order.

    "string to an integer" vs "integer to a string" is a swap; "center a div in
    CSS" vs "CSS: center a div" (a moved phrase), "capital of France" vs "France:
    what is its capital" (other words between) and "tallest building" vs
    "building ... tallest" (neighbours) are rewordings.
    """
    first_a: dict[str, int] = {}
    for i, t in enumerate(a):
        if t in shared:
            first_a.setdefault(t, i)
    seq_a = sorted(first_a, key=first_a.__getitem__)
    first_b: dict[str, int] = {}
    for i, t in enumerate(b):
        if t in shared:
            first_b.setdefault(t, i)
    seq_b = sorted(first_b, key=first_b.__getitem__)
    if len(seq_a) != len(seq_b):
        return False
    diff = [i for i, (x, y) in enumerate(zip(seq_a, seq_b, strict=True)) if x != y]
    if len(diff) != 2:
        return False
    i, j = diff
    x, y = seq_a[i], seq_a[j]
    if not (seq_b[i] == y and seq_b[j] == x and first_a[y] - first_a[x] >= 2):
        return False
    # What stands between them must stay: "X to Y" / "Y to X" is a swap, "capital of
    # France" / "France: what is its capital?" is the same question turned round.
    between_a = [t for t in a[first_a[x] + 1 : first_a[y]] if t not in _ARTICLES]
    between_b = [t for t in b[first_b[y] + 1 : first_b[x]] if t not in _ARTICLES]
    return between_a == between_b


def _block_moved(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """True when ``b`` is ``a`` with one run of words moved elsewhere as a whole, both runs on either
    side of the move at least two words long: "what is the boiling point of water at sea level" and
    "at sea level, what is the boiling point of water"; "in Python, how do I ..." and "how do I ... in
    Python". A phrase moves with its preposition, so the question stays the same. Two words trading
    places ("list to tuple" / "tuple to list", "I love only you" / "I only love you") is no such move."""
    n = len(a)
    if n != len(b) or a == b or sorted(a) != sorted(b):
        return False
    start = 0
    while a[start] == b[start]:
        start += 1
    end = n
    while a[end - 1] == b[end - 1]:
        end -= 1
    moved_a, moved_b = a[start:end], b[start:end]
    size = len(moved_a)
    return any(moved_a[k:] + moved_a[:k] == moved_b for k in range(2, size - 1))


def _unit_diff(a: tuple[str, ...], b: tuple[str, ...]) -> float:
    """1 when the same number is followed by a different word that the other prompt lacks: "250 acres" vs
    "250 hectares", not "Windows 10 login ... laptop" vs "Windows 10 laptop ... login" (words moved)."""
    after_a: dict[str, str] = {}
    for i in range(len(a) - 1):
        if a[i][0].isdigit():
            after_a.setdefault(a[i], a[i + 1])
    for i in range(len(b) - 1):
        if b[i][0].isdigit() and b[i] in after_a:
            x, y = after_a[b[i]], b[i + 1]
            if (x.removesuffix("s") != y.removesuffix("s") and x not in _STOP and y not in _STOP and not x[0].isdigit()
                    and not y[0].isdigit() and x not in b and y not in a):
                return 1.0
    return 0.0


def pair_features(query: str, candidate: str, similarity: float) -> list[float]:
    """Features of a prompt pair, in :data:`FEATURE_NAMES` order; symmetric in the two prompts."""
    a = _parse(query)
    b = _parse(candidate)
    shared = a.content & b.content
    union = a.content | b.content
    da = a.content - b.content
    db = b.content - a.content
    jac = len(shared) / len(union) if union else 1.0
    sub_min = min(len(da), len(db))
    sub_max = max(len(da), len(db))
    focused = 1.0 if da and db and len(da) + len(db) <= 4 else 0.0
    add_only = 1.0 if (not da) != (not db) and len(da) + len(db) <= 3 else 0.0
    la, lb = max(len(a.tokens), 1), max(len(b.tokens), 1)
    len_ratio = abs(math.log(la / lb))
    cap_a = a.proper - b.proper - b.content
    cap_b = b.proper - a.proper - a.content
    cap_sub = 1.0 if (cap_a and cap_b) else 0.0
    num_diff = 1.0 if a.numbers and b.numbers and a.numbers != b.numbers else 0.0
    num_one = 1.0 if bool(a.numbers) != bool(b.numbers) else 0.0
    neg_diff = 1.0 if (a.negations % 2) != (b.negations % 2) else 0.0
    direction = _direction_swapped(a.tokens, b.tokens)
    # Words trading places across "and"/"or"/"vs" ask the same thing: "rent or buy" = "buy or rent".
    symmetric = not da and not db and _symmetric_swap(a.tokens, b.tokens)
    # A phrase moved as a whole ("at sea level, what is ..." / "what is ... at sea level") is the same
    # wording for the heads: the same words, each phrase still reading as it did.
    phrase_moved = _block_moved(a.tokens, b.tokens)
    order_inv = 0.0 if symmetric or phrase_moved else _order_inversions(a.stems, b.stems, shared)
    set_a, set_b = set(a.tokens), set(b.tokens)
    only_a, only_b = set_a - set_b, set_b - set_a
    opposite = 0.0
    for t in only_a:
        if _OPPOSITE.get(t, frozenset()) & only_b:
            opposite = 1.0
            break
    degree = 1.0 if any(_is_degree(t) for t in only_a | only_b) else 0.0
    # Words that moved are a swap unless "and"/"vs" joins them or every marker still points the same way.
    objects_a = _marker_objects(a.tokens)
    same_targets = bool(objects_a) and objects_a == _marker_objects(b.tokens)
    same_words_moved = not da and not db and not same_targets and _exchanged(a.stems, b.stems, shared) and not symmetric
    numbers_moved = a.numbers == b.numbers and a.number_order != b.number_order
    swap = 1.0 if same_words_moved or numbers_moved else 0.0
    direction = max(direction, swap)
    qtype_diff = 1.0 if a.qtype != b.qtype else 0.0
    contrast_diff = 1.0 if a.contrast != b.contrast else 0.0
    identical = 1.0 if a.tokens == b.tokens or phrase_moved else 0.0
    return [
        similarity,
        similarity * similarity,
        jac,
        min(sub_min, 3) / 3.0,
        min(sub_max, 6) / 6.0,
        focused,
        add_only,
        min(len_ratio, 2.0),
        cap_sub,
        num_diff,
        num_diff * jac,
        num_one,
        neg_diff,
        neg_diff * jac,
        direction,
        order_inv,
        order_inv * jac,
        opposite,
        opposite * jac,
        degree,
        degree * jac,
        swap,
        _unit_diff(a.tokens, b.tokens),
        qtype_diff,
        contrast_diff,
        identical,
        _drift(similarity, len(_meaningful(only_a)) + len(_meaningful(only_b)), len(set_a) + len(set_b)),
    ]


class _Combiner:
    """One logistic model over the pair's signals: standardise, weigh, squash."""

    __slots__ = ("_shift", "bias", "inputs", "scale", "weights")

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"verifier weights {where}: 'combiner' must be a JSON object")
        inputs = data.get("inputs")
        known = {*FEATURE_NAMES, PAIR_MODEL}
        if not isinstance(inputs, list) or not inputs or not set(inputs) <= known:
            raise ValueError(
                f"verifier weights {where} were trained for features {inputs!r}, this code computes {sorted(known)!r}"
            )
        self.inputs: tuple[str, ...] = tuple(inputs)
        n = len(inputs)
        self.weights = _floats(data, "weights", n, where)
        mean = _floats(data, "mean", n, where)
        self.scale = _floats(data, "scale", n, where)
        if not isinstance(data.get("bias"), int | float):
            raise ValueError(f"verifier weights {where}: the combiner lacks a numeric 'bias'")
        self.bias = float(data["bias"])
        # Standardisation folded into one constant: sum of w * mean / scale.
        self._shift = sum(w * m / s for w, m, s in zip(self.weights, mean, self.scale, strict=True))

    def logit(self, values: dict[str, float]) -> tuple[float, list[float]]:
        """The log-odds that one answer serves both prompts, and each input's push on it.

        The push is measured from the input being zero (w * x / s), not from its training mean, so a
        refusal is blamed on something the pair has.
        """
        push = [w * values[name] / s for name, w, s in zip(self.inputs, self.weights, self.scale, strict=True)]
        return self.bias - self._shift + sum(push), push


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """One strictness level: the cosine floor a candidate must reach, and the combiner's cut-off."""

    threshold: float
    cut: float


class Verifier:
    """Decides whether a cached prompt's answer may be served for a new prompt.

    Three steps, cheapest first. Hard rules refuse pairs whose codes, operators or kinds of question
    differ. A small cross-encoder (:class:`~.pair_model.PairModel`) reads the two prompts together.
    A logistic combiner weighs its verdict with the cosine and the word-level features of
    :func:`pair_features` (numbers, negation, direction, opposites, named things, ...), and the
    candidate is served when the combined log-odds reach the cut-off of the chosen strictness.
    The weight file is read once at construction; :meth:`check` is pure computation.
    """

    __slots__ = ("_calibration", "_combiner", "_pair_model", "points", "strictness")

    def __init__(
        self,
        weights_path: str | os.PathLike[str] | None = None,
        *,
        strictness: str = DEFAULT_STRICTNESS,
        pair_model: PairScorer | None = None,
    ) -> None:
        where = str(weights_path) if weights_path is not None else f"asgi_llmguard/data/{_DEFAULT_WEIGHTS}"
        data = _load_weights(weights_path, where)
        self._combiner = _Combiner(data["combiner"], where)
        points = data["strictness"]
        if not isinstance(points, dict) or set(points) != set(STRICTNESS_LEVELS):
            raise ValueError(f"verifier weights {where}: 'strictness' needs exactly {list(STRICTNESS_LEVELS)}")
        self.points = {name: _point(points[name], where, name) for name in STRICTNESS_LEVELS}
        if strictness not in self.points:
            raise ValueError(f"strictness must be one of {list(STRICTNESS_LEVELS)}, not {strictness!r}")
        self.strictness = strictness
        self._calibration = _calibration(data.get("calibration"), where)
        if pair_model is None and PAIR_MODEL in self._combiner.inputs:
            from .pair_model import PairModel

            pair_model = PairModel()
        self._pair_model = pair_model

    @property
    def threshold(self) -> float:
        """The cosine floor of the chosen strictness: candidates below it are not even considered."""
        return self.points[self.strictness].threshold

    @property
    def cut(self) -> float:
        """The combined log-odds a candidate must reach at the chosen strictness."""
        return self.points[self.strictness].cut

    def start_cut(self, max_wrong_rate: float) -> float:
        """Where a namespace held to ``max_wrong_rate`` starts before its own traffic says anything: the
        loosest calibrated cut, no looser than the strictness point's, at which the wrong share of hits
        measured offline (the weight file's ``calibration``, every stricter cut with enough hits
        included) is at most half the target. Half, because one namespace's few hundred hits spread
        around that share: at half the target the realised rate stays under it in about 19 runs of 20."""
        if not self._calibration:  # a weight file without calibration: the strictness point's cut
            return self.cut
        start = self._calibration[-1][0]  # none qualifies: the strictest calibrated cut
        for cut, hits, wrong in reversed(self._calibration):
            if hits < _MIN_CALIBRATION_HITS:
                continue  # too few hits this strict to say anything
            if wrong > max_wrong_rate / 2 * hits:
                break
            start = cut
        return max(self.cut, start)

    def check(self, query: str, candidate: str, similarity: float, *, cut: float | None = None,
              pair_logit: float | None = None) -> Verdict:
        """Accept only when no hard rule refuses and the combined signals reach the cut-off (the strictness
        point's, unless ``cut`` gives another: a namespace that must be stricter than the rest).
        ``pair_logit``: the pair model's logit for this very pair, when already known (:meth:`pair_logit`)."""
        refused = hard_rule_refusal(query, candidate)
        if refused is not None:
            return Verdict(accepted=False, score=0.0, reason=refused)
        if same_question_in_other_words(query, candidate):
            return Verdict(accepted=True, score=1.0, reason=None)
        if pair_logit is None:
            pair_logit = self.pair_logit(query, candidate)
        z, push = self.combined(query, candidate, similarity, pair_logit)
        score = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))
        if z >= (self.cut if cut is None else cut):
            return Verdict(accepted=True, score=score, reason=None)
        return Verdict(accepted=False, score=score, reason=_blame(self._combiner.inputs, push))

    def needs_pair_model(self, query: str, candidate: str) -> bool:
        """Whether :meth:`check` would ask the pair model about this pair (no hard rule or shortcut decides it)."""
        return (self._pair_model is not None and hard_rule_refusal(query, candidate) is None
                and not same_question_in_other_words(query, candidate))

    def pair_logit(self, query: str, candidate: str) -> float:
        """The pair model's logit for one pair (for :meth:`check`'s ``pair_logit``, computed ahead)."""
        return 0.0 if self._pair_model is None else self._pair_model.logits(query, [candidate])[0]

    def combined(self, query: str, candidate: str, similarity: float, pair_logit: float) -> tuple[float, list[float]]:
        """The combiner's log-odds for a pair whose cross-encoder logit is known (benches, training)."""
        values = dict(zip(FEATURE_NAMES, pair_features(query, candidate, similarity), strict=True))
        values[PAIR_MODEL] = pair_logit
        return self._combiner.logit(values)


class PairScorer(Protocol):
    """What the verifier needs of a cross-encoder: one logit per candidate, higher for the same question."""

    def logits(self, query: str, candidates: Sequence[str]) -> list[float]: ...


def _point(data: Any, where: str, name: str) -> OperatingPoint:
    if not isinstance(data, dict) or not all(isinstance(data.get(k), int | float) for k in ("threshold", "cut")):
        raise ValueError(f"verifier weights {where}: strictness {name!r} needs numeric 'threshold' and 'cut'")
    return OperatingPoint(threshold=float(data["threshold"]), cut=float(data["cut"]))


def _blame(inputs: Sequence[str], push: list[float]) -> str:
    """The reason for a refusal: a specific difference (numbers, negation, direction, comparative) that
    pushed the log-odds down wins over a generic one; then the cross-encoder's verdict; else ``low_score``."""
    pushed = [(p, name) for name, p in zip(inputs, push, strict=True) if p < -0.25 and name in _REASONS]
    specific = [(p, name) for p, name in pushed if _REASONS[name] in _SPECIFIC]
    if specific:
        return _REASONS[min(specific)[1]]
    if pushed and min(pushed)[0] < -0.5:
        return _REASONS[min(pushed)[1]]
    return "low_score"


def _load_weights(path: str | os.PathLike[str] | None, where: str) -> dict[str, Any]:
    """Read the packaged weight file, or the one given; fail loudly with the path on any problem."""
    try:
        if path is None:
            text = resources.files("asgi_llmguard").joinpath("data", _DEFAULT_WEIGHTS).read_text("utf-8")
        else:
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read verifier weights {where}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"verifier weights {where} are not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ValueError(f"verifier weights {where} must be a JSON object")
    if data.get("version") != 2:
        raise ValueError(f"verifier weights {where} are version {data.get('version')!r}; this code reads version 2")
    for key in ("combiner", "strictness"):
        if key not in data:
            raise ValueError(f"verifier weights {where} lack the key {key!r}")
    return data


def _calibration(data: Any, where: str) -> list[tuple[float, int, int]]:
    """The weight file's optional ``calibration``: (cut, hits, wrong hits) rows, loosest cut first."""
    if data is None:
        return []
    if not isinstance(data, dict):
        raise ValueError(f"verifier weights {where}: 'calibration' must be an object")
    n, part = len(data.get("cuts") or []), f"{where} calibration"
    cuts = _floats(data, "cuts", n, part)
    hits, wrong = _floats(data, "hits", n, part), _floats(data, "wrong", n, part)
    if cuts != sorted(cuts) or any(w < 0 or w > h for h, w in zip(hits, wrong, strict=True)):
        raise ValueError(f"verifier weights {where}: 'calibration' needs increasing cuts and 0 <= wrong <= hits")
    return [(c, int(h), int(w)) for c, h, w in zip(cuts, hits, wrong, strict=True)]


def _floats(data: dict[str, Any], key: str, n: int, where: str) -> list[float]:
    """A list of n floats from the weight file, or a clear error."""
    values = data.get(key)
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(f"verifier weights {where}: {key!r} must be a list of {n} numbers")
    return [float(v) for v in values]
