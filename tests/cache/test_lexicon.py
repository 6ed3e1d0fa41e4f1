"""The lexicon: which stored prompt a request most likely rewords, guessed from shared words."""

from __future__ import annotations

import pytest

from asgi_llmguard.cache.lexicon import MAX_PROMPT_CHARS, MIN_OVERLAP, Lexicon, words_of


def test_the_guess_is_the_stored_prompt_sharing_the_most_words() -> None:
    lexicon = Lexicon()
    lexicon.add("ns", 1, "How do I reverse a list in Python?")
    lexicon.add("ns", 2, "How do I sort a list in Python?")
    lexicon.add("ns", 3, "What is the capital of France?")
    guess = lexicon.nearest("ns", "How can I reverse a list in Python?")
    assert guess is not None and guess.key == 1 and guess.prompt == "How do I reverse a list in Python?"
    assert guess.overlap == 1.0  # the same topic words: how, reverse, list, python ("do", "can", "a" are not)
    france = lexicon.nearest("ns", "What's the capital city of France?")
    assert france is not None and france.key == 3


def test_no_guess_below_the_overlap_or_in_another_namespace() -> None:
    lexicon = Lexicon()
    lexicon.add("ns", 1, "Give me a recipe for pancakes")
    assert lexicon.nearest("ns", "What should I cook for dinner tonight?") is None  # no topic word shared
    assert lexicon.nearest("ns", "Which pancake toppings go with a recipe for waffles?") is None  # 1 of 7
    guess = lexicon.nearest("ns", "How do I make pancakes?")  # 1 of 3: {recipe, pancakes} and {how, pancakes}
    assert guess is not None and guess.overlap == pytest.approx(1 / 3)
    assert lexicon.nearest("other", "Give me a recipe for pancakes") is None
    assert 1 / 7 < MIN_OVERLAP < 1 / 3


def test_removed_and_cleared_prompts_are_no_longer_guessed() -> None:
    lexicon = Lexicon()
    lexicon.add("a", 1, "What is the boiling point of water?")
    lexicon.add("a", 2, "What is the boiling point of milk?")
    lexicon.add("b", 1, "What is the boiling point of water?")
    lexicon.remove("a", 1)
    guess = lexicon.nearest("a", "What is the boiling point of water?")
    assert guess is not None and guess.key == 2
    lexicon.clear("a")
    assert lexicon.nearest("a", "What is the boiling point of water?") is None
    assert lexicon.nearest("b", "What is the boiling point of water?") is not None  # other namespaces stay
    lexicon.clear()
    assert len(lexicon) == 0 and lexicon.nearest("b", "What is the boiling point of water?") is None


def test_the_oldest_prompts_go_past_the_bound_and_long_ones_are_not_kept() -> None:
    lexicon = Lexicon(max_prompts=2)
    for key, prompt in enumerate(["alpha beta gamma", "delta epsilon zeta", "eta theta iota"]):
        lexicon.add("ns", key, prompt)
    assert len(lexicon) == 2
    assert lexicon.nearest("ns", "alpha beta gamma") is None
    assert lexicon.nearest("ns", "eta theta iota") is not None
    lexicon.add("ns", 9, "word " * MAX_PROMPT_CHARS)
    assert len(lexicon) == 2 and lexicon.nearest("ns", "word " * 3) is None
    assert words_of("What's the capital?") == {"what", "capital"}  # function words name no topic
    assert words_of("Is it?") == {"is", "it"}  # unless there is nothing else
    with pytest.raises(ValueError, match="max_prompts"):
        Lexicon(max_prompts=0)
