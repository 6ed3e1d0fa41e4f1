"""The same question in other words: pairs the verifier serves without asking the pair model.

Each prompt is brought to canonical words (filler and greetings around the request dropped, synonyms
and one everyday question's frames read one way: "Who was the painter of X?" as "Who painted X?", a
distance or a difference with its two sides in a fixed order, ...); two prompts with the same words
ask the same, and so do two whose alternatives trade places around "or" / "vs". Every rule here was
checked over every labelled pair set (docs/cache-quality.md): it serves rewordings there, no trap.
The pair model reads most of these pairs as a changed detail.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from .pair_model import packaged_tokenizer
from .question_frames import _ALTERNATIVE, _AND, frames
from .translation import same_translation
from .wording import _QWORDS, _RAW_WORD, _parse, _words, s_acronyms, symbols_differ

# Words whose presence never changes what a prompt asks: "How many miles are (there) in 5 km?", "(Please)
# tell me ...", "What is (the) capital of France?". Pronouns, modals and negations are not among them.
_FILLER = frozenset(_words("there please pls kindly just actually really very the a an am"))
# Words the frames read ("My knee hurts when I run. Why?", "Explain it to me like I'm 5", "Is this normal?") that
# are otherwise filler when two prompts are compared word for word: "How do I set up voicemail on my iPhone?" asks
# what "... on iphone" does, "Show me how to use X" what "show how to use X" does, "Rewrite this for a child: ..."
# what "rewrite for a child: ..." does.
_FILLER_WORD_FOR_WORD = frozenset(_words("my me this"))
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
# A name put before what it has, anywhere in the question, reads as an "of" too: "Who was the US president in
# 1995?" = "Who was president of the United States in 1995?". The name capitalised and inside the sentence, and
# fewer heads than :data:`_ATTRIBUTES`: before "language", "area" or "age" a name is often the thing itself
# ("the English language", "the Bay Area", "the Bronze Age"), not its holder.
_NAME_BEFORE = re.compile(r"(?<=[^\W\d_] )(?:the )?([A-Z][\w]*) ((?i:president|prime minister|capital|"
                          r"currency|population|national anthem|flag|ceo|founder))\b")


# A choice asked with "which", its alternatives after a comma: "Which language should I learn first, Python or
# JavaScript?" = "Should I learn Python or JavaScript first?" (the chooser's noun is the alternatives' kind).
# Each part of the pattern reads a distinct run of characters, so a long prompt costs one pass.
_WHICH_SHOULD = re.compile(r"^\s*which(?: [\w-]+)? should (i|we) ([\w-]+)((?: [\w-]+)*?), ([^,?!.]+)[?.!]*\s*$",
                           re.IGNORECASE)


def _choice_as_should(match: re.Match[str]) -> str:
    verb, rest, alternatives = match.group(2), match.group(3), match.group(4)
    if " or " not in alternatives:
        return match.group(0)
    return f"should {match.group(1)} {verb} {alternatives.strip()}{rest}"


# Small talk said in its common ways, read as one whole prompt: "How are you?" = "how's it going?", "Thanks for
# your help!" = "thank you so much for the help", "Good morning!" = "Morning!".
_SMALL_TALK = tuple((re.compile(pattern, re.IGNORECASE), said) for pattern, said in (
    (r"(?:hi|hello|hey)(?: there)?", "hello"),
    (r"how(?: are|'re| r) (?:you|u)(?: doing)?(?: today)?|how(?:'s| is) it going|how are things|how (?:you|u) doing",
     "how are you"),
    (r"(?:good )?(morning|afternoon|evening|night)", r"good \1"),
    (r"(?:thanks|thank you|thank u|thx|ty|many thanks)(?: (?:so|very) much| a lot| a ton)?"
     r"(?: for (?:your|the|all the|all your) help)?", "thanks"),
))
_SMALL_TALK_END = re.compile(r"[\s!.?,:)]*$")


def _small_talk(text: str) -> list[str] | None:
    bare = _SMALL_TALK_END.sub("", text.strip())
    for pattern, said in _SMALL_TALK:
        if (match := pattern.fullmatch(bare)) is not None:
            return ["smalltalk", *match.expand(said).lower().split()]
    return None


# An operation on two numbers written with a sign, read in words: "12 x 13" = "12 times 13", "5 / 2 = ?" = "5
# divided by 2" (the parse drops the signs). A minus only between spaces ("2024-01-05" is a date), and only in a
# prompt that is little more than the sum ("1854 - 1932" in a sentence is a span of years).
_TIMES, _DIVIDED, _MINUS = "\u00d7", "\u00f7", "\u2212"  # the multiplication, division and minus signs
_SIGNED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s*([x*/+" + _TIMES + _DIVIDED + r"])\s*|\s+([-" + _MINUS
                     + r"])\s+)(\d+(?:\.\d+)?)(?![\w.])")
_SIGN_WORDS = {"x": "times", _TIMES: "times", "*": "times", "/": "divided by", _DIVIDED: "divided by", "+": "plus",
               "-": "minus", _MINUS: "minus"}


_MAX_WORDS_AROUND_A_SUM = 3


def _signs_as_words(match: re.Match[str]) -> str:
    return f"{match.group(1)} {_SIGN_WORDS[match.group(2) or match.group(3)]} {match.group(4)}"


# Shorthand for joining words: "find + kill all processes", "date & time", "w/ a low GPA", "w/o the letter e".
_PLUS_BETWEEN_WORDS = re.compile(r"(?<=[^\W\d_])\s*[+&]\s*(?=[^\W\d_])")
_WITH = re.compile(r"(?<!\w)w/(o\b)?(?!\w/)", re.IGNORECASE)


def _with_words(match: re.Match[str]) -> str:
    return "without" if match.group(1) else "with"


def _without_filler(text: str) -> list[str]:
    said = _small_talk(text)
    if said is not None:
        return said
    if len(_SIGNED.sub("", text).split()) <= _MAX_WORDS_AROUND_A_SUM:
        text = _SIGNED.sub(_signs_as_words, text)
    text = _WITH.sub(_with_words, _PLUS_BETWEEN_WORDS.sub(" and ", text))
    text = _WHICH_SHOULD.sub(_choice_as_should, text)
    text = _POSSESSIVE_END.sub(r"\2 of \1", _WH_IS.sub(lambda m: (m.group(1) or m.group(2)) + " is", text))
    text = _NAME_BEFORE.sub(r"\2 of \1", text)
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
    "lot lots", "symptom sign", "big large", "bigger larger", "biggest largest", "tallest highest", "film movie",
    "begin start", "fix repair", "buy purchase", "child kid kids children", "car automobile",
    "doctor physician", "medicine medication", "cheap inexpensive", "afraid scared", "mother mom mum",
    "father dad", "television tv", "information info", "us usa america american", "uk britain british",
    "dictionary dict",
    "integer int", "fastest quickest", "stop quit", "tire tyre", "aluminum aluminium", "autumn fall",
    "often frequently", "defrost thaw", "opposite antonym", "if whether", "fridge refrigerator", "bike bicycle",
    "math maths mathematics", "sofa couch",
    "make create", "combine merge", "remove delete", "choose pick select", "photo picture pic",
    "end finish", "help assist", "smart clever intelligent", "colleague coworker", "boss manager",
    "phone smartphone cellphone", "beginner novice newbie", "truck lorry", "maximum max", "minimum min",
    "made created", "home house", "display screen", "company corporation", "goalkeeper goalie",
    "javascript js", "grandfather grandpa granddad", "grandmother grandma granny", "toxic poisonous",
    "advantage benefit", "disadvantage drawback downside",
    "about regarding", "normal typical", "stomach belly", "need require", "pill tablet", "think believe",
    "ok okay", "recommend suggest", "worried concerned", "tired fatigued", "quickly rapidly fast quick", "tie necktie",
    "skillet pan", "stove stovetop hob", "short brief", "usually typically generally normally commonly",
    "vs versus",
    # chat shorthand: "how many planets r in our solar system", "why do onions make u cry", "a py function"
    "you u", "your ur", "i im", "python py", "postgresql postger", "certification cert", "developer dev devs",
    "column col", "message msg", "account acct",
    # a verb agreeing with a singular or a plural subject ("does a spider have" / "do spiders have")
    "do does", "is are r", "was were", "has have",
)


def _as_parsed(word: str) -> str:
    """A synonym as the parse leaves it ("poisonous" as "poisonou", "mathematics" as "mathematic"): the map is
    read after the parse, so a word written here as typed would never be met."""
    tokens = _parse(word).tokens
    return tokens[0] if len(tokens) == 1 else word


_SYNONYM = {_as_parsed(word): _as_parsed(group.split()[0]) for group in _SYNONYM_GROUPS for word in group.split()}
# Phrases that name one thing in other words (tokens as _parse makes them; a value of two words is two tokens).
_SYNONYM_PHRASES = ((("united", "state", "of", "america"), "us"), (("united", "state"), "us"),
                    (("united", "kingdom"), "uk"), (("capital", "city"), "capital"),
                    (("at", "same", "time"), "together"), (("get", "ready"), "prepare"),
                    # a nation's citizens named by its adjective ("US citizens" = "Americans", folded to "us")
                    (("us", "citizen"), "us"), (("american", "citizen"), "us"), (("uk", "citizen"), "uk"),
                    (("british", "citizen"), "uk"),
                    (("gift", "idea"), "gift"), (("in", "what", "way"), "how"), (("in", "what", "ways"), "how"),
                    # an obligation however said ("Do I need to declare cash?" = "Do I have to declare cash?")
                    (("need", "to"), "must"), (("require", "to"), "must"), (("have", "to"), "must"),
                    (("has", "to"), "must"), (("working", "out"), "workout"),
                    (("sign", "in", "to"), "signinto"), (("sign", "into"), "signinto"),
                    (("log", "in", "to"), "loginto"), (("log", "into"), "loginto"), (("node", "js"), "node"),
                    (("how", "much", "money"), "howmuch"), (("how", "much"), "howmuch"),
                    (("what", "kind", "of"), "what"), (("what", "type", "of"), "what"),
                    (("what", "sort", "of"), "what"),
                    # a word's form named with "form" or without ("the plural (form) of cactus")
                    (("plural", "form"), "plural"), (("singular", "form"), "singular"), (("tense", "form"), "tense"),
                    (("of", "verb"), "of"), (("of", "word"), "of"),  # "the past tense of (the verb) swim"
                    # a visa for a country however the trip is said ("a visa to visit Japan" = "a visa for Japan")
                    (("visa", "to", "visit"), "visa for"), (("visa", "to", "travel", "to"), "visa for"),
                    (("visa", "to", "go", "to"), "visa for"), (("visa", "to", "enter"), "visa for"),
                    (("visa", "for", "trip", "to"), "visa for"), (("visa", "for", "travel", "to"), "visa for"),
                    (("rather", "than"), "instead"), (("instead", "of"), "instead"),
                    (("time", "complexity"), "bigo"), (("big", "o"), "bigo"),
                    (("science", "fiction"), "scifi"), (("sci", "fi"), "scifi"),
                    (("new", "york", "city"), "nyc"), (("new", "york"), "nyc"),
                    # the World Wars, however numbered ("Second" is read as the unit "sec")
                    (("world", "war", "i"), "ww1"), (("world", "war", "1"), "ww1"), (("first", "world", "war"), "ww1"),
                    (("ww", "1"), "ww1"), (("world", "war", "ii"), "ww2"), (("world", "war", "2"), "ww2"),
                    (("sec", "world", "war"), "ww2"), (("ww", "2"), "ww2"))


# The generic "you" of a how-to question: "How do you change a tyre?" asks what "How do I change a tyre?"
# does. Not before a verb that asks about the one addressed ("How do you feel about ...?").
_GENERIC_YOU = frozenset({("how", "do"), ("how", "can")})
_PERSONAL_VERBS = frozenset(_words("feel like do think want rate see mean prefer pronounce"))




@lru_cache(maxsize=1024)
def _canonical_words(text: str) -> tuple[str, ...]:
    """The prompt's words as the same-question shortcuts compare them (cached like :func:`_parse`)."""
    return _canonical(_without_filler(text))


