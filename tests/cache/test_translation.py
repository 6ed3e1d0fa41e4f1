"""Bare translation requests: read alike however they are asked, apart when the text or the language differs."""

from __future__ import annotations

import pytest

from asgi_llmguard.cache.same_question import same_question_in_other_words
from asgi_llmguard.cache.translation import Translation, translation_difference, translation_request
from asgi_llmguard.cache.verify import hard_rule_refusal

OFFICE = Translation("swedish", None, "our office will be closed on friday")


@pytest.mark.parametrize("prompt", [
    "Translate into Swedish: Our office will be closed on Friday.",
    "Swedish translation: Our office will be closed on Friday.",
    "Put this into Swedish: Our office will be closed on Friday.",
    "Please translate this to Swedish: our office will be closed on Friday",
    'Translate "Our office will be closed on Friday." into Swedish',
    "How do you say 'Our office will be closed on Friday' in Swedish?",
    "What's 'Our office will be closed on Friday' in Swedish?",
    "Swedish for 'Our office will be closed on Friday.'",
    "\u201cOur office will be closed on Friday.\u201d Translate this into Swedish.",
    '"Our office will be closed on Friday" - in Swedish, please.',
])
def test_one_translation_asked_in_many_ways_is_read_alike(prompt: str) -> None:
    assert translation_request(prompt) == OFFICE


@pytest.mark.parametrize("prompt", [
    "Translate into formal Swedish: Our office will be closed on Friday.",  # a register asked for
    "Translate into Swedish and explain the grammar: Our office will be closed on Friday.",
    "How do you say 'thank you' in Japanese, politely?",
    "Translate into Klingon: Our office will be closed on Friday.",  # not a language we know
    "How do I stop translating in my head when speaking?",
    "What is the capital of Sweden?",
    "",
])
def test_a_request_with_more_than_a_text_and_a_language_is_not_read(prompt: str) -> None:
    assert translation_request(prompt) is None


def test_source_and_two_word_language_names() -> None:
    assert translation_request("Translate this sentence from French to English: \"Je ne sais pas.\"") == \
        Translation("english", "french", "je ne sais pas")
    assert translation_request("Translate the following English text to Italian: See you soon.") == \
        Translation("italian", "english", "see you soon")
    assert translation_request("Translate into Chinese (Simplified): Hello.") == \
        translation_request("translate to simplified chinese: hello")
    assert translation_request("Mandarin Chinese for 'Where is the bathroom?'") == \
        Translation("mandarin", None, "where is the bathroom")


@pytest.mark.parametrize(("query", "cached", "same"), [
    ("Translate into Swedish: Our office will be closed on Friday.",
     "Swedish translation: Our office will be closed on Friday.", True),
    ("Translate to Dutch: The store opens at 9 am on weekdays.",
     "Put this into Dutch: The store opens at 9 am on weekdays.", True),
    ("Translate the following English text to Italian: The meeting is on Thursday.",
     "Put this into Italian: The meeting is on Thursday.", True),  # a source said on one side only
    ("Translate to Dutch: The store opens at 9 am on weekdays.",
     "Translate to Dutch: The store opens at 9 am on weekends.", False),
    ("Translate into Swedish: Our office will be closed on Friday.",
     "Translate into Norwegian: Our office will be closed on Friday.", False),
    ('Translate "actual" from Spanish to English.', 'Translate "actual" from English to Spanish.', False),
    ("How do you say 'I'm allergic to peanuts' in Japanese?",
     "What's the Japanese for 'I am allergic to peanuts'?", True),  # a contraction written out
    ("Translate 'I don't eat meat' into French", "Translate 'I do eat meat' into French", False),
    ("Translate 'Anna's book is here' into German", "Translate 'Anna is book is here' into German", False),
])
def test_the_same_translation_is_served_and_another_refused(query: str, cached: str, same: bool) -> None:
    assert same_question_in_other_words(query, cached) is same
    assert same_question_in_other_words(cached, query) is same
    assert (hard_rule_refusal(query, cached) is None) is same
    assert (hard_rule_refusal(cached, query) is None) is same


def test_a_translation_of_another_text_is_refused_however_it_is_asked() -> None:
    assert hard_rule_refusal('Translate "actual" from Spanish to English.',
                             'Translate "actual" from English to Spanish.') == "direction"
    assert hard_rule_refusal("Translate into Swedish: Hej.", "Translate into Norwegian: Hej.") == "symbols_differ"
    assert hard_rule_refusal('Translate "Where is the nearest train station?" into Spanish.',
                             'How would you say "Where is the nearest bus station?" in Spanish?') == "symbols_differ"
    assert hard_rule_refusal('"I will call you tomorrow morning" - in Italian, please.',
                             "What's the Italian for \"I won't call you tomorrow morning\"?") == "symbols_differ"
    # one side not a bare request: left to the verifier's other rules (here the opposites, morning / night)
    assert translation_difference("Translate into Swedish: Good morning.",
                                  "Translate into Swedish and explain the grammar: Good night.") is None
    assert hard_rule_refusal("Translate into Swedish: Good morning.",
                             "Translate into Swedish and explain the grammar: Good night.") == "comparative"


def test_prompts_that_name_other_languages_are_refused() -> None:
    from asgi_llmguard.cache.translation import languages_differ
    from asgi_llmguard.cache.verify import hard_rule_refusal

    assert hard_rule_refusal("Translate the word 'apple' into French and German",
                             "What is 'apple' in French, German, and Spanish?") == "symbols_differ"
    # English said or not, Mandarin for Chinese: the same languages.
    assert not languages_differ("Translate 'thank you' from English to French", "How do I say thank you in French?")
    assert not languages_differ("Translate 'Happy birthday' into Chinese", "How do you say happy birthday in Mandarin?")
    assert not languages_differ("What is 'apple' in French?", "Give me a recipe for apple pie")  # one names none


def test_an_answer_asked_in_a_language_on_one_side_only_is_refused() -> None:
    from asgi_llmguard.cache.translation import answer_language_added
    from asgi_llmguard.cache.verify import hard_rule_refusal

    # The pair model is sure of this one (+3.4): the cached answer would be in English.
    assert hard_rule_refusal("Answer in German: what is your favorite color?",
                             "What's your favorite color?") == "symbols_differ"
    for asked in ("Why is the sky blue? Reply in French.", "In Spanish, explain recursion",
                  "Summarize the French Revolution in German", "Tell me a joke, in Japanese please",
                  "Explain what happened in Paris in 1789 in French"):
        assert answer_language_added(asked, "Explain it plainly"), asked
        assert answer_language_added("Explain it plainly", asked), asked  # either side
    # English is what an answer is in anyway; a language the question is about is not the answer's.
    assert not answer_language_added("Answer in English: why is the sky blue?", "Why is the sky blue?")
    assert not answer_language_added("What does 'gracias' mean in Spanish?", "What does gracias mean?")
    assert not answer_language_added("Tell me what 'gracias' means in Spanish", "What does gracias mean?")
    assert not answer_language_added("How do you say thank you in Japanese?", "How do you say thank you?")
    # Both sides name the language: the same request (another language would be languages_differ's).
    assert not answer_language_added("Write a haiku about autumn in Japanese", "Japanese haiku about autumn")
