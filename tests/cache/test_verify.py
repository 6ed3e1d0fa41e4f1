"""The semantic cache's verifier: near-duplicates with different answers are refused, rewordings served.

Similarities come from the real embedding model and verdicts from the packaged pair model, as the
cache would see them. The aggregate tests run whole pair files of tests/data/; they guard against
regressions (the pair model trained on part of some of them), while bench/cache_quality.py gives the
held-out figures.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from pathlib import Path

import numpy as np
import pytest

from asgi_llmguard.cache.audit.probe import log_odds
from asgi_llmguard.cache.question_kinds import (
    ask_changed_alone,
    asks_yes_or_no,
    exclusion_added,
    switched_the_other_way,
)
from asgi_llmguard.cache.same_question import _canonical_words
from asgi_llmguard.cache.verify import (
    FEATURE_NAMES,
    PAIR_MODEL,
    STRICTNESS_LEVELS,
    Restatement,
    Rewording,
    Verdict,
    Verifier,
    alternatives_swapped,
    hard_rule_refusal,
    only_synonyms_differ,
    pair_features,
    same_question_in_other_words,
)
from asgi_llmguard.cache.wording import acronym_s_dropped, one_number_replaced, ratings_traded

DATA = Path(__file__).parent.parent / "data"
PACKAGED = Path(__file__).resolve().parents[2] / "asgi_llmguard" / "data" / "verifier.json"

class Cosine:
    """Cosine of two prompts under the real model (vectors are unit length), and each prompt's vector: the
    verifier reads a query's topic from it, as the cache does."""

    def __init__(self, model_dir: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import fastembed

        self._model = fastembed.TextEmbedding(
            "sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(model_dir), threads=1
        )
        self._cache: dict[str, np.ndarray] = {}

    def vector(self, text: str) -> np.ndarray:
        if text not in self._cache:
            self._cache[text] = np.asarray(next(iter(self._model.embed([text]))), dtype=np.float32)
        return self._cache[text]

    def __call__(self, a: str, b: str) -> float:
        return float(np.dot(self.vector(a), self.vector(b)))


@pytest.fixture(scope="module")
def cosine(model_dir: Path) -> Cosine:
    return Cosine(model_dir)


@pytest.fixture(scope="module")
def verifier() -> Verifier:
    return Verifier()


@pytest.fixture(scope="module")
def floorless() -> Verifier:
    """Judges a pair whatever its cosine: for the reason a pair is refused, not the floor."""
    return Verifier(threshold=0.0)


def served(verifier: Verifier, cosine: Cosine, query: str, cached: str) -> tuple[bool, float, Verdict]:
    """What the cache does: consider the candidate above the strictness's floor, then ask the verifier (with the
    query's topic read from its vector)."""
    sim = cosine(query, cached)
    verdict = verifier.check(query, cached, sim, general=verifier.general_topic(cosine.vector(query)))
    return sim >= verifier.threshold and verdict.accepted, sim, verdict


# Pairs written for this test, not in the trap file: (query, cached prompt, reason expected).
TRAPS_BY_CATEGORY = [
    ("Convert 5 km to miles", "Convert 8 km to miles", "numbers_differ"),
    ("How do I convert a list to a tuple in Python?", "What is the difference between a list and a tuple in Python?",
     "question_type"),
    (
        "Translate 'where is the station' from English to French",
        "Translate 'where is the station' from French to English",
        "direction",
    ),
    ("How do I convert a tuple to a list in Python?", "How do I convert a list to a tuple in Python?", "direction"),
    # "with" is not symmetric: replacing X with Y is the opposite of replacing Y with X.
    ("Should I put on sunscreen and then moisturiser?", "Should I put on moisturiser and then sunscreen?",
     "direction"),  # nor is "and" in a sequence
    ("Replace the commas with dots in this CSV", "Replace the dots with commas in this CSV", "direction"),
    # A trap asked against a reworded stored prompt: an arrow points the way "to" does. (Not yet refused:
    # "How do I convert MP3 to MP4?" against "How can I turn an mp4 into an mp3?": the direction feature
    # fires, the pair model's confidence outweighs it.)
    ('JSON -> YAML please: {"name": "app", "version": 2}', 'Convert this YAML to JSON: {"name": "app", "version": 2}',
     "direction"),
    ("Which houseplants are safe for cats?", "Which houseplants are not safe for cats?", "negation"),
    ("What is the warmest month in Lisbon?", "What is the coldest month in Lisbon?", "comparative"),
    ("Find the largest number in a Python list", "Find the smallest number in a Python list", "comparative"),
    ("Is it OK to drink coffee before a blood test?", "Is it bad to drink coffee before a blood test?", "comparative"),
    # The two sides of one thing in code: a terse query under the floor, within the reach for short prompts.
    ("sort dict by key python", "How do I sort a dictionary by value in Python?", "comparative"),
    ("How can I write a csv with python?", "How do I read a CSV file in Python?", "comparative"),
    # Codes: the heads see them only as number fragments, the identifier rule refuses them outright.
    ("Tell me about the number 446682b99abb please", "Tell me about the number 50503e6d5c41 please",
     "numbers_differ"),
    ("What changed in ES2015?", "What changed in ES2016?", "numbers_differ"),
    ("How much does gpt-4o cost per token?", "How much does gpt-4o-mini cost per token?", "numbers_differ"),
    ("Is CO dangerous to breathe?", "Is CO2 dangerous to breathe?", "numbers_differ"),  # a name, with a number
    ("How much is $100 in yen?", "How much is €100 in yen?", "numbers_differ"),  # currency signs are units
    ("Is 30 mph fast for a bicycle?", "Is 30 km/h fast for a bicycle?", "numbers_differ"),  # one amount, two units
    ("Wie viele Einwohner hat Berlin?", "Wie viele Einwohner hat München?", "entity"),  # words of any script
    ("Ist es sicher, Ibuprofen mit Alkohol zu nehmen?", "Ist es nicht sicher, Ibuprofen mit Alkohol zu nehmen?",
     "negation"),
    ("When did the Berlin Wall fall?", "Where did the Berlin Wall fall?", "question_type"),
    # A manner and a reason: the asks rule refuses "how" against "why" (and leaves "how" against the others).
    ("How should I store fresh basil?", "Why should I store fresh basil?", "question_type"),
    ("What foods should I avoid if I have acid reflux?", "What foods help if I have acid reflux?", "comparative"),
    ("Vegetables you can freeze raw", "Vegetables you can't freeze raw", "negation"),  # a negation alone
    ("Create a 7-day meal plan for a vegetarian", "Create a 7-day meal plan for a vegan", "comparative"),
    ("ibuprofen dose child", "ibuprofen dose adult", "comparative"),  # who it is for
    ("Name three animals that live in the Arctic", "Name three animals that live in the Antarctic", "comparative"),
    # Operators and code: the word features read letters and digits only; the symbol rule reads the rest.
    ("What does this print in Python: print(7 + 2)", "What does this print in Python: print(7 - 2)", "symbols_differ"),
    ("Fix this SQL: SELECT * FROM users WHERE age > 30", "Fix this SQL: SELECT * FROM users WHERE age < 30",
     "symbols_differ"),
    ("Explain this regex: ^[a-z]+$", "Explain this regex: ^[A-Z]+$", "symbols_differ"),
    ("Is 0.1 + 0.2 == 0.3 in JavaScript?", "Is 0.1 + 0.2 === 0.3 in JavaScript?", "symbols_differ"),
    # Blind traps of the tenth session, each served once: an acronym's "S" (the parse folds it as a plural), a cause
    # against its effects, and one thing asked in another kind of question.
    ("What port does HTTPS use by default?", "What port does HTTP use by default?", "numbers_differ"),
    ("Explain the effects of the Great Depression.", "Explain the causes of the Great Depression.", "comparative"),
    ("How do I pay off my student loans early?", "Should I pay off my student loans early?", "question_type"),
    ("When should I prune an apple tree?", "How do I prune an apple tree?", "question_type"),
    # ... and of its fourth round: a thing left out, a thing switched the other way, another appliance
    ("what's a good 2 week itinerary for Italy", "what's a good 2 week itinerary for Italy excluding Rome",
     "more_specific"),
    ("how do I turn off two-factor authentication on Gmail", "how do I set up two-factor authentication on Gmail",
     "comparative"),
    ("how do I cook brown rice on the stove", "how do I cook brown rice in a rice cooker", "comparative"),
    ("Write a friendly reminder to the client that their invoice is overdue",
     "Write a formal reminder to the client that their invoice is overdue", "comparative"),  # a tone
    ("Email the client to cancel our meeting on Tuesday", "Email the client to reschedule our meeting to Tuesday",
     "comparative"),
    # ... and of its sixth, graded 3 ("roughly equivalent, an important detail differs"): where a food is kept, two
    # ratings of one unit trading the things they rate
    ("How long does cooked rice last in the fridge?", "How long can cooked rice be left out at room temperature?",
     "comparative"),
    ("Is it OK to put a 15 amp receptacle on a 20 amp circuit?", "Can I use a 20 amp outlet on a 15 amp circuit?",
     "direction"),
    # ... and of its seventh: a distance against a time, a condition added at the end
    ("How long would it take a spacecraft to reach the nearest star?", "How far away is the nearest star?",
     "question_type"),
    ("How to delete duplicate rows in SQL Server while keeping the most recent one?",
     "How do I delete duplicate rows in SQL Server?", "more_specific"),
]


@pytest.mark.model
@pytest.mark.parametrize(("query", "cached", "reason"), TRAPS_BY_CATEGORY)
def test_near_duplicates_with_different_answers_are_refused_with_a_reason(
    verifier: Verifier, floorless: Verifier, cosine: Cosine, query: str, cached: str, reason: str
) -> None:
    hit, sim, _verdict = served(verifier, cosine, query, cached)
    assert not hit
    verdict = floorless.check(query, cached, sim)
    assert not verdict.accepted, "the verifier itself must refuse, whatever the cosine"
    if reason in HARD_RULES and query not in LEFT_TO_COMBINER:  # refused before the combiner, with the rule's name
        assert verdict.reason == reason and verdict.score == 0.0
    else:  # the combiner blames the signal that pushed hardest: the difference itself or the pair model
        assert verdict.reason in (reason, PAIR_MODEL, "low_score"), verdict


HARD_RULES = ("numbers_differ", "symbols_differ", "question_type")
LEFT_TO_COMBINER: set[str] = set()

# Spellings of one amount that the hard rules must read alike (checked without the model).
SAME_AMOUNTS = [
    ("Convert 5 km to miles", "How many miles is 5 kilometres?"),
    ("What's 30 mph in km/h?", "convert 30 miles per hour to kilometers per hour"),
    ("What is 100 dollars in euros?", "Convert $100 to euros"),
    ("Sales rose 37 percent to 1.76 billion euros", "Sales rose 37 per cent to 1.76 billion euros"),
    ("Convert 100 km/h to mph.", "100 kilometres per hour in miles per hour?"),
    ("A worker earns $18 an hour. Weekly pay for 37.5 hours?", "Weekly pay at $18 per hour for 37.5 hours?"),
    ("Twenty five percent of 80?", "What is 25% of 80?"),
]


@pytest.mark.parametrize(("query", "cached"), SAME_AMOUNTS)
def test_hard_rules_read_spellings_of_one_amount_alike(query: str, cached: str) -> None:
    assert hard_rule_refusal(query, cached) is None
    assert hard_rule_refusal(cached, query) is None


@pytest.mark.parametrize(
    ("query", "cached"),
    [("How much is $100 in yen?", "How much is €100 in yen?"), ("Drive 60 km", "Drive 60 mi"),
     ("Is 30 mph fast?", "Is 30 km/h fast?"), ("Convert 5 km to miles", "Convert 8 km to miles")],
)
def test_hard_rules_refuse_another_amount(query: str, cached: str) -> None:
    assert hard_rule_refusal(query, cached) == "numbers_differ"
    assert hard_rule_refusal(cached, query) == "numbers_differ"


REWORDINGS = [
    # Not here, though true rewordings: "What is the capital of Canada?" / "Which city is the capital of
    # Canada?" and "What changed in ES2015?" / "Which changes did ES2015 bring?" are refused at the balanced
    # point (docs/cache-quality.md, Limits).
    # Issue 14: refused by the rule-only verifier (a reworded phrase read as another named thing).
    ("What's the capital city of France?", "What is the capital of France?"),
    ("How can I sort a Python dict by its values?", "How do I sort a dictionary by value in Python?"),
    ("How do I reverse a string in Python?", "Python: how can I reverse a string?"),
    ("Hi! How many grams are in a kilogram?", "How many grams are in a kilogram?"),
    ("What's the boiling point of water?", "What is the boiling point of water?"),
    ("How much is $100 in yen?", "How much is 100 dollars in yen?"),
    ("How can I turn an mp4 into an mp3?", "How do I convert mp4 to mp3?"),  # the same way: not a swap
    # ... and beside the tenth session's rules: a manner against a place, things praised or not, a power typed
    ("Where can I report a scam website?", "How do I report a scam website?"),
    ("How should I prune an apple tree?", "How do I prune an apple tree?"),
    ("things to do in lisbon?", "What are some good things to do in Lisbon?"),
    ("What is the meaning of E=mc²?", "What does E = mc^2 actually mean?"),
    ("How long can cooked chicken stay in the refrigerator?", "How long does cooked chicken last in the fridge?"),
    ("how far is a marathon", "How long is a marathon?"),  # a length, not a time
    ("What temperature should chicken be cooked to so it's safe to eat?",
     "What temperature should chicken be cooked to?"),
]


# British and American spellings of the same question: one answer serves both.
SPELLINGS = [
    ("Summarise the causes of the French Revolution.", "Summarize the causes of the French Revolution."),
    ("What colour is a flamingo and why?", "What color is a flamingo and why?"),
    ("How do I organise my kitchen cupboards?", "How do I organize my kitchen cupboards?"),
    ("Analyse this sentence for passive voice.", "Analyze this sentence for passive voice."),
    ("Where is the centre of mass of a cone?", "Where is the center of mass of a cone?"),
    ("Why is my anaemia getting worse?", "Why is my anemia getting worse?"),
]


# A phrase moved as a whole, with its preposition: the same question.
PHRASE_MOVES = [
    ("What is the boiling point of water at sea level?", "At sea level, what is the boiling point of water?"),
    ("How do I convert a list to a tuple in Python?", "In Python, how do I convert a list to a tuple?"),
    ("What is the cheapest flight from London to Paris?", "From London to Paris, what is the cheapest flight?"),
]


@pytest.mark.model
@pytest.mark.parametrize(("query", "cached"), REWORDINGS + SPELLINGS + PHRASE_MOVES)
def test_true_rewordings_are_served(verifier: Verifier, cosine: Cosine, query: str, cached: str) -> None:
    hit, _sim, verdict = served(verifier, cosine, query, cached)
    assert hit, verdict
    assert verdict.reason is None


@pytest.mark.model
@pytest.mark.parametrize(("query", "cached"), [
    ("Summarise the causes of the French Revolution.", "Summarize the effects of the French Revolution."),
    ("Is it safe to exercise with a cold?", "Is it safe to exercise with a fever?"),
])
def test_a_spelling_variant_does_not_hide_a_real_change(
    verifier: Verifier, cosine: Cosine, query: str, cached: str
) -> None:
    hit, _sim, verdict = served(verifier, cosine, query, cached)
    assert not hit, verdict


def test_only_a_whole_phrase_moving_counts_as_the_same_wording() -> None:
    from asgi_llmguard.cache.verify import _block_moved
    from asgi_llmguard.cache.wording import _parse

    def moved(a: str, b: str) -> bool:
        return _block_moved(_parse(a).tokens, _parse(b).tokens)

    assert moved("Take the pill before eating", "Before eating take the pill")
    assert not moved("How do I convert a list to a tuple?", "How do I convert a tuple to a list?")
    assert not moved("Is Berlin north of Munich?", "Is Munich north of Berlin?")
    assert not moved("I love only you", "I only love you")  # one word moving changes the meaning
    assert not moved("dog bites man in the park", "in the park man bites dog")
    assert not moved("same words", "same words")


def test_symbols_that_prose_uses_freely_do_not_count() -> None:
    from asgi_llmguard.cache.verify import symbols_differ

    for a, b in [
        ("I have had this cough for 3-4 days", "I have had this cough for 3 to 4 days"),
        ("Itching for 5+ years, what is it?", "Itching for more than 5 years, what is it?"),
        ("What is 15% of 80?", "What is 15 percent of 80?"),
        ("Aspirin allergy - is it worth a bracelet?", "Is a bracelet worth it for an aspirin allergy?"),
        ("What does `ls -la` do?", "What does ls -la do?"),
        ("Is this a well-known issue?", "Is this a well known issue?"),
    ]:
        assert not symbols_differ(a, b), (a, b)
    assert symbols_differ("Is -5 C below freezing?", "Is 5 C below freezing?")  # the sign of a number
    assert symbols_differ("What is 7+2?", "What is 7*2?")


def test_only_questions_that_open_asking_for_different_things_differ() -> None:
    from asgi_llmguard.cache.verify import asks_differ

    assert asks_differ("Who wrote Hamlet?", "When was Hamlet written?")
    assert not asks_differ("How soon can I eat after surgery?", "When can I eat after surgery?")
    assert not asks_differ("How come the sky is blue?", "Why is the sky blue?")
    assert not asks_differ("What causes migraines?", "Why do people get migraines?")  # "what" asks for anything
    assert not asks_differ("When I run, why do my knees hurt?", "Where do my knees hurt when I run?")  # a clause
    assert not asks_differ("How many legs does a spider have?", "Why do spiders have eight legs?")  # not opening
    # An amount asked with its verb ("How high do ...") is another question than a reason, not than a time.
    assert asks_differ("Why do planes fly so high?", "How high do planes fly?")
    assert asks_differ("Why is the Dead Sea shrinking?", "How fast is the Dead Sea shrinking?")  # a rate
    assert asks_differ("Why was the Eiffel Tower built?", "How long did it take to build the Eiffel Tower?")
    assert not asks_differ("How long ago did the dinosaurs die out?", "When did the dinosaurs die out?")
    assert not asks_differ("How long does it take to boil an egg?", "How do I boil an egg?")
    # A manner and a reason are two questions; "how" against a person, a time or a place is asked loosely.
    assert asks_differ("How did ancient Egyptians mummify bodies?", "Why did ancient Egyptians mummify their dead?")
    assert asks_differ("How do I stop procrastinating?", "Why do I procrastinate?")
    assert not asks_differ("How do I check my refund?", "Where can I track my refund?")


@pytest.mark.parametrize(("query", "cached", "changed"), [
    ("When should I prune an apple tree?", "How do I prune an apple tree?", True),
    ("How do I pay off my student loans early?", "Should I pay off my student loans early?", True),
    ("Why should I prune an apple tree?", "Should I prune an apple tree?", True),
    ("how to prune apple trees", "When should I prune an apple tree?", True),
    ("How should I prune an apple tree?", "How do I prune an apple tree?", False),  # one kind asked
    ("Where can I report a scam website?", "How do I report a scam website?", False),  # a manner asked as a place
    ("When should I prune a pear tree?", "How do I prune an apple tree?", False),  # more than the opening changed
    ("Can you prune an apple tree?", "How do you prune an apple tree?", False),  # a request put politely
])
def test_one_thing_asked_in_another_kind_of_question_is_another_question(query: str, cached: str,
                                                                          changed: bool) -> None:
    assert ask_changed_alone(query, cached) is changed
    assert ask_changed_alone(cached, query) is changed


@pytest.mark.parametrize(("query", "cached", "added"), [
    ("a 2 week itinerary for Italy excluding Rome", "a 2 week itinerary for Italy", True),
    ("Suggest a dessert except chocolate cake", "Suggest a dessert", True),
    # what is left out is named on the other side too: a restatement, not news
    ("how can i kill weeds in my lawn but not the grass", "How do I get rid of weeds without killing the grass?",
     False),
    ("a 2 week itinerary for Italy excluding Rome", "a 2 week itinerary for Italy without Rome", False),  # "without"
    ("a 2 week itinerary for Italy excluding Rome", "a 2 week itinerary for Italy other than Rome", False),  # both
])
def test_a_thing_left_out_on_one_side_only_is_a_more_specific_request(query: str, cached: str, added: bool) -> None:
    assert exclusion_added(query, cached) is added
    assert exclusion_added(cached, query) is added


@pytest.mark.parametrize(("query", "cached", "switched"), [
    ("How do I turn off 2FA on Gmail?", "How do I set up 2FA on Gmail?", True),
    ("Disable dark mode in Chrome", "How do I enable dark mode in Chrome?", True),
    ("I'd like to turn off auto-renewal.", "How do I turn on auto-renewal?", True),
    ("How do I turn off 2FA on Gmail?", "How do I disable 2FA on Gmail?", False),  # one way, two words
    ("How do I turn my phone off and on again?", "How do I turn on my phone?", False),  # both ways on one side
])
def test_a_thing_switched_the_other_way_is_another_request(query: str, cached: str, switched: bool) -> None:
    assert switched_the_other_way(query, cached) is switched
    assert switched_the_other_way(cached, query) is switched


@pytest.mark.parametrize(("query", "cached", "traded"), [
    ("Can I use a 20 amp outlet on a 15 amp circuit?", "Is it OK to put a 15 amp receptacle on a 20 amp circuit?",
     True),
    ("Can I use a 20 amp outlet on a 15 amp circuit?", "Is it OK to put a 20 amp receptacle on a 15 amp circuit?",
     False),  # each rating keeps its thing
    ("$1,000 at 5% after 10 years", "$1000 in 10 years at 5%", False),  # amounts told in another order
    ("The 14th, 16th and 117th lines had two battalions", "The 117th, 16th and 14th lines had two battalions",
     False),  # a list of ordinals
])
def test_two_ratings_of_one_unit_trading_their_things_are_another_question(query: str, cached: str,
                                                                            traded: bool) -> None:
    assert ratings_traded(query, cached) is traded
    assert ratings_traded(cached, query) is traded


@pytest.mark.parametrize(("query", "cached", "dropped"), [
    ("What port does HTTPS use by default?", "What port does HTTP use by default?", True),
    ("Is GPS accurate indoors?", "Is GP accurate indoors?", True),
    ("What port does HTTPS use by default?", "What port does https use by default?", False),  # the same word
    ("What does HTTPS stand for?", "What does SSL stand for?", False),  # another acronym: not this rule's
    ("How many APIs does it have?", "How many API does it have?", False),  # a plural written small
])
def test_an_acronyms_s_dropped_is_another_thing(query: str, cached: str, dropped: bool) -> None:
    assert acronym_s_dropped(query, cached) is dropped
    assert acronym_s_dropped(cached, query) is dropped


def test_what_a_thing_is_against_who_when_where_why_or_how_much_is_another_question() -> None:
    from asgi_llmguard.cache.verify import asks_differ

    assert asks_differ("Why is it called a hat trick?", "What is a hat trick?")
    assert asks_differ("What's a hat trick?", "Why is it called a hat trick?")
    assert asks_differ("What was the Cold War?", "Who won the Cold War?")
    assert asks_differ("What does the word 'petrichor' mean?", "Where does the word 'petrichor' come from?")
    # Which things of a kind, against why.
    assert asks_differ("Why do some countries have compulsory voting?", "Which countries have compulsory voting?")
    # A reason asked with "what" is still a reason; a thing's attribute is not what the thing is; a manner is loose.
    assert not asks_differ("Why do volcanoes erupt?", "What is the reason volcanoes erupt?")
    assert not asks_differ("Why is Venice sinking?", "What's causing Venice to sink?")
    assert not asks_differ("Where is the capital of France?", "What is the capital of France?")
    assert not asks_differ("What is Bitcoin?", "How does Bitcoin work?")
    assert not asks_differ("Why did Rome fall?", "Which factors led to the fall of Rome?")
    assert asks_differ("What is Occam's razor?", "Is Occam's razor always right?")  # whether it is so
    assert asks_differ("Is it too late to learn piano at 40?", "How long does it take to learn piano at 40?")
    assert not asks_differ("Is it safe to eat raw cookie dough?", "Why is raw cookie dough unsafe?")  # a reason: loose


def test_whether_one_may_against_whether_one_must_is_another_question() -> None:
    from asgi_llmguard.cache.question_kinds import permission_against_obligation
    from asgi_llmguard.cache.verify import hard_rule_refusal

    assert hard_rule_refusal("Do I have to roll my 401(k) into an IRA?", "Can I roll over my 401(k) into an IRA?") == (
        "question_type")
    assert permission_against_obligation("Do I need to refrigerate ketchup after opening?",
                                         "Can I leave ketchup out after opening?")
    assert permission_against_obligation("Must I stop breastfeeding while taking antibiotics?",
                                         "Can I take antibiotics while breastfeeding?")
    # A negation on one side: the same question asked the other way round.
    assert not permission_against_obligation("Do you need to play the earlier Zelda games first?",
                                             "Can I start with Breath of the Wild without playing the earlier ones?")
    assert not permission_against_obligation("Can I pay by card?", "Could I pay with a credit card?")
    assert not permission_against_obligation("Can you tell me if I have to pay tax on gifts?",
                                             "Do I have to pay tax on gifts?")  # a request put politely


def test_where_a_thing_comes_from_asks_its_origin_as_why_does() -> None:
    from asgi_llmguard.cache.question_kinds import asks_differ
    from asgi_llmguard.cache.verify import hard_rule_refusal

    assert not asks_differ("Where does the salt in the sea come from?", "Why is the ocean salty?")
    assert hard_rule_refusal("Where does the salt in the sea come from?", "Why is the ocean salty?") is None
    assert asks_differ("Where does the salt in the sea come from?", "When did the sea become salty?")
    assert asks_differ("Where is the Dead Sea?", "Why is the Dead Sea so salty?")  # a place is still a place


def test_im_typed_without_its_apostrophe_reads_as_i_am() -> None:
    assert same_question_in_other_words("explain like im 5 how a rainbow forms",
                                        "Explain like I'm five how a rainbow forms.")
    assert same_question_in_other_words("explain compound interest to me like im five",
                                        "Explain compound interest like I'm 5")  # "to me" asks nothing more


def test_asking_what_else_there_is_after_setting_a_thing_aside_is_another_question() -> None:
    from asgi_llmguard.cache.question_kinds import asks_of_the_others
    from asgi_llmguard.cache.verify import hard_rule_refusal

    assert hard_rule_refusal("Apart from ibuprofen, what other painkillers can I take for a headache?",
                             "Can I take ibuprofen for a headache?") == "question_type"
    assert asks_of_the_others("Is Python a good first language?", "Besides Python, which other languages are good "
                                                                  "for beginners?")
    # Both set something aside, or neither asks what else there is: no difference this rule reads.
    assert not asks_of_the_others("Apart from Restasis, what eye drops help watery eyes?",
                                  "What other eye drops besides Restasis help with watery eyes?")
    assert not asks_of_the_others("Apart from Restasis and Refresh, what eye drops would help watery eyes?",
                                  "I've tried Restasis and Refresh for watery eyes. What eye drop should I use?")
    assert not asks_of_the_others("What other languages are good for beginners?", "Which languages suit beginners?")


def test_a_negation_alone_is_refused_by_a_hard_rule() -> None:
    from asgi_llmguard.cache.verify import hard_rule_refusal
    from asgi_llmguard.cache.wording import only_negation_differs

    assert hard_rule_refusal("Vegetables you can't freeze raw", "Vegetables you can freeze raw") == "negation"
    assert only_negation_differs("Is it safe to eat raw eggs?", "Is it not safe to eat raw eggs?")
    assert not only_negation_differs("Why didn't my bread rise?", "Why did my bread not rise?")  # moved, not added
    assert not only_negation_differs("How do I unclog a drain?", "How do I unclog a drain without chemicals?")


def test_something_done_at_another_rate_is_refused_by_a_hard_rule() -> None:
    from asgi_llmguard.cache.verify import hard_rule_refusal
    from asgi_llmguard.cache.wording import frequencies_differ

    assert hard_rule_refusal("Is it OK to water succulents every day?", "Can I water my succulents once weekly?") == (
        "numbers_differ")
    assert frequencies_differ("Should I walk my dog every day?", "Should I walk my dog once a week?")
    assert not frequencies_differ("How much water should I drink daily?", "How much water should I drink every day?")
    assert not frequencies_differ("I've had heartburn every night for a month", "For a month I get heartburn nightly")


def test_a_thing_had_against_a_thing_gone_without_is_refused_by_a_hard_rule() -> None:
    from asgi_llmguard.cache.verify import hard_rule_refusal
    from asgi_llmguard.cache.wording import with_against_without

    assert hard_rule_refusal("How do I make bread with yeast?", "Recipe for bread with no yeast") == "negation"
    assert with_against_without("how to unclog a drain if I don't have a plunger",
                                "How do I unclog a drain with a plunger?")
    assert not with_against_without("CT scan with and without contrast", "CT scan with contrast and without it")
    assert not with_against_without("How do I cook rice without a rice cooker?", "rice cooking with no rice cooker")


def test_what_to_do_against_how_to_tell_or_why_is_another_question() -> None:
    from asgi_llmguard.cache.question_kinds import action_against_diagnosis
    from asgi_llmguard.cache.verify import hard_rule_refusal

    for a, b in [("How do I know if my partner is cheating?", "What should I do if my partner is cheating?"),
                 ("Why does my car overheat in traffic?", "What should I do if my car overheats in traffic?"),
                 ("What should I do if my baby has a fever of 101?", "How can you tell if a baby has a fever?"),
                 # a remedy against a cause
                 ("What causes shin splints?", "How do you treat shin splints?"),
                 ("My sink drain smells bad. What causes it?", "My sink drain smells bad. How do I fix it?"),
                 ("how to stop procrastinating at work", "why do i procrastinate at work"),
                 ("How do I know if my dog has separation anxiety?", "How do I treat separation anxiety in my dog?"),
                 ("My eye twitches. Why?", "My eye twitches. How do I make it stop?")]:
        assert action_against_diagnosis(a, b) and hard_rule_refusal(b, a) == "question_type", (a, b)
    for a, b in [("What should I do if my car overheats?", "My car overheats in traffic, what can I do?"),
                 ("Why does my car overheat and what should I do?", "What should I do if my car overheats?"),
                 ("How do I know if my baby has a fever?", "How can I tell if my baby has a fever?"),
                 ("How do I stop my dog barking?", "Why does my dog bark and how do I stop it?"),  # both asked
                 ("How do I treat shin splints?", "What is the best way to treat shin splints?"),
                 ("What causes shin splints?", "Why do I get shin splints?")]:
        assert not action_against_diagnosis(a, b), (a, b)


def test_an_amount_converted_the_other_way_is_refused_as_a_direction() -> None:
    from asgi_llmguard.cache.verify import hard_rule_refusal
    from asgi_llmguard.cache.wording import conversion_reversed

    # Units the unit table does not know count too: what follows the amount on one side is its target on the other.
    for a, b in [("How many km per hour are in 60 knots?", "60 km per hour equals how many knots?"),
                 ("How many joules are in 40 calories?", "Could you change 40 joules to calories for me?"),
                 ("what's 12 pints in liters", "12 liters equals how many pints?"),
                 ("Convert 100 dollars to euros", "Convert 100 euros to dollars"),
                 # a rate is converted into its base unit: "mph" where "... in miles per hour" is asked
                 ("Convert 45 mph to meters per second.", "What is 45 metres per second in miles per hour?")]:
        assert conversion_reversed(a, b) and conversion_reversed(b, a), (a, b)
        assert hard_rule_refusal(a, b) in ("direction", "numbers_differ"), (a, b)
    for a, b in [("How many miles is 5 km?", "5 km in miles"),
                 ("Give me 5 ideas for a birthday party for a 10-year-old",
                  "Can you suggest five birthday party ideas for a ten year old?"),  # counted, not converted
                 ("What is 350 degrees Fahrenheit in Celsius?", "350F to C"),
                 ("Convert 60 mph to km/h", "What is 60 miles per hour in kilometres per hour?")]:
        assert not conversion_reversed(a, b), (a, b)
    assert hard_rule_refusal("How many joules are in 40 calories?", "Could you change 40 joules to calories?") \
        == "direction"


def test_without_and_with_written_short_read_as_the_words() -> None:
    from asgi_llmguard.cache.wording import _parse, same_polarity

    assert _parse("tune a guitar w/o a tuner").tokens == _parse("tune a guitar without a tuner").tokens
    assert _parse("rice w/ beans").tokens == _parse("rice with beans").tokens
    assert same_polarity("How do I tune a guitar without a tuner?", "how do i tune a guitar w/o a tuner")
    assert _parse("100 km/h").tokens == ("100", "km", "h")


def test_spelling_folds_british_forms_and_leaves_short_and_other_words_alone() -> None:
    from asgi_llmguard.cache.wording import _norm_word

    assert {_norm_word(w) for w in ("summarised", "summarized")} == {"summarized"}
    assert _norm_word("colours") == _norm_word("color") == "color"
    assert _norm_word("centre") == "center" and _norm_word("travelled") == "traveled"
    assert _norm_word("catalogue") == "catalog" and _norm_word("paediatric") == "pediatric"
    for word in ("tour", "your", "more", "where", "figure", "entire", "filling", "filing"):
        assert _norm_word(word) == word


def _feature(name: str, query: str, candidate: str) -> float:
    """One of :func:`pair_features`, by name, at a cosine that no feature depends on here."""
    return dict(zip(FEATURE_NAMES, pair_features(query, candidate, 0.9), strict=True))[name]


def _opposite(query: str, candidate: str) -> float:
    return _feature("opposite", query, candidate)


def _rates(verifier: Verifier, cosine: Cosine, file: str) -> tuple[float, float, int, int]:
    """Rewordings served, traps served, and how many of each, for one pair file (second prompt asked)."""
    with (DATA / file).open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    same = [r for r in rows if r["same_answer"] == "1"]
    traps = [r for r in rows if r["same_answer"] == "0"]
    hit = {id(r): served(verifier, cosine, r["prompt_b"], r["prompt_a"])[0] for r in rows}
    return (sum(hit[id(r)] for r in same) / len(same), sum(hit[id(r)] for r in traps) / len(traps),
            len(same), len(traps))


# Measured on the whole files with the shipped model and weights (docs/cache-quality.md has the held-out
# test parts, which are the honest figures): the bounds sit a few points under what it does. The fresh files
# were written after the verifier was tuned (each before its first measurement; later rules were written
# after seeing some of their refusals): at the default point they serve no trap, but one in the fifth file
# (by the combiner, not by a shortcut).
@pytest.mark.model
@pytest.mark.parametrize(("file", "rewordings_at_least", "traps_at_most", "at_least_pairs"), [
    ("everyday_pairs.csv", 0.62, 0.03, (40, 100)),
    ("gateway_pairs.csv", 0.53, 0.06, (40, 100)),
    ("trap_pairs.csv", 0.55, 0.03, (40, 100)),
    ("fresh_everyday_pairs.csv", 0.78, 0, (20, 20)),
    ("fresh_everyday_pairs_2.csv", 0.68, 0, (20, 20)),
    ("fresh_everyday_pairs_3.csv", 0.72, 0, (20, 20)),
    ("fresh_gateway_pairs.csv", 0.75, 0, (20, 20)),
    ("fresh_everyday_pairs_4.csv", 0.78, 0, (20, 20)),
    ("fresh_everyday_pairs_5.csv", 0.66, 0, (20, 20)),  # "high-protein" / "high-fiber" foods: nutrients since 12-06
    ("fresh_everyday_pairs_6.csv", 0.8, 0, (20, 20)),
    ("fresh_everyday_pairs_7.csv", 0.7, 0, (20, 20)),
    ("fresh_gateway_pairs_2.csv", 0.6, 0, (20, 20)),
    ("fresh_everyday_pairs_8.csv", 0.6, 0, (20, 20)),
    ("fresh_everyday_pairs_9.csv", 0.65, 0, (20, 20)),
    ("fresh_everyday_pairs_10.csv", 0.7, 0, (30, 30)),  # written blind by a helper that read none of our code
    ("fresh_gateway_pairs_3.csv", 0.55, 0, (30, 30)),  # the same, in the gateway's style
    ("fresh_everyday_pairs_11.csv", 0.6, 0, (40, 30)),  # blind too; "foods to avoid" / "foods that help" served
    ("fresh_question_pairs.csv", 0.45, 1 / 32, (45, 30)),  # blind, Quora's style; "know if" / "treat" served
    # Blind, written after the reach's near step: "What does 'petrichor' mean?" / "Where does it come from?" served
    ("fresh_everyday_pairs_12.csv", 0.68, 1 / 45, (60, 40)),
    ("fresh_question_pairs_2.csv", 0.47, 0, (45, 30)),
    # Questions asked in another shape, and close ones that ask another thing; written by helpers from a prompt
    # that named the shapes the verifier refused (not blind to those), rows reusing our prompts dropped.
    ("question_shapes.csv", 0.42, 0.02, (400, 250)),
    # Blind, written by helpers in the fifth session of 2026-12-06 after its rules, measured once before any was read:
    # as the cache serves them (the reach under the floor included), 85.6% and 30.6% of the rewordings and no trap;
    # here, over the floor only, 19.4% of the Quora-style ones (its pairs meet at low cosine: 16.7% reach 0.86).
    ("fresh_everyday_pairs_13.csv", 0.8, 0, (90, 45)),
    ("fresh_question_pairs_3.csv", 0.22, 0, (36, 24)),
    # Blind, written by helpers in the sixth session of 2026-12-06 after the rewording credit, measured once before
    # any was read: as the cache serves them, 90.0% of the everyday rewordings with 1 trap of 45 ("calories" /
    # "carbs" in a banana: since refused) and 50.0% of the Quora-style ones with none; here, over the floor only.
    ("fresh_everyday_pairs_14.csv", 0.76, 0, (90, 45)),
    ("fresh_question_pairs_4.csv", 0.36, 0, (50, 30)),
    # Blind, written by helpers in the seventh session of 2026-12-06, measured once before any was read: as the cache
    # serves them, 91.5% of the everyday rewordings and 65.5% of the Quora-style ones, no trap in either (with the
    # pair model's signed weights on an AVX2-only CPU; 90.4% and 63.6% with the unsigned ones); here, over the
    # floor only, 86.2% and 47.3%.
    ("fresh_everyday_pairs_15.csv", 0.82, 0, (90, 45)),
    ("fresh_question_pairs_5.csv", 0.43, 0, (55, 30)),
    # Blind, written by helpers in the eighth session of 2026-12-06, measured once before any was read: as the cache
    # serves them, 89.0% of the everyday rewordings (raw cosine at 0.86: 85.0%, with 18 of 50 traps) and 63.3% of the
    # Quora-style ones (raw: 40.0%, 5 of 30 traps), no trap in either; here, over the floor only, 83.0% and 50.0%.
    ("fresh_everyday_pairs_16.csv", 0.79, 0, (100, 50)),
    ("fresh_question_pairs_6.csv", 0.45, 0, (60, 30)),
    # Blind, written later that session to stress hard traps (a word or phrase changed: aspect, audience, length,
    # tone, tense, a condition), 1 rewording and 2 traps per base prompt; measured once before any was read: 76.0% of
    # the rewordings (raw cosine at 0.86: 98.0%, with 35 of 100 traps) and 3 of 100 traps. Read afterwards: three
    # rewordings served more (a polite "Can you make ...", "grandfather" / "grandpa", "advantages" / "benefits") and
    # one trap refused ("on a budget" / "luxury"): 82.0% and 2 traps.
    ("fresh_everyday_pairs_17.csv", 0.78, 0.02, (50, 100)),
    # Blind, written by helpers in the ninth session of 2026-12-06, measured once before any was read: as the cache
    # serves them, 91.0% of the everyday rewordings (raw cosine at 0.86: 79.0%, with 14 of 50 traps) and 75.0% of the
    # Quora-style ones (raw: 48.3%, 7 of 30 traps), no trap in either; here, over the floor only, 83.0% and 60.0%.
    # Read afterwards: "How are let and const different in JavaScript?" and "What should I do to get ready for ...?"
    # served as the frames they are (92.0% and 76.7%).
    ("fresh_everyday_pairs_18.csv", 0.8, 0, (100, 50)),
    ("fresh_question_pairs_7.csv", 0.56, 0, (60, 30)),
    # Blind, written later that session in the style of Stack Exchange question titles (the SemEval STS 2016
    # question-question pairs are held back for the issue's own check): as the cache serves them, 45.0% with 1 of
    # 30 traps ("How do I convert a list to a tuple in Python?" / "What is the difference between a list and a tuple
    # ...?", since refused: a difference against a conversion); raw cosine at 0.86 serves 26.7% with 6 traps. Its
    # pairs meet at low cosine; here, over the floor only, 35.0%.
    ("fresh_question_pairs_8.csv", 0.32, 0, (60, 30)),
    # Blind, the same style with close rewordings only (raw cosine at 0.86 serves 98.3% of them, with 6 of 30
    # traps): measured once before any was read, 81.7% and no trap. Read afterwards: "need to" / "have to", "when
    # to" / "when should I", "to not" / "not to", "a layover in London" / "a London layover": 86.7%.
    ("fresh_question_pairs_9.csv", 0.82, 0, (60, 30)),
    # Blind, written by helpers in the tenth session of 2026-12-06, measured once through a real demo before any was
    # read: 88.0% of the everyday rewordings (raw cosine at 0.86: 68.0%, with 19 of 50 traps) and 51.7% of the
    # Stack Exchange / Quora-style ones (raw: 45.0%, 7 of 30 traps), no trap in either. Read afterwards: "the fan on
    # my laptop" / "my laptop fan", "the plural (form) of", a visa "to visit" / "for": 90.0% and 53.3% in process;
    # here, over the floor only, 76.0% and 48.3%.
    ("fresh_everyday_pairs_19.csv", 0.73, 0, (100, 50)),
    ("fresh_question_pairs_10.csv", 0.45, 0, (60, 30)),
    # Blind, written later that session: everyday prompts against hard traps (80 / 80), and Stack Exchange titles
    # graded 0-5 the SemEval way (a 4 or 5 the same answer, a 3 "roughly equivalent, an important detail differs"
    # not). Measured once through a real demo before any was read: 86.2% with 2 of 80 traps ("HTTPS" / "HTTP", the
    # causes / the effects of the Great Depression), and 54.0% with 2 of 50 ("Should I pay off ...?" / "How do I pay
    # off ...?", "How do I prune ...?" / "When should I prune ...?"): 2 of 29 hits wrong. All four since refused, by
    # rules checked over every set; 87.5% and 56.0% in process; here, over the floor only, 76.2% and 48.0%.
    ("fresh_everyday_pairs_20.csv", 0.73, 0, (80, 80)),
    ("fresh_question_pairs_11.csv", 0.44, 0, (50, 50)),
    # Blind, a second round of the same two kinds written after those rules (other sites, other changes chosen by
    # the helper): measured once through a real demo before any was read, 82.9% of the everyday rewordings (raw
    # cosine at 0.86: 70.0%, with 29 of 90 traps) and 48.0% of the graded duplicates (raw: 40.0%, 23 of 50), no trap
    # in either. Read afterwards: a coffee misspelt, a visa "for a trip to": 85.7% in process; here, over the floor
    # only, 71.4% and 44.0%.
    ("fresh_everyday_pairs_21.csv", 0.68, 0, (70, 90)),
    ("fresh_question_pairs_12.csv", 0.4, 0, (50, 50)),
    # Blind, a fourth round: everyday requests and instructions (80 / 60) and Quora-style questions (60 / 30).
    # Measured once through a real demo before any was read: 87.5% with 3 of 60 traps ("... excluding Rome", "turn
    # off" / "set up" two-factor authentication, brown rice on the stove / in a rice cooker; all since refused by
    # rules checked over every set), and 73.3% with no trap; here, over the floor only, 81.2% and 58.3%.
    ("fresh_everyday_pairs_22.csv", 0.78, 0, (80, 60)),
    ("fresh_question_pairs_13.csv", 0.55, 0, (60, 30)),
    # Blind, a fifth round of hard traps only (everyday, 50 / 100; developers' and office workers', 60 / 90). Measured
    # once through a real demo before any was read: 52.0% of loose rewordings (raw cosine at 0.86: 32.0%) with no
    # trap of 100, and 75.0% with 3 of 90 traps ("a formal reminder" / "a friendly reminder", "cancel" / "reschedule
    # our meeting": since refused as opposites; "an apology for a late delivery" / "... for shipping the wrong item"
    # still served); here, over the floor only, 34.0% and 63.3%.
    ("fresh_everyday_pairs_23.csv", 0.3, 0, (50, 100)),
    ("fresh_everyday_pairs_24.csv", 0.6, 1 / 90, (60, 90)),
    # Blind, a sixth round: everyday chat prompts (100 / 50) and Stack Exchange titles graded 0-5 (50 / 50, loose:
    # raw cosine at 0.86 serves 18.0% of its duplicates). Measured once through a real demo before any was read:
    # 87.0% with no trap, and 24.0% with 3 of 50 traps, all graded 3 ("castle out of check" / "through check", rice
    # in the fridge / left out at room temperature, two amp ratings trading places; the last two since refused) and
    # one hit for another prompt; here, over the floor only, 71.0% and 22.0%.
    ("fresh_everyday_pairs_25.csv", 0.68, 0, (100, 50)),
    ("fresh_question_pairs_14.csv", 0.2, 1 / 50, (50, 50)),
    # Blind, a seventh round of graded titles (half close in wording): measured once through a real demo before any
    # was read, 54.0% with 2 of 50 traps (3 in process), all graded 3: "How far away is the nearest star?" / "How long
    # would it take a spacecraft to reach it?" and "delete duplicate rows" / "... while keeping the most recent one"
    # since refused; "When should I use who versus whom?" / "Is it who or whom after a preposition?" still served.
    ("fresh_question_pairs_15.csv", 0.44, 1 / 50, (50, 50)),
])
def test_pair_files_serve_rewordings_and_refuse_traps(
    verifier: Verifier, cosine: Cosine, file: str, rewordings_at_least: float, traps_at_most: float,
    at_least_pairs: tuple[int, int],
) -> None:
    rewordings, traps, n_same, n_traps = _rates(verifier, cosine, file)
    assert n_same >= at_least_pairs[0] and n_traps >= at_least_pairs[1]
    assert rewordings >= rewordings_at_least, f"{rewordings:.1%} of {n_same} rewordings served"
    assert traps <= traps_at_most, f"{traps:.1%} of {n_traps} traps served"


@pytest.mark.model
def test_strictness_trades_hits_for_safety(cosine: Cosine) -> None:
    """Each point serves no more than the next looser one, on the same pairs."""
    with (DATA / "everyday_pairs.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))[:120]
    counts = []
    for level in STRICTNESS_LEVELS:
        v = Verifier(strictness=level)
        counts.append(sum(served(v, cosine, r["prompt_b"], r["prompt_a"])[0] for r in rows))
    assert counts == sorted(counts) and counts[0] < counts[-1], counts


def test_strictness_points_are_ordered_and_unknown_ones_refused() -> None:
    points = [Verifier(strictness=level) for level in STRICTNESS_LEVELS]
    assert [p.strictness for p in points] == list(STRICTNESS_LEVELS)
    assert all(a.cut >= b.cut for a, b in itertools.pairwise(points))
    with pytest.raises(ValueError, match="strictness must be one of"):
        Verifier(strictness="paranoid")


@pytest.mark.model
def test_identical_prompts_are_accepted(verifier: Verifier) -> None:
    verdict = verifier.check("How do I boil an egg?", "How do I boil an egg?", 1.0)
    assert verdict.accepted and verdict.score > 0.9


@pytest.mark.model
def test_short_rewordings_under_the_floor_are_judged_and_long_ones_are_not(verifier: Verifier, cosine: Cosine) -> None:
    """The default point looks under its cosine floor for short prompts only, and asks them to be surer."""
    reach = verifier.reach
    assert reach is not None and reach.floor < verifier.threshold
    short = ("Tips to extend my phone's battery life", "How do I make my phone battery last longer?")
    sim = cosine(*short)
    assert reach.floor <= sim < verifier.threshold
    assert verifier.floor_for(short[0]) == reach.floor
    assert verifier.check(*short, sim).accepted
    # Just under the floor (from the reach's near step up) a short pair is judged as over it; further down it pays
    # the reach's penalty.
    assert reach.near is not None and reach.floor < reach.near < verifier.threshold
    at_near, under_near = (log_odds(verifier.check(*short, sim).score) for sim in (reach.near, reach.near - 1e-4))
    step = at_near - under_near
    assert step == pytest.approx(reach.penalty, abs=0.01)
    assert log_odds(verifier.check(*short, verifier.threshold).score) == pytest.approx(
        log_odds(verifier.check(*short, verifier.threshold - 1e-4).score), abs=0.01)
    long_query = ("Could you give me some practical tips to make my phone's battery last a lot longer during a "
                  "normal working day at the office?")  # more than the reach's 20 words
    assert verifier.floor_for(long_query) == verifier.threshold
    verdict = verifier.check(long_query, short[1], verifier.threshold - 0.01)
    assert not verdict.accepted and verdict.reason == "low_similarity"
    assert verifier.check(*short, reach.floor - 0.01).reason == "low_similarity"
    # Under the floor both must ask yes or no, or neither: a request put politely is not a yes/no question.
    assert verifier.check("Is it safe to clear my browser cache?", "How do I clear my browser cache?",
                          reach.floor + 0.01).reason == "low_similarity"
    assert verifier.check("Can you write me a haiku about fall?", "Write a haiku about autumn", reach.floor + 0.01
                          ).reason != "low_similarity"


@pytest.mark.parametrize(("query", "cached", "replaced"), [
    ("SQL: get the 2nd highest salary in employees table",
     "Write a SQL query to find the third highest salary from the employees table", True),
    ("API limit 100 req/min; retry 429s with backoff, max 5 retries",
     "Our API allows 100 requests per minute. Retry on 429 with backoff and give up after 1 retry.", True),
    ("Who won the World Cup in 2018?", "Which country won the 2022 World Cup?", True),
    ("I have about $5,000 in savings. Where should I put it?", "roughly 5k saved, where do I put it?", False),
    ("I got a job offer that pays $10k more", "The offer pays $10,000 more", False),
    ("Apple buys AuthenTec for $356 million", "Apple buying AuthenTec for $356M", False),
    ("What happens to my 401k if I quit?", "what happens to my 401(k) if i quit", False),
    ("Convert 0.75 to a fraction", "what's .75 as a fraction?", False),
    ("What is a VPN and why would I use one?", "ELI5: what does a VPN do?", False),  # "ELI5" names a thing
    ("I have had 11 sets of ear tubes since age 6", "I have had 11 sets of ear tubes since childhood", False),
])
def test_one_number_replaced_is_read_after_amounts_are_made_one(query: str, cached: str, replaced: bool) -> None:
    assert one_number_replaced(query, cached) is replaced
    if replaced:
        assert hard_rule_refusal(query, cached) == "numbers_differ"


@pytest.mark.parametrize(("text", "yes_or_no"), [
    ("Is it safe to clear my browser cache?", True), ("Does the Pomodoro technique work?", True),
    ("Can you get pregnant on your period?", True),  # the generic you
    ("Can you write me a haiku about fall?", False), ("Could you change 40 calories to joules?", False),
    ("Do you happen to know the cost of roflumilast?", False), ("Is there a way to recover deleted photos?", False),
    ('Is it "could of" or "could have"?', False), ("How do I clear my cache?", False), ("Tell me a riddle", False),
])
def test_a_yes_or_no_question_is_told_from_a_polite_request(text: str, yes_or_no: bool) -> None:
    assert asks_yes_or_no(text) is yes_or_no


@pytest.mark.model
@pytest.mark.parametrize(("query", "cached", "same"), [
    ("100 F to C", "Convert 100 Fahrenheit to Celsius", True),
    ("oz in a lb", "How many ounces are in a pound?", True),
    ("Convert 100 USD to EUR.", "How much is 100 US dollars in euros?", True),
    ("how many tsp make up one tbsp?", "how many teaspoons in a tablespoon", True),
    ("what's 25 C in F", "Convert 25 degrees Celsius to Fahrenheit", True),
    ("100 C to F", "Convert 100 Fahrenheit to Celsius", False),
    ("oz in a kg", "How many ounces are in a pound?", False),
    ("Convert 100 USD to GBP.", "How much is 100 US dollars in euros?", False),
])
def test_the_same_question_is_served_far_under_the_floor_and_nothing_else_is(
        verifier: Verifier, cosine: Cosine, query: str, cached: str, same: bool) -> None:
    """Conversions written in symbols meet their words at cosine 0.55-0.8, under every floor: served when they are
    the same question in other words, down to the same-question floor; never for an expert's floor."""
    sim = cosine(query, cached)
    assert verifier.same_question_floor <= sim < verifier.threshold
    assert verifier.check(query, cached, sim).accepted is same
    assert not verifier.check(query, cached, verifier.same_question_floor - 0.01).accepted
    assert not Verifier(threshold=verifier.threshold).check(query, cached, sim).accepted


@pytest.mark.model
def test_an_experts_floor_replaces_the_points_and_looks_no_lower() -> None:
    expert = Verifier(threshold=0.9)
    assert expert.threshold == 0.9 and expert.reach is None and expert.cut == Verifier().cut
    assert expert.floor_for("Square root of 144?") == 0.9
    assert expert.check("Square root of 144?", "What is the square root of 144?", 0.89).reason == "low_similarity"
    assert expert.check("Square root of 144?", "What is the square root of 144?", 0.9).accepted
    with pytest.raises(ValueError, match="threshold must be a cosine"):
        Verifier(threshold=1.5)


@pytest.mark.parametrize(("point", "part", "value"), [
    *(("balanced", "reach", v) for v in ({"floor": 0.9, "penalty": 1, "max_words": 11}, {"floor": 0.7},
                                         {"floor": 0.7, "penalty": -1, "max_words": 11}, "far",
                                         {"floor": 0.78, "penalty": 1.5, "max_words": 20, "near": 0.9},
                                         {"floor": 0.78, "penalty": 1.5, "max_words": 20, "near": 0.7},
                                         {"floor": 0.78, "penalty": 1.5, "max_words": 20, "near": "close"})),
    *(("loose", "restatement", v) for v in ({"min_words": 12, "min_changed": 0.0, "credit": 2},
                                            {"min_words": 12, "min_changed": 0.25},
                                            {"min_words": 0, "min_changed": 0.3, "credit": 2},
                                            {"min_words": 12, "min_changed": 0.25, "credit": -1}, [12])),
    *(("balanced", "rewording", v) for v in ({"min_changed": 0.0, "credit": 0.8}, {"min_changed": 1.5, "credit": 1},
                                             {"min_changed": 0.4}, {"min_changed": 0.4, "credit": -0.1}, "much")),
])
def test_a_broken_exception_of_a_point_in_the_weights_file_is_named(tmp_path: Path, point: str, part: str,
                                                                    value: object) -> None:
    data = json.loads(PACKAGED.read_text(encoding="utf-8"))
    data["strictness"][point][part] = value
    path = tmp_path / f"{part}.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=f"'{point}' {part} needs"):
        Verifier(path)


@pytest.mark.parametrize(("topic", "message"), [
    ("medical", "'topic' needs a 'model' name"),
    ({"weights": [0.1], "bias": 0.0}, "'topic' needs a 'model' name"),
    ({"model": "m", "weights": [], "bias": 0.0}, "'topic' needs numeric 'weights'"),
    ({"model": "m", "weights": [0.1, "x"], "bias": 0.0}, "'topic' needs numeric 'weights'"),
    ({"model": "m", "weights": [0.1], "bias": True}, "'topic' needs numeric 'weights'"),
    ({"model": "m", "weights": [0.1], "bias": 0.0, "margin": -1}, "'topic' margin must be a number >= 0"),
    ({"model": "m", "weights": [0.1], "bias": 0.0, "margin": "2"}, "'topic' margin must be a number >= 0"),
])
def test_a_broken_topic_probe_in_the_weights_file_is_named(tmp_path: Path, topic: object, message: str) -> None:
    data = json.loads(PACKAGED.read_text(encoding="utf-8"))
    data["topic"] = topic
    path = tmp_path / "topic.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Verifier(path)


def test_a_weights_file_without_a_topic_probe_gives_no_rewording_credit(tmp_path: Path) -> None:
    data = json.loads(PACKAGED.read_text(encoding="utf-8"))
    del data["topic"]
    path = tmp_path / "no_topic.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    verifier = Verifier(path)
    assert verifier.rewording is None and not verifier.general_topic(np.zeros(384, dtype=np.float32))


TRIP = ("My wife and I are planning a 10-day trip to Italy in May. We like food and history but hate crowds. "
        "Which cities would you recommend?")
TRIP_RESTATED = ("We're a couple going to Italy for ten days this May. We love history and good food and dislike "
                 "crowded places. What cities should we visit?")
LESSON = ("I'm teaching my 8th graders about the water cycle tomorrow. Can you explain evaporation, condensation and "
          "precipitation in a way they'll understand?")
LESSON_RESTATED = ("Tomorrow I'm teaching the water cycle to my eighth grade class. Could you explain evaporation, "
                   "condensation, and precipitation at a level they can follow?")


def test_a_restatement_keeps_numbers_and_polarity_and_changes_more_than_a_detail() -> None:
    rule = Restatement(min_words=12, min_changed=0.25, credit=2.5)
    assert rule.admits(TRIP_RESTATED, TRIP)
    # One detail changed, the rest word for word: a near-duplicate, not a restatement.
    assert not rule.admits(TRIP.replace("Italy", "Spain"), TRIP)
    # Restated, but with another number of days (spelt either way), a negation or "other" added.
    assert not rule.admits(TRIP_RESTATED.replace("ten days", "five days"), TRIP)
    assert not rule.admits(TRIP_RESTATED.replace("ten days", "2 weeks"), TRIP)
    assert not rule.admits(TRIP_RESTATED.replace("What cities", "What cities other than Rome"), TRIP)
    assert not rule.admits(TRIP_RESTATED.replace("We love history", "We don't love history"), TRIP)
    # The same words trading places (PAWS's traps) change nothing, however many move.
    words = TRIP.split()
    assert not rule.admits(" ".join(words[12:] + words[:12]), TRIP)
    # Short prompts earn nothing: there one word is the question.
    assert not rule.admits("Write a function that returns the duplicated values in an array",
                           "Write a function that removes duplicates from an array")


@pytest.mark.model
def test_a_long_prompt_restated_is_served_at_the_default_point_only_up_to_its_cut(
        verifier: Verifier, cosine: Cosine) -> None:
    """The pair model reads a long prompt told again as many small edits; the default point gives it credit."""
    sim = cosine(LESSON_RESTATED, LESSON)
    assert sim >= verifier.threshold
    served = verifier.check(LESSON_RESTATED, LESSON, sim)
    assert served.accepted
    assert verifier.adjustment(LESSON_RESTATED, LESSON, sim) == verifier.restatement.credit > 0  # type: ignore[union-attr]
    # Without the credit the same pair is refused: the strict point and an expert's floor give none.
    unaided = Verifier(threshold=verifier.threshold).check(LESSON_RESTATED, LESSON, sim)
    assert not unaided.accepted and Verifier(strictness="strict").restatement is None
    # The credit lifts a pair to the point's cut, not past it: a namespace held stricter gets no help.
    assert log_odds(unaided.score) + verifier.restatement.credit > verifier.cut + 0.5  # type: ignore[union-attr]
    assert not verifier.check(LESSON_RESTATED, LESSON, sim, cut=verifier.cut + 0.5).accepted
    assert verifier.check(TRIP_RESTATED, TRIP, cosine(TRIP_RESTATED, TRIP)).accepted
    for trap in (TRIP_RESTATED.replace("ten days", "three days"), TRIP_RESTATED.replace("Italy", "Spain"),
                 TRIP.replace("Italy", "Greece")):
        assert not verifier.check(trap, TRIP, cosine(trap, TRIP)).accepted, trap
    # Restated with a quality turned round: the opposite the combiner reads outweighs the credit.
    egg, hard = ("Soft-boiled egg with a runny yolk: how many minutes should I boil it?",
                 "How long should I boil an egg for a fully hard yolk?")
    assert verifier.restatement.admits(hard, egg)  # type: ignore[union-attr]
    assert not verifier.check(hard, egg, cosine(hard, egg)).accepted
    # Restated with an opposite named, it earns no credit at all.
    upload = ("Flask app, files live in S3. Can you write a boto3 function that uploads a given file object to the "
              "'user-files' bucket and returns the key?")
    download = ("I'm building a Flask app that stores user files in S3. Write a function that takes an object key "
                "and downloads the file from the bucket 'user-files' using boto3, and returns the bytes.")
    assert verifier.restatement.admits(download, upload)  # type: ignore[union-attr]
    assert verifier.adjustment(download, upload, 0.9) == 0.0
    assert not verifier.check(download, upload, cosine(download, upload)).accepted


# Rewordings off the medical topic that share few words, where the pair model is unsure. Its int8 logits move
# by up to about one log-odds between CPUs (onnxruntime's int8 kernels differ with and without AVX-512 VNNI), so
# which of them sit just under the cut depends on the machine; the test asks that some do, and checks each one.
REWORDED_OFF_TOPIC = [
    ("Which language has the most speakers worldwide?", "What is the most spoken language in the world?"),
    ("Why does India love cricket so much?", "Why is cricket so popular in India?"),
    ("What is the fastest way to learn a new language?", "How can I learn a foreign language quickly?"),
    ("How should a beginner start learning to program?", "What's the best way to learn to code as a beginner?"),
    ("What's the normal tip at a restaurant in America?", "How much should I tip at restaurants in the US?"),
    ("What keeps a plane up in the sky?", "How do airplanes stay in the air?"),
]


@pytest.mark.model
def test_a_rewording_off_the_medical_topic_earns_the_points_credit_up_to_its_cut(
        verifier: Verifier, cosine: Cosine) -> None:
    rewording = verifier.rewording
    assert rewording is not None
    assert Verifier(strictness="strict").rewording is None and Verifier(threshold=verifier.threshold).rewording is None
    helped = 0
    for query, cached in REWORDED_OFF_TOPIC:
        sim = cosine(query, cached)
        assert verifier.general_topic(cosine.vector(query)) and rewording.admits(query, cached), query
        # Without the credit: a query read as medical (the strict point and an expert's floor give none either).
        unaided = verifier.check(query, cached, sim, general=False)
        credited = verifier.check(query, cached, sim, general=True)
        reaches = log_odds(unaided.score) + rewording.credit >= verifier.cut
        assert credited.accepted == (unaided.accepted or reaches), query
        if credited.accepted and not unaided.accepted:
            helped += 1
            assert unaided.reason in ("low_score", PAIR_MODEL)
            assert not Verifier(threshold=verifier.threshold).check(query, cached, sim, general=True).accepted
            # Up to the point's cut and no further: a namespace held stricter gets no help.
            assert not verifier.check(query, cached, sim, general=True, cut=verifier.cut + 0.5).accepted
    assert helped >= 1, "no rewording of the list sits within the credit under the cut"


@pytest.mark.model
def test_the_topic_probe_reads_health_questions_and_only_for_its_own_model(verifier: Verifier,
                                                                           cosine: Cosine) -> None:
    for medical in ("Can I take ibuprofen while I'm on blood thinners?", "What is a normal range for LDL cholesterol?",
                    "I've had a headache and a stiff neck for three days. Should I see a doctor?",
                    "What are the side effects of sertraline?"):
        assert not verifier.general_topic(cosine.vector(medical)), medical
    for general in ("How do I sort a dictionary by value in Python?", "Why is cricket so popular in India?",
                    "Give me a recipe for banana bread"):
        assert verifier.general_topic(cosine.vector(general)), general
    # Everyday questions that touch the body sit under the probe's margin, and their rewordings earn the credit,
    # though the probe's own log-odds lean to health (so does a bare definition: "What does LDL cholesterol
    # mean?" at 1.7). Doctors' questions sit far over it.
    probe = verifier._topic
    assert probe is not None and probe.margin > 0
    for touching in ("How many bones does an adult human have?", "How does a vaccine train the immune system?"):
        vector = cosine.vector(touching)
        assert verifier.general_topic(vector), touching
        assert 0 < float(np.dot(vector, probe.weights)) + probe.bias <= probe.margin, touching
    vector = cosine.vector("Why is cricket so popular in India?")
    # Another embedding model's vectors (or another size) mean nothing to the probe: no credit, no surprise.
    assert not Verifier(embedding_model="BAAI/bge-small-en-v1.5").general_topic(vector)
    assert not verifier.general_topic(np.concatenate([vector, vector]))
    assert not verifier.general_topic(None)


@pytest.mark.model
def test_a_reworded_pair_with_a_direction_or_a_number_turned_earns_no_credit(verifier: Verifier,
                                                                             cosine: Cosine) -> None:
    """A rewording's credit asks that nothing named differ: the direction of a conversion, an amount, an opposite."""
    for query, cached in [("How do I convert MP3 to MP4?", "How can I turn an mp4 into an mp3?"),
                          ("Which five languages have the most speakers?", "What is the most spoken language?"),
                          ("What is the slowest way to pick up a new language?",
                           "What's the quickest method for learning a foreign language?")]:
        assert verifier.rewording_credit(query, cached, cosine(query, cached), True) == 0.0, query
        assert not verifier.check(query, cached, cosine(query, cached), general=True).accepted, query


def test_a_rewording_needs_many_words_changed_and_the_same_numbers_and_polarity() -> None:
    rule = Rewording(min_changed=0.4, credit=0.8)
    spoken = "What is the most spoken language in the world?"
    assert rule.admits("Which language has the most speakers worldwide?", spoken)
    assert not rule.admits("What is the most spoken language in Europe?", spoken)  # one word changed: a trap's shape
    assert not rule.admits("Name 3 ways to learn a language fast", "Give me five tips to learn a new language quickly")
    assert not rule.admits("Which language isn't spoken by many people?", spoken)


def test_packaged_weights_are_small_and_load() -> None:
    assert PACKAGED.stat().st_size < 20_000  # the topic probe's 384 weights are most of it
    assert json.loads(PACKAGED.read_text(encoding="utf-8"))["version"] == 2


def test_missing_weights_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(FileNotFoundError, match=r"nope\.json"):
        Verifier(missing)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"version": 1}', "this code reads version 2"),
        ('{"version": 2, "combiner": {}}', "lack the key"),
    ],
)
def test_broken_weights_file_gives_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        Verifier(path)