@lru_cache(maxsize=1024)
def _asked_as_what(text: str) -> tuple[str, ...] | None:
    """A bare phrase read as the "what is" question it asks ("Square root of 144?", "side effects of
    metformin", "best way to reheat pizza"), or None for a prompt with a question word or a verb of asking
    ("is", "can", ...) in it. A second reading beside :func:`_canonical_words`, not in its place: "Write a
    limerick" must still meet "Compose a limerick" as an instruction."""
    words = _without_filler(text)
    # an auxiliary after "to" is a verb's infinitive, no question: "things to do in lisbon"
    if not words or any(w in _QWORDS or (w in _AUXILIARY and (i == 0 or words[i - 1] != "to"))
                        for i, w in enumerate(words)):
        return None
    return _canonical(["what", "is", *words])


def _singular_of_ies(word: str) -> str:
    """The parse cuts a plural's "s" only ("dictionaries" as "dictionarie"); "-ie" after a consonant is read as "-y"
    for both numbers alike ("dictionary", "movie" as "movy": a key, not a word)."""
    if len(word) > 4 and word.endswith("ie") and word[-3] not in "aeiou" and word.isalpha():
        return word[:-2] + "y"
    return word


def _canonical(words: list[str]) -> tuple[str, ...]:
    tokens = frames(words)
    for i in range(2, len(tokens) - 1):
        if (tokens[i] == "you" and (tokens[i - 2], tokens[i - 1]) in _GENERIC_YOU
                and tokens[i + 1] not in _PERSONAL_VERBS):
            tokens[i] = "i"
    for i in range(len(tokens) - 2):  # "to not reply" as "not to reply"
        if tokens[i] == "to" and tokens[i + 1] == "not":
            tokens[i], tokens[i + 1] = "not", "to"
    tokens = [t if t in _SYNONYM else _singular_of_ies(t) for t in tokens]
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for phrase, word in _SYNONYM_PHRASES:
            if tuple(tokens[i : i + len(phrase)]) == phrase:
                out.extend(word.split())
                i += len(phrase)
                break
        else:
            out.append(_SYNONYM.get(tokens[i], tokens[i]))
            i += 1
    return tuple(out)


