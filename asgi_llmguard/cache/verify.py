"""Verification of a semantic-cache candidate: do two near prompts share an answer?

Embedding similarity alone cannot tell "5 km to miles" from "8 km to miles", or "English to French"
from "French to English": the vectors are nearly the same while the answers differ. Nor can it tell
that "What's the capital city of France?" asks what "What is the capital of France?" asks while
"... of Spain?" does not. The cache therefore asks this module, after finding a neighbour above the
strictness's cosine floor, whether the two prompts differ in a way that changes the answer.

The check has four parts: hard rules for differences that words hide from every model (codes,
operators, the kind of question; their predicates read prompts as :mod:`.wording` does), shortcuts
for the same question in other words (:mod:`.same_question`), a small cross-encoder that reads both
prompts together (:mod:`.pair_model`), and a logistic combiner over its verdict, the cosine and cheap
word-level features of the pair (numbers, negation, direction, opposites, named things). The combiner's
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
from itertools import pairwise
from typing import Any, Protocol

import numpy as np

from .operating_points import OperatingPoint, Reach, Restatement, Rewording, operating_point
from .question_kinds import (
    action_against_diagnosis,
    ask_changed_alone,
    asks_differ,
    asks_of_the_others,
    difference_against_conversion,
    exclusion_added,
    permission_against_obligation,
    switched_the_other_way,
)
from .same_question import (
    alternatives_swapped,
    condition_added,
    only_synonyms_differ,
    same_question_in_other_words,
)
from .topic import TopicProbe, topic_probe
from .translation import answer_language_added, languages_differ, translation_difference
from .wording import (
    _DIRECTION_MARKERS,
    _QWORDS,
    _STOP,
    _UNIT_WORDS,
    _norm_word,
    _parse,
    _word_after,
    _words,
    acronym_s_dropped,
    bound_reversed,
    conversion_reversed,
    date_replaced,
    frequencies_differ,
    identifiers_differ,
    one_number_replaced,
    only_negation_differs,
    only_numbers_differ,
    ratings_traded,
    symbols_differ,
    time_span_replaced,
    units_differ,
    with_against_without,
)

__all__ = [
    "DEFAULT_STRICTNESS",
    "FEATURE_NAMES",
    "PAIR_MODEL",
    "STRICTNESS_LEVELS",
    "OperatingPoint",
    "PairScorer",
    "Reach",
    "Restatement",
    "Rewording",
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
# Under every floor the same question in other words is still served, down to this cosine: "Convert 100
# Fahrenheit to Celsius" / "100 F to C" meet at 0.61, "How many ounces are in a pound?" / "oz in a lb" at 0.80
# (docs/cache-quality.md). Only the nearest stored prompt is fetched that far down (engine.py).
_SAME_QUESTION_FLOOR = 0.5
# A budget stricter than the strictness point starts no looser than where the calibration saw this many wrong hits.
_MOST_WRONG_AT_A_STRICT_START = 1


# Words whose change flips direction, order or degree. General antonyms, not a
# domain list: each pair is stored once and looked up both ways.
_OPPOSITES = (
    "before:after above:below over:under up:down increase:decrease "
    "raise:lower buy:sell import:export upload:download encode:decode encrypt:decrypt send:receive "
    "push:pull enable:disable add:remove start:stop open:close win:lose gain:lose first:last "
    "early:late earlier:later earliest:latest min:max minimum:maximum more:less more:fewer most:least "
    "best:worst better:worse high:low higher:lower highest:lowest big:small bigger:smaller "
    "biggest:smallest large:small larger:smaller largest:smallest fast:slow faster:slower "
    "fastest:slowest quick:slow quicker:slower quickest:slowest quickly:slowly "
    "cheap:expensive cheaper:pricier cheapest:priciest budget:luxury cheap:luxury affordable:luxury "
    "long:short longer:shorter "
    "longest:shortest old:young older:younger oldest:youngest hot:cold warm:cool heavy:light "
    "north:south east:west left:right positive:negative true:false good:bad "
    "pros:cons advantage:disadvantage benefit:risk allow:block accept:reject accept:decline "
    "accepting:declining backup:restore adult:child adults:children adult:kid adults:kids arctic:antarctic "
    "start:end begin:end beginning:end starts:ends reduce:raise reduce:increase international:domestic "
    "boy:girl boys:girls "
    "ascending:descending forward:backward forwards:backwards inside:outside top:bottom "
    "morning:evening morning:night day:night summer:winter upper:lower am:pm "
    "today:tomorrow today:yesterday tomorrow:yesterday tonight:tomorrow "
    "warm:cold warmer:colder warmest:coldest hottest:coldest ok:bad okay:bad fine:bad right:wrong ok:wrong okay:wrong "
    "necessary:unnecessary necessary:pointless continue:stop continue:pause work:fail avoid:help avoid:eat "
    # two diets, each excluding what the other allows
    "vegetarian:vegan "
    # the two sides of one thing in code and data: "sort a dict by value" / "... by key"
    "key:value row:column width:height client:server input:output read:write horizontal:vertical "
    "uppercase:lowercase singular:plural sync:async synchronous:asynchronous public:private local:remote "
    "absolute:relative compress:decompress serialize:deserialize parent:child inner:outer even:odd "
    "prefix:suffix frontend:backend singly:doubly load:save "
    # the register or level a text is asked in: "more formal" / "more casual", "simply" / "in full technical detail"
    "formal:casual simple:technical simply:technical simplify:technical "
    # the tone a text is asked in: "a formal reminder that the invoice is overdue" / "a friendly reminder ..."
    "formal:friendly professional:casual professional:friendly funny:serious humorous:serious funny:formal "
    "funny:professional polite:rude friendly:firm sarcastic:sincere "
    # what is done to an appointment: "email the client to cancel our meeting" / "... to reschedule our meeting"
    "cancel:reschedule cancel:postpone cancel:confirm postpone:confirm "
    # qualities of a thing: "an egg with a runny yolk" / "... a fully hard yolk"
    "soft:hard runny:hard wet:dry thick:thin loose:tight raw:cooked full:empty clean:dirty strong:weak "
    "easy:hard simple:complex light:dark "
    # who or what a request is for: "a birthday poem for my wife" / "... for my husband", "a junior analyst" / "a
    # senior analyst", "explain it to a beginner" / "to an expert", "a shallow copy" / "a deep copy"
    "newer:older newest:oldest junior:senior husband:wife beginner:expert beginner:experienced "
    "beginner:advanced shallow:deep synonym:antonym single:multiple single:every "
    # the two sides of a relation: "a recommendation letter for my former student" / "... former employee"
    "student:employee student:teacher employer:employee landlord:tenant doctor:patient host:guest "
    "buyer:seller customer:employee email:phone fridge:freezer refrigerator:freezer "
    # kin: "a birthday message for my grandma" / "... for my grandpa"
    "grandma:grandpa grandmother:grandfather mom:dad mother:father boyfriend:girlfriend brother:sister "
    # how often: "the most common side effects" / "the rarest side effects"
    "common:rare common:rarest common:uncommon commonest:rarest frequent:rare "
    # when: "conjugate être in the present tense" / "... in the future tense", "pre-workout" / "post-workout"
    "future:past future:present pre:post "
    # a cause against what it brings: "the causes of World War 1" / "the consequences of World War 1" (not "effect":
    # "Does X cause back ache?" / "Is back ache a side effect of X?")
    "cause:consequence cause:impact cause:aftermath "
    # an answer's length: "explain photosynthesis briefly" / "in detail", "in one sentence" / "in depth"
    "brief:detail brief:detailed brief:depth brief:thorough briefly:detail briefly:detailed briefly:depth "
    "briefly:thoroughly concise:detail concise:detailed concise:depth concisely:detail concisely:detailed "
    "short:detail short:detailed short:depth quick:detail quick:detailed quick:depth quick:thorough "
    "sentence:detail sentence:detailed sentence:depth summary:detailed summary:depth"
)
# Two measures of one thing, met as the parse writes them ("radius" is read as "radiu"): "the area of a circle with a
# radius of 5 cm" / "... with a diameter of 5 cm".
_OPPOSITE_MEASURES = (
    "radius:diameter perimeter:area circumference:area area:volume mean:median median:mode mean:mode "
    "sum:product numerator:denominator sine:cosine "
    # the unit an answer is asked in: "the freezing point of water in °F" / "... in Celsius"
    "fahrenheit:celsius kilometer:mile kilogram:pound liter:gallon"
)
# Formats a text is asked in or turned into, each against every other: "Make a markdown table from this list" / "Turn
# this list into an HTML table".
_FORMATS = ("json", "yaml", "xml", "csv", "html", "markdown", "toml", "latex")
# Kinds of writing asked for, each against every other: "Write a funny poem about my cat" / "... a funny song ...".
_WRITINGS = ("poem", "song", "story", "essay", "haiku", "limerick", "joke", "riddle", "speech", "tweet")
# What a food is cooked in or on, each against every other: "brown rice in a rice cooker" / "... on the stove".
_APPLIANCES = ("oven", "microwave", "stove", "fryer", "grill", "cooker", "toaster", "crockpot", "skillet")
# What a food is rich or poor in: "a list of high-protein vegetarian foods" / "... high-fiber ...".
_NUTRIENTS = ("protein", "fiber", "carb", "carbohydrate", "sugar", "sodium", "calcium", "potassium", "calorie",
              "magnesium", "caffeine", "cholesterol")
# Verbs whose opposite is met in any form: "StrictMode is enabled" / "... disabled", "announcing our opening" /
# "... our closing", "uploads a file" / "downloads a file" (the plain pairs above match as written).
_OPPOSITE_VERBS = (
    "enable:disable open:close upload:download encode:decode encrypt:decrypt import:export push:pull "
    "compress:decompress serialize:deserialize buy:sell send:receive add:remove start:stop win:lose "
    "increase:decrease accept:reject accept:decline allow:block continue:stop begin:end"
)


def _forms(verb: str) -> frozenset[str]:
    """The verb as the parse may meet it: "enable", "enables", "enabled", "enabling"; "stop", "stopped"."""
    forms = {verb, verb + "s", verb + "es", verb + "ed", verb + "ing"}
    if verb.endswith("e"):
        forms |= {verb + "d", verb[:-1] + "ing"}
    if len(verb) > 2 and verb[-1] not in "aeiouwxy" and verb[-2] in "aeiou" and verb[-3] not in "aeiou":
        forms |= {verb + verb[-1] + "ed", verb + verb[-1] + "ing"}  # "stopped", "stopping"
    return frozenset(forms)


_OPPOSITE: dict[str, frozenset[str]] = {
    _f: frozenset(_kinds) - {_f} for _kinds in (_FORMATS, _WRITINGS, _NUTRIENTS, _APPLIANCES) for _f in _kinds}
for _pairs, _as_met in ((_OPPOSITES, lambda w: frozenset({w})), (_OPPOSITE_VERBS, _forms),
                        (_OPPOSITE_MEASURES, lambda w: frozenset({_norm_word(w)}))):
    for _pair in _pairs.split():
        _a, _b = _pair.split(":")
        for _x, _y in ((_a, _b), (_b, _a)):
            for _form in _as_met(_x):
                _OPPOSITE[_form] = _OPPOSITE.get(_form, frozenset()) | _as_met(_y)
_DEGREE = frozenset(
    _words(
        "more less fewer most least best worst better worse max maximum min minimum highest lowest "
        "higher lower largest smallest larger smaller biggest bigger fastest slowest faster slower "
        "cheapest cheaper longest shortest longer shorter oldest youngest older younger earliest "
        "latest top first last"
    )
)
_NOT_SUPERLATIVE = frozenset(
    _words("interest request forest honest harvest suggest digest protest contest invest arrest manifest modest")
)
_SPECIFIC = frozenset(_words("numbers_differ negation direction comparative"))
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




# Cached per pair: the early call judges the lexicon's guess in the verify thread while the embedding runs, and
# check() meets the same pair again on the event loop right after it (and a popular rewording meets its stored
# prompt again and again).
@lru_cache(maxsize=4096)
def hard_rule_refusal(query: str, candidate: str) -> str | None:
    """The reason a hard rule refuses the pair before the combiner sees it, or None: codes, operators,
    numbers alone (or one number, unit, rate or named date replaced), a negation alone, kinds of question or
    bare translation requests that differ, an answer asked in a language on one side only, or an opposite
    named on each side."""
    if (identifiers_differ(query, candidate) or acronym_s_dropped(query, candidate)
            or only_numbers_differ(query, candidate)
            or one_number_replaced(query, candidate) or units_differ(query, candidate)
            or frequencies_differ(query, candidate) or date_replaced(query, candidate)
            or time_span_replaced(query, candidate)):
        return "numbers_differ"
    if symbols_differ(query, candidate):
        return "symbols_differ"
    if only_negation_differs(query, candidate) or with_against_without(query, candidate):
        return "negation"
    translation = translation_difference(query, candidate)
    if translation is not None:
        return translation
    if languages_differ(query, candidate) or answer_language_added(query, candidate):
        return "symbols_differ"
    if conversion_reversed(query, candidate) or ratings_traded(query, candidate):
        return "direction"
    if (asks_differ(query, candidate) or action_against_diagnosis(query, candidate)
            or difference_against_conversion(query, candidate) or ask_changed_alone(query, candidate)
            or permission_against_obligation(query, candidate) or asks_of_the_others(query, candidate)):
        return "question_type"
    # An opposite named on each side ("vegetarian" / "vegan", "unblock" / "block") weighs -3 in the combiner, and
    # over every labelled set no pair that names one was a rewording served; one trap was ("a recipe for vegetarian
    # lasagna" / "a vegan lasagna recipe", the pair model sure at +4). So it refuses outright.
    if (opposite_named(query, candidate) or bound_reversed(query, candidate)
            or switched_the_other_way(query, candidate) or kept_elsewhere(query, candidate)):
        return "comparative"
    if exclusion_added(query, candidate) or condition_added(query, candidate):
        return "more_specific"
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


#: Markers whose two ends, read a few words out, say which way a request goes: "turn a pdf into a word doc" /
#: "convert a Word document to a PDF", "Does a kilogram weigh more than a pound?" / "Is a pound heavier than a
#: kilogram?". "To" and "into" count only where one side asks to convert (most "to"s open a verb: "to learn").
_ENDS_MARKERS = {"to": "into", "into": "into", "than": "than"}
_CONVERTING = frozenset(_words("convert converting converted conversion turn turning change changing transform cast "
                               "parse converter"))
_ENDS_WINDOW = 2
# A type's short name and its full one are one end: "turn a string into an int" / "convert an integer to a string".
_END_ALIASES = {"int": "integer", "str": "string", "dict": "dictionary", "arr": "array", "obj": "object",
                "num": "number", "doc": "document"}


def _ends(tokens: tuple[str, ...], converting: bool) -> dict[str, list[tuple[set[str], set[str]]]]:
    """For each kind of end marker, the topic words just before it and just after it (up to another marker)."""
    out: dict[str, list[tuple[set[str], set[str]]]] = {}
    for i, tok in enumerate(tokens):
        kind = _ENDS_MARKERS.get(tok)
        if kind is None or (kind == "into" and not converting):
            continue
        window = _ENDS_WINDOW + (kind == "than")  # "a kilogram weigh more than": the thing is three words back
        left: set[str] = set()
        for t in reversed(tokens[:i]):
            if t in _DIRECTION_MARKERS or len(left) == window:
                break
            if t not in _STOP and t not in _QWORDS and t not in _CONVERTING:
                left.add(_END_ALIASES.get(t, t))
        right: set[str] = set()
        for t in tokens[i + 1:]:
            if t in _DIRECTION_MARKERS or len(right) == window:
                break
            if t not in _STOP and t not in _QWORDS:
                right.add(_END_ALIASES.get(t, t))
        out.setdefault(kind, []).append((left, right))
    return out


def _ends_swapped(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether a word before a marker on one side is after it on the other, and a word after it before it,
    with other words between them: the neighbours :func:`_marker_pairs` compares may differ ("pdf into word"
    / "document to a pdf")."""
    converting = any(t in _CONVERTING for t in a) or any(t in _CONVERTING for t in b)
    ends_b = _ends(b, converting)
    for kind, ends_a in _ends(a, converting).items():
        for left_a, right_a in ends_a:
            for left_b, right_b in ends_b.get(kind, ()):
                back, forth = (left_a & right_b) - right_a - left_b, (right_a & left_b) - left_a - right_b
                if back and forth and back != forth:
                    return True
    return False


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
    return 1.0 if _ends_swapped(a, b) else 0.0