def test_weights_for_other_features_are_refused(tmp_path: Path) -> None:
    data = json.loads(PACKAGED.read_text(encoding="utf-8"))
    data["combiner"]["inputs"][-1] = "a_feature_this_code_does_not_compute"
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match="trained for features"):
        Verifier(path)


def test_features_are_symmetric_and_complete() -> None:
    a, b = "Flights from Oslo to Rome on Monday", "Flights from Rome to Oslo on Monday"
    fa, fb = pair_features(a, b, 0.97), pair_features(b, a, 0.97)
    assert len(fa) == len(FEATURE_NAMES)
    assert fa == pytest.approx(fb)
    assert dict(zip(FEATURE_NAMES, fa, strict=True))["direction"] == 1.0


@pytest.mark.parametrize(
    ("query", "cached", "changed"),
    [
        ("How big is a 250 acre farm?", "How big is a 250 hectare farm?", 1.0),
        ("I have 5 apples, how many are left if I eat 2?", "I have 5 pears, how many are left if I eat 2?", 1.0),
        ("I forgot my Windows 10 login password and I'm locked out of my laptop. How do I get back in?",
         "I'm locked out of my Windows 10 laptop because I forgot the login password. How can I get back in?", 0.0),
        ("We're planning a 10-day trip to Italy in May", "We're going to Italy for ten days this May", 0.0),
        # words of degree on both sides follow the number where no unit does
        ("Write a SQL query that returns the 10 most recent orders", "SQL to get the 10 latest orders", 0.0),
        ("Write a SQL query that returns the 10 most recent orders", "... returns the 10 oldest orders", 0.0),
        ("There are 2 additional keys", "There are 2 more keys", 1.0),  # one side only: still a new word
        ("Boil it for 10 min", "Boil it for 10 hours", 1.0),  # "min" is a degree word and a unit
        # a word cut short, three letters or more
        ("How do I merge two dictionaries in Python?", "What's the way to combine two dicts in Python?", 0.0),
        ("Instagram bio under 150 characters", "Instagram bio under 150 chars", 0.0),
        ("Walk 5 mi", "Walk 5 min", 1.0),
    ],
)
def test_a_number_followed_by_another_word_is_a_changed_unit_only_when_the_word_is_new(
        query: str, cached: str, changed: float) -> None:
    features = dict(zip(FEATURE_NAMES, pair_features(query, cached, 0.95), strict=True))
    assert features["num_unit_diff"] == changed


