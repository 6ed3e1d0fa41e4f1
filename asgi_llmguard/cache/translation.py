"""A bare translation request read as (target language, source language, text): "Translate into Swedish: Our
office will be closed on Friday." and "Swedish translation: Our office will be closed on Friday." ask for one
translation, which the pair model (taught by PAWS and our contrasts that a changed instruction changes the
answer) refuses at cosine 0.98.

Only the plainest requests are read: the instruction says nothing but "translate" (or "put this into", "how do
you say", "what's ... in", "... translation") and the languages; any other word in it ("formal", "and explain the
grammar", "keeping the tone informal", "with pinyin") leaves the prompt unread, so such a pair goes to the
verifier as before. The text is compared whole, case and closing punctuation aside.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from .wording import _parse, _words

__all__ = ["Translation", "answer_language_added", "same_translation", "translation_difference", "translation_request"]

_LANGUAGES = frozenset(_words(
    "english spanish french german dutch swedish italian portuguese russian chinese mandarin cantonese japanese "
    "korean arabic hindi turkish polish greek hebrew vietnamese thai indonesian danish norwegian finnish czech "
    "ukrainian romanian hungarian swahili persian farsi urdu bengali tagalog malay latin catalan croatian serbian "
    "bulgarian slovak slovenian estonian latvian lithuanian icelandic irish welsh"))
_QUOTES = "\"'\u201c\u201d\u2018\u2019"  # straight and curly, double and single
# Two-word names of one language, read as one.
_LANGUAGE_NAMES = {"mandarin chinese": "mandarin", "chinese (simplified)": "simplified chinese",
                   "chinese (traditional)": "traditional chinese", "farsi": "persian"}
_LANGUAGE = (r"(?P<{name}>(?:mandarin|simplified|traditional|brazilian) (?:chinese|portuguese)"
             r"|chinese \((?:simplified|traditional)\)|[a-z]+)")
_OBJECT = r"(?:(?:this|that|it|the following)(?: (?:text|sentence|phrase|line|paragraph|word))?)"
_FROM = r"(?:from {src} )?".format(src=_LANGUAGE.format(name="src"))
_TO = r"(?:in)?to " + _LANGUAGE.format(name="dst")
_IN = r"in " + _LANGUAGE.format(name="dst")
_TEXT = r"(?P<text>.+)"
_QUOTED = rf"(?P<q>[{_QUOTES}])(?P<text>.+)[{_QUOTES}]"
_POLITE = r"(?:(?:please|can you|could you|would you) )*"

_FORMS = [re.compile(form, re.DOTALL) for form in (
    rf"{_POLITE}translate (?:{_OBJECT} )?{_FROM}{_TO} ?[:\-] ?{_TEXT}",  # Translate into Swedish: T
    rf"{_POLITE}translate (?:this |the following )?(?P<src>[a-z]+) (?:text |sentence |phrase )?{_TO} ?[:\-] ?{_TEXT}",
    rf"{_LANGUAGE.format(name='dst')} translation ?[:\-] ?{_TEXT}",  # Swedish translation: T
    rf"{_POLITE}put {_OBJECT} into {_LANGUAGE.format(name='dst')} ?[:\-] ?{_TEXT}",  # Put this into Dutch: T
    rf"{_POLITE}translate {_QUOTED} {_FROM}{_TO}",  # Translate "T" into French
    rf"(?:what(?:'s| is) the )?{_LANGUAGE.format(name='dst')} for {_QUOTED}",  # Mandarin Chinese for 'T'
    rf"{_POLITE}how (?:do|would) (?:you|i) say {_QUOTED} {_IN}",  # How do you say "T" in Japanese
    rf"what(?:'s| is) {_QUOTED} {_IN}",  # What's "T" in Italian
    rf"{_QUOTED} ?[.\-]? translate (?:this|that|it) {_FROM}{_TO}",  # "T." Translate this into Spanish
    rf"{_QUOTED} ?[.\-]? put (?:this|that|it) into {_LANGUAGE.format(name='dst')}",
    rf"{_QUOTED} ?[.,:\-]? {_IN}",  # "T" - in Italian
)]


class Translation(NamedTuple):
    """What a bare translation request asks: the text into ``target`` (from ``source`` when said)."""

    target: str
    source: str | None
    text: str

    def difference(self, other: Translation) -> str | None:
        """Why ``other`` asks for another translation: "direction" when the two languages trade places,
        "symbols_differ" for another text or another language; None for the same translation (a source said
        on one side only changes nothing: the text says what it is in)."""
        if self.text == other.text and self.source is not None and (self.source, self.target) == (other.target,
                                                                                                 other.source):
            return "direction"
        if self.target != other.target or self.text != other.text or (
                self.source is not None and other.source is not None and self.source != other.source):
            return "symbols_differ"
        return None


def _language(name: str | None) -> str | None:
    if name is None:
        return None
    name = _LANGUAGE_NAMES.get(name, name)
    words = name.replace("(", " ").replace(")", " ").split()
    return name if words and all(w in _LANGUAGES or w in ("simplified", "traditional", "brazilian") for w in words) \
        else None


# Contractions written out: "I'm allergic to peanuts" and "I am allergic to peanuts" translate alike. Only
# a pronoun's "'s" is "is"; a noun's is a possessive ("Anna's book").
_CONTRACTED = tuple((re.compile(pattern), long) for pattern, long in (
    (r"\b(can)'t\b", r"\1 not"), (r"\bwon't\b", "will not"), (r"n't\b", " not"), (r"\bi'm\b", "i am"),
    (r"\b(you|we|they)'re\b", r"\1 are"), (r"\b(he|she|it|that|what|there|here|who)'s\b", r"\1 is"),
    (r"'ve\b", " have"), (r"'ll\b", " will"), (r"\b(i|you|he|she|we|they)'d\b", r"\1 would")))


def _plain(text: str) -> str:
    """The text to translate, compared whole: spaces, case, contractions, surrounding quotes and closing
    punctuation aside."""
    text = " ".join(text.split()).lower().replace("\u2019", "'")
    text = text.strip(_QUOTES + " ").rstrip(".!?").strip(_QUOTES + " ")
    for pattern, long in _CONTRACTED:
        text = pattern.sub(long, text)
    return text


@lru_cache(maxsize=1024)
def translation_request(prompt: str) -> Translation | None:
    """The request ``prompt`` makes if it is a bare request to translate a text, else None."""
    flat = " ".join(prompt.split())
    lowered = flat.lower().rstrip(" ?.!")
    lowered = re.sub(r"[,]? (?:please|for me)$", "", lowered)
    for form in _FORMS:
        match = form.fullmatch(lowered)
        if match is None:
            continue
        groups = match.groupdict()
        target = _language(groups.get("dst"))
        source_name = groups.get("src")
        source = _language(source_name)
        if target is None or (source_name is not None and source is None):
            continue
        text = _plain(match.group("text"))
        if text:
            return Translation(target, source, text)
    return None


def _both(query: str, candidate: str) -> tuple[Translation, Translation] | None:
    a, b = translation_request(query), translation_request(candidate)
    return None if a is None or b is None else (a, b)


def same_translation(query: str, candidate: str) -> bool:
    """Whether both prompts are bare requests for one translation, however each is asked."""
    both = _both(query, candidate)
    return both is not None and both[0].difference(both[1]) is None


#: Names of one language, folded; English is left out (a request names it or not, "from English to French" /
#: "to French", with no change to what is asked).
_SAME_LANGUAGE = {"mandarin": "chinese", "cantonese": "chinese"}


def _non_english_language(word: str) -> str | None:
    """The language ``word`` names, folded (Mandarin is Chinese), unless it names English or none."""
    name = _SAME_LANGUAGE.get(word, word)
    return name if name in _LANGUAGES and name != "english" else None


def _languages_named(prompt: str) -> frozenset[str]:
    return frozenset(name for w in _parse(prompt).tokens if (name := _non_english_language(w)) is not None)


def languages_differ(query: str, candidate: str) -> bool:
    """Whether both prompts name languages and not the same ones: "What is 'apple' in French, German, and
    Spanish?" / "Translate the word 'apple' into French and German" (over every labelled set and the cross
    traps, 52 traps, 51 of them refused already, and no rewording)."""
    a, b = _languages_named(query), _languages_named(candidate)
    return bool(a and b and a != b)


def translation_difference(query: str, candidate: str) -> str | None:
    """Why two bare translation requests ask for different translations (:meth:`Translation.difference`);
    None when they do not differ or either prompt is not a bare request."""
    both = _both(query, candidate)
    return None if both is None else both[0].difference(both[1])


# The language the answer is asked in: "Answer in German: ...", "... Reply in Spanish.", "Explain X in French",
# "In Italian, what is ...?", "..., in Japanese please". In a sentence that says "mean", "say" or "called" the
# language is the question's subject ("Tell me what 'gracias' means in Spanish"), not the answer's.
_ANSWER_VERB = re.compile(r"\b(?:answer|reply|respond|write|explain|describe|summari[sz]e|tell me|give me|list|"
                          r"rewrite)\b")
_SUBJECT_LANGUAGE = re.compile(r"\b(?:means?|meaning|say|said|called|pronounced?|words?|spell|spelled)\b")
_IN_LANGUAGE = re.compile(r"\bin ([a-z]+)\b")
_SENTENCE_END = re.compile(r"[.?!:;]")
_AT_EITHER_END = (re.compile(r"(?:^|[.?!:;,] )(?:please )?in ([a-z]+)(?:,? please)?[.!]?$"),  # "..., in French."
                  re.compile(r"^(?:please )?in ([a-z]+)[,:]"))  # "In Italian, ..."


@lru_cache(maxsize=1024)
def _answer_language(prompt: str) -> str | None:
    """The language other than English that ``prompt`` asks its answer in, if it says so (cached: the query is
    read once for each of its candidates)."""
    flat = " ".join(prompt.split()).lower()
    for form in _AT_EITHER_END:
        match = form.search(flat)
        name = None if match is None else _non_english_language(match.group(1))
        if name is not None:
            return name
    for match in _IN_LANGUAGE.finditer(flat):  # "Explain what happened in Paris in French": each "in X"
        name = _non_english_language(match.group(1))
        if name is None:
            continue
        sentence = _SENTENCE_END.split(flat[: match.start()])[-1]
        if _ANSWER_VERB.search(sentence) and not _SUBJECT_LANGUAGE.search(sentence):
            return name
    return None


def answer_language_added(query: str, candidate: str) -> bool:
    """Whether one prompt asks for its answer in a language and the other names no language at all: "Answer in
    German: what is your favorite color?" / "What's your favorite color?" (the pair model sure at +3.4)."""
    for one, other in ((query, candidate), (candidate, query)):
        if _answer_language(one) is not None and not _languages_named(other):
            return True
    return False