# Prefixes that make a word its own opposite ("block" / "unblock", "staged" / "unstaged", "legal" / "illegal",
# "synchronously" / "asynchronously"), with the shortest word each may prefix: shorter stems meet other words
# ("til" / "until", "form" / "inform"). "de" and "anti" are left out: "deduplicate" is "remove duplicates".
_NEGATING_PREFIXES = (("un", 4), ("non", 3), ("dis", 5), ("in", 5), ("im", 5), ("ir", 5), ("il", 5), ("a", 7))


# Verbs that take a thing away, which say with a plain word what a prefix says: "remove the screen lock" is "unlock
# the screen", "lift a credit freeze" is "unfreeze my credit".
_REMOVING = frozenset(_words(
    "remove removing removed lift lifting undo reverse cancel cancelling disable delete clear"))


def _negated_by_prefix(word: str, only_other: set[str], only_own: set[str], own_negated: bool) -> bool:
    """Whether the other prompt has ``word`` with a negating prefix while this one says it plainly: not where this
    prompt negates it itself ("hasn't paid" is "unpaid", "can't agree" is "disagree"), takes it away with a verb
    ("remove the lock" is "unlock") or writes the prefix apart ("non-stick" is read as "non stick", the same as
    "nonstick")."""
    return not own_negated and not _REMOVING & only_own and any(
        len(word) >= shortest and prefix + word in only_other and prefix not in only_own
        for prefix, shortest in _NEGATING_PREFIXES)