@pytest.mark.parametrize(
    ("query", "cached", "same"),
    [
        ("How many miles are there in 437 km?", "How many miles are in 437 km?", True),
        ("Please tell me the capital of Peru.", "Tell me the capital of Peru", True),
        ("Can I feed my dog a vegan diet?", "Should I feed my dog a vegan diet?", False),  # modals count
        ("How do I know if he likes me?", "How do I know if she likes me?", False),  # pronouns count
        ("Convert km to miles", "Convert miles to km", False),  # order counts
        ("Is it safe?", "Is it not safe?", False),
        ("Hi, what is the capital of France?", "What is the capital of France? Thanks!", True),
        ("Translate hello into French", "Translate thanks into French", False),  # a greeting inside is content
        ("Hello in French?", "Thanks in French?", False),  # ... and so is a greeting that is the request
    ],
)
def test_only_filler_words_differ(query: str, cached: str, same: bool) -> None:
    assert only_synonyms_differ(query, cached) is same


@pytest.mark.parametrize(
    ("query", "cached", "same"),
    [
        ("Is a tomato a fruit or a vegetable?", "Is tomato a vegetable or a fruit?", True),
        ("Would you rather be able to fly or be invisible?", "Would you rather be invisible or be able to fly?",
         True),
        ("Python vs Java for a beginner", "Java vs Python for a beginner", True),
        ("Flights from Oslo to Rome on Monday", "Flights from Rome to Oslo on Monday", False),  # a direction
        ("Is Australia bigger than the US?", "Is the US bigger than Australia?", False),  # a comparison
        ("Add the salt and then the pepper", "Add the pepper and then the salt", False),  # a sequence
        ("Is coffee or tea healthier?", "Is coffee or tea healthier?", False),  # identical: not a swap
        ("Is coffee or tea healthier?", "Is tea or coffee more harmful?", False),  # other words too
        ("Is x > 3 or x < 5 true?", "Is x < 5 or x > 3 true?", True),
        ("Quelle est la différence entre un virus et une bactérie ?",
         "Quelle est la différence entre une bactérie et un virus ?", True),
        ("What happens if I mix bleach and ammonia?", "What happens if I mix ammonia and bleach?", False),  # "and"
        ("How do I wash and dry wool?", "How do I dry and wash wool?", False),  # ... may be a sequence
        ("Why did my bread not rise?", "Why didn't my bread rise?", True),  # "not" after the subject or on "did"
        ("Why doesn't my code work?", "Why does my code not work?", True),
        ("Is it not safe to eat raw eggs?", "Isn't it safe to eat raw eggs?", True),
        ("Is it safe not to eat for a day?", "Isn't it safe to eat for a day?", False),  # another thing negated
        ("Why didn't the bread rise?", "Why did the bread not rise?", True),
        ("My Jenkins build won't start. Why?", "Why won't my Jenkins build start?", True),  # a subject of 3 words
        ("Is not eating OK?", "Is eating not OK?", False),
    ],
)
def test_alternatives_that_trade_places_ask_the_same(query: str, cached: str, same: bool) -> None:
    assert alternatives_swapped(query, cached) is same


