"""How the verifier reads a prompt: words folded to compare (plurals, spellings, number words, units,
ordinals), topic words, and the hard rules' predicates that words alone decide (codes, operators,
numbers or units alone). Shared by :mod:`.same_question`, :mod:`.question_kinds` and :mod:`.verify`; what a
question asks for is :mod:`.question_kinds`'s."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache


def _words(text: str) -> list[str]:
    """Split a space-separated word list: keeps the long lists below readable."""
    return text.split()


# Letters of any script: "München", "Zürich" and "São Paulo" are words, not fragments around an accent.
# A comma separates thousands only before three digits: "1,000" is one number, "(2,3)" two.
_WORD = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|[^\W\d_]+")
_RAW_WORD = re.compile(r"[^\W\d_](?:[^\W\d_]|['\-])*|\d+(?:[.,]\d+)*")
_CONTRACTIONS = (
    (re.compile(r"\s*(?:->|=>|→)\s*"), " to "),  # "JSON -> YAML" points the way "JSON to YAML" does
    (re.compile(r"\bw/o\b"), " without "),  # "w/o a tuner" is "without a tuner"
    (re.compile(r"\bw/(?=\s)"), " with "),
    (re.compile(r"\b(can)'?t\b"), r"\1 not"),
    (re.compile(r"\bwon'?t\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'(s|re|m|ll|ve|d)\b"), ""),
    (re.compile(r"\bim\b"), "i"),  # "like im five": "I'm" typed without its apostrophe
    (re.compile(r"\bback(?:ing)? up\b"), "backup"),  # "back up a database" is the "backup" that "restore" undoes
    (re.compile(r"\bat once\b"), "together"),  # "take four ibuprofen at once": no number, as "once a week" is
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
_SUFFIXES = tuple(_words("ational ations ation ated ates ate ating ions ion ings ing ed ness ments ment ly"))
_DIRECTION_MARKERS = frozenset(_words("to from into in than before after over under"))
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
        "quarter": "0.25",
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
    # sizes on a screen: "16px" / "16pt"
    "px": "px",
    "pt": "pt",
    "rem": "rem",
    "kph": "kmh",
    "kmph": "kmh",
}

# Currency signs read as their unit words after the amount, so "$100" and "100 dollars" agree and "$100" and
# "€100" do not.
_CURRENCY_UNITS = {"$": "usd", "€": "eur", "£": "gbp", "¥": "jpy", "₹": "inr", "₩": "krw", "₽": "rub"}
_CURRENCY = re.compile("[" + "".join(_CURRENCY_UNITS) + "]")
_CURRENCY_AMOUNT = re.compile("([" + "".join(_CURRENCY_UNITS) + r"])\s*(\d[\d,]*(?:\.\d+)?)")

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


# A digit amount with its scale written after it: "5k", "$80k", "1.5 million", "$1.0 bn" (not "m": metres to some).
_SCALED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*(k|thousand|million|bn|billion)\b")
# After a currency sign a bare "m" or "b" is a scale too: "$250M", "$250-M", "US$38b".
_SCALED_MONEY = re.compile(r"([$€£¥₹])\s*(\d+(?:\.\d+)?)\s*-?\s*(mn|m|b)\b")
_SCALE_OF = _SCALES | {"k": 1_000, "bn": 1_000_000_000, "billion": 1_000_000_000, "m": 1_000_000, "mn": 1_000_000,
                       "b": 1_000_000_000}
_BARE_DECIMAL = re.compile(r"(?<![\w.])\.(\d)")  # ".75" is "0.75"
# A race's "k" is kilometres, not thousands, wherever the prompt speaks of running or of distance: "how long to
# walk 5k", "a 10k run", "How many miles is a 10K?", "my 5K time" (but "walk 10k steps", "a 10k bonus", "$5k",
# "10k miles on a car"): a "k" that nothing follows but what a race has (a time, a pace, a plan) or a clause's end.
_RACE_CONTEXT = re.compile(r"\b(?:walk|walking|run|running|runs|race|races|jog|jogging|ran|marathon|pace|miles?|km|"
                           r"kilometers?|kilometres?)\b")
_RACE_K = re.compile(r"(?<![$€£¥₹\d.,])\b(\d+)k\b(?=\s*(?:[?!.,;:)]|$|(?:run|runs|race|races|walk|walks|time|times|"
                     r"pace|training|plan|result|results|route|course|finish|in|on|at|for|and|or|to)\b))")
# Without such a word, a race is "a 5k" that ends a clause: "What is a good time for a 5k?", "my first 5k in 30 min".
_A_RACE = re.compile(r"\b(a|the|my|first|your)\s+(\d+)k(?=\s*(?:[?!.,;]|$|in\b))")
_PLAN = re.compile(r"(\d+)\(k\)")


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _scaled_value(match: re.Match[str]) -> str:
    return f" {_number_text(float(match.group(1)) * _SCALE_OF[match.group(2)])} "


def _scaled_money(match: re.Match[str]) -> str:
    return f"{match.group(1)}{_number_text(float(match.group(2)) * _SCALE_OF[match.group(3)])} "


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


# Plurals that do not end in "s", read as their singular: "How are fungi different from plants?" = "... a fungus ...".
_IRREGULAR_PLURALS = {"fungi": "fungus", "cacti": "cactus", "bacteria": "bacterium", "mice": "mouse", "teeth": "tooth",
                      "geese": "goose", "children": "child", "women": "woman", "men": "man", "criteria": "criterion",
                      "phenomena": "phenomenon", "knives": "knife", "wolves": "wolf"}


@lru_cache(maxsize=1 << 16)
def _norm_word(word: str) -> str:
    """Fold number words, unit spellings, plurals and British spellings so that wording alone does not differ."""
    if word in _IRREGULAR_PLURALS:
        word = _IRREGULAR_PLURALS[word]
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
    lowered = _PLAN.sub(r"\1k", lowered)  # "401(k)" is "401k"
    lowered = (_RACE_K.sub(r"\1 km", lowered) if _RACE_CONTEXT.search(lowered)
               else _A_RACE.sub(r"\1 \2 km", lowered))
    if _SCALED.search(lowered) or _SCALED_MONEY.search(lowered):  # "$80k" = "$80,000", "$1.5M" = "1.5 million"
        lowered = _SCALED_MONEY.sub(_scaled_money, _SCALED.sub(_scaled_value, lowered.replace(",", "")))
    lowered = _BARE_DECIMAL.sub(r"0.\1", lowered)
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


def s_acronyms(text: str, *, longer_than: int = 2) -> set[str]:
    """Capitalised acronyms ending in "S" ("HTTPS", "GPS"), lowercased: the parse folds them as plurals."""
    return {w.lower() for w in _RAW_WORD.findall(text)
            if len(w) > longer_than and w.isupper() and w.endswith("S") and not w.endswith("SS")}


def acronym_s_dropped(query: str, candidate: str) -> bool:
    """Whether one prompt names an acronym ending in "S" and the other the acronym without it: "What port does
    HTTPS use?" / "What port does HTTP use?" read alike to every word feature, the parse folding "HTTPS" as a
    plural (one blind trap served so, the pair model sure of the difference and outweighed)."""
    def dropped(acronyms: set[str], other: str) -> bool:
        words = {w.lower() for w in _RAW_WORD.findall(other)}
        return any(a[:-1] in words and a not in words for a in acronyms)

    return dropped(s_acronyms(query), candidate) or dropped(s_acronyms(candidate), query)


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


_SUPERSCRIPT = re.compile("[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹", "0123456789")


def _as_power(match: re.Match[str]) -> str:
    """ "mc²" as "mc^2", the way it is typed without the sign."""
    return "^" + match.group().translate(_SUPERSCRIPT_DIGITS)


@lru_cache(maxsize=1024)
def _symbols(text: str) -> tuple[str, frozenset[str]]:
    """A prompt's operators (sorted: a reworded snippet may move them), and its code-like tokens as
    written (case kept).

    Prose uses some of these signs too, so they count only where they cannot be prose: a minus only
    as the sign of a number ("-5", not "3-4 days", "5-year" or a dash), a plus not right after a
    number ("7+2", not "5+ years") nor between two words, an arrow not between spaces, "!" only in
    "!=". Code tokens keep their case because "[a-z]" and "[A-Z]" match different strings."""
    text = _PROSE_ARROW.sub(" to ", _PROSE_PLUS.sub(" and ", _SUPERSCRIPT.sub(_as_power, text)))
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


def one_number_replaced(query: str, candidate: str) -> bool:
    """Whether exactly one number of a prompt was replaced by another, the count of numbers the same, however
    the rest was reworded: "SQL: get the 2nd highest salary" / "... find the third highest salary", "gives up
    after 5 retries" / "max 1 retry", "in 2018" / "in 2019". Amounts are read alike first ("80k" = "$80,000",
    "two" = "2"); a number left out or added on one side (doctors' "since age 6" / "since childhood") is not
    a replacement and is left to the combiner."""
    a, b = _amounts(query), _amounts(candidate)
    if not a or a.total() != b.total():
        return False
    return (a - b).total() == 1 and (b - a).total() == 1


_GLUED = re.compile(r"[^\W\d_]+(\d+)")  # "ELI5", "gpt4", "h264": a name's digits, not an amount


def _amounts(text: str) -> Counter[str]:
    return Counter(_parse(text).numbers) - Counter(_GLUED.findall(text.lower()))


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


def _word_after(tokens: tuple[str, ...], number: str) -> str | None:
    """The word right after the number's first appearance: the unit or the thing it counts."""
    for i in range(len(tokens) - 1):
        if tokens[i] == number:
            following = tokens[i + 1]
            return None if following[0].isdigit() else following
    return None


def _rated(tokens: tuple[str, ...]) -> dict[str, tuple[str, str | None]]:
    """Each number's unit (the word right after it) and the thing it rates (the next word, when it is no stop
    word or number): "a 20 amp outlet" -> {"20": ("amp", "outlet")}."""
    out: dict[str, tuple[str, str | None]] = {}
    for i, t in enumerate(tokens[:-1]):
        if t[0].isdigit() and t not in out and not tokens[i + 1][0].isdigit():
            thing = tokens[i + 2] if i + 2 < len(tokens) else None
            out[t] = (tokens[i + 1], thing if thing is not None and thing not in _STOP and not thing[0].isdigit()
                      else None)
    return out


# Words after a number that make a list, not a rating: ordinals ("the 14th, 16th and 117th lines") and shares.
_NO_UNIT = frozenset(_words("th st nd rd percent pct"))


def ratings_traded(query: str, candidate: str) -> bool:
    """Whether two amounts of one unit trade the things they rate: "a 20 amp outlet on a 15 amp circuit" / "a 15
    amp receptacle on a 20 amp circuit". Each number keeps its unit, so no other rule sees the swap."""
    pa, pb = _parse(query), _parse(candidate)
    if sorted(pa.number_order) != sorted(pb.number_order):
        return False
    a, b = _rated(pa.tokens), _rated(pb.tokens)
    if set(a) != set(b) or any(a[n][0] != b[n][0] or a[n][0] in _NO_UNIT for n in a):
        return False
    return any(x != y and a[x][0] == a[y][0] and a[x][1] is not None and a[x][1] == b[y][1] and a[x][1] != b[x][1]
               for x in a for y in a)


def conversion_reversed(query: str, candidate: str) -> bool:
    """Whether an amount is converted the other way: the words after one number trade places, each named
    on both sides ("How many km per hour are in 60 knots?" / "60 km per hour equals how many knots?", "40
    calories in joules" / "40 joules to calories"). Any word counts, not only the units :func:`units_differ`
    knows, where it follows the amount on one side and is what the amount is converted into on the other
    ("to", "in", "how many" before it): "5 ideas for a 10-year-old" / "five ideas for a ten year old" is no
    conversion."""
    a, b = _parse(query), _parse(candidate)
    for number in set(a.numbers) & set(b.numbers):
        after_a, after_b = _word_after(a.tokens, number), _word_after(b.tokens, number)
        if (after_a is not None and after_b is not None and after_a != after_b
                and _converted_into(b.tokens, after_a) and _converted_into(a.tokens, after_b)):
            return True
    return False


# The words before what an amount is converted into: "... to calories", "in miles", "how many knots".
_INTO = frozenset(_words("to into in many much"))


def _converted_into(tokens: tuple[str, ...], word: str) -> bool:
    """Whether ``word`` is what the amount is converted into, a rate read as its base unit: "mph" is
    converted into where "... in miles per hour" is asked."""
    base = _unit_base(word)
    return any(_unit_base(tokens[i]) == base and tokens[i - 1] in _INTO for i in range(1, len(tokens)))


def _unit_base(word: str) -> str:
    rate = _RATE_UNITS.get(word)
    return word if rate is None else rate[0]


def only_negation_differs(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words but for a negation one of them adds ("Vegetables you can freeze
    raw" / "Vegetables you can't freeze raw"): over every labelled pair set, 50 traps and no rewording."""
    a, b = _parse(query), _parse(candidate)
    return a.negations != b.negations and (
        [t for t in a.tokens if t not in _NEGATIONS] == [t for t in b.tokens if t not in _NEGATIONS])


def _objects_of(tokens: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """The first topic word after each "with", and after each "without", "no" or "not have": what the prompt has
    and what it goes without ("bread with yeast", "if I don't have a plunger")."""
    having: set[str] = set()
    lacking: set[str] = set()
    for i, t in enumerate(tokens):
        if t == "with" and tokens[i + 1 : i + 2] in (("and",), ("or",)) and "without" in tokens[i + 2 : i + 4]:
            return set(), set()  # "with and without contrast" asks both ways
        if t == "with" and not (tokens[i + 1 : i + 2] and tokens[i + 1] in _NEGATIONS):  # "with no yeast": "no"
            into = having
        elif t in ("without", "no") or (t == "have" and i > 0 and tokens[i - 1] == "not"):
            into = lacking
        else:
            continue
        for u in tokens[i + 1 : i + 3]:
            if u not in _STOP and u not in _NEGATIONS:
                into.add(u)
                break
    return having, lacking


def with_against_without(query: str, candidate: str) -> bool:
    """Whether one prompt has a thing the other goes without: "How do I make bread with yeast?" / "Recipe for bread
    with no yeast", "how to unclog a drain if I don't have a plunger" / "... with a plunger". Over every labelled
    set and the cross traps, 10 traps and no rewording."""
    has_a, lacks_a = _objects_of(_parse(query).tokens)
    has_b, lacks_b = _objects_of(_parse(candidate).tokens)
    return bool(((has_a & lacks_b) - lacks_a - has_b) or ((has_b & lacks_a) - lacks_b - has_a))


_PERIOD = {"daily": "day", "nightly": "day", "everyday": "day", "weekly": "week", "monthly": "month",
           "yearly": "year", "annually": "year", "hourly": "hour", "night": "day"}
_FREQUENCY = re.compile(r"\b(?:(daily|nightly|everyday|weekly|monthly|yearly|annually|hourly)"
                        r"|(?:every|each|per|once a|twice a|times a|times per) (day|night|week|month|year|hour))\b",
                        re.IGNORECASE)


def _frequencies(text: str) -> set[str]:
    return {_PERIOD.get(word, word) for match in _FREQUENCY.finditer(text)
            for word in [(match.group(1) or match.group(2)).lower()]}


def frequencies_differ(query: str, candidate: str) -> bool:
    """Whether the prompts ask about something done at different rates: "Is it OK to water succulents once a
    week?" / "... every day?" (over every labelled set and the cross traps, 5 traps and no rewording)."""
    a, b = _frequencies(query), _frequencies(candidate)
    return bool(a and b and a.isdisjoint(b))


# Named days and months, which are dates as numbers are; "may" is left out, being a verb far more often.
_DATES = frozenset(_words(
    "monday tuesday wednesday thursday friday saturday sunday january february march april june july august "
    "september october november december"))


def date_replaced(query: str, candidate: str) -> bool:
    """Whether the one day or month a prompt names was replaced by another, however the rest was reworded: "down
    for maintenance on Saturday" / "... on Sunday", "flights to Seoul in March" / "... in June"."""
    a, b = _DATES.intersection(_parse(query).tokens), _DATES.intersection(_parse(candidate).tokens)
    return len(a) == 1 and len(b) == 1 and a != b


# Units of time as the parse leaves them ("minutes" is "min", "hours" "h", "days" stays), each to one name.
_TIME_UNITS = {word: unit for unit, spellings in (
    ("second", "sec secs second seconds"), ("minute", "min mins minute minutes"), ("hour", "h hr hrs hour hours"),
    ("day", "day days"), ("week", "week weeks"), ("month", "month months"), ("year", "yr yrs year years"),
    ("decade", "decade decades")) for word in spellings.split()}


def _time_spans(tokens: tuple[str, ...]) -> Counter[tuple[str, str]]:
    """Each number that counts a unit of time, with the unit: "two weeks" and "2-week-old" read ("2", "week")."""
    return Counter((tokens[i], _TIME_UNITS[tokens[i + 1]]) for i in range(len(tokens) - 1)
                   if tokens[i][0].isdigit() and tokens[i + 1] in _TIME_UNITS)


def time_span_replaced(query: str, candidate: str) -> bool:
    """Whether the same numbers count other units of time: "a cough for two weeks" / "... for two months", "a
    10-week-old puppy" / "a 10-month-old puppy", "every 5 minutes" / "every 5 hours". Over every labelled set,
    blind file and cross trap: 25 traps and no rewording. (Time units kept apart from the parse's units, which
    would break the readings of "How many months does it take" as "How long".)"""
    a, b = _parse(query), _parse(candidate)
    spans_a, spans_b = _time_spans(a.tokens), _time_spans(b.tokens)
    if not spans_a or not spans_b or spans_a == spans_b:
        return False
    return sorted(n for n, _ in spans_a.elements()) == sorted(n for n, _ in spans_b.elements())


# Words that bound a number from below or from above: "more than 3", "over $50", "at least 3", "3 or more".
_BOUND_UP = frozenset(_words("more over above greater older longer larger bigger higher least"))
_BOUND_DOWN = frozenset(_words("less under below fewer newer younger shorter smaller lower most"))
# Words a bound may stand behind: "more than 3", "under EUR 100" ("$100" is read "100 usd" and needs none).
_BETWEEN_BOUND = frozenset(_words("than at usd eur gbp"))


def _bounds(tokens: tuple[str, ...]) -> set[tuple[str, bool]]:
    """Each number a bound word stands right before (or "or more" / "or fewer" right after), with whether the
    bound is from below (True: "more than 3", "3 or more") or from above (False: "under 100", "at most 3")."""
    out: set[tuple[str, bool]] = set()
    for i, token in enumerate(tokens):
        if not token[0].isdigit():
            continue
        j = i - 1
        while j >= 0 and tokens[j] in _BETWEEN_BOUND:
            j -= 1
        for word in ((tokens[j],) if j >= 0 else ()) + (
                (tokens[i + 2],) if i + 2 < len(tokens) and tokens[i + 1] == "or" else ()):
            if word in _BOUND_UP:
                out.add((token, True))
            elif word in _BOUND_DOWN:
                out.add((token, False))
    return out


def bound_reversed(query: str, candidate: str) -> bool:
    """Whether a number bounded from below on one side is bounded from above on the other: "files older than 7
    days" / "... newer than 7 days", "customers with 3 or more orders" / "... at most 3 orders", "gift ideas under
    $50" / "... over $50". Over every labelled set, blind file and cross trap: 21 traps (2 of them served) and
    one rewording, already refused (an STS-B pair that turns both of its sentences round)."""
    a, b = _bounds(_parse(query).tokens), _bounds(_parse(candidate).tokens)
    return any((number, not up) in b and (number, not up) not in a and (number, up) not in b for number, up in a)


def same_quantities(query: str, candidate: str) -> bool:
    """Whether the two prompts carry the same numbers with the same units, in any order and spelling
    ("two years" = "2 years", "$50" = "50 dollars"): what a restated prompt must keep."""
    a, b = _parse(query), _parse(candidate)
    return a.numbers == b.numbers and _amount_units(a.tokens) == _amount_units(b.tokens)


def same_polarity(query: str, candidate: str) -> bool:
    """Whether the two prompts negate as often and both or neither ask for something else ("other",
    "instead", "apart from"): "build and clean targets but no test target", "without a window function"
    and "what other side effects" each turn a request around in a word or two."""
    a, b = _parse(query), _parse(candidate)
    return a.negations == b.negations and a.contrast == b.contrast


def changed_share(query: str, candidate: str) -> float:
    """The share of the two prompts' words (normalised, counted with repeats) that the other lacks: 0 for the
    same words in any order, 1 for no word in common. Word order is ignored on purpose: a prompt whose
    words only trade places ("from A to B" / "from B to A") has changed nothing here."""
    a, b = Counter(_parse(query).tokens), Counter(_parse(candidate).tokens)
    total = a.total() + b.total()
    return 1.0 - 2 * (a & b).total() / total if total else 0.0