def _opposite_in(only_a: set[str], only_b: set[str], negated_a: bool = False, negated_b: bool = False) -> bool:
    """Whether a word of one side has its opposite in the other: a pair of :data:`_OPPOSITE` or a word and its
    negating prefix (the ``negated_*`` flags: that side has a negation of its own)."""
    return any(_OPPOSITE.get(t, frozenset()) & only_b or _negated_by_prefix(t, only_b, only_a, negated_a)
               for t in only_a) or any(_negated_by_prefix(t, only_a, only_b, negated_b) for t in only_b)


# Nouns opposite only as what a thing is "of": "the causes of the Great Depression" / "the effects of ..." (as verbs
# they meet: "Does X cause back ache?" / "Is back ache a side effect of X?").
_OPPOSITE_OF = {"cause": "effect", "effect": "cause"}


def _named_of(tokens: tuple[str, ...]) -> set[str]:
    return {t for t, after in pairwise(tokens) if after == "of" and t in _OPPOSITE_OF}


# Where a food is kept, each place against the others: "How long does cooked rice last in the fridge?" / "How long can
# cooked rice be left out at room temperature?" (the pair model +1.7).
_KEPT = tuple((re.compile(pattern, re.IGNORECASE), place) for pattern, place in (
    (r"\b(?:fridge|refrigerator|refrigerated|refrigerate)\b", "cold"),
    (r"\b(?:freezer|frozen|freeze)\b", "frozen"),
    (r"\b(?:room temperature|on the counter|countertop|left out|sit out|sitting out)\b", "out"),
))