@pytest.mark.parametrize(
    ("query", "cached", "same"),
    [
        ("What are the symptoms of diabetes?", "What are the signs of diabetes?", True),
        ("What is the capital of France?", "What is the capital city of France?", True),
        ("When did women get the vote in the US?", "When did women get the vote in the United States?", True),
        ("What's the biggest desert in the world?", "What's the largest desert in the world?", True),
        ("How many miles are there in 437 km?", "How many miles are in 437 km?", True),  # filler, as before
        ("What is the capital of France?", "What is the capital of Spain?", False),
        ("What are the symptoms of diabetes?", "What are the causes of diabetes?", False),
        ("What's the biggest desert in the world?", "What's the smallest desert in the world?", False),
        ("Is the US bigger than the UK?", "Is the UK bigger than the US?", False),  # same words, other order
        ("What is the 5th planet from the sun?", "What is the fifth planet from the sun?", True),  # one ordinal
        ("Who won the 3rd season of Survivor?", "Who won the third season of Survivor?", True),
        ("What is the fastest land animal?", "Which land animal is the fastest?", True),  # superlative first
        ("What is the largest city in Europe?", "Which city is the smallest in Europe?", False),
        ("What is the largest city in Europe?", "Which country is the largest in Europe?", False),
        ("How do I change a flat tire?", "How do you change a flat tyre?", True),  # the generic "you"
        ("How do you feel about remote work?", "How do I feel about remote work?", False),  # ... not this one
        ("How can I create a budget?", "How do I make a budget?", True),  # everyday verbs
        ("How do I delete a file in git?", "How do I remove a file in git?", True),
        ("How do I ask my manager for a raise?", "How do I ask my boss for a raise?", True),
        ("What's the best TV show?", "What's the best TV display?", False),  # "show" names a thing too
        ("How do I make a budget?", "How do I make a bucket?", False),
        # synonyms the parse shortens ("poisonous" as "poisonou") are read as it leaves them
        ("What human foods are toxic to dogs?", "Which human foods are poisonous to dogs?", True),
        ("What human foods are toxic to dogs?", "Which human foods are safe for dogs?", False),
        ("Why is maths hard?", "Why is mathematics hard?", True),
        ("What's the plural of 'cactus'?", "What is the plural form of cactus?", True),  # a word's form
        ("What's the plural of 'cactus'?", "What is the plural form of octopus?", False),
        ('What is the past tense of "swim"?', "What's the past tense of the verb swim?", True),
        ('What is the past tense of "swim"?', "What's the past tense of the verb run?", False),
        ("Do US citizens need a visa to visit Japan?", "do us citizens need a visa for japan", True),  # a visa
        ("Do US citizens need a visa to visit Japan?", "do us citizens need a visa for china", False),
        ("Do US citizens need a visa to visit Japan?", "do us citizens need a visa to work in japan", False),
        ("Do I need a visa for a trip to Japan?", "Do I need a visa to visit Japan?", True),
        # slips of the keyboard: a doubled letter typed once (or doubled), two letters swapped
        ("How do I make cold brew coffee at home?", "how do i make cold brew cofee at home", True),
        ("How do I receive money on PayPal?", "how do i recieve money on paypal", True),
        ("how do i delete my acount", "How do I delete my account?", True),
        ("How do I use hooks in React?", "How do I use hooks in Preact?", False),  # another first letter
        ("What is the capital of Iceland?", "What is the capital of Ireland?", False),  # two known words
        ("How do I bake bread?", "How do I make bread?", False),  # a short word one letter off
        ("How do I cook rice on the stove?", "How do I cook rice on the stovetop?", True),
    ],
)
def test_words_that_name_the_same_thing_ask_the_same(query: str, cached: str, same: bool) -> None:
    assert only_synonyms_differ(query, cached) is same