def _acronyms_differ(query: str, candidate: str) -> bool:
    """Whether a capitalised acronym ending in "S" ("HTTPS") is missing from the other prompt: the parse folds
    plurals, and "HTTPS" would otherwise read as "HTTP"."""
    lower_a = {w.lower() for w in _RAW_WORD.findall(query)}
    lower_b = {w.lower() for w in _RAW_WORD.findall(candidate)}
    return (any(a not in lower_b for a in s_acronyms(query, longer_than=4))
            or any(b not in lower_a for b in s_acronyms(candidate, longer_than=4)))


_QUOTED = re.compile(r'"([^"]+)"|“([^”]+)”|(?<!\w)\'([^\']+)\'(?!\w)')


def _quotes_differ(query: str, candidate: str) -> bool:
    """Whether both prompts quote text and the quotes are not word for word the same: quoted text is to be
    translated, counted or corrected as written, so neither plurals nor synonyms fold there."""
    quoted_a = [[w.lower() for w in _RAW_WORD.findall("".join(m))] for m in _QUOTED.findall(query)]
    quoted_b = [[w.lower() for w in _RAW_WORD.findall("".join(m))] for m in _QUOTED.findall(candidate)]
    return bool(quoted_a) and bool(quoted_b) and quoted_a != quoted_b