def _kept(text: str) -> set[str]:
    return {place for pattern, place in _KEPT if pattern.search(text)}


def kept_elsewhere(query: str, candidate: str) -> bool:
    """Whether each prompt keeps a thing in one place (the fridge, the freezer, out at room temperature) and the
    places differ."""
    a, b = _kept(query), _kept(candidate)
    return len(a) == 1 and len(b) == 1 and a != b


def opposite_named(query: str, candidate: str) -> bool:
    """Whether a word of one prompt has its opposite in the other (each word in one prompt only): "uploads" /
    "downloads", "a beginner" / "an experienced developer", "perimeter" / "area", "the causes of" / "the effects
    of"."""
    pa, pb = _parse(query), _parse(candidate)
    a, b = set(pa.tokens), set(pb.tokens)
    of_a, of_b = _named_of(pa.tokens), _named_of(pb.tokens)
    return (_opposite_in(a - b, b - a, pa.negations > 0, pb.negations > 0)
            or any(_OPPOSITE_OF[t] in of_b - of_a for t in of_a - of_b))


def earns_credit(restatement: Restatement, query: str, candidate: str) -> bool:
    """Whether a pair over the floor earns ``restatement``'s credit: a long prompt restated
    (:meth:`Restatement.admits`) that names no opposite of something in the other. "Write a function that uploads
    a file object ..." retold as "... downloads the file ..." is the classic restated trap."""
    return restatement.admits(query, candidate) and not opposite_named(query, candidate)