@pytest.mark.parametrize(
    ("query", "cached", "same"),
    [
        ("Who painted the Mona Lisa?", "Who was the painter of the Mona Lisa?", True),  # the maker
        ("Who wrote Dune?", "Who is the author of Dune?", True),
        ("Who painted the Mona Lisa?", "Who stole the Mona Lisa?", False),
        ("What is the tallest building in the world?", "Which building is the tallest on Earth?", True),
        ("What is the smallest country in the world?", "Which country is the world's smallest?", True),
        ("What is the tallest building in the world?", "What is the tallest building in Europe?", False),
        ("What is the population of Canada?", "How many people live in Canada?", True),
        ("What is the population of Canada?", "How many people lived in Canada in 1900?", False),
        ("What is the population of Canada?", "What is the population of Canada's capital?", False),
        ("How far is Paris from London?", "What is the distance between London and Paris?", True),
        ("How far is it from Paris to Rome?", "How far is Rome from Paris?", True),
        ("How far is the Moon from Earth in kilometers?", "Distance from the Earth to the Moon in km?", True),
        ("How far is Paris from London?", "How far is Paris from Berlin?", False),
        ("How far is the Moon from Earth in miles?", "Distance from the Earth to the Moon in km?", False),
        ("What languages are spoken in Switzerland?", "Which languages do people speak in Switzerland?", True),
        ("What food is eaten in Japan?", "What food do people eat in China?", False),
        ("My laptop won't turn on, what should I do?", "What should I do if my laptop doesn't turn on?", True),
        ("My laptop won't turn on, what should I do?", "What should I do if my laptop won't turn off?", False),
        ("How can I tell if eggs are bad?", "How do I tell if eggs are bad?", True),
        ("how to reverse a list in python", "How do I reverse a list in Python?", True),
        ("Who was the owner of Twitter?", "Who owns Twitter?", False),  # then, not now
        ("What's the capital of France?", "What is the capital of France?", True),  # "'s" is "is" here
        ("whats a good SAT score", "What's a good SAT score?", True),
        ("What's the difference between RAM and storage?", "RAM vs storage - what's the difference?", True),
        ("What's the difference between let and const in JavaScript?",
         "In JavaScript, how is let different from const?", True),
        ("What's the difference between weather and climate?", "How do weather and climate differ?", True),
        ("What is the difference between let and const in JavaScript?",
         "How are let and const different in JavaScript?", True),
        ("What is the difference between let and const in JavaScript?",
         "How are let and var different in JavaScript?", False),
        ("How do I prepare for a job interview?", "What should I do to get ready for a job interview?", True),
        ("How do I prepare for a job interview?", "What should I do to get ready for a wedding?", False),
        ("How do I lose weight fast?", "What are some good ways to lose weight quickly?", True),  # ways and tips
        ("How do I lose weight fast?", "Any tips to lose weight fast?", True),
        ("How do I lose weight fast?", "How can one lose weight fast?", True),
        ("How do I lose weight fast?", "What are some ways to gain weight fast?", False),
        ("Do I need a transit visa for a layover in London?", "Do I need a transit visa for a London layover?", True),
        ("Do I need a transit visa for a layover in London?", "Do I need a transit visa for a layover in Paris?",
         False),
        ("Do I need to declare cash when entering the US?", "Do I have to declare cash when entering the US?", True),
        ("How do I sort a list of dictionaries by a value in Python?",
         "How to sort a list of dicts by value in Python?", True),  # the parse cuts "dictionaries" to "dictionarie"
        ('When should I use "who" vs "whom"?', 'When to use "who" versus "whom"?', True),
        ("Is it rude to not reply to my professor?", "Is it rude not to reply to my professor?", True),
        ("How do I set up voicemail on my iPhone?", "how do i set up voicemail on iphone", True),  # filler
        ("Show me how to use Python's with statement", "show how to use python's with statement", True),
        ("I am traveling to Asia. Do I need malaria pills?", "I'm traveling to Asia. Do I need malaria pills?", True),
        ("Rewrite this for a 10-year-old: 'Plants make food.'", "rewrite for a 10-year-old: 'Plants make food.'", True),
        ("Find and kill all processes named python", "find + kill all processes named python", True),
        ("How do I set up voicemail on my iPhone?", "How do I set up voicemail on her iPhone?", False),
        ("What's 12 times 13?", "12 x 13", True),  # arithmetic, with signs or in words
        ("What is 5 divided by 2?", "5 / 2 = ?", True),
        ("What is 20 minus 7?", "Subtract 7 from 20", True),
        ("Multiply 13 by 12", "12*13", True),
        ("What is 20 minus 7?", "Subtract 20 from 7", False),
        ("What is 5 divided by 2?", "5 * 2 = ?", False),
        ("What is 5 divided by 2?", "2 / 5 = ?", False),
        ("How are you?", "how's it going?", True),  # small talk, said as a whole prompt
        ("Thanks for your help!", "thank you so much for the help", True),
        ("Good morning!", "Morning!", True),
        ("Good morning!", "Good night!", False),
        ("Translate hello into French", "Translate hi into French", False),
        ("Do US citizens need a visa to visit Japan?", "do americans need a visa to visit japan?", True),
        ("Do US citizens need a visa to visit Japan?", "Do UK citizens need a visa to visit Japan?", False),
        ("How has remote work changed office culture?", "In what ways has remote work changed office culture?", True),
        ("What's the difference between a cold and the flu?", "How can I tell a cold from the flu?", True),
        ("What's the difference between let and const in JavaScript?",
         "What's the difference between let and var in JavaScript?", False),
        ("What's the difference between a list and a tuple in Python?",
         "What's the difference between a list and a tuple in Java?", False),
        ("iPhone vs Android", "Is iPhone better than Android?", False),
        ("How many feet are in a meter?", "How many feet is one meter?", True),  # a unit counted in another
        ("How many ounces in a cup?", "How many ounces are in one cup?", True),
        ("How many feet are in a meter?", "How many meters are in a foot?", False),
        ("How many feet are in a meter?", "How many feet are in 2 meters?", False),
        ("What causes World War II?", "What were the causes of World War II?", True),
        ("What causes migraines?", "What cures migraines?", False),
        ("What does HTTP stand for?", "What is HTTP short for?", True),
        ("Is 221 a prime number?", "Is the number 221 prime?", True),
        ("Is 221 a prime number?", "Is 223 a prime number?", False),
        ("Which vitamins should not be taken together?", "What vitamins shouldn't be taken at the same time?", True),
        ("What does HTTP stand for?", "What does HTTPS stand for?", False),  # not a plural
        ("What is HTTPS?", "What is HTTP?", False),
        ("What is HTTPS?", "what is https", True),
        ("Write a limerick about a cat", "Compose a limerick about a cat", True),  # an instruction's verb
        ("Can you summarize this article: The cat sat.", "Summarize this article: The cat sat.", True),
        ("Summarize this article: The cat sat.", "Translate this article: The cat sat.", False),
        ("Write a limerick about a cat", "Write a limerick about a dog", False),
        ("What's the capital of Canada?", "What is Canada's capital?", True),  # a possessive as "of"
        ("What is Occam's razor?", "what is occams razor", True),  # ... not in a name
        ("What is Canada's capital?", "What is Canada's largest city?", False),
        ("How do I cancel my subscription?", "I want to cancel my subscription. How do I do that?", True),
        ("How do I cancel my subscription?", "I want to pause my subscription. How do I do that?", False),
        ("What's the time complexity of binary search?", "What is the Big O of binary search?", True),
        ("How many legs does a spider have?", "How many legs do spiders have?", True),  # agreement
        ("What is inflation?", "What does inflation mean?", True),  # a definition
        ("What's the meaning of the word schadenfreude?", 'What does "schadenfreude" mean?', True),
        ("Explain what a black hole is", "What is a black hole?", True),
        ("What does inflation mean in economics?", "What is inflation in economics?", True),
        ("What is inflation?", "What is deflation?", False),
        ("What is inflation?", "What causes inflation?", False),
        ("What year did the Berlin Wall fall?", "When did the Berlin Wall fall?", True),
        ("What year did the Berlin Wall fall?", "What year was the Berlin Wall built?", False),
        ("What are the main causes of climate change?", "What causes climate change?", True),
        ("Who was the first person to climb Mount Everest?", "Who first climbed Mount Everest?", True),
        ("Who was the first person to climb Mount Everest?", "Who was the first woman to climb Mount Everest?",
         False),
        ("How long does it take for a tattoo to heal?", "How long do tattoos take to heal?", True),
        ("How long does it take for a tattoo to heal?", "How long does it take for a piercing to heal?", False),
        ("Why is my sourdough starter not bubbling?", "My sourdough starter isn't bubbling, why?", True),
        ("Why is my sourdough starter not bubbling?", "My sourdough starter is bubbling, why?", False),
        ('Translate "Where is the train station?" into Spanish.',
         'Translate "Where are the train stations?" into Spanish.', False),  # quoted text as written
        ('Translate "I gave my sister the book" into Russian.', 'Translate "I gave my sister the books" into Russian.',
         False),
        ('Count the words in: "the cat and the hat and the bat"', 'Count the words in: "the cat and the hat and a bat"',
         False),
        ("Translate 'good morning' into Spanish", "Translate 'Good morning' to Spanish", True),
        ("What's the difference between RAM and storage?", "What's the difference between storage and RAM?", True),
        ("What is the square root of 144?", "Square root of 144?", True),  # a bare phrase asks "what is"
        ("What are the side effects of metformin?", "side effects of metformin", True),
        ("What does DNA stand for?", "DNA?", False),  # ... "what is", not any question
        ("What is the square root of 144?", "Square root of 169?", False),
        ("What are the side effects of metformin?", "Side effects of ibuprofen?", False),
        ("Write a limerick about a cat", "Compose a limerick about a cat", True),  # an instruction stays one
        ("Write a haiku about autumn", "Compose a haiku about fall", True),
        ("Recommend a good science fiction book", "Recommend a good sci-fi book", True),
        ("What's the best way to cook quinoa?", "How do I cook quinoa?", True),  # "the best way to" asks "how"
        ("What's the fastest way to defrost chicken?", "How can I thaw chicken quickly?", True),
        ("What's the fastest way to learn Spanish?", "How do I learn Spanish?", False),  # ... kept "quickly"
        ("What's the easiest way to remove rust?", "How can I remove rust quickly?", False),
        ("What's the cheapest way to fly to Paris?", "How do I fly to Paris?", False),
        ("How often should I water a cactus?", "How frequently should I water a cactus?", True),
        ("What should I do if my dog eats chocolate?", "My dog ate chocolate. What should I do?", True),  # tense
        ("What should I do if I miss my flight?", "I missed my flight, what should I do?", True),
        ("What should I do if my dog eats chocolate?", "My dog ate grapes. What should I do?", False),
        ("What should I do if my child is bullied?", "My child bullies others, what should I do?", False),
        ("How long does it take to walk 5 km?", "How many minutes does it take to walk 5 kilometers?", True),
        ("How long is the flight from London to New York?", "How many hours is a flight from London to NYC?", True),
        ("How many minutes are in 3.5 hours?", "How many seconds are in 3.5 hours?", False),  # a conversion
        ("How many days is a week?", "How many hours is a week?", False),
        ("How many hours is 300 minutes?", "How many seconds is 300 minutes?", False),
        ("How many hours of sleep do I need?", "How long do I need to sleep?", False),
        ("What's the opposite of 'generous'?", "What's an antonym of generous?", True),
        ("How many cups of flour are in a pound?", "How many cups is one pound of flour?", True),  # a substance
        ("How many cups of flour are in a pound?", "How many cups of sugar are in a pound?", False),
        ("How many cups of flour are in a pound?", "How many cups are in a pound of sugar?", False),
        ("How do I convert a string to an int in Python?", "How do you turn a string into an integer in Python?",
         True),  # "turn X into Y"
        ("How do I convert MP3 to MP4?", "How can I turn an mp4 into an mp3?", False),
        ("How do I turn off my phone?", "How do I convert off my phone?", False),
        ("How do I check if a key exists in a dict?", "How do I check whether a key exists in a dict?", True),
        ("Convert 5 km to miles", "How many miles is 5 km?", True),  # a conversion asked four ways
        ("What is 5 km in miles?", "5 km to miles", True),
        ("How much is $100 in euros?", "Convert 100 dollars to euros", True),
        ("Convert 5 km to miles", "How many miles is 8 km?", False),
        ("Convert 5 km to miles", "How many km is 5 miles?", False),
        ("What is 100°F in Celsius?", "What is -100°F in Celsius?", False),
        ("How many ounces in a pound?", "How many oz are in 1 lb?", True),  # one of a unit: the unit count
        ("Is it bad to crack your knuckles?", "Is cracking your knuckles bad for you?", True),  # a judgement
        ("Is it bad for you to run every day?", "Is running every day bad?", True),
        ("Is it safe to take ibuprofen while pregnant?", "Is taking ibuprofen while pregnant safe?", True),
        ("Is it bad to crack your knuckles?", "Is cracking your back bad for you?", False),
        ("Is it safe to take ibuprofen while pregnant?", "Is taking ibuprofen while pregnant dangerous?", False),
        ("Is it safe to eat raw eggs?", "Is it safe for kids to eat raw eggs?", False),
        ("Is it safe to eat raw eggs?", "Is eating raw eggs safe for kids?", False),
        ("What caused the fall of the Western Roman Empire?", "Why did the Western Roman Empire fall?", True),
        ("Why did my cake sink?", "What caused my cake to sink?", True),  # "why did X V?": the cause of X's V
        ("Why did the Roman Empire fall?", "What caused the fall of the Ottoman Empire?", False),
        ("Why did my bread not rise?", "What caused my bread to rise?", False),
        ("Why did Rome invade Gaul?", "What caused Rome to invade Britain?", False),
        ("Is it bad to crack your knuckles?", "Is cracking your knuckles harmful?", True),  # harmful = bad (for you)
        ("Is drinking a lot of coffee bad for you?", "Is it unhealthy to drink lots of coffee?", True),
        ("Is it OK to drink coffee before a blood test?", "Is it bad to drink coffee before a blood test?", False),
        ("Is it bad to crack your knuckles?", "Is cracking your knuckles dangerous?", False),
        ("Is it harmful to eat raw eggs?", "Is it safe to eat raw eggs?", False),
        ("Is it normal for my eye to keep twitching?", "My eye keeps twitching, is that normal?", True),  # "normal"
        ("Is it normal that my baby sleeps 16 hours a day?", "My baby sleeps 16 hours a day. Is this normal?", True),
        ("Is it normal for a toddler not to talk yet?", "Is it normal for a toddler to not talk yet?", True),
        ("Is it normal for my knees to crack when I squat?", "My knees crack when I run, is that normal?", False),
        ("Is it normal for my knees to crack?", "My knees hurt, is that normal?", False),
        # "a dog" / "my dog": kept apart until the ninth session; "my" is filler word for word since, and a dog
        # that eats grass is normal or not whoever owns it
        ("Is it normal for a dog to eat grass?", "My dog eats grass, is that normal?", True),
        ("Is it normal for my dog to eat grass?", "My dog does not eat grass, is that normal?", False),
        ("Is it normal for my baby to sleep 16 hours?", "My baby sleeps 18 hours, is that normal?", False),
        ("Is it normal for my eye to twitch?", "Is it common for my eye to twitch?", False),
        ("What temperature is absolute zero?", "How cold is absolute zero?", True),  # a temperature
        ("Who was the US president in 1995?", "Who was president of the United States in 1995?", True),  # a name's
        ("Is coffee bad for you?", "Is drinking coffee unhealthy?", True),  # the thing taken in is what is judged
        ("My knee hurts when I run. Why?", "Why does my knee hurt when I run?", True),  # a statement, then "why"
        ("How long is the Great Wall of China?", "What is the length of the Great Wall of China?", True),  # a measure
        ("How tall is the Statue of Liberty?", "What is the height of the Statue of Liberty?", True),
        ("How tall is the Statue of Liberty?", "What is the weight of the Statue of Liberty?", False),
        ("When did World War II end?", "When did the Second World War end?", True),  # the wars, however numbered
        ("When did World War I end?", "When did World War II end?", False),
        ("Is zero an even number?", "Is 0 even?", True),
        ("Is zero an even number?", "Is zero an odd number?", False),
        ("Is it unprofessional to use emojis in work emails?", "Are emojis in work emails unprofessional?", True),
        ("My printer won't connect to Wi-Fi. Why?", "Why won't my printer connect to the Wi-Fi?", True),
        ("My knee hurts when I run. Why?", "Why does my knee hurt when I walk?", False),
        ("What caused the French Revolution?", "Why did the French Revolution happen?", True),  # what made it happen
        ("What caused the French Revolution?", "Why did the French Revolution end?", False),
        ("Is it safe to eat raw cookie dough?", "Is raw cookie dough safe?", True),
        ("Is coffee bad for you?", "Is coffee bad for dogs?", False),
        ("Who is the Apple CEO?", "Who is the CEO of Apple?", True),
        ("Who was the US president in 1995?", "Who was the French president in 1995?", False),
        ("What is the temperature of the sun?", "How hot does the Sun get?", True),
        ("What is the surface temperature of Venus?", "How hot is the surface of Venus?", True),
        ("What is the temperature of the sun?", "How hot is the Moon?", False),
        ("What is the temperature of the sun?", "What is the temperature of the sun's core?", False),
        ("Are mechanical keyboards worth it?", "Is it worth buying a mechanical keyboard?", True),  # worth it
        ("Is it worth learning Rust in 2024?", "Is learning Rust worth it in 2024?", True),
        ("Is a used car worth the money?", "Is it worth it to buy a used car?", True),
        ("Is it worth selling my car?", "Is my car worth it?", False),  # selling it asks of another act
        ("Is it worth buying a house?", "Is it worth renting a house?", False),
        ("Is gold worth more than silver?", "Is it worth buying gold?", False),
        ("Why is Python slower than C++?", "why is python so slow compared to c++", True),  # compared to: than
        ("Is a Tesla more expensive than a BMW?", "Is a Tesla expensive compared with a BMW?", True),
        ("Is Australia bigger than the US?", "Is Australia large compared to the US?", True),  # synonyms still meet
        ("Is Rust easier than C++?", "Is Rust easy compared to C++?", True),
        ("Why is Python slower than C++?", "Why is Python fast compared to C++?", False),
        ("Why is Python slower than C++?", "Why is Python slow compared to Java?", False),
        ("Why is London so expensive?", "What is the reason London is so expensive?", True),  # the reason: why
        ("Why was the Eiffel Tower built?", "What was the reason for building the Eiffel Tower?", True),
        ("Why was the Eiffel Tower built?", "What was the reason for painting the Eiffel Tower brown?", False),
        ("Is it better to learn Mandarin or Cantonese?", "Which is better to learn, Mandarin or Cantonese?", True),
        ("Is it better to rent or buy?", "Which is cheaper, renting or buying?", False),
        ("Is Colombia safe?", "How safe is Colombia?", True),  # a judgement asked by degree
        ("Is it hard to learn Japanese?", "How hard is it to learn Japanese?", True),
        ("Is Colombia safe?", "How dangerous is Colombia?", False),
        ("Is Tokyo expensive?", "How expensive is Tokyo?", False),  # an amount
        ("Should I learn Python or JavaScript first?", "Which language should I learn first, Python or JavaScript?",
         True),  # a choice asked with "which", its alternatives after a comma
        ("Should I use a credit card or a debit card?", "Which should I use, a credit card or a debit card?",
         True),
        ("Should I buy a Kindle or a Kobo?", "Which e-reader should I buy, a Kindle or a Nook?", False),
        ("Should I buy a Kindle?", "Which e-reader should I buy, a cheap one?", False),
        # a simple explanation, however it is asked for; a plain definition is another request
        ("Explain inflation like I'm five", "What is inflation in simple terms?", True),
        ("ELI5: quantum entanglement", "Explain quantum entanglement simply", True),
        ("Could you explain cloud computing like I'm five?", "What is cloud computing in simple terms?", True),
        ("Explain inflation like I'm five", "What is inflation?", False),
        ("Explain inflation like I'm five", "Explain deflation like I'm five", False),
        # what happens in a story
        ("Summarize the plot of Romeo and Juliet", "What happens in Romeo and Juliet?", True),
        ("What is Romeo and Juliet about?", "What happens in Romeo and Juliet?", True),
        ("Summarize the plot of Romeo and Juliet", "What happens in Hamlet?", False),
        ("Summarize the plot of Romeo and Juliet", "Who wrote Romeo and Juliet?", False),
        # what to pack, as a list or as a question
        ("Give me a packing list for a camping trip", "What should I pack for a camping trip?", True),
        ("What to pack for a week in Iceland", "Packing list for a week in Iceland", True),
        ("Give me a packing list for a camping trip", "What should I pack for a beach trip?", False),
        ("Who was the first president of the United States?", "Who was the very first US president?", True),
        # plurals that do not end in "s"
        ("What is the difference between a fungus and a plant?", "How are fungi different from plants?", True),
        ("Should I give my kid an allowance?", "should i give my kids an allowance", True),
        ("What is the ibuprofen dosage for children?", "What is the ibuprofen dosage for adults?", False),
        # a measure asked in a unit, and a thing named by whose it is
        ("How many kilometers is a marathon?", "How long is a marathon in kilometres?", True),
        ("How many miles is a marathon?", "How long is a marathon in kilometres?", False),
        ("How many miles is 5 km?", "How far is 5 km in miles?", True),
        ("Why is my laptop fan so loud?", "Why is the fan on my laptop so loud?", True),
        ("How do I clean the screen of my phone?", "How do I clean my phone screen?", True),
        ("Why is my laptop fan so loud?", "Why is the fan on my phone so loud?", False),
        ("Is a glass of water enough?", "Is a water glass enough?", False),  # no owner: not the owner's form
        # a simple explanation asked for before or after the thing
        ("Explain what a Roth IRA is in simple terms.", "Can you explain in simple terms what a Roth IRA is?", True),
        ("Explain what a Roth IRA is in simple terms.", "Can you explain in simple terms what a 401k is?", False),
        ("Do I need a visa to visit Japan as a US citizen?", "As an American, do I need a visa for Japan?", True),
    ],
)
def test_one_question_asked_in_another_frame_asks_the_same(query: str, cached: str, same: bool) -> None:
    assert same_question_in_other_words(query, cached) is same
    assert same_question_in_other_words(cached, query) is same


