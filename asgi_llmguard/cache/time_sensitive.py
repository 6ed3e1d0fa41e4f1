"""Whether a prompt's right answer depends on when it is asked: such prompts skip the cache.

What only the world's present state answers always counts: the news, a forecast, prices and exchange
rates, "the latest", "the current president". A bare time word (now, today, tonight, currently, ...)
counts only in a clause that is not about the asker: "What's on TV tonight?" asks the clock, "I have
had a cough for a week now" tells a story whose answer does not change tomorrow (in MQP, 343 of 3064
questions carry such words, nearly all narrative).

Some text that looks like the clock is not asked about, and skipping the cache for it would only cost
hits (measured over our labelled sets: 40-odd prompts bypassed for no reason before these were read
apart):

* text handed over to work on: a quotation ("Translate 'see you tomorrow' into Italian") or what
  follows the colon of an instruction ("Summarize this news article: ...", "Proofread this: Their
  going to the store tomorrow"); its answer is the same any day;
* code that reads the clock ("How do I get the current date in JavaScript?", "a script that names the
  backup with today's date") and things called "current" that are no time ("the current directory");
* the climate, not the weather: weather in a month or a season, "usually", on another planet, or beside
  "climate" ("What's the weather like in Tokyo in August?", "Describe the weather on Mars");
* "headline", "breaking" and "news" as kinds of thing ("a catchy headline", "breaking up", "a news
  article about ..."), and "what time is it in Tokyo when it's 9 am in London" (a conversion).
"""

from __future__ import annotations

import re

__all__ = ["is_time_sensitive"]

_ALWAYS = re.compile(
    r"\b(news|(?:news|today'?s|top|latest|current) headlines?|headlines (?:today|now)|stock price|share price|"
    r"how(?: is|'s) the (?:stock )?market doing|exchange rate|live score|breaking news|latest|up[- ]to[- ]date|"
    r"as of (?:now|today)|what time is it(?! in [^?.!]* when)|what day is it|today'?s date|"
    r"current (?:price|time|date|president|prime minister|ceo|leader|champion|version|status|rate|events?)|"
    r"this (?:week|month|year|weekend)'s)\b",
    re.IGNORECASE,
)
_WEATHER = re.compile(r"\b(weather|forecast)\b", re.IGNORECASE)
_CLIMATE = re.compile(
    r"\b(january|february|march|april|may|june|july|august|september|october|november|december|spring|summer|"
    r"autumn|fall|winter|seasons?|usually|typically|normally|generally|on average|average|typical|climate|"
    r"year[- ]round|mars|venus|mercury|jupiter|saturn|uranus|neptune|pluto|moon|planets?)\b",
    re.IGNORECASE,
)
_TIME_WORDS = re.compile(
    r"\b(now|today|tonight|tomorrow|yesterday|currently|current|recent|recently|this (?:week|month|year|"
    r"morning|afternoon|evening|weekend)|at the moment|right now)\b",
    re.IGNORECASE,
)
_FIRST_PERSON = re.compile(r"\b(i|i'm|i've|i'd|i'll|me|my|mine|myself|we|we're|we've|us|our|ours)\b", re.IGNORECASE)
_CLAUSES = re.compile(r"[.!?;\n]+|,\s*(?:but|and|so)\s+")

_QUOTED = re.compile(r'"[^"]*"|“[^”]*”|(?<!\w)\'[^\']*\'(?!\w)')
# An instruction that hands text over after a colon: only what comes before the colon is asked.
_WORKS_ON = re.compile(
    r"\b(summari[sz]e|summary|translate|translation|proofread|rewrite|paraphrase|correct|fix|classify|categori[sz]e|"
    r"extract|simplify|shorten|condense|format|reply|respond|analy[sz]e|tag|count|edit|improve|polish|"
    r"convert|turn .* into)\b",
    re.IGNORECASE,
)
_NOT_CLOCK = re.compile(
    r"\b(?:current (?:working )?(?:directory|dir|folder|branch|user|line|row|index|element|item|node|value|page|"
    r"url|path|state|context|thread|window|tab|selection|iteration|position|file)|news (?:article|story|report|"
    r"release|piece|anchor|outlet|site|website|app)s?|headlines? (?:for|of) (?:a|an|my|our|the)|"
    r"(?:catchy|good|strong|great|short|better) headlines?|linkedin headlines?)\b",
    re.IGNORECASE,
)
_CODE = re.compile(
    r"\b(javascript|js|typescript|python|java|sql|bash|shell|powershell|script|function|regex|command|code|"
    r"query|excel|formula|c#|golang|rust|php|ruby|kotlin|swift|pandas|datetime|timestamp)\b",
    re.IGNORECASE,
)
_CLOCK_IN_CODE = re.compile(r"\b(?:current|today'?s|now)\W+(?:date|time|datetime|timestamp|year|month|day)\b",
                            re.IGNORECASE)


def _asked_part(text: str) -> str:
    """The prompt without the text it hands over (quotations, an instruction's payload) and without
    phrases that only look like the clock."""
    asked = _QUOTED.sub(" ", text)
    head, colon, _payload = asked.partition(":")
    if colon and _WORKS_ON.search(head):
        asked = head
    if _CODE.search(asked):
        asked = _CLOCK_IN_CODE.sub(" ", asked)
    return _NOT_CLOCK.sub(" ", asked)


def is_time_sensitive(text: str) -> bool:
    """Whether the right answer depends on when it is asked (module docstring)."""
    asked = _asked_part(text)
    if _ALWAYS.search(asked) is not None:
        return True
    clauses = _CLAUSES.split(asked)
    if any(_WEATHER.search(c) and not _CLIMATE.search(c) for c in clauses):
        return True
    if _TIME_WORDS.search(asked) is None:
        return False
    return any(_TIME_WORDS.search(clause) and not _FIRST_PERSON.search(clause) for clause in clauses)