def earns_rewording_credit(rewording: Rewording, query: str, candidate: str, direction: float) -> bool:
    """Whether a pair earns ``rewording``'s credit, its query off the medical topic (the caller's to know):
    reworded (:meth:`Rewording.admits`), naming no opposite of something in the other, and with no direction
    turned round (``direction``, :func:`pair_features`' reading: "mp4 into mp3" / "MP3 to MP4" share few words
    and the pair model is sure of them)."""
    return direction == 0.0 and rewording.admits(query, candidate) and not opposite_named(query, candidate)


def _numbers_traded(a: tuple[str, ...], b: tuple[str, ...], numbers: tuple[str, ...]) -> bool:
    """Whether two of the numbers trade what follows them ("5 km to 8 miles" / "8 km to 5 miles", "10 by 2" / "2
    by 10"). Numbers that keep their units and only come in another order are the same request told another
    way: "$1,000 at 5% ... after 10 years" / "$1000 ... in 10 years at 5%", "Parse ... into ISO 8601: March 5,
    2024" / "Convert 'March 5, 2024' to ISO 8601"."""
    after_a = {n: _word_after(a, n) for n in set(numbers)}
    after_b = {n: _word_after(b, n) for n in set(numbers)}
    return any(x != y and after_a[x] == after_b[y] and after_a[y] == after_b[x] and after_a[x] != after_a[y]
               for x in after_a for y in after_a)


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
    "250 hectares", not "Windows 10 login ... laptop" vs "Windows 10 laptop ... login" (words moved), not
    words of degree on both sides ("the 10 most recent orders" / "the 10 latest orders": no unit follows
    the number; the degree feature reads "latest" / "oldest") and not a word cut short ("two dicts" / "two
    dictionaries", "150 chars" / "150 characters")."""
    after_a: dict[str, str] = {}
    for i in range(len(a) - 1):
        if a[i][0].isdigit():
            after_a.setdefault(a[i], a[i + 1])
    for i in range(len(b) - 1):
        if b[i][0].isdigit() and b[i] in after_a:
            x, y = after_a[b[i]], b[i + 1]
            if (x.removesuffix("s") != y.removesuffix("s") and x not in _STOP and y not in _STOP and not x[0].isdigit()
                    and not y[0].isdigit() and x not in b and y not in a
                    and not (_degree_not_unit(x) and _degree_not_unit(y)) and not _cut_short(x, y)):
                return 1.0
    return 0.0


def _degree_not_unit(word: str) -> bool:
    return _is_degree(word) and word not in _UNIT_WORDS  # "min" is a degree and a unit (minutes)


def _cut_short(x: str, y: str) -> bool:
    """Whether one word is the other cut short, three letters or more ("dict" / "dictionary", "min" /
    "minute"; not "mi" / "min")."""
    short, full = sorted((x, y), key=len)
    return len(short) >= 3 and full.startswith(short)


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
    opposite = 1.0 if _opposite_in(only_a, only_b, a.negations > 0, b.negations > 0) else 0.0
    degree = 1.0 if any(_is_degree(t) for t in only_a | only_b) else 0.0
    # Words that moved are a swap unless "and"/"vs" joins them or every marker still points the same way.
    objects_a = _marker_objects(a.tokens)
    same_targets = bool(objects_a) and objects_a == _marker_objects(b.tokens)
    same_words_moved = not da and not db and not same_targets and _exchanged(a.stems, b.stems, shared) and not symmetric
    numbers_moved = (a.numbers == b.numbers and a.number_order != b.number_order
                     and _numbers_traded(a.tokens, b.tokens, a.number_order))
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


class Verifier:
    """Decides whether a cached prompt's answer may be served for a new prompt.

    Three steps, cheapest first. Hard rules refuse pairs whose codes, operators or kinds of question
    differ. A small cross-encoder (:class:`~.pair_model.PairModel`) reads the two prompts together.
    A logistic combiner weighs its verdict with the cosine and the word-level features of
    :func:`pair_features` (numbers, negation, direction, opposites, named things, ...), and the
    candidate is served when the combined log-odds reach the cut-off of the chosen strictness.
    The weight file is read once at construction; :meth:`check` is pure computation.
    """

    __slots__ = ("_calibration", "_combiner", "_embedding_model", "_floor", "_pair_model", "_topic", "points",
                 "strictness")

    def __init__(
        self,
        weights_path: str | os.PathLike[str] | None = None,
        *,
        strictness: str = DEFAULT_STRICTNESS,
        pair_model: PairScorer | None = None,
        threshold: float | None = None,
        embedding_model: str | None = None,
    ) -> None:
        """``threshold``: an expert's cosine floor (``LLMGUARD_CACHE_THRESHOLD``) in place of the point's; the
        point's cut stays, no candidate under that floor is judged (no :class:`Reach`), and no restated or
        reworded prompt earns credit (the point's exceptions were measured with its own floor). 0 judges every
        pair on its words and signals alone, whatever its cosine (benches and tests).
        ``embedding_model``: the name of the model whose vectors :meth:`general_topic` reads (the cache's
        ``LLMGUARD_EMBEDDING_MODEL``); the weight file's topic probe reads only its own model's, and None
        means that model."""
        where = str(weights_path) if weights_path is not None else f"asgi_llmguard/data/{_DEFAULT_WEIGHTS}"
        data = _load_weights(weights_path, where)
        self._combiner = _Combiner(data["combiner"], where)
        points = data["strictness"]
        if not isinstance(points, dict) or set(points) != set(STRICTNESS_LEVELS):
            raise ValueError(f"verifier weights {where}: 'strictness' needs exactly {list(STRICTNESS_LEVELS)}")
        self.points = {name: operating_point(points[name], where, name) for name in STRICTNESS_LEVELS}
        if strictness not in self.points:
            raise ValueError(f"strictness must be one of {list(STRICTNESS_LEVELS)}, not {strictness!r}")
        self.strictness = strictness
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in [0, 1], not {threshold!r}")
        self._floor = threshold
        self._calibration = _calibration(data.get("calibration"), where)
        self._topic: TopicProbe | None = topic_probe(data.get("topic"), where)
        self._embedding_model = embedding_model
        if pair_model is None and PAIR_MODEL in self._combiner.inputs:
            from .pair_model import PairModel

            pair_model = PairModel()
        self._pair_model = pair_model

    @property
    def threshold(self) -> float:
        """The cosine floor of the chosen strictness (or the expert's): under it only a :class:`Reach` is judged."""
        return self.points[self.strictness].threshold if self._floor is None else self._floor

    @property
    def reach(self) -> Reach | None:
        """How far under the floor short prompts are judged; None with an expert's floor."""
        return self.points[self.strictness].reach if self._floor is None else None

    @property
    def same_question_floor(self) -> float:
        """The lowest similarity at which the nearest stored prompt is still judged, as the same question in
        other words only (the point's floor with an expert's ``threshold``: they asked for that floor)."""
        return self.threshold if self._floor is not None else min(self.threshold, _SAME_QUESTION_FLOOR)

    def floor_for(self, query: str) -> float:
        """The lowest similarity at which a stored prompt may be a candidate for ``query``: what the cache
        fetches from its store to judge."""
        reach = self.reach
        return reach.floor if reach is not None and reach.short(query) else self.threshold

    @property
    def restatement(self) -> Restatement | None:
        """What a long prompt restated in other words earns; None with an expert's floor."""
        return self.points[self.strictness].restatement if self._floor is None else None

    def adjustment(self, query: str, candidate: str, similarity: float) -> float | None:
        """What the point adds to the pair's log-odds before the cut: minus the reach's penalty under the
        floor (none from its ``near`` step up), the restatement's credit for a restated long prompt over it
        (up to the point's cut, not past it: :meth:`check`), else 0; None where the pair is not judged at all
        (under the floor and out of reach)."""
        if similarity < self.threshold:
            reach = self.reach
            if reach is None or not reach.admits(query, candidate, similarity):
                return None
            return -reach.penalty_at(similarity)
        restatement = self.restatement
        return restatement.credit if restatement is not None and earns_credit(restatement, query, candidate) else 0.0

    @property
    def rewording(self) -> Rewording | None:
        """What a reworded prompt off the medical topic earns; None with an expert's floor or no topic probe."""
        return self.points[self.strictness].rewording if self._floor is None and self._topic is not None else None

    def general_topic(self, vector: np.ndarray | None) -> bool:
        """Whether a query embedded as ``vector`` may earn the :class:`Rewording` credit: the point has one and
        the topic probe reads the query as no health question (:mod:`.topic`). Once per request, for
        :meth:`check`'s ``general``."""
        if self.rewording is None or self._topic is None:
            return False
        model = self._topic.model if self._embedding_model is None else self._embedding_model
        return not self._topic.medical(vector, model)

    def rewording_credit(self, query: str, candidate: str, similarity: float, general: bool) -> float:
        """What the pair earns as a rewording off the medical topic (``general``: :meth:`general_topic` of the
        query), 0 when it earns nothing; :meth:`check` adds it up to the point's cut (benches)."""
        if not general or self.rewording is None:
            return 0.0
        direction = pair_features(query, candidate, similarity)[_DIRECTION]
        return self._rewording_credit(query, candidate, direction, general)

    def _rewording_credit(self, query: str, candidate: str, direction: float, general: bool) -> float:
        rewording = self.rewording
        if not general or rewording is None or not earns_rewording_credit(rewording, query, candidate, direction):
            return 0.0
        return rewording.credit

    @property
    def cut(self) -> float:
        """The combined log-odds a candidate must reach at the chosen strictness."""
        return self.points[self.strictness].cut

    def start_cut(self, max_wrong_rate: float) -> float:
        """Where a namespace held to ``max_wrong_rate`` starts before its own traffic says anything, from the
        wrong share of hits measured offline (the weight file's ``calibration``, at each cut and every stricter
        one with enough hits). A budget the strictness point already meets there starts at the point's cut. A
        stricter budget starts at the loosest cut whose offline share is within it *and* which served at most
        one wrong hit offline: one wrong hit among a few hundred may be a stray, two are a kind of pair the
        verifier lets through at that cut, and a namespace on a strict budget serves only a few dozen hits
        before its audits say anything, where one wrong answer breaks it (docs/cache-quality.md). Its own
        audits then correct it."""
        if not self._calibration:  # a weight file without calibration: the strictness point's cut
            return self.cut
        plain = self._loosest_within(max_wrong_rate)
        if plain <= self.cut or plain == self._calibration[0][0]:  # met at the point, or at every calibrated cut
            return max(self.cut, plain)
        return max(self.cut, self._loosest_within(max_wrong_rate, most_wrong=_MOST_WRONG_AT_A_STRICT_START))

    def _loosest_within(self, wrong_rate: float, most_wrong: int | None = None) -> float:
        """The loosest calibrated cut whose offline wrong share, and every stricter well-measured cut's, is
        within ``wrong_rate`` and, if given, whose wrong hits are no more than ``most_wrong`` (the strictest
        calibrated cut when none is)."""
        start = self._calibration[-1][0]
        for cut, hits, wrong in reversed(self._calibration):
            if hits < _MIN_CALIBRATION_HITS:
                continue  # too few hits this strict to say anything
            if wrong > wrong_rate * hits or (most_wrong is not None and wrong > most_wrong):
                break
            start = cut
        return start

    def check(self, query: str, candidate: str, similarity: float, *, cut: float | None = None,
              pair_logit: float | None = None, general: bool = False) -> Verdict:
        """Accept only when no hard rule refuses and the combined signals reach the cut-off (the strictness
        point's, unless ``cut`` gives another: a namespace that must be stricter than the rest). Under the
        cosine floor only a pair within the point's :class:`Reach` is judged, and it pays the reach's penalty;
        over it a :class:`Restatement` earns its credit (:meth:`adjustment`).
        ``pair_logit``: the pair model's logit for this very pair, when already known (:meth:`pair_logit`).
        ``general``: the query is off the medical topic (:meth:`general_topic`), so a reworded pair earns the
        point's :class:`Rewording` credit, which, like a restatement's, lifts it up to the point's cut and no
        further."""
        adjustment = self.adjustment(query, candidate, similarity)
        if adjustment is None:
            if (similarity >= self.same_question_floor and hard_rule_refusal(query, candidate) is None
                    and same_question_in_other_words(query, candidate)):
                return Verdict(accepted=True, score=1.0, reason=None)
            return Verdict(accepted=False, score=0.0, reason="low_similarity")
        refused = hard_rule_refusal(query, candidate)
        if refused is not None:
            return Verdict(accepted=False, score=0.0, reason=refused)
        if same_question_in_other_words(query, candidate):
            return Verdict(accepted=True, score=1.0, reason=None)
        if pair_logit is None:
            pair_logit = self.pair_logit(query, candidate)
        values = _signals(query, candidate, similarity, pair_logit)
        z, push = self._combiner.logit(values)
        # A credit brings the pair up to the point's cut and no further: a namespace that must be stricter
        # (the error budget's cut) asks a restated or reworded prompt to be that much surer on its own.
        z = max(z, min(z + adjustment, self.cut)) if adjustment > 0 else z + adjustment
        credit = self._rewording_credit(query, candidate, values["direction"], general)
        if credit > 0:
            z = max(z, min(z + credit, self.cut))
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
        return self._combiner.logit(_signals(query, candidate, similarity, pair_logit))


class PairScorer(Protocol):
    """What the verifier needs of a cross-encoder: one logit per candidate, higher for the same question."""

    def logits(self, query: str, candidates: Sequence[str]) -> list[float]: ...


_DIRECTION = FEATURE_NAMES.index("direction")


def _signals(query: str, candidate: str, similarity: float, pair_logit: float) -> dict[str, float]:
    """Every input the combiner may read, by name: the pair's features and the pair model's logit."""
    values = dict(zip(FEATURE_NAMES, pair_features(query, candidate, similarity), strict=True))
    values[PAIR_MODEL] = pair_logit
    return values


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