@pytest.mark.parametrize("text", ["", "?", '""', "!!", "in", "how many", "distance between and", "x vs y vs z",
                                  "what should i do", "i want to how", "who is the painter of"])
def test_prompts_with_no_words_or_half_a_frame_are_no_question_of_another(text: str) -> None:
    assert not same_question_in_other_words(text, "What is the capital of France?")
    assert same_question_in_other_words(text, text) is bool(_canonical_words(text))


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Write a SQL query to get the 2nd highest salary", "Write a SQL query to get the 3rd highest salary"),
        ("Write a SQL query to get the 2nd highest salary", "Write a SQL query to get the third highest salary"),
        ("What happened in the 3rd century BC?", "What happened in the 4th century BC?"),
        ("Who won the third season of Survivor?", "Who won the fourth season of Survivor?"),
    ],
)
def test_ordinals_are_numbers(query: str, cached: str) -> None:
    assert hard_rule_refusal(query, cached) == "numbers_differ"


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        # "at once" is no number: the two counts of pills are the numbers that differ
        ("Is it OK to take 2 ibuprofen at the same time?", "Can I take four ibuprofen at once?"),
        ("half cup to ml", "How much is a quarter cup in ml?"),
        # a named day or month replaced, the rest reworded
        ("Draft a customer email: the service will be down for maintenance Saturday night",
         "Write an email to our customers saying the service will be down for maintenance on Sunday night"),
        ("cheap flights from Tokyo to Seoul in March", "How much is a flight from Tokyo to Seoul in June?"),
        # a size on a screen in another unit
        ("css: make paragraph text 16px", "How do I set the font size of a paragraph to 16pt in CSS?"),
        # the same count of another unit of time, the rest reworded
        ("For roughly 2 weeks I've had a dry cough that gets worse at night. What might cause this?",
         "I've had a dry cough for about two months now and it's worse at night. What could be causing it?"),
        ("How much should I feed my 10-week-old kitten?", "kitten 10 months old, how much food?"),
        ("cron job every 5 mins", "How do I schedule a cron job to run every 5 hours?"),
    ],
)
def test_a_count_a_fraction_or_a_date_replaced_is_a_number_that_differs(query: str, cached: str) -> None:
    assert hard_rule_refusal(query, cached) == "numbers_differ"


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        # a number bounded from below on one side and from above on the other
        ("bash: gzip the logs older than 7 days", "Write a bash script that compresses log files newer than 7 days"),
        ("SQL: customers that have 3 or more orders", "Write a SQL query for the customers with at most 3 orders"),
        ("gift ideas under $50", "What are some good gift ideas over 50 dollars?"),
        # an answer asked short against one asked long
        ("Explain photosynthesis in one sentence", "Explain photosynthesis in detail"),
        ("Explain photosynthesis briefly", "Can you give me an in-depth explanation of photosynthesis?"),
        ("Give me a quick overview of the French Revolution", "Give me a detailed overview of the French Revolution"),
        # causes against consequences, a budget against luxury
        ("Explain the causes of World War 1", "Explain the consequences of World War 1"),
        ("Plan a weekend itinerary for Rome on a budget.", "Plan a luxury weekend itinerary for Rome."),
    ],
)
def test_opposites_named_on_each_side_refuse_outright(query: str, cached: str) -> None:
    assert hard_rule_refusal(query, cached) == "comparative"


