"""What a prompt asks for, and when two prompts ask for different things though their words are alike.

The kind of answer a question opens by asking for (a person, a time, a place, a reason, a manner, an amount, a yes or
no), what to do against how to tell, a difference against a conversion, may against must, the same thing asked in
another kind of question, a thing left out or switched the other way, the other options against the one named. Hard
rules for the verifier (``verify.hard_rule_refusal``), read from the words :func:`.wording._parse` leaves.
"""

from __future__ import annotations

import re

from .wording import _DIRECTION_MARKERS, _QWORDS, _RAW_WORD, _STOP, _parse, _words

_ASKS = {"who": "person", "whom": "person", "when": "time", "where": "place", "why": "reason", "how": "manner"}
_ASKED_AS = {("how", "soon"): "time", ("how", "come"): "reason", ("what", "time"): "time"} | {
    ("how", word): "quantity" for word in _words("many much long high far old tall big deep often fast quickly")}
#: "At what ..." and "In what ..." questions ask for an amount or a time: "At what temperature does the Maillard
#: reaction start?", "At what age can I ...?", "In what year did ...?".
_ASKED_AT = {"temperature": "quantity", "speed": "quantity", "price": "quantity", "point": "time",
             "rate": "quantity", "size": "quantity", "age": "time", "time": "time", "hour": "time", "year": "time",
             "month": "time", "century": "time", "decade": "time"}
_AUXILIARIES = frozenset(
    _words("is are was were do does did can could should would will shall may might must has have had")
)
_ALWAYS_ASKS = frozenset(_words("who whom why"))  # "when" and "where" also open clauses: "When I run, ..."


def _asks_for(tokens: tuple[str, ...]) -> str | None:
    """What kind of answer a question that opens with a question word and a verb asks for: a person, a
    time, a place, a reason, a manner or an amount ("When did ...", "Where is ...", "How do ...", "How soon
    can ...", "How come ...", "How high do ..."). None for other openings: an amount asked of a noun
    ("How many legs does ..."), and "when" as a conjunction ("When I run, ...")."""
    if len(tokens) < 2:
        return None
    if len(tokens) > 3 and tokens[0] in ("at", "in") and tokens[1] in ("what", "which"):
        # "At what temperature does ...", "In what year did ..."; not when the prompt offers the answer itself,
        # which asks whether it is right: "At what temperature should I bake kale, 180 degrees?"
        kind = _ASKED_AT.get(tokens[2])
        offered = any(t[0].isdigit() for t in tokens)
        return kind if kind is not None and tokens[3] in _AUXILIARIES and not offered else None
    kind = _ASKED_AS.get((tokens[0], tokens[1]))
    if kind is not None:
        return kind if tokens[1] == "come" or (len(tokens) > 2 and tokens[2] in _AUXILIARIES) else None
    kind = _ASKS.get(tokens[0])
    if kind is None:
        return None
    if kind == "place" and tokens[-2:] == ("come", "from"):
        # Where a thing comes from is its origin, which "why" asks too ("Why is the ocean salty?" / "Where does
        # all the salt in the sea come from?"), as "What is the origin of ..." does.
        kind = "reason"
    return kind if tokens[0] in _ALWAYS_ASKS or tokens[1] in _AUXILIARIES else None


_BE = frozenset(_words("is are was were"))
_DO = _AUXILIARIES - _BE  # "What does X mean?"
_ARTICLE = frozenset(_words("a an the"))
_NAMING = frozenset(_words("word term phrase expression"))
#: Words that make a "what is ..." or "which ..." question ask for a reason after all: "What is the reason
#: flamingos are pink?", "What is causing Venice to sink?", "Which factors led to ...?".
_REASON_WORDS = frozenset(_words("reason reasons cause causes causing caused point purpose factor factors psychology "
                                 "science meaning origin history story explanation behind making happening"))
_MAX_DEFINED_WORDS = 4