def _written_apart(query: str, candidate: str) -> bool:
    """What the canonical words cannot see and both shortcuts must: operators or code, an acronym ending in
    "S", quoted text that differs."""
    return symbols_differ(query, candidate) or _acronyms_differ(query, candidate) or _quotes_differ(query, candidate)


@lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """The words the packaged pair model's tokenizer (WordPiece, uncased) holds whole: a word it must split is rare,
    a name, or misspelt."""
    vocabulary = json.loads(packaged_tokenizer().read_text(encoding="utf-8"))
    return frozenset(word for word in vocabulary["model"]["vocab"] if word.isalpha())


_MIN_MISSPELT = 5  # a short word one letter off is often another word ("bake" / "make")


def _misspelt(typed: str, word: str) -> bool:
    """Whether ``typed`` is ``word`` with the commonest slips of the keyboard: a doubled letter typed once or a
    letter doubled ("cofee", "tomorow"), or two neighbouring letters swapped ("recieve", "wierd"); the first and the
    last letter kept, ``word`` known whole to the tokenizer and ``typed`` not. "Preact" is no slip for "React" (its
    first letter), nor "Iceland" for "Ireland" (both known)."""
    if (len(word) < _MIN_MISSPELT or not typed.isalpha() or typed[0] != word[0] or typed[-1] != word[-1]
            or abs(len(typed) - len(word)) > 1):
        return False
    known = _known_words()
    if word not in known or typed in known:
        return False
    if len(typed) != len(word):  # one of a doubled letter dropped, or one letter doubled
        short, long = sorted((typed, word), key=len)
        return any(long[i] == long[i + 1] and long[:i] + long[i + 1 :] == short for i in range(len(long) - 1))
    differ = [i for i in range(len(word)) if typed[i] != word[i]]
    return (len(differ) == 2 and differ[1] == differ[0] + 1
            and typed[differ[0]] == word[differ[1]] and typed[differ[1]] == word[differ[0]])