@pytest.mark.parametrize(
    ("query", "cached"),
    [
        ("Can you make this sentence more formal: 'hey, send me the report'",
         "Make this sentence more formal: 'hey, send me the report'"),
        ("Could you recommend a good book about habits?", "Recommend a good book about habits"),
        ("what should I say in a eulogy for my grandpa?", "What should I say in a eulogy for my grandfather?"),
        ("What are the benefits of renting an apartment rather than buying one?",
         "What are the advantages of renting an apartment instead of buying one?"),
        # chat shorthand
        ("why r movie tickets so expensive now", "Why are movie tickets so expensive now?"),
        ("write a py function that checks if a string is a palindrome",
         "Write a Python function that checks if a string is a palindrome"),
        ("what does explain analyze do in postgres", "What does EXPLAIN ANALYZE do in PostgreSQL?"),
        ("how do i delete my acct", "How do I delete my account?"),
        ("What is a typical blood hemoglobin level?", "What is a normal blood hemoglobin level?"),
    ],
)
def test_a_polite_request_and_everyday_synonyms_are_the_same_question(query: str, cached: str) -> None:
    assert same_question_in_other_words(query, cached)


def test_a_can_you_question_about_anyone_keeps_its_can_you() -> None:
    assert not same_question_in_other_words("Can you eat raw cookie dough?", "Eat raw cookie dough")