def _defined(tokens: tuple[str, ...]) -> bool:
    """Whether the prompt only asks what a thing is or what a word means: "What is a hat trick?", "What was the
    Cold War?", "What does the word 'petrichor' mean?". The thing named in a few topic words, nothing about it
    asked (no "of", "for", "best", no second question): "What is the capital of France?" asks something else."""
    if len(tokens) < 2 or tokens[0] != "what":
        return False
    if tokens[1] in _DO and tokens[-1] == "mean":
        rest = list(tokens[2:-1])
    else:
        rest = list(tokens[2:] if tokens[1] in _BE else tokens[1:])  # "What's a ..." parses as "what a ..."
    while rest and (rest[0] in _ARTICLE or rest[0] in _NAMING):
        rest.pop(0)
    return (0 < len(rest) <= _MAX_DEFINED_WORDS
            and not any(t in _STOP or t in _QWORDS or t in _DIRECTION_MARKERS or t in _REASON_WORDS
                    or t[0].isdigit() for t in rest))


def _selects(tokens: tuple[str, ...]) -> bool:
    """Whether the prompt asks which things of a kind: "Which countries have compulsory voting?" (not "Which is
    ...", nor "Which factors led to ...", which ask a reason)."""
    return (len(tokens) > 2 and tokens[0] == "which" and tokens[1] not in _STOP
            and tokens[1] not in _REASON_WORDS)


_ASKED_OF_A_FACT = frozenset({"time", "place", "person", "quantity"})


_CLAUSE_END = re.compile(r"[.:;!?]\s+")
_MIN_CLAUSE_WORDS = 4


def _question_clause(text: str) -> str:
    """The question a prompt ends on, after what it tells first: "My kid asked me this and I had no idea: how were
    the pyramids built?" asks "how were the pyramids built?". The whole prompt when it asks nothing at its end, or
    only a few words that lean on what came before ("My PC can't get on the Wi-Fi. What's wrong?")."""
    text = text.strip()
    if not text.endswith("?"):
        return text
    clause = _CLAUSE_END.split(text)[-1]
    return clause if len(clause.split()) >= _MIN_CLAUSE_WORDS else text