def _alike_but_for_slips(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Whether two word sequences are the same but for words misspelt on either side."""
    return len(a) == len(b) and a != b and all(
        x == y or _misspelt(x, y) or _misspelt(y, x) for x, y in zip(a, b, strict=True))


def only_synonyms_differ(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words in the same order but for case, punctuation, filler
    (:data:`_FILLER`, greetings around the request: "How many miles are (there) in 437 km?") and words that
    name the same thing ("symptoms" / "signs", "the US" / "the United States", "capital" / "capital city").
    The pair model reads a single changed word as a changed detail, which these are not (logit -2.4 for
    "What are the symptoms of diabetes?" / "What are the signs of diabetes?"), and distrusts some filler too."""
    a, b = _canonical_words(query), _canonical_words(candidate)
    if not a:
        return False
    wa, wb = _word_for_word(a), _word_for_word(b)
    same = (wa == wb or _asked_as_what(query) == b or a == _asked_as_what(candidate)
            or _alike_but_for_slips(wa, wb))
    return same and not _written_apart(query, candidate)


def _word_for_word(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(w for w in words if w not in _FILLER_WORD_FOR_WORD)


#: Words that join alternatives whose order asks nothing (:data:`.question_frames._ALTERNATIVE`, "between A
#: and B"). A plain "and" is not among them: joining verbs it often means a sequence ("wash and dry",
#: "grouping and teaching"), which PAWS labels as a changed meaning.
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
# a determiner and one or two words ("my Jenkins build"); anything else may change what is negated ("is it safe
# not to eat").
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
        (len(skipped) == 1 and skipped[0] in _PRONOUN) or (2 <= len(skipped) <= 3 and skipped[0] in _DETERMINER))


def alternatives_swapped(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words (filler and synonyms aside) but for two alternatives that
    trade places around "or", "vs" or "between ... and" ("Is a tomato a fruit or a vegetable?" / "Is
    tomato a vegetable or a fruit?", "la différence entre un virus et une bactérie"), or for a
    "not" written on the auxiliary instead of after the subject ("Why didn't my bread rise?" / "Why did my
    bread not rise?"). The pair model learnt from word-swap pairs (PAWS) that order matters and refuses
    these. "From A to B", "A than B" and "A and B" are not alternatives: direction, comparison and
    sequence change the answer."""
    a, b = list(_canonical_words(query)), list(_canonical_words(candidate))
    if a == b or sorted(a) != sorted(b) or len(a) > _MAX_SWAP_TOKENS or _written_apart(query, candidate):
        return False
    # The negation is compared on every word, articles included: "didn't the bread" skips "the bread".
    return (_swapped_around(a, b) or _negation_moved(a, b)
            or _negation_moved(list(_parse(query).tokens), list(_parse(candidate).tokens)))


# Words that open a phrase a question can carry at either end: "On Ubuntu, how do I check free disk space?" = "How
# do I check free disk space on Ubuntu?", "As a UK citizen, ..." = "... as a British citizen?".
_ADJUNCT_OPENERS = frozenset(_words(
    "as if when whenever for in on at with without before after during while since because from by using via once "
    "until"))
_MIN_ADJUNCT_TOKENS, _MIN_CORE_TOKENS = 2, 3


def adjunct_moved(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words (filler and synonyms aside) but for a phrase opened by a preposition
    or a conjunction (:data:`_ADJUNCT_OPENERS`) moved from one end to the other, the rest in its order. Over every
    labelled set and blind file: 32 rewordings (10 refused without it: PAWS, and a visa question asked "as a UK
    citizen" / "As a British citizen, ...") and no trap that was not served already (a PAWS pair labelled both
    ways). The pair model reads such a move as a PAWS swap; a swap moves words inside the sentence, not a phrase
    from one end to the other."""
    a, b = _canonical_words(query), _canonical_words(candidate)
    if a == b or len(a) != len(b) or len(a) > _MAX_SWAP_TOKENS or sorted(a) != sorted(b):
        return False
    for k in range(_MIN_ADJUNCT_TOKENS, len(a) - _MIN_CORE_TOKENS + 1):
        # a's first k words moved to the end of b, or b's first k words moved to the end of a
        if (b == a[k:] + a[:k] and a[0] in _ADJUNCT_OPENERS) or (a == b[k:] + b[:k] and b[0] in _ADJUNCT_OPENERS):
            return not _written_apart(query, candidate)
    return False


_MAX_PLACE_TOKENS = 2
# What may stand before the thing in a place, so that it is a thing and not a verb or a name: "for a layover in
# London", "the list of manuscripts in the New Testament"; not "his father died in Li Bian", "modern Sozopol in
# Bulgaria" (PAWS traps).
_BEFORE_A_THING = frozenset(_words(
    "for of to with about on at from my your our his her their its this that these those"))


# Whose a thing is, named before the place it is in or on: "the fan on my laptop" is "my laptop fan".
_OWNER = frozenset(_words("my your our his her their"))
_ON_OR_OF = frozenset(_words("in on of"))


def _place_put_first(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """Whether ``shorter`` is ``longer`` with one "A in B" written "B A" (B of one or two words), or one "A in (on,
    of) my B" written "my B A"."""
    for i in range(1, len(longer) - 2):
        owned = longer[i + 1] in _ON_OR_OF and longer[i + 2] in _OWNER
        if not owned and (longer[i + 1] != "in" or longer[i - 1] not in _BEFORE_A_THING):
            continue
        owner = longer[i + 2 : i + 3] if owned else ()
        for k in range(1, _MAX_PLACE_TOKENS + 1):
            place = longer[i + 2 + len(owner) : i + 2 + len(owner) + k]
            rest = longer[i + 2 + len(owner) + k :]
            if len(place) == k and (*longer[:i], *owner, *place, longer[i], *rest) == shorter:
                return True
    return False


def place_put_first(query: str, candidate: str) -> bool:
    """Whether the prompts are the same words but for a thing "in" a place named before it instead: "Do I need a
    transit visa for a layover in London?" / "... for a London layover?" (cosine 0.995, the pair model 0.05), "Why
    is the fan on my laptop so loud?" / "Why is my laptop fan so loud?" (0.985, the pair model 0.02)."""
    a, b = _canonical_words(query), _canonical_words(candidate)
    if abs(len(a) - len(b)) != 1 or max(len(a), len(b)) > _MAX_SWAP_TOKENS:
        return False
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return _place_put_first(longer, shorter) and not _written_apart(query, candidate)


@lru_cache(maxsize=4096)  # as hard_rule_refusal: met in the early call and again in check()
def same_question_in_other_words(query: str, candidate: str) -> bool:
    """The shortcuts that serve a pair without the pair model: only filler or synonyms differ, alternatives
    swapped, a phrase moved from one end to the other, a place named before the thing in it, or one translation
    asked for in two ways."""
    return (only_synonyms_differ(query, candidate) or alternatives_swapped(query, candidate)
            or adjunct_moved(query, candidate) or place_put_first(query, candidate)
            or same_translation(query, candidate))


# A condition added at the end of the same request: "How do I delete duplicate rows in SQL Server?" / "How to delete
# duplicate rows in SQL Server while keeping the most recent one?" (graded "roughly equivalent, an important detail
# differs": the general answer does not keep the newest row). Not "so", "when" or "but", which as often restate what
# was asked ("What temperature should chicken be cooked to (so it's safe to eat)?", "cold at the top (but warm at the
# bottom)").
_CONDITION_OPENERS = frozenset(_words("while whilst without except keeping unless using"))
_MIN_CONDITION_WORDS = 3


def condition_added(query: str, candidate: str) -> bool:  # called from the cached verify.hard_rule_refusal
    """Whether one prompt is the other, as the same-question shortcuts read it, with a condition of a few words
    added at its end."""
    a, b = _canonical_words(query), _canonical_words(candidate)
    short, long = (a, b) if len(a) < len(b) else (b, a)
    extra = long[len(short) :]
    return (len(short) >= _MIN_CONDITION_WORDS and long[: len(short)] == short
            and len(extra) >= _MIN_CONDITION_WORDS and extra[0] in _CONDITION_OPENERS)