def test_a_cause_asked_as_a_side_effect_is_no_opposite() -> None:
    assert hard_rule_refusal("Does excessive caffeine cause headaches?",
                             "Are headaches a side effect of excessive caffeine?") is None


def test_a_bound_kept_in_other_words_is_no_bound_reversed() -> None:
    from asgi_llmguard.cache.wording import bound_reversed

    assert not bound_reversed("Is 18 or older an adult?", "Is someone at least 18 years old an adult?")
    assert not bound_reversed("kids under 12 fly free?", "Do children younger than 12 fly for free?")
    assert not bound_reversed("files over 100MB", "files larger than 100 MB")
    assert not bound_reversed("more than 3 orders", "3 orders")  # a bound on one side only: not this rule


def test_a_time_span_in_other_words_or_other_numbers_is_no_time_span_replaced() -> None:
    from asgi_llmguard.cache.wording import time_span_replaced

    assert not time_span_replaced("Boil the eggs for 10 minutes", "Boil the eggs for ten mins")
    assert not time_span_replaced("Is 2 weeks enough to see Japan?", "Can I see Japan in 14 days?")
    assert not time_span_replaced("How many hours are in 3 days?", "3 days is how many hours?")
    # another count is another rule's to read: only the same numbers in other units are this one
    assert not time_span_replaced("a cough for 2 weeks", "a cough for 3 months")


def test_a_date_kept_or_may_the_verb_is_no_date_replaced() -> None:
    from asgi_llmguard.cache.wording import date_replaced

    assert not date_replaced("What should I do in Rome on Sunday?", "Things to do in Rome on a Sunday")
    assert not date_replaced("May I bring a dog to the office in June?", "Can I bring my dog to work in June?")
    assert not date_replaced("What happened on Monday and Friday?", "What happened on Friday?")


@pytest.mark.model
def test_the_verifier_serves_swapped_alternatives_and_synonyms_without_the_pair_model(verifier: Verifier) -> None:
    for query, cached in [("Is tomato a vegetable or a fruit?", "Is a tomato a fruit or a vegetable?"),
                          ("What are the signs of diabetes?", "What are the symptoms of diabetes?")]:
        assert verifier.pair_logit(query, cached) < 0  # the pair model alone distrusts these
        assert not verifier.needs_pair_model(query, cached)
        assert verifier.check(query, cached, 0.97).accepted


@pytest.mark.model
def test_a_phrase_moved_from_one_end_to_the_other_is_the_same_question(verifier: Verifier) -> None:
    query = "As a British citizen, do I need a visa to visit Canada?"
    cached = "Do I need a visa to visit Canada as a UK citizen?"
    assert verifier.pair_logit(query, cached) < -2  # the pair model reads the move as a swap
    assert not verifier.needs_pair_model(query, cached)
    assert verifier.check(query, cached, 0.965).accepted


def test_a_moved_phrase_is_not_a_swap_inside_the_sentence() -> None:
    from asgi_llmguard.cache.same_question import adjunct_moved

    assert adjunct_moved("On Ubuntu, how do I check free disk space?", "How do I check free disk space on Ubuntu?")
    assert adjunct_moved("In Rust, how do I read a file into a string?", "How do I read a file into a String in Rust?")
    assert not adjunct_moved("flights from Oslo to Rome", "flights from Rome to Oslo")
    assert not adjunct_moved("Is Australia bigger than the US?", "Is the US bigger than Australia?")
    assert not adjunct_moved("Is my boss's wife invited to the party?", "Is my wife's boss invited to the party?")
    # the block that moves must open with a preposition or a conjunction: "dogs" is what is asked about
    assert not adjunct_moved("dogs can eat which fruits", "which fruits can dogs eat")


def test_everyday_synonyms_meet_in_the_same_question_shortcut() -> None:
    from asgi_llmguard.cache.same_question import only_synonyms_differ

    assert only_synonyms_differ("Who made you?", "Who created you?")
    assert only_synonyms_differ("should i buy or rent a home", "Should I buy or rent a house?")
    assert only_synonyms_differ("should i learn python or js first", "Should I learn Python or JavaScript first?")
    assert not only_synonyms_differ("Who made you?", "Who trained you?")
    # The size of a piece of writing, before it or after it.
    assert only_synonyms_differ("Write a 100-word story about a lost key",
                                "Write a story about a lost key in one hundred words")
    assert not only_synonyms_differ("Write a 100-word story about a lost key",
                                    "Write a 200-word story about a lost key")
    assert not only_synonyms_differ("Write a 100-word story about a lost key",
                                    "Write a story about a lost key in under 100 words")


def test_opposite_verbs_are_read_in_any_form_and_who_a_request_is_for() -> None:
    assert _opposite("React 18, StrictMode is enabled. Why?", "React 18 with StrictMode disabled. Why?") == 1.0
    assert _opposite("Draft a tweet to announce the opening of our shop", "Write a tweet announcing our shop closing")
    assert _opposite("Compose a birthday poem for my wife", "Write a birthday poem for my husband") == 1.0
    assert _opposite("python shallow copy a list", "How do I make a deep copy of a list in Python?") == 1.0
    assert _opposite("Most common side effects of the flu vaccine", "Rarest side effects of the flu vaccine") == 1.0
    assert _opposite("Area of a circle whose radius is 5 cm", "Area of a circle with a diameter of 5 cm") == 1.0
    assert _opposite("A recommendation letter for my former student", "A recommendation letter for my former employee")
    # Nouns and adjectives match only as written: "days" is not "day" against "night".
    assert _opposite("I had sex two days before", "I had sex again at night") == 0.0
    assert _opposite("Why is Kant so hard to read?", "What makes Kant's writing so difficult?") == 0.0


def test_an_opposite_named_on_each_side_refuses_outright() -> None:
    assert hard_rule_refusal("Give me a vegan lasagna recipe",
                             "Can you give me a recipe for vegetarian lasagna?") == "comparative"
    assert hard_rule_refusal("How do I unblock a number on iPhone?",
                             "How can I block someone's number?") == "comparative"
    # Both named on both sides is a question about the two, not a swap.
    assert hard_rule_refusal("What's the difference between vegan and vegetarian?",
                             "How is a vegetarian diet different from a vegan one?") is None


def test_a_negating_prefix_names_the_opposite_unless_the_plain_side_negates_it_itself() -> None:
    assert _opposite("How can I block someone's number on my iPhone?", "How do I unblock a number on iPhone?") == 1.0
    assert _opposite("Node.js: read a file synchronously", "How do I read a file asynchronously in Node.js?") == 1.0
    assert _opposite("Why does Python say 'IndentationError: unexpected indent'?",
                     "Python throws 'IndentationError: expected an indented block'. Why?") == 1.0
    assert _opposite("Is it legal to drive barefoot in the UK?", "Is it illegal to drive barefoot in the UK?") == 1.0
    assert _opposite("present tense conjugation of être", "How do I conjugate être in the future tense?") == 1.0
    # "hasn't paid" is "unpaid"; "non-stick" is "nonstick"; short stems meet other words ("til" / "until").
    assert _opposite("Write a polite email to a client who hasn't paid their invoice",
                     "Draft a polite reminder email to a client with an unpaid invoice") == 0.0
    assert _opposite("Is it safe to put a non-stick pan in the dishwasher?",
                     "Can nonstick pans go in the dishwasher?") == 0.0
    assert _opposite("Remove duplicates from a Python list", "Deduplicate a Python list") == 0.0
    assert _opposite("My feet throb til they go numb", "My feet throb until they go numb") == 0.0
    assert _opposite("How do I unzip a file on Mac?", "How do you open a zip file on a Mac?") == 0.0
    # a verb that takes the thing away says what the prefix says
    assert _opposite("How do I unlock my screen?", "How do I remove the screen lock?") == 0.0
    assert _opposite("How do I unfreeze my credit?", "How do I lift a credit freeze?") == 0.0


def test_opposites_name_a_unit_format_register_person_kind_of_writing_or_place_asked_for() -> None:
    assert _opposite("java code to reverse a singly linked list", "How do I reverse a doubly linked list in Java?")
    # the unit, the format or the register an answer is asked in
    assert _opposite("What's the freezing point of water in °F?", "At what temperature does water freeze in Celsius?")
    assert _opposite("Make a markdown table from this list: a, b", "Turn this list into an HTML table: a, b")
    assert _opposite('Make this more formal: "Hey"', 'Rewrite this sentence to sound more casual: "Hey"')
    assert _opposite("Convert this JSON to YAML: {}", "{} -> YAML please") == 0.0
    # who a message is for, and what kind of writing is asked for
    assert _opposite("Write a birthday message for my grandma",
                     "My grandpa is turning 90. Write him a birthday message")
    assert _opposite("Write a funny poem about my cat", "Can you write a funny song about my cat?")
    assert _opposite("Extract all email addresses from this text: T", "Extract all phone numbers from this text: T")
    assert _opposite("Can you explain quantum computing simply?", "Explain quantum computing in full technical detail")
    assert _opposite("Give me a list of high-protein vegetarian foods", "Give me a list of high-fiber vegetarian foods")
    assert _opposite("How many calories are in a banana?", "how many carbs are in a banana")
    assert _opposite("Write a Slack message saying I'll be out sick today", "Draft a Slack note: I'm off sick tomorrow")
    assert _opposite("bash script to back up a folder", "Write a shell script that restores a folder")
    assert _opposite("What is the quickest way to learn to type?", "What is the slowest way to learn to type?")
    assert _opposite("How long can cooked chicken be kept in the freezer?", "How long does chicken last in the fridge?")


def test_a_conversion_or_comparison_read_the_other_way_round_is_a_direction() -> None:
    def direction(a: str, b: str) -> float:
        return _feature("direction", a, b)

    # The words next to the marker differ ("word doc" / "Word document"); the ends still trade places.
    assert direction("how to turn a pdf into a word doc", "How do I convert a Word document to a PDF?") == 1.0
    assert direction("JS: unix timestamp to Date object", "How do I convert a date to a Unix timestamp in JS?") == 1.0
    assert direction("Does a kilogram weigh more than a pound?", "Is a pound heavier than a kilogram?") == 1.0
    assert direction("JS: turn a string into an int", "How do I convert an integer to a string in JavaScript?") == 1.0
    # "To" opening a verb is no direction; nor is a route told in another order.
    assert direction("Is German harder to learn than French?", "Which is harder to learn, German or French?") == 0
    assert direction("Send money from the US to the UK", "How do I transfer money to the UK from the US") == 0.0


def test_numbers_in_another_order_are_a_swap_only_when_they_trade_what_follows_them() -> None:
    def swap(a: str, b: str) -> float:
        return _feature("swap", a, b)

    assert swap("Divide 10 by 2", "Divide 2 by 10") == 1.0
    assert swap("How many miles is 5 km to 8 miles", "How many miles is 8 km to 5 miles") == 1.0
    # Each number keeps its unit; only the order of the request's parts changed.
    assert swap("What is the probability of rolling a sum of 7 with two dice?",
                "Two dice are rolled. What's the chance the total is 7?") == 0.0
    assert swap("Summarize in one sentence: Sales rose 12% in Q3.",
                "Sales rose 12% in Q3. Give me a one-sentence summary.") == 0.0


def test_the_kind_of_question_is_read_in_the_question_a_prompt_ends_on() -> None:
    told = "My kid asked me this and I had no idea:"
    assert hard_rule_refusal(f"{told} how were the pyramids of Giza built?",
                             f"{told} why were the pyramids of Giza built?") == "question_type"
    # A few words leaning on what came before are no question of their own.
    assert hard_rule_refusal("Why won't my computer connect to Wi-Fi?",
                             "My PC can't get on the Wi-Fi. What's wrong?") is None


def test_at_what_or_in_what_asks_for_an_amount_or_a_time_unless_the_prompt_offers_one() -> None:
    assert hard_rule_refusal("What is the Maillard reaction?",
                             "At what temperature does the Maillard reaction start?") == "question_type"
    assert hard_rule_refusal("Is it ok to let my baby cry it out?",
                             "At what age can I let my baby cry it out?") == "question_type"
    assert hard_rule_refusal("At what temperature should I bake kale, 180 degrees?",
                             "Is 180 degrees right for baking kale?") is None
    assert hard_rule_refusal("What is the boiling point of water?", "At what temperature does water boil?") is None


def test_a_race_k_is_kilometres_and_a_count_k_thousands() -> None:
    assert hard_rule_refusal("How long does it take to walk 5 kilometers?", "how long to walk 5k") is None
    assert hard_rule_refusal("training plan for a 10k run", "training plan for a 10 km run") is None
    assert hard_rule_refusal("Is it healthy to walk 10k steps a day?", "Is it healthy to walk 5k steps a day?") == (
        "numbers_differ")
    assert hard_rule_refusal("Is a salary of 80k good in Berlin?", "Is $80,000 a good salary in Berlin?") is None
    # a race named by its distance alone, where the prompt speaks of distance, or ends a clause
    assert hard_rule_refusal("How many miles is a 10K?", "how far is a 10k run in miles") is None
    assert hard_rule_refusal("What's a good time for a 5k?", "What is a good 5 km race time?") is None
    assert hard_rule_refusal("Is a 10k bonus taxed?", "How is a $10,000 bonus taxed?") is None
    assert hard_rule_refusal("Is 10k miles a lot for a used car?", "Is 10,000 miles a lot for a used car?") is None