def _distance_against_time(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """ "How far (away) is ..." against "How long does (would, will, ...) ...": not "How long is a marathon?", which
    asks its length."""
    return (a[:2] == ("how", "far") and len(b) > 2 and b[:2] == ("how", "long") and b[2] in _AUXILIARIES
            and b[2] not in _BE)


def asks_differ(query: str, candidate: str) -> bool:
    """Whether both prompts open by asking for different kinds of answer: "When did the Berlin Wall fall?"
    and "Where did the Berlin Wall fall?", "How should I store basil?" and "Why should I store basil?"; what
    a thing is against anything else asked of it but how; which things against why; a time, a place, a
    person or an amount against whether something is so. Otherwise "what" and "which" ask for anything and
    are left to the heads: "what causes migraines?" and "why do people get migraines?" are one question."""
    qt, ct = _parse(_question_clause(query)).tokens, _parse(_question_clause(candidate)).tokens
    a, b = _asks_for(qt), _asks_for(ct)
    # What a thing is, against who, when, where, why or how much of it, or whether it is so: "What is a hat
    # trick?" / "Why is it called a hat trick?", "What was the Cold War?" / "Who won the Cold War?", "What is
    # Occam's razor?" / "Is Occam's razor always right?". A manner stays loose, as below ("What is Bitcoin?" /
    # "How does Bitcoin work?" is left to the heads). Which things of a kind, against why: "Which countries have
    # compulsory voting?" / "Why do some countries have compulsory voting?".
    # A distance against a time: "How far away is the nearest star?" / "How long would it take a spacecraft to reach
    # the nearest star?" (both an amount to the kinds below).
    if _distance_against_time(qt, ct) or _distance_against_time(ct, qt):
        return True
    if _defined(qt) and (b not in (None, "manner") or asks_yes_or_no(candidate)):
        return True
    if _defined(ct) and (a not in (None, "manner") or asks_yes_or_no(query)):
        return True
    if (_selects(qt) and b == "reason") or (_selects(ct) and a == "reason"):
        return True
    # A time, a place, a person or an amount, against whether something is so: "How long does it take to learn
    # piano at 40?" / "Is it too late to learn piano at 40?".
    if (a in _ASKED_OF_A_FACT and asks_yes_or_no(candidate)) or (b in _ASKED_OF_A_FACT and asks_yes_or_no(query)):
        return True
    if a is None or b is None or a == b:
        return False
    if "quantity" in (a, b):  # "How high do planes fly?" / "Why do planes fly so high?"; but "How long ago did
        return {a, b} == {"quantity", "reason"}  # X happen?" asks "When did X happen?"
    # "How" is asked loosely: "How do I check my refund?" = "Where can I track my refund?", "How do I know
    # it's time for new tires?" = "When should I replace my tires?" (measured: counting "how" against the
    # others refused as many of our rewordings as traps). A person, a time, a place and a reason stay apart,
    # and so do a manner and a reason: "How did the Egyptians mummify bodies?" / "Why did they ...?", "How do
    # I stop procrastinating?" / "Why do I procrastinate?" (over every labelled set: 41 traps, 2 rewordings).
    return "manner" not in (a, b) or {a, b} == {"manner", "reason"}


# What to do about a thing against whether it is so, or why: "What should I do if my partner is cheating?" / "How
# do I know if my partner is cheating?", "Why does my car overheat in traffic?" / "What should I do if my car
# overheats in traffic?". An action asked for, against a sign or a cause. A remedy is such an action, and "what
# causes" such a cause: "What causes shin splints?" / "How do you treat shin splints?", "My sink drain smells bad.
# What causes it?" / "... How do I fix it?".
_REMEDY = (r"(?:stop|fix|treat|cure|prevent|get rid of|reduce|relieve|ease|soothe|deal with|repair|unclog|"
           r"remove|lower|overcome|beat|manage)")
_ACTION = re.compile(r"\bwhat (?:should|can|do|shall) (?:i|we|you) do\b|\bwhat to do\b"
                     rf"|\bhow (?:do|can|should|would|could) (?:i|we|you) {_REMEDY}\b|\bhow to {_REMEDY}\b"
                     r"|\bmake (?:it|them|this|that) (?:stop|go away)\b",
                     re.IGNORECASE)
_DIAGNOSIS = re.compile(r"\bhow (?:do|can|would|will) (?:i|you|we) (?:know|tell)\b|\bhow to tell\b|\bwhy\b"
                        r"|\bwhat (?:causes|caused|makes|made|is causing|could cause|can cause)\b"
                        r"|\bwhat (?:is|are|was|were) the (?:main )?(?:cause|causes|reason|reasons)\b",
                        re.IGNORECASE)


def _action_or_diagnosis(text: str) -> str | None:
    """"action" or "diagnosis" when the prompt asks for one of them alone, else None."""
    action, diagnosis = _ACTION.search(text) is not None, _DIAGNOSIS.search(text) is not None
    return None if action == diagnosis else ("action" if action else "diagnosis")


# Two things compared, against one turned into the other: "What is the difference between a list and a tuple in
# Python?" / "How do I convert a list to a tuple in Python?" (the pair model sure at +2.1).
_DIFFERENCE = re.compile(r"\b(?:difference|differences|differ|differs|different|vs\.?|versus)\b", re.IGNORECASE)
_CONVERSION = re.compile(
    r"\b(?:convert|converting|turn|turning|transform|transforming|cast|casting)\b.*\b(?:to|into)\b", re.IGNORECASE)


def difference_against_conversion(query: str, candidate: str) -> bool:
    """Whether one prompt asks how two things differ and the other how to turn one into the other."""
    def asks(text: str) -> tuple[bool, bool]:
        return bool(_DIFFERENCE.search(text)), bool(_CONVERSION.search(text))

    (difference_q, conversion_q), (difference_c, conversion_c) = asks(query), asks(candidate)
    return (difference_q and not conversion_q and conversion_c and not difference_c) or (
        difference_c and not conversion_c and conversion_q and not difference_q)


def action_against_diagnosis(query: str, candidate: str) -> bool:
    """Whether one prompt asks what to do and the other, asking nothing of the kind, how to tell or why."""
    a = _action_or_diagnosis(query)
    return a is not None and {a, _action_or_diagnosis(candidate)} == {"action", "diagnosis"}


# One thing asked of, in two kinds of question: "How do I prune an apple tree?" / "When should I prune an apple
# tree?", "Should I pay off my student loans early?" / "How do I pay off my student loans early?". Only where all but
# the opening is the same: a manner asked loosely with other words is left to the heads (asks_differ).
_ASKER = frozenset(_words("i we you"))
_WHETHER_ASKER = frozenset(_words("i we"))  # "Can you ...?" is a request put politely


def _ask_and_rest(tokens: tuple[str, ...]) -> tuple[str, tuple[str, ...]] | None:
    """The kind of answer a question asks for ("manner", "time", ..., "yesno") and the words it asks it of."""
    if len(tokens) > 3 and tokens[0] in _ASKS and tokens[1] in _AUXILIARIES and tokens[2] in _ASKER:
        kind, rest = _ASKS[tokens[0]], tokens[3:]
    elif len(tokens) > 2 and tokens[0] in _ASKS and tokens[0] != "why" and tokens[1] == "to":
        kind, rest = _ASKS[tokens[0]], tokens[2:]  # "how to X", "when to X", "where to X"
    elif len(tokens) > 2 and tokens[0] in _AUXILIARIES and tokens[1] in _WHETHER_ASKER:
        kind, rest = "yesno", tokens[2:]
    else:
        return None
    return kind, tuple(t for t in rest if t not in _ARTICLE)


def ask_changed_alone(query: str, candidate: str) -> bool:
    """Whether the prompts ask of the same words but open asking for another kind of answer, one of them a
    manner (not against a place) or a yes or no."""
    a = _ask_and_rest(_parse(_question_clause(query)).tokens)
    b = _ask_and_rest(_parse(_question_clause(candidate)).tokens)
    # "How do I report a scam website?" / "Where can I report a scam website?": a manner and a place ask one thing
    return (a is not None and b is not None and a[1] == b[1] and a[0] != b[0]
            and bool({a[0], b[0]} & {"manner", "yesno"}) and {a[0], b[0]} != {"manner", "place"})


# A thing left out on one side only: "a 2 week itinerary for Italy excluding Rome" / "... for Italy". Not "without":
# it names a means as often as an exclusion ("unclog a drain without chemicals" / "... naturally").
_EXCLUSION = re.compile(r"\b(?:excluding|except|other than|apart from|aside from|not including|but not)\b",
                        re.IGNORECASE)


def _left_out(text: str, found: re.Match[str], other: str) -> bool:
    """Whether ``text`` leaves out (after ``found``) a thing ``other`` does not name at all: what it leaves out is
    news, not a restatement ("kill weeds but not the grass" / "get rid of weeds without killing the grass")."""
    named = {w.lower() for w in _RAW_WORD.findall(other)}
    after = [w.lower() for w in _RAW_WORD.findall(text[found.end():])]
    thing = next((w for w in after if w not in _ARTICLE), None)
    return thing is not None and thing not in named


def exclusion_added(query: str, candidate: str) -> bool:
    """Whether one prompt leaves something out ("excluding", "except", "other than", ...) that the other, leaving
    nothing out, does not name."""
    a, b = _EXCLUSION.search(query), _EXCLUSION.search(candidate)
    if a is not None and b is None:
        return _left_out(query, a, candidate)
    if b is not None and a is None:
        return _left_out(candidate, b, query)
    return False


# Switching a thing off against setting it up or on: "how do I turn off two-factor authentication on Gmail" / "how
# do I set up two-factor authentication on Gmail" (phrasal verbs the single-word opposites cannot see).
_OFF = re.compile(r"\b(?:turn(?:ing|ed|s)? off|switch(?:ing|ed|es)? off|shut(?:ting|s)? off|disabl(?:e|es|ed|ing)|"
                  r"deactivat(?:e|es|ed|ing))\b", re.IGNORECASE)
_ON = re.compile(r"\b(?:turn(?:ing|ed|s)? on|switch(?:ing|ed|es)? on|set(?:ting|s)? up|enabl(?:e|es|ed|ing)|"
                 r"activat(?:e|es|ed|ing))\b", re.IGNORECASE)


def switched_the_other_way(query: str, candidate: str) -> bool:
    """Whether one prompt switches a thing off and the other on (or sets it up), neither doing both."""
    def way(text: str) -> str | None:
        off, on = bool(_OFF.search(text)), bool(_ON.search(text))
        return None if off == on else ("off" if off else "on")

    a = way(query)
    return a is not None and {a, way(candidate)} == {"off", "on"}


# Whether something may be done against whether it must be: "Can I roll over my 401(k) into an IRA?" / "Do I have
# to roll my 401(k) into an IRA?", "Do I need to refrigerate ketchup after opening?" / "Can I leave ketchup out
# ...?". With a negation on one side only the two may be one question ("Do you need to play the earlier games
# first?" / "Can I start without playing them?"), so the negations must be alike.
_MAY = re.compile(r"^\s*(?:can|could|may) (?:i|we|you|one|any|a|an|the|my|our)\b", re.IGNORECASE)
_MUST = re.compile(r"^\s*(?:must\b|do (?:i|we|you) (?:have|need) to\b|does (?:it|one|he|she) (?:have|need) to\b"
                   r"|is it (?:necessary|mandatory|required|compulsory) to\b|am i (?:required|obliged) to\b)",
                   re.IGNORECASE)


def permission_against_obligation(query: str, candidate: str) -> bool:
    """Whether one prompt asks whether something may be done and the other whether it must be."""
    def kind(text: str) -> str | None:
        if _MAY.match(text):  # "Can you tell me if I have to ...?" is a request, not a permission asked
            return "may" if asks_yes_or_no(text) else None
        return "must" if _MUST.match(text) else None

    a, b = kind(query), kind(candidate)
    return ({a, b} == {"may", "must"}
            and _parse(query).negations == _parse(candidate).negations)


# Something set aside and the question then asked of the rest: "Apart from zyrtec, what other medications can I
# have?", "Besides Python, which other languages ...?". The other prompt, which sets nothing aside, asks of the thing
# itself ("Does zyrtec help for swollen lips?").
_SET_ASIDE = re.compile(r"\b(?:apart from|aside from|besides|other than|except(?: for)?|excluding)\b", re.IGNORECASE)
_OTHERS_ASKED = re.compile(r"\b(?:what|which|any) (?:other|else)\b|\banything else\b|\bother (?:options|ways)\b",
                           re.IGNORECASE)


def asks_of_the_others(query: str, candidate: str) -> bool:
    """Whether one prompt sets a thing aside and asks what else there is while the other sets nothing aside: "Apart
    from huntington disease, what other diseases are congenital?" / "Is huntington's disease congenital?". Over every
    labelled set and the blind files, 2 traps (MQP) and no rewording."""
    def kind(text: str) -> bool | None:  # True: both; False: neither; None: one alone, which says nothing here
        aside, others = bool(_SET_ASIDE.search(text)), bool(_OTHERS_ASKED.search(text))
        return True if aside and others else None if aside or others else False

    a, b = kind(query), kind(candidate)
    return a is not None and b is not None and a != b


# How often, where it is unmistakable: "daily", "weekly", "every day", "once a week", "three times a month". ("A
# month" alone is as often a span, "for a month", as a rate.)
# "Can you write me a haiku?" is a request, not a yes/no question; "Can you eat raw dough?" is one (the generic you).
_REQUEST_VERBS = frozenset(_words(
    "write give tell suggest recommend help explain show make list translate summarize summarise create draft "
    "compose generate name find send check fix rewrite describe provide share teach change convert calculate"))
_POLITE = frozenset(_words("can could would will"))


def asks_yes_or_no(text: str) -> bool:
    """Whether a prompt asks yes or no ("Is it safe to clear my cache?", "Does the Pomodoro technique work?"),
    not a request put politely ("Can you write me a riddle?", "Do you know ...?"), a way asked for ("Is there
    a way to ...?") or a choice ("Is it 'could of' or 'could have'?")."""
    parsed = _parse(text)
    if parsed.qtype != "yesno":
        return False
    t = parsed.tokens
    if len(t) > 2 and t[0] in _POLITE and t[1] == "you" and (t[2] in _REQUEST_VERBS or t[2] in ("please", "pls")):
        return False
    if len(t) > 2 and t[0] in ("do", "does") and t[1] == "you" and t[2] in ("know", "happen"):
        return False
    if t[:3] in (("is", "there", "way"), ("is", "there", "any")) or t[:4] == ("is", "there", "a", "way"):
        return False
    return "or" not in t
