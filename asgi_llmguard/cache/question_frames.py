"""One everyday question asked in another frame, brought to one form (for :mod:`.same_question`).

Each function here rewrites a prompt's tokens (as :func:`.same_question._canonical_words` makes them:
lowercase, filler dropped) so that two frames of one question read alike: "Who was the painter of X?"
as "Who painted X?", "Which X is the tallest?" as "What is the tallest X?", a distance or a difference
with its two sides in a fixed order, "S, what should I do?" as "What should I do if S?", "What's the
fastest way to X?" as "How do I X quickly?", and more (docs/cache-quality.md lists them). Every frame
was checked over every labelled pair set: it serves rewordings there, no trap; where a first version
served a trap (a unit conversion read as a duration), the guard that keeps it out is written beside it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .wording import _AUX_START, _DIRECTION_MARKERS, _QWORDS, _STOP, _UNIT_WORDS, _UNITS, _words

__all__ = ["frames"]

#: Words that join alternatives whose order asks nothing: "tea or coffee", "RAM vs storage" (and French,
#: German and Spanish "or"); "and" joins the two sides of a difference ("between A and B").
_ALTERNATIVE = frozenset({"or", "vs", "versus", "ou", "oder", "o"})
_AND = frozenset({"and", "et", "und", "y"})

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


def _after_opening(tokens: list[str], openings: Sequence[tuple[str, ...]]) -> tuple[int, list[str]] | None:
    """The first of ``openings`` the tokens start with (its place in the list) and the tokens after it."""
    for k, opening in enumerate(openings):
        if tuple(tokens[: len(opening)]) == opening:
            return k, tokens[len(opening) :]
    return None


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
    opened = _after_opening(tokens, [opening for opening, _ in _DISTANCE])
    places = None if opened is None else _split_once(opened[1], _DISTANCE[opened[0]][1])
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
        elif tokens[k + 1 : k + 2] in ([], ["in"]):  # "how are let and const different (in JavaScript)"
            found = _pair_and_context([*tokens[2:k], *tokens[k + 1 :]], _AND)
    elif tokens[:2] in (["how", "do"], ["how", "does"]) and "differ" in tokens:
        k = tokens.index("differ")  # "how do A and B differ (in X)"
        if tokens[k + 1 : k + 2] in ([], ["in"]):
            found = _pair_and_context([*tokens[2:k], *tokens[k + 1 :]], _AND)
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
    _words("cup tablespoon teaspoon tbsp tsp pint quart day week month year byte bit floz"))
# One spelling for a unit the parse leaves in two: "fluid ounces" / "fl oz", "teaspoon" / "tsp", "25 degrees
# Celsius" / "25 C", "100 US dollars" / "100 USD".
_SPOONS = {"teaspoon": "tsp", "tablespoon": "tbsp"}
_TEMPERATURE_UNITS = frozenset({"c", "f"})


def _unit_spellings(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        word, after = tokens[i], tokens[i + 1] if i + 1 < len(tokens) else None
        if word in ("fluid", "fl") and after == "oz":
            out.append("floz")
            i += 2
            continue
        if word == "degree" and after in _TEMPERATURE_UNITS and out and _NUMBER_OR_ONE.match(out[-1]):
            i += 1  # "25 degrees Celsius": the degree is the unit's
            continue
        if word == "us" and after == "usd":
            i += 1
            continue
        out.append(_SPOONS.get(word, word))  # the parse has folded "teaspoons" already
        i += 1
    return out


# Verbs that ask how many of one unit one of another holds: "How many tsp make up a tbsp?", "... go into a cup?"
_HOLDS = (("make", "up"), ("go", "into"), ("make",), ("are", "in"), ("is", "in"), ("are",), ("is",), ("in",))


def _how_many_units(tokens: list[str]) -> list[str]:
    """"How many feet are in a meter?" = "How many feet is one meter?" = "How many ounces in a cup?": a unit
    counted in one of another, read as "how many U in V"; a substance named after either unit kept ("How many
    cups of flour are in a pound?" = "How many cups is one pound of flour?": "how many U in V of S")."""
    counted = _unit(tokens[2]) if len(tokens) > 3 and tokens[:2] == ["how", "many"] else None
    if counted is None:
        return tokens
    rest, substance = tokens[3:], []
    if rest[:1] == ["of"]:
        verb = next((k for k, t in enumerate(rest) if t in ("are", "is", "in")), None)
        if verb is None or verb < 2:
            return tokens
        substance, rest = rest[1:verb], rest[verb:]
    holds = next((v for v in _HOLDS if tuple(rest[: len(v)]) == v), ())
    rest = rest[len(holds) :]
    if rest[:1] == ["1"]:
        rest = rest[1:]
    within = _unit(rest[0]) if rest else None
    if within is None:
        return tokens
    tail = rest[1:]
    if tail[:1] == ["of"] and len(tail) > 1 and not substance:
        substance, tail = tail[1:], []
    if tail:
        return tokens
    return ["how", "many", counted, "in", within, *(["of", *substance] if substance else [])]


def _units_in(tokens: list[str]) -> list[str]:
    """A bare "oz in a lb" (or "oz in 1 lb") asks "How many oz are in a lb?"."""
    if tokens[:1] and tokens[1:2] == ["in"] and len(tokens) in (3, 4) and (len(tokens) == 3 or tokens[2] == "1"):
        counted, within = _unit(tokens[0]), _unit(tokens[-1])
        if counted is not None and within is not None and counted != within:
            return ["how", "many", counted, "in", within]
    return tokens


def _unit(word: str) -> str | None:
    """A unit that can be counted, in one spelling ("cups" as "cup": the parse leaves some plurals)."""
    if word in _COUNTED_UNITS:
        return word
    return word[:-1] if word.endswith("s") and word[:-1] in _COUNTED_UNITS else None


# A cause asked as "What causes X?", "What is the cause of X?", "What are (were) the causes of X?", "What
# caused X?" (tense aside: the cause of an event is asked either way).
_CAUSE_OPENINGS = tuple(sorted(
    {("what", "cause"), ("what", "caused")}
    | {("what", verb, *main, "cause", "of") for verb in ("is", "are", "was", "were") for main in ((), ("main",))},
    key=lambda opening: -len(opening)))
# "Why did X V?" asks the cause of the V of X: "Why did the Western Roman Empire fall?" = "What caused the fall of
# the Western Roman Empire?" = "What caused the Western Roman Empire to fall?". Only a last word moves, so "Why did
# Rome invade Gaul?" stays apart from "What caused Rome to invade Gaul?": a miss, never a wrong match.
_WHY_AUX = frozenset(_words("did do does"))
_KIND_OF_NUMBER = frozenset(_words("prime even odd"))
_HAPPEN = frozenset(_words("happen occur"))
# What an abbreviation stands for: "What does HTTP stand for?" = "What is HTTP short for?".
_SHORT_FOR = frozenset(_words("short abbreviation acronym"))


def _asks_what_of(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _CAUSE_OPENINGS)
    if opened is not None and opened[1]:
        asked = opened[1]
        if len(asked) >= 3 and asked[-2] == "to":  # "What caused X to V?" as "the cause of the V of X"
            return ["cause", "of", asked[-1], "of", *asked[:-2]]
        return ["cause", "of", *asked]
    if len(tokens) >= 4 and tokens[0] == "why" and tokens[1] in _WHY_AUX:  # "Why did X V?": the cause of X's V
        if tokens[-1] in _HAPPEN:  # "Why did the French Revolution happen?": what caused it
            return ["cause", "of", *tokens[2:-1]]
        return ["cause", "of", tokens[-1], "of", *tokens[2:-1]]
    if len(tokens) >= 5 and tokens[-1] == "for" and (
            (tokens[:2] == ["what", "does"] and tokens[-2] == "stand")
            or (tokens[:2] == ["what", "is"] and tokens[-2] in _SHORT_FOR)):
        return ["stand", "for", *tokens[2:-2]]
    if len(tokens) >= 3 and tokens[0] == "is" and tokens[-1] == "number" and tokens[-2] in _KIND_OF_NUMBER:
        return ["is", *tokens[1:-2], tokens[-2]]  # "Is 221 a prime number?", "Is zero an even number?"
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
# Other verbs a polite opening asks the assistant to do ("Can you make this sentence more formal: ..." = "Make this
# sentence more formal: ..."); not verbs a "can you" question asks about anyone ("Can you eat raw dough?").
_ASKED_OF_YOU = frozenset(_words("make give tell suggest recommend show name find fix check calculate plan proofread"))
_POLITE = (("i", "would", "like", "you", "to"), ("i", "like", "you", "to"), ("i", "need", "you", "to"),
           ("i", "want", "you", "to"), ("can", "you"), ("could", "you"), ("would", "you"), ("will", "you"),
           ("help", "me"))


# "I want to cancel my subscription. How do I do that?" asks "How do I cancel my subscription?".
_WANT_TO = (("i", "want", "to"), ("i", "need", "to"), ("i", "would", "like", "to"), ("i", "like", "to"))
_HOW_DO_THAT = (("how", "do", "i", "do", "that"), ("how", "do", "i", "do", "it"), ("how", "do", "i", "do", "this"),
                ("how", "do", "i"), ("how",))


def _wanted(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _WANT_TO)
    if opened is not None:
        for ask in _HOW_DO_THAT:
            if len(opened[1]) > len(ask) and tuple(opened[1][-len(ask) :]) == ask:
                return ["how", "do", "i", *opened[1][: -len(ask)]]
    return tokens


def _instruction(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _POLITE)
    if opened is not None and opened[1][:1] and (opened[1][0] in _INSTRUCTION or opened[1][0] in _ASKED_OF_YOU):
        tokens = opened[1]
    if tokens[:2] == ["sum", "up"]:
        tokens = ["summarize", *tokens[2:]]
    if tokens and tokens[0] in _INSTRUCTION:
        tokens = [_INSTRUCTION[tokens[0]], *tokens[1:]]
    # "turn X into Y" is "convert X to Y" (not "turn off", "turn to page 5": only with an "into" close after).
    turned = [k for k, t in enumerate(tokens) if t == "turn" and "into" in tokens[k + 2 : k + 6]]
    tokens = ["convert" if k in turned else t for k, t in enumerate(tokens)]
    return _wanted(["to" if t == "into" else t for t in tokens])


# A definition asked as "What is X?", "What does X mean?", "What is the meaning (definition) of X?", "Define
# X", "Explain what X is" or "What is meant by X?" (X a few words, a context "in economics" kept after it).
_DEFINITION_OPENINGS = (("what", "is", "meaning", "of", "word"), ("what", "is", "meaning", "of"),
                        ("what", "is", "definition", "of", "word"), ("what", "is", "definition", "of"),
                        ("what", "is", "meant", "by"), ("define",))
_MAX_DEFINED = 4


def _definition(tokens: list[str]) -> list[str]:
    context: list[str] = []
    if "in" in tokens[2:]:
        k = len(tokens) - 1 - tokens[::-1].index("in")
        tokens, context = tokens[:k], tokens[k:]
    opened = _after_opening(tokens, _DEFINITION_OPENINGS)
    term = None if opened is None else opened[1]
    if opened is None:
        if tokens[:1] == ["what"] and tokens[1:2] in (["is"], ["are"]):
            term = tokens[2:]
        elif ((tokens[:1] == ["what"] and tokens[1:2] in (["do"], ["does"]) and tokens[-1:] == ["mean"])
              or (tokens[:2] == ["explain", "what"] and tokens[-1:] in (["is"], ["are"]))):
            term = tokens[2:-1]  # "what does X mean", "explain what X is"
    if (not term or len(term) > _MAX_DEFINED
            or any(t in _QWORDS or t in _DIRECTION_MARKERS or t in ("of", "is", "are", "do", "does") for t in term)):
        return tokens + context
    return ["define", *term, *context]


# "Who was the first person to climb Everest?" asks "Who first climbed Everest?" (the verb in the past).
_FIRST_ONE = frozenset(_words("person one people"))  # not "man" or "woman": "the first woman to ..." asks another
_IRREGULAR_PAST = {"fly": "flew", "swim": "swam", "run": "ran", "win": "won", "go": "went", "break": "broke",
                   "build": "built", "make": "made", "write": "wrote", "find": "found", "see": "saw", "eat": "ate",
                   "drive": "drove", "ride": "rode", "sing": "sang", "think": "thought", "catch": "caught",
                   "teach": "taught", "bring": "brought", "buy": "bought", "set": "set", "split": "split",
                   "say": "said", "do": "did", "land": "landed", "leave": "left", "lead": "led", "hold": "held"}
_VOWELS = frozenset("aeiou")
# "S, why?" asks "Why S?" with its auxiliary first: "My starter isn't bubbling, why?" = "Why is my starter not
# bubbling?".
_AUX = frozenset(_words("is are was were do does did can could will would should has have had"))


_PRESENT_OF = {past: verb for verb, past in _IRREGULAR_PAST.items() if past != verb} | {"was": "is", "were": "are"}


def _one_tense(word: str) -> str:
    """A word of a situation ("What should I do if S?") without its tense ending, so "my dog ate chocolate"
    and "my dog eats chocolate" read alike. Crude on purpose: both prompts are cut the same way, and a
    word cut wrong ("dropped" / "drops") only keeps two prompts apart."""
    if word in _PRESENT_OF:
        return _PRESENT_OF[word]
    if len(word) > 4 and word.endswith(("ied", "ies")):
        return word[:-3] + "y"
    for end in ("ed", "es", "s"):
        if len(word) > len(end) + 2 and word.endswith(end) and not word.endswith("ss"):
            return word[: -len(end)]
    return word


def _with_ending(word: str, ending: str) -> str:
    """``word`` with "ed" or "er" spelled on: "bake" -> "baked", "carry" -> "carried", "easy" -> "easier"."""
    if word.endswith("e"):
        return word + ending[1:]
    if len(word) > 2 and word.endswith("y") and word[-2] not in _VOWELS:
        return word[:-1] + "i" + ending
    return word + ending


def _past(verb: str) -> str:
    return _IRREGULAR_PAST.get(verb) or _with_ending(verb, "ed")


_POSSESSORS = frozenset(_words("my our his her their"))


def _first_aux(clause: list[str]) -> int | None:
    """Where the clause's first auxiliary stands ("my starter is not bubbling": 2), or None."""
    return next((k for k, token in enumerate(clause) if token in _AUX), None)


def _why_of(clause: list[str], k: int) -> list[str]:
    """"Why" and the clause in question order, its auxiliary at ``k`` put first: "why is my starter not bubbling"."""
    return ["why", clause[k], *clause[:k], *clause[k + 1 :]]


def _first_and_why(tokens: list[str]) -> list[str]:
    if (len(tokens) > 6 and tokens[0] == "who" and tokens[1] in ("was", "is") and tokens[2] == "first"
            and tokens[3] in _FIRST_ONE and tokens[4] == "to"):
        return ["who", "first", _past(tokens[5]), *tokens[6:]]
    if len(tokens) >= 4 and tokens[-1] == "why" and "why" not in tokens[:-1]:
        clause = tokens[:-1]
        k = _first_aux(clause)
        if k:
            return _why_of(clause, k)
        if k is None and tokens[0] in _POSSESSORS:
            # "My knee hurts when I run. Why?" asks "Why does my knee hurt when I run?" (plurals are folded)
            return ["why", "does", *clause]
    if tokens[:5] in (["how", "long", "does", "it", "take"], ["how", "long", "do", "it", "take"]) and \
            tokens[5:6] == ["for"] and "to" in tokens[7:]:
        k = tokens.index("to", 7)  # "how long does it take for a tattoo to heal": "how long does a tattoo take to heal"
        return ["how", "long", "does", *tokens[6:k], "take", *tokens[k:]]
    return tokens


# "What is the reason London is so expensive?" asks "Why is London so expensive?", and "What was the reason for
# building the Eiffel Tower?" asks "Why was the Eiffel Tower built?": the reason asked as "why", its clause put in
# question order (the auxiliary first) or its "for <verb>ing X" in the passive.
def _reason(tokens: list[str]) -> list[str]:
    if len(tokens) < 5 or tokens[0] != "what" or tokens[1] not in ("is", "was") or tokens[2] != "reason":
        return tokens
    rest = tokens[4:] if tokens[3] in ("why", "that") else tokens[3:]
    if len(rest) > 2 and rest[0] == "for" and rest[1].endswith("ing"):
        return ["why", tokens[1], *rest[2:], _past(_bare_verb(rest[1]))]
    k = _first_aux(rest)
    return _why_of(rest, k) if k else tokens


# "How safe is Colombia?" asks "Is Colombia safe?", and "How hard is it to learn Japanese?" asks "Is it hard to
# learn Japanese?": a judgement asked by degree (an amount, "how expensive", is not among these).
_JUDGED_BY_DEGREE = frozenset(_words(
    "safe dangerous risky healthy unhealthy bad legal illegal hard difficult easy normal common"))


def _how_judged(tokens: list[str]) -> list[str]:
    if len(tokens) >= 4 and tokens[0] == "how" and tokens[1] in _JUDGED_BY_DEGREE and tokens[2] in ("is", "are"):
        if tokens[3] == "it":
            return ["is", "it", tokens[1], *tokens[4:]]
        return ["is", *tokens[3:], tokens[1]]
    return tokens


# "Which is better to learn, Mandarin or Cantonese?" asks "Is it better to learn Mandarin or Cantonese?": a choice
# between alternatives asked with "which" ("what" by now) or with "is it".
def _which_better(tokens: list[str]) -> list[str]:
    if (len(tokens) >= 6 and tokens[:2] == ["what", "is"] and tokens[2].endswith("er") and len(tokens[2]) > 4
            and _ALTERNATIVE & set(tokens[3:])):
        return ["is", "it", *tokens[2:]]
    return tokens


# "What's the best way to X?" asks "How do I X?"; "the fastest way" asks it done quickly, "the easiest way"
# done easily (the adverb kept, so "How do I X?" is not "What's the fastest way to X?").
_WAY = {"best": None, "good": None, "fastest": "quickly", "quickest": "quickly", "easiest": "easily",
        "simplest": "easily"}
_MANNER = {"quickly": "quickly", "fast": "quickly", "easily": "easily", "simply": "easily"}


# "What are some (good) ways to X?", "What are the ways to X?", "Any tips to X?" ask "How do I X?" too, and so do
# "How can one X?" ("one" is read as 1) and "How should I X?".
_SOME = frozenset(_words("some the"))
_ASKED_WITH_TO = frozenset(_words("when where what which"))
_WAYS = frozenset(_words("way ways tip tips method methods"))
_ASKED_OF_ONE = frozenset(_words("can do does should would"))


# Things recommended, with or without praise: "What are some good things to do in Lisbon?" = "things to do in
# lisbon?" (read as "what is ..." when bare) = "What are fun things to do in Lisbon?".
_PRAISE = frozenset(_words("good great fun nice cool interesting"))


def _some_good(tokens: list[str]) -> list[str]:
    if len(tokens) > 4 and tokens[0] == "what" and tokens[1] in ("is", "are"):
        rest = tokens[2:]
        if rest[0] == "some":
            rest = rest[1:]
        if rest[0] in _PRAISE:
            rest = rest[1:]
        if len(rest) < len(tokens) - 2 and len(rest) > 1 and rest[0] not in _WAYS:
            return [*tokens[:2], *rest]
    return tokens


def _way(tokens: list[str]) -> list[str]:
    if len(tokens) > 4 and tokens[0] == "what" and tokens[1] in ("is", "are"):
        rest = tokens[2:]
        if rest[:1] and rest[0] in _SOME:
            rest = rest[1:]
        manner = None
        if rest[:1] and rest[0] in _WAY:
            manner = _WAY[rest[0]]
            rest = rest[1:]
        if len(rest) > 2 and rest[0] in _WAYS and rest[1] == "to":
            tokens = ["how", "do", "i", *rest[2:], *([manner] if manner else [])]
    elif len(tokens) > 3 and ((tokens[0] in ("any", "some") and tokens[1] in _WAYS and tokens[2] == "to")
                              or (tokens[0] == "how" and tokens[1] in _ASKED_OF_ONE and tokens[2] in ("1", "i"))):
        tokens = ["how", "do", "i", *tokens[3:]]
    if tokens[:3] == ["how", "do", "i"] and len(tokens) > 4 and tokens[-1] in _MANNER:
        return [*tokens[:-1], _MANNER[tokens[-1]]]
    return tokens


_DURATION = frozenset({"sec", "min", "h", "day", "days", "week", "month", "year"})  # as the parse writes them


_LASTING = frozenset(_words("flight drive trip ride journey walk commute movie film show game match marathon "
                            "race concert surgery procedure course cruise"))


def _how_long(tokens: list[str]) -> list[str]:
    """"How many minutes does it take to walk 5 km?" asks "How long does it take ...?", and "How many hours is
    the flight?" asks "How long is the flight?" (a thing that lasts, from a short list). Not a conversion:
    "How many minutes are in 3.5 hours?" asks for minutes, and "How many days is a week?" for days."""
    if len(tokens) < 5 or tokens[:2] != ["how", "many"] or tokens[2] not in _DURATION or tokens[3] not in _AUX:
        return tokens
    if tokens[4:6] == ["it", "take"] or (tokens[3] in ("is", "was") and tokens[4] in _LASTING):
        return ["how", "long", *tokens[3:]]
    return tokens


def _when(tokens: list[str]) -> list[str]:
    """"What year did the Berlin Wall fall?" asks "When did the Berlin Wall fall?"."""
    if tokens[:2] == ["what", "year"] and tokens[2:3] in (["did"], ["was"], ["were"]):
        return ["when", *tokens[2:]]
    if tokens[:3] == ["in", "what", "year"] and tokens[3:4] in (["did"], ["was"], ["were"]):
        return ["when", *tokens[3:]]
    return tokens


# A measure of a thing asked with its adjective: "What is the length of the Great Wall?" = "How long is the Great
# Wall?", "the height of" = "how tall", "the age of" = "how old" (after "the" is dropped as filler).
_MEASURE = {"length": "long", "height": "tall", "depth": "deep", "width": "wide", "age": "old", "weight": "heavy",
            "size": "big"}


# A measure asked in a unit: "How long is a marathon in kilometres?" = "How many kilometres is a marathon?".
_MEASURED = frozenset(_words("long far tall high heavy big deep wide"))


def _measured_in(tokens: list[str]) -> list[str]:
    if (len(tokens) > 5 and tokens[0] == "how" and tokens[1] in _MEASURED and tokens[2] in ("is", "are")
            and tokens[-2] == "in" and "from" not in tokens):  # "how far is A from B": the distance frame's
        unit = _amount_unit(tokens[-1])
        if unit is not None:
            return ["how", "many", unit, tokens[2], *tokens[3:-2]]
    return tokens


def _measure(tokens: list[str]) -> list[str]:
    if len(tokens) > 4 and tokens[:2] in (["what", "is"], ["what", "was"]) and tokens[2] in _MEASURE \
            and tokens[3] == "of":
        return ["how", _MEASURE[tokens[2]], tokens[1], *tokens[4:]]
    return tokens


# A thing's temperature asked as how hot or how cold it is: one number answers both.
_HOW_WARM = frozenset(_words("hot cold warm"))
_NOT_A_THING = frozenset(_words("too enough hot cold warm should can must"))  # "How hot is too hot for a dog?"


def _temperature(tokens: list[str]) -> list[str]:
    """"What temperature is absolute zero?", "How cold is absolute zero?", "What is the temperature of the
    Sun?", "How hot does the Sun get?" and "What is the surface temperature of Venus?" / "How hot is the
    surface of Venus?" all ask one number: read as "temperature of X"."""
    thing: list[str] = []
    if tokens[:3] == ["what", "temperature", "is"]:
        thing = tokens[3:]
    elif tokens[:4] == ["what", "is", "temperature", "of"]:
        thing = tokens[4:]
    elif len(tokens) > 5 and tokens[:2] == ["what", "is"] and tokens[3:5] == ["temperature", "of"]:
        thing = [tokens[2], "of", *tokens[5:]]  # "the surface temperature of Venus"
    elif len(tokens) > 3 and tokens[0] == "how" and tokens[1] in _HOW_WARM and tokens[2] == "is":
        thing = tokens[3:]
    elif (len(tokens) > 4 and tokens[0] == "how" and tokens[1] in _HOW_WARM and tokens[2] in ("do", "does")
          and tokens[-1] == "get"):
        thing = tokens[3:-1]
    if not thing or any(t in _NOT_A_THING for t in thing):
        return tokens
    return ["temperature", "of", *thing]


_NUMBER = re.compile(r"(?!1$)\d+(?:\.\d+)?$")  # one of a unit is the unit count's ("How many oz in 1 lb?")
_NUMBER_OR_ONE = re.compile(r"\d+(?:\.\d+)?$")
_CONVERT_OPENINGS = (("convert",), ("what", "is"), ("how", "much", "is"))


# Arithmetic on two numbers in its everyday forms, as "calc A op B" (the operands of "*" and "+" in order):
# "What is 20 minus 7?" = "Subtract 7 from 20", "12 x 13" (read as "12 times 13") = "Multiply 12 by 13".
_CALC_OPENINGS = (("what", "is"), ("how", "much", "is"), ("calculate",), ("compute",), ("solve",))
_INFIX = {("time",): "*", ("times",): "*", ("multiplied", "by"): "*", ("divided", "by"): "/", ("plus",): "+",
          ("plu",): "+", ("minus",): "-", ("minu",): "-"}
_PREFIX = {("multiply",): ("*", ("by", "and")), ("divide",): ("/", ("by",)), ("add",): ("+", ("and", "to")),
           ("sum", "of"): ("+", ("and",))}


def _arithmetic(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _CALC_OPENINGS)
    rest = tokens if opened is None else opened[1]
    found: tuple[str, str, str] | None = None
    for words, op in _INFIX.items():
        k = len(words)
        if len(rest) == k + 2 and tuple(rest[1 : 1 + k]) == words:
            found = (rest[0], op, rest[-1])
    for words, (op, joints) in _PREFIX.items():
        k = len(words)
        if len(rest) == k + 3 and tuple(rest[:k]) == words and rest[k + 1] in joints:
            found = (rest[k], op, rest[k + 2])
    if len(rest) == 4 and rest[0] == "subtract" and rest[2] == "from":
        found = (rest[3], "-", rest[1])
    if found is None or not (_NUMBER_OR_ONE.match(found[0]) and _NUMBER_OR_ONE.match(found[2])):
        return tokens
    left, op, right = found
    if op in "*+":
        left, right = sorted((left, right), key=float)
    return ["calc", left, op, right]


def _amount_unit(word: str) -> str | None:
    """A unit an amount is given in, in one spelling ("cups" as "cup"), or None."""
    return word if word in _UNIT_WORDS else _unit(word)


def _conversion(tokens: list[str]) -> list[str]:
    """An amount converted, asked in its common forms, as "convert N U to V": "Convert 5 km to miles", "5 km in
    miles", "What is 5 km in miles?", "How much is 40 dollars in euros?", "How many miles is (are in) 5 km?".
    Only the whole prompt in one of these forms, with known units on both sides: the amount and the
    direction stay as written, so "5 km to miles" is neither "8 km to miles" nor "5 miles to km"."""
    opened = _after_opening(tokens, _CONVERT_OPENINGS)
    rest = tokens if opened is None else opened[1]
    if len(rest) == 4 and rest[2] in ("to", "in", "into"):  # "5 km to miles"
        rest = [rest[0], rest[1], rest[3]]
    if len(rest) == 3 and _NUMBER.match(rest[0]):  # and "100 °F = ? °C", its signs dropped by the parse
        source, target = _amount_unit(rest[1]), _amount_unit(rest[2])
        if source is not None and target is not None and source != target:
            return ["convert", rest[0], source, "to", target]
    counted = _amount_unit(tokens[2]) if len(tokens) > 5 and tokens[:2] == ["how", "many"] else None
    if counted is not None and tokens[3] in ("is", "are", "in"):  # "How many miles is (are in, in) 5 km?"
        amount = tokens[5:] if tokens[4] == "in" else tokens[4:]
        unit = _amount_unit(amount[1]) if len(amount) == 2 and _NUMBER.match(amount[0]) else None
        if unit is not None and unit != counted:
            return ["convert", amount[0], unit, "to", counted]
    return tokens


# "Is cracking your knuckles bad for you?" asks "Is it bad to crack your knuckles?": a judgement of doing
# something, said with the doing first (a gerund) or last ("it ... to" and the verb).
_JUDGEMENT = frozenset(_words(
    "bad good safe unsafe okay ok fine healthy unhealthy harmful dangerous normal legal illegal possible "
    "rude wise smart necessary worth risky unprofessional appropriate"))


def _bare_verb(word: str) -> str:
    """A verb and its gerund cut to one stem: "crack" / "cracking", "take" / "taking", "run" / "running".
    Crude on purpose: both prompts are cut alike, and a word cut wrong only keeps them apart."""
    if word.endswith("ing") and len(word) > 5:
        word = word[:-3]
        if len(word) > 2 and word[-1] == word[-2] and word[-1] not in "lsz" + "".join(_VOWELS):
            word = word[:-1]  # "runn" -> "run", but "fall", "pass" and "buzz" keep theirs
        return word
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


# In a judgement of doing something, "harmful" and "unhealthy" ask what "bad (for you)" asks; "OK" / "bad" and
# "safe" / "dangerous" stay apart (a yes to one is a no to the other).
_HARM = {"harmful": "bad", "unhealthy": "bad"}


def _judgement(tokens: list[str]) -> list[str]:
    """"is it <judgement> (for) to <verb> X" and "is <verb>ing X <judgement> (for)" as one form."""
    if len(tokens) >= 6 and tokens[:2] == ["is", "it"] and tokens[2] in _JUDGEMENT:
        rest = tokens[3:]
        if rest[:2] == ["for", "you"]:  # "Is it bad for you to ...", the generic "you"; not "for kids"
            rest = rest[2:]
        if rest[:1] == ["to"] and len(rest) >= 3:
            return ["is", "it", _HARM.get(tokens[2], tokens[2]), "to", _bare_verb(rest[1]), *rest[2:]]
        return tokens
    end = len(tokens) - 1 if tokens[-1:] == ["for"] else len(tokens)  # "... bad for you?", "you" dropped as filler
    if (len(tokens) >= 4 and tokens[0] == "is" and tokens[1].endswith("ing") and len(tokens[1]) > 5
            and end >= 4 and tokens[end - 1] in _JUDGEMENT):
        judgement = tokens[end - 1]
        return ["is", "it", _HARM.get(judgement, judgement), "to", _bare_verb(tokens[1]), *tokens[2 : end - 1]]
    return tokens


# Taking in a food, a drink or a drug is the thing judged: "Is drinking coffee unhealthy?" asks "Is coffee bad
# for you?".
_CONSUME = frozenset(_words("eat drink consume take smoke use"))


def _thing_judged(tokens: list[str]) -> list[str]:
    """"is it <judgement> to <eat/drink/...> X", "is X <judgement> (for you)" as "is X <judgement>"."""
    if (len(tokens) >= 6 and tokens[:2] == ["is", "it"] and tokens[2] in _JUDGEMENT and tokens[3] == "to"
            and tokens[4] in _CONSUME):
        return ["is", *tokens[5:], tokens[2]]
    end = len(tokens) - 1 if tokens[-1:] == ["for"] else len(tokens)
    if len(tokens) >= 3 and tokens[0] in ("is", "are") and end >= 3 and tokens[end - 1] in _JUDGEMENT:
        return ["is", *tokens[1 : end - 1], _HARM.get(tokens[end - 1], tokens[end - 1])]
    return tokens


# "Is it worth buying a mechanical keyboard?" asks "Are mechanical keyboards worth it?", and "Is it worth learning
# Rust in 2024?" asks "Is learning Rust worth it in 2024?": "worth it" (or "worth the money") put last, a verb of
# getting the thing dropped (not "selling" or "repairing" it: those ask of another act).
_GETTING = frozenset(_words("buying getting purchasing buy get purchase"))
_WORTH_WHAT = frozenset(_words("it money price cost"))


def _worth(tokens: list[str]) -> list[str]:
    """"is it worth (it to) (getting) X" and "is X worth it/the money/getting" as "is X worth it"."""
    verb = False  # whether the rest opens with a verb ("to learn", "learning"), cut to its stem below
    if len(tokens) >= 4 and tokens[:3] == ["is", "it", "worth"]:
        rest = tokens[3:]
        if rest[:2] == ["it", "to"]:
            rest, verb = rest[2:], True
    elif len(tokens) >= 4 and tokens[0] in ("is", "are") and "worth" in tokens[2:]:
        k = tokens.index("worth", 2)
        if tokens[k + 1 : k + 2] and tokens[k + 1] in _WORTH_WHAT | _GETTING:
            rest = [*tokens[1:k], *tokens[k + 2 :]]
        else:
            return tokens  # "Is gold worth more than silver?"
    else:
        return tokens
    if rest[:1] and rest[0] in _GETTING:
        rest, verb = rest[1:], False
    if not rest:
        return tokens
    # A noun keeps its form, so that synonyms still meet ("a house" / "a home"); a verb is cut to its stem.
    first = _bare_verb(rest[0]) if verb or rest[0].endswith("ing") else rest[0]
    return ["is", first, *rest[1:], "worth", "it"]


# "Why is Python so slow compared to C++?" asks "Why is Python slower than C++?": an adjective "compared to" a
# thing reads as its comparative "than" the thing, made by the usual rules (so that "bigger" / "larger" still
# meet as synonyms); a long adjective takes "more" ("more expensive than").
_IRREGULAR_COMPARATIVE = {"good": "better", "bad": "worse", "far": "farther", "little": "less"}
_INTENSIFIERS = frozenset(_words("so that really very much"))
_TAKES_MORE = ("ive", "ous", "ful", "ing", "ed", "ic", "al", "ent", "ant", "ble", "less")


def _comparative(word: str) -> list[str]:
    if word in _IRREGULAR_COMPARATIVE:
        return [_IRREGULAR_COMPARATIVE[word]]
    if word.endswith(_TAKES_MORE) or len(word) > 7:
        return ["more", word]
    if (3 <= len(word) <= 4 and word[-1] not in _VOWELS | {"w", "x", "y"} and word[-2] in _VOWELS
            and word[-3] not in _VOWELS):
        return [word + word[-1] + "er"]  # "big" -> "bigger", "hot" -> "hotter"
    return [_with_ending(word, "er")]


def _compared(tokens: list[str]) -> list[str]:
    for i in range(2, len(tokens) - 2):
        if tokens[i] == "compared" and tokens[i + 1] in ("to", "with") and tokens[i - 1].isalpha() \
                and tokens[i - 1] not in _INTENSIFIERS:
            start = i - 2 if tokens[i - 2] in _INTENSIFIERS else i - 1
            if start >= 1:
                return [*tokens[:start], *_comparative(tokens[i - 1]), "than", *tokens[i + 2 :]]
            return tokens
    return tokens


_IS_IT_NORMAL = ("is", "it", "normal")
_NORMAL_AFTER = frozenset({("is", "that", "normal"), ("is", "this", "normal"), ("is", "it", "normal")})


def _normal(tokens: list[str]) -> list[str]:
    """"Is it normal for X to V ...?", "Is it normal that X Vs ...?" and "X Vs ..., is that normal?" as one
    form: the situation after "is it normal that", its words without their tense endings (both sides cut
    alike). The situation must be the same word for word: "my dog eats grass" is not "a dog eats grass"."""
    if tuple(tokens[:3]) == _IS_IT_NORMAL and len(tokens) >= 6:
        rest = tokens[4:]
        if tokens[3] == "for" and "to" in rest[1:]:
            k = rest.index("to", 1)
            situation = [*rest[:k], *rest[k + 1 :]]
        elif tokens[3] == "that":
            situation = rest
        else:
            return tokens
    elif len(tokens) >= 5 and tuple(tokens[-3:]) in _NORMAL_AFTER:
        situation = tokens[:-3]
    else:
        return tokens
    return [*_IS_IT_NORMAL, "that", *map(_one_tense, situation)]


def frames(tokens: list[str]) -> list[str]:
    """The wordings of one everyday question that differ only in frame, brought to one form: "which" as
    "what", "how can I" / "how to" as "how do I", the maker of a thing, a people's population, a
    distance, the passive of a custom, "S, what should I do?" as "What should I do if S?"."""
    tokens = _instruction(_superlative_first(_world_phrases(["what" if t == "which" else t for t in tokens])))
    if tokens[:3] == ["how", "can", "i"]:
        tokens = ["how", "do", "i", *tokens[3:]]
    elif tokens[:2] == ["how", "to"]:
        tokens = ["how", "do", "i", *tokens[2:]]
    elif len(tokens) > 2 and tokens[0] in _ASKED_WITH_TO and tokens[1] == "to":
        tokens = [tokens[0], "should", "i", *tokens[2:]]  # "When to use whom?" asks "When should I use whom?"
    elif len(tokens) > 5 and tuple(tokens[:4]) in _WHAT_TO_DO and tokens[4] == "to":
        tokens = ["how", "do", "i", *tokens[5:]]  # "What should I do to get ready for X?"
    tokens = _way(_some_good(tokens))
    if (len(tokens) > 4 and tokens[0] == "who" and tokens[1] in ("is", "was") and tokens[2] in _MAKER
            and tokens[3] == "of"):
        tokens = ["who", _MAKER[tokens[2]], *tokens[4:]]
    opened = _after_opening(tokens, _POPULATION)
    if opened is not None and opened[1]:
        tokens = ["population", "of", *opened[1]]
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
        tokens = [*tokens[:5], *map(_one_tense, tokens[5:])]
        break
    for frame in _LAST_FRAMES:
        tokens = frame(tokens)
    return tokens


# What a piece of writing is measured in, when its size is put before it ("a 100-word story", "a 3-paragraph essay")
# or after it ("a story in 100 words"): the size is read after the piece, as "in N words".
_PIECE_UNITS = frozenset(_words("word sentence paragraph line page bullet verse stanza slide"))


def _size_after(tokens: list[str]) -> list[str]:
    """ "Write a 100-word story about a lost key" as "Write a story about a lost key in 100 words"."""
    for i in range(1, len(tokens) - 2):
        if (tokens[i][0].isdigit() and tokens[i + 1] in _PIECE_UNITS and tokens[i + 2] not in _STOP
                and tokens[i + 2] not in _PIECE_UNITS and tokens[i - 1] not in ("in", "of", "under", "than")):
            return [*tokens[:i], *tokens[i + 2:], "in", tokens[i], tokens[i + 1]]
    return tokens


# A simple explanation asked for: "Explain inflation like I'm five" = "What is inflation in simple terms?" = "ELI5:
# inflation" = "Explain inflation simply" (the definition frame has put "in simple terms" after the term by then).
_SIMPLY_AFTER = (("like", "i", "5"), ("like", "i", "am", "5"), ("simply",), ("in", "simple", "term"),
                 ("in", "plain", "english"), ("in", "layman", "term"))
_SIMPLY_BEFORE = (("eli", "5"), ("explain", "like", "i", "5"), ("explain", "like", "i", "am", "5"))
_MAX_SIMPLIFIED = 6


def _simply_last(tokens: list[str]) -> list[str]:
    """ "Explain in simple terms what X is" as "Explain what X is in simple terms" (before the definition frame
    reads it)."""
    if tokens[:1] == ["explain"]:
        for tail in _SIMPLY_AFTER:
            if len(tokens) > len(tail) + 2 and tuple(tokens[1 : 1 + len(tail)]) == tail:
                return ["explain", *tokens[1 + len(tail) :], *tail]
    return tokens


def _simply(tokens: list[str]) -> list[str]:
    term: list[str] | None = None
    opened = _after_opening(tokens, _SIMPLY_BEFORE)
    if opened is not None:
        term = opened[1]
    elif tokens[:1] in (["explain"], ["define"]):
        for tail in _SIMPLY_AFTER:
            if len(tokens) > len(tail) + 1 and tuple(tokens[-len(tail):]) == tail:
                term = tokens[1:-len(tail)]
                if term[-2:] == ["to", "me"]:  # "explain X to me like I'm five"
                    term = term[:-2]
                break
    if not term or len(term) > _MAX_SIMPLIFIED or any(t in _QWORDS or t in _AUX for t in term):
        return tokens
    return ["simply", *term]


# What happens in a story, asked as "Summarize the plot of X", "What is the plot of X?", "What happens in X?" or
# "What is X about?" (X a title of a few words).
_PLOT_OPENINGS = (("summarize", "plot", "of"), ("what", "is", "plot", "of"), ("what", "happen", "in"),
                  ("what", "happens", "in"))
_MAX_TITLE = 8


def _plot(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _PLOT_OPENINGS)
    title = None if opened is None else opened[1]
    if opened is None and tokens[-1:] == ["about"]:  # "what is X about", which the definition frame read first
        if tokens[:2] == ["what", "is"]:
            title = tokens[2:-1]
        elif tokens[:1] == ["define"]:
            title = tokens[1:-1]
    if not title or len(title) > _MAX_TITLE or any(t in _QWORDS or t in _AUX for t in title):
        return tokens
    return ["plot", *title]


# What to pack, asked for as a list or as a question: "Give me a packing list for a camping trip" = "What should I pack
# for a camping trip?" = "What to pack for a camping trip".
_PACKING_OPENINGS = (("give", "me", "packing", "list", "for"), ("make", "me", "packing", "list", "for"),
                     ("write", "me", "packing", "list", "for"), ("packing", "list", "for"),
                     ("what", "is", "packing", "list", "for"), ("what", "should", "i", "pack", "for"),
                     ("what", "do", "i", "need", "to", "pack", "for"), ("what", "do", "i", "pack", "for"),
                     ("what", "to", "pack", "for"))


def _packing(tokens: list[str]) -> list[str]:
    opened = _after_opening(tokens, _PACKING_OPENINGS)
    if opened is None or not opened[1] or any(t in _QWORDS or t in _AUX for t in opened[1]):
        return tokens
    return ["pack", "for", *opened[1]]


#: The frames :func:`frames` applies last, in this order (each reads what the one before wrote).
_LAST_FRAMES = (_unit_spellings, _units_in, _measured_in, _conversion, _arithmetic, _compared, _worth, _how_judged,
                _judgement, _thing_judged, _normal, _temperature, _measure, _which_better, _reason, _first_and_why,
                _how_long, _when, _how_many_units, _asks_what_of, _distance, _difference, _simply_last, _definition,
                _size_after, _simply, _plot, _packing)
