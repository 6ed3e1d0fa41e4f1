"""Generated prompt pairs for training the verifier's pair model: template questions and real MQP questions
with one slot changed (a different answer) or reworded (the same answer).

Template families (conversions, currencies, translation, routes, doses, ...) fill their slots from
training-only word lists, then change one slot (a number, a named thing, two slots exchanged) for a
negative, or fill another wording of the same question for a positive. MQP questions get one
perturbation (number, negation, a listed named thing, an opposite, two words around "to/than/from"
reversed) and, for some, a harmless edit or a synonym swap. Deterministic for a given seed.

Used by bench/research/train_pair_model.py (train part) and train_verifier.py (cal part): pairs of
one group (one template fill, one MQP question) stay in one part.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import _pairs

from asgi_llmguard.cache.wording import _STOP


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    label: int  # 1 = same answer
    source: str  # "mqp" or "gen"
    group: str  # fold grouping key
    kind: str  # perturbation kind or "mqp"


# ---------------------------------------------------------------- generators
# Training-only vocabulary, chosen to differ from the test trap set.
KINDS: dict[str, list[str]] = {
    "city": [
        "Lisbon",
        "Oslo",
        "Cairo",
        "Lima",
        "Hanoi",
        "Nairobi",
        "Quito",
        "Riga",
        "Dakar",
        "Perth",
        "Porto",
        "Kyoto",
        "Seville",
        "Krakow",
        "Bergen",
        "Cusco",
    ],
    "language": [
        "Dutch",
        "Polish",
        "Greek",
        "Turkish",
        "Swahili",
        "Hindi",
        "Korean",
        "Czech",
        "Finnish",
        "Hungarian",
        "Thai",
        "Vietnamese",
    ],
    "tech": [
        "Flask",
        "Django",
        "React",
        "Vue",
        "Pandas",
        "Polars",
        "Rust",
        "Kotlin",
        "Swift",
        "Elixir",
        "Haskell",
        "Svelte",
        "Postgres",
        "SQLite",
        "Kafka",
        "Terraform",
    ],
    "drug": [
        "ibuprofen",
        "acetaminophen",
        "aspirin",
        "naproxen",
        "amoxicillin",
        "metformin",
        "lisinopril",
        "prednisone",
        "loratadine",
        "omeprazole",
        "sertraline",
        "melatonin",
    ],
    "food": [
        "quinoa",
        "lentils",
        "tofu",
        "salmon",
        "kale",
        "oats",
        "avocado",
        "mango",
        "couscous",
        "tempeh",
        "chickpeas",
        "barley",
    ],
    "animal": ["ferret", "parrot", "hamster", "tortoise", "rabbit", "gecko", "goldfish", "cockatiel"],
    "condition": [
        "asthma",
        "gout",
        "eczema",
        "migraine",
        "anemia",
        "psoriasis",
        "sciatica",
        "tinnitus",
        "vertigo",
        "shingles",
        "bronchitis",
        "acne",
        "insomnia",
        "diabetes",
        "arthritis",
    ],
    "body": [
        "knee",
        "elbow",
        "ankle",
        "wrist",
        "shoulder",
        "hip",
        "neck",
        "jaw",
        "chest",
        "stomach",
        "back",
        "throat",
        "ear",
        "eye",
        "foot",
        "head",
    ],
}
UNIT_PAIRS = [
    ("ounces", "grams"),
    ("yards", "meters"),
    ("acres", "hectares"),
    ("pints", "liters"),
    ("stones", "kilograms"),
    ("knots", "km per hour"),
    ("cups", "milliliters"),
    ("square feet", "square meters"),
    ("bytes", "bits"),
    ("calories", "joules"),
]
CURRENCIES = ["yen", "rupees", "pesos", "francs", "kronor", "rand", "won", "baht"]

# Each intent has several wordings of one question; the slots decide the answer.
INTENTS: list[tuple[str, list[str]]] = [
    (
        "convert",
        [
            "How many {u2} are in {n} {u1}?",
            "Convert {n} {u1} into {u2}",
            "what's {n} {u1} in {u2}",
            "{n} {u1} equals how many {u2}?",
            "Could you change {n} {u1} to {u2} for me?",
        ],
    ),
    (
        "currency",
        [
            "How much is {n} {c1} in {c2}?",
            "convert {n} {c1} to {c2}",
            "{n} {c1} to {c2} rate please",
            "What do {n} {c1} come to in {c2}?",
        ],
    ),
    (
        "translate",
        [
            "Say 'good night' in {L2} instead of {L1}",
            "Translate this {L1} sentence into {L2}",
            "How would you render this {L1} text in {L2}?",
            "Give me the {L2} version of this {L1} line",
        ],
    ),
    (
        "route",
        [
            "Cheapest way to travel from {C1} to {C2}?",
            "How do I get from {C1} to {C2} on a budget?",
            "Budget travel options {C1} to {C2}",
            "What is the least expensive route from {C1} to {C2}?",
        ],
    ),
    (
        "flight",
        [
            "How long is the flight from {C1} to {C2}?",
            "Flight time {C1} to {C2}",
            "How many hours does it take to fly from {C1} to {C2}?",
        ],
    ),
    (
        "migrate",
        [
            "How do I migrate a project from {T1} to {T2}?",
            "Steps to move my codebase from {T1} to {T2}",
            "Porting an app from {T1} over to {T2}, where do I start?",
            "Guide for switching from {T1} to {T2}",
        ],
    ),
    (
        "howto",
        [
            "How do I read a JSON file in {T1}?",
            "Reading JSON files with {T1}, how?",
            "What's the way to load a JSON file using {T1}?",
            "{T1}: parse a json file",
        ],
    ),
    (
        "dose",
        [
            "What is the maximum daily dose of {D1} for an adult?",
            "How much {D1} can an adult take per day at most?",
            "Max {D1} dosage per day for grown-ups?",
            "Upper daily limit of {D1} for adults",
        ],
    ),
    (
        "interact",
        [
            "Can I take {D1} together with {D2}?",
            "Is it safe to combine {D1} and {D2}?",
            "Any interaction between {D1} and {D2}?",
            "Mixing {D1} with {D2}, is that ok?",
        ],
    ),
    (
        "pet",
        [
            "Can a {A1} eat {F1}?",
            "Is {F1} safe for a {A1} to eat?",
            "Should I feed {F1} to my {A1}?",
            "Is it ok to give my {A1} some {F1}?",
        ],
    ),
    (
        "cook",
        [
            "How long should I boil {F1}?",
            "Boiling time for {F1}?",
            "For how many minutes do you cook {F1} in water?",
            "{F1}: how long to boil it",
        ],
    ),
    (
        "symptom",
        [
            "What are the early signs of {K1}?",
            "How do I know if I have {K1}?",
            "First symptoms of {K1}?",
            "Early warning signs of {K1}, what to look for",
        ],
    ),
    (
        "pain",
        [
            "Why does my {B1} hurt after running?",
            "{B1} pain after a run, what causes it?",
            "What makes my {B1} ache after jogging?",
            "My {B1} is sore after I run, why?",
        ],
    ),
    (
        "age",
        [
            "Is {n} too old to start learning {L1}?",
            "Can I still learn {L1} at {n} years old?",
            "At age {n}, is it too late to pick up {L1}?",
        ],
    ),
    (
        "temp",
        [
            "At what temperature should I bake {F1}, {n} degrees?",
            "Is {n} degrees right for baking {F1}?",
            "Bake {F1} at {n} degrees, is that correct?",
        ],
    ),
    (
        "time",
        [
            "What time is it in {C2} when it is {n} pm in {C1}?",
            "If it's {n} pm in {C1}, what time is it in {C2}?",
            "{n} pm {C1} time in {C2} time?",
        ],
    ),
]
SLOT_KIND = {
    "C": "city",
    "L": "language",
    "T": "tech",
    "D": "drug",
    "F": "food",
    "A": "animal",
    "K": "condition",
    "B": "body",
}
NEGATABLE = [  # (positive, negated) wordings of one question; the answer flips
    ("Which foods are safe for a {A1} to eat?", "Which foods are not safe for a {A1} to eat?"),
    ("Which {T1} features are thread-safe?", "Which {T1} features are not thread-safe?"),
    ("What should I eat when I have {K1}?", "What should I avoid eating when I have {K1}?"),
    ("Reasons to take {D1} with food", "Reasons not to take {D1} with food"),
    ("Should I use {T1} for a small project?", "Should I avoid {T1} for a small project?"),
    ("Is {D1} recommended during pregnancy?", "Is {D1} not recommended during pregnancy?"),
    ("Things to do in {C1} in winter", "Things not to do in {C1} in winter"),
    ("Does {K1} cause {B1} pain?", "Does {K1} never cause {B1} pain?"),
]
DEGREE = [  # comparative flips: same question about the other end of a scale
    ("What is the fastest way to learn {L1}?", "What is the slowest way to learn {L1}?"),
    ("Which is the cheapest month to visit {C1}?", "Which is the most expensive month to visit {C1}?"),
    ("What is the minimum age to rent a car in {C1}?", "What is the maximum age to rent a car in {C1}?"),
    ("Which {T1} version has the best performance?", "Which {T1} version has the worst performance?"),
    ("What is the highest safe dose of {D1}?", "What is the lowest effective dose of {D1}?"),
    ("Which foods have more fiber than {F1}?", "Which foods have less fiber than {F1}?"),
    ("Is {C1} warmer than {C2} in spring?", "Is {C1} colder than {C2} in spring?"),
    ("When is the earliest I can take {D1} again?", "When is the latest I can take {D1} at night?"),
]
HARMLESS_PREFIX = ["Hi, ", "Hey! ", "Quick question: ", "Please help: ", "Hello, ", "Can you tell me: ", "I wonder, "]
CONTRACT = [
    ("I am ", "I'm "),
    ("do not", "don't"),
    ("is not", "isn't"),
    ("What is", "What's"),
    ("can not", "can't"),
    ("it is", "it's"),
    ("does not", "doesn't"),
]
NEG_INSERT = [
    (
        r"\b(is|are|was|were|does|do|did|can|should|could|will|would)\b (I|it|this|he|she|they|you|my|the)\b",
        r"\1 \2 not",
    )
]
OPPOSITES = [
    ("more", "less"),
    ("most", "least"),
    ("best", "worst"),
    ("high", "low"),
    ("higher", "lower"),
    ("increase", "decrease"),
    ("before", "after"),
    ("maximum", "minimum"),
    ("first", "last"),
    ("left", "right"),
    ("upper", "lower"),
    ("morning", "night"),
    ("worse", "better"),
    ("always", "never"),
    ("start", "stop"),
    ("long", "short"),
    ("heavy", "light"),
    ("hot", "cold"),
]


def _fill(template: str, slots: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: slots[m.group(1)], template)


def _slots(rng: random.Random) -> dict[str, str]:
    """One random value for every slot any template may use; pairs of a kind are distinct."""
    s: dict[str, str] = {}
    for letter, kind in SLOT_KIND.items():
        a, b = rng.sample(KINDS[kind], 2)
        s[letter + "1"], s[letter + "2"] = a, b
    s["u1"], s["u2"] = rng.choice(UNIT_PAIRS)
    s["c1"], s["c2"] = rng.sample(CURRENCIES, 2)
    s["n"] = str(rng.choice([2, 3, 5, 7, 8, 10, 12, 15, 20, 25, 30, 40, 45, 50, 60, 100, 150, 250]))
    return s


def _variants(rng: random.Random, template: str, slots: dict[str, str]) -> list[tuple[str, str]]:
    """Perturbations of one filled template that change the answer: (kind, new slots)."""
    used = set(re.findall(r"\{(\w+)\}", template))
    out: list[tuple[str, str]] = []
    if "n" in used:
        other = dict(slots)
        n = int(slots["n"])
        other["n"] = str(rng.choice([m for m in (n + 1, n + 2, n * 2, n + 10, max(1, n - 1), n * 3) if m != n]))
        out.append(("number", _fill(template, other)))
    pairs = [(x, x[0] + "2") for x in used if x.endswith("1") and x[0] + "2" in used] + [
        ("u1", "u2"),
        ("c1", "c2"),
    ]
    for first, second in pairs:
        if first in used and second in used:
            other = dict(slots)
            other[first], other[second] = slots[second], slots[first]
            out.append(("direction", _fill(template, other)))
    for name in sorted(used):
        if name[0] in SLOT_KIND and name.endswith("1"):
            other = dict(slots)
            pool = [v for v in KINDS[SLOT_KIND[name[0]]] if v not in (slots[name], slots.get(name[0] + "2"))]
            other[name] = rng.choice(pool)
            out.append(("entity", _fill(template, other)))
    return out


# Questions whose two slots can trade places without changing the answer ("A with B" = "B with A").
SYMMETRIC_INTENTS = frozenset({"interact"})


def _variant_pair(intent: str, base: str, text: str, group: str, kind: str) -> Pair:
    """A perturbed template: a different answer, except slots exchanged in a symmetric question."""
    if intent in SYMMETRIC_INTENTS and kind.startswith("direction"):
        return Pair(base, text, 1, "gen", group, "symmetric swap")
    return Pair(base, text, 0, "gen", group, kind)


def generate_templates(rng: random.Random, per_intent: int) -> list[Pair]:
    """Template pairs: same slots reworded (same answer) and one slot changed (different answer)."""
    pairs: list[Pair] = []
    for intent, templates in INTENTS:
        for k in range(per_intent):
            slots = _slots(rng)
            group = f"gen:{intent}:{k}"
            t1, t2 = rng.sample(templates, 2)
            base = _fill(t1, slots)
            pairs.append(Pair(base, _fill(t2, slots), 1, "gen", group, "reworded"))
            for kind, text in _variants(rng, t1, slots):
                pairs.append(_variant_pair(intent, base, text, group, kind))
            # A changed slot behind a rewording: harder, and common in real traffic.
            variants = _variants(rng, t2, slots)
            if variants:
                kind, text = rng.choice(variants)
                pairs.append(_variant_pair(intent, base, text, group, kind + "+reworded"))
    for i, (pos, neg) in enumerate(NEGATABLE * 3):
        slots = _slots(rng)
        group = f"gen:neg:{i}"
        pairs.append(Pair(_fill(pos, slots), _fill(neg, slots), 0, "gen", group, "negation"))
        pairs.append(
            Pair(
                _fill(pos, slots), rng.choice(HARMLESS_PREFIX) + _fill(pos, slots).lower(), 1, "gen", group, "harmless"
            )
        )
    for i, (hi, lo) in enumerate(DEGREE * 3):
        slots = _slots(rng)
        group = f"gen:deg:{i}"
        pairs.append(Pair(_fill(hi, slots), _fill(lo, slots), 0, "gen", group, "comparative"))
        pairs.append(Pair(_fill(lo, slots), _fill(lo, slots).rstrip("?") + ", please?", 1, "gen", group, "harmless"))
    return pairs


# Same-meaning word swaps (training only): a changed word alone does not prove a changed answer.
SYNONYMS = [
    ("doctor", "physician"),
    ("medicine", "medication"),
    ("pills", "tablets"),
    ("begin", "commence"),
    ("buy", "purchase"),
    ("need", "require"),
    ("fix", "repair"),
    ("child", "kid"),
    ("stomach", "belly"),
    ("use", "utilize"),
    ("maybe", "perhaps"),
    ("worried", "concerned"),
    ("normal", "typical"),
    ("problem", "issue"),
    ("help", "assist"),
    ("get rid of", "eliminate"),
    ("pain", "discomfort"),
    ("cure", "heal"),
    ("daily", "every day"),
    ("suggest", "recommend"),
    ("mom", "mother"),
    ("dad", "father"),
    ("husband", "spouse"),
    ("often", "frequently"),
    ("quickly", "rapidly"),
    ("about", "regarding"),
    ("serious", "severe"),
    ("think", "believe"),
    ("hurts", "aches"),
    ("medical", "clinical"),
    ("go away", "disappear"),
    ("chance", "likelihood"),
    ("okay", "alright"),
    ("lots of", "plenty of"),
    ("kids", "children"),
    ("big", "large"),
    ("tired", "fatigued"),
]


SYNONYM_SHARE = 0.25


def _occurring(text: str, swaps: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (word, replacement) pairs whose word occurs in ``text`` as a whole word or phrase."""
    return [(a, b) for a, b in swaps if re.search(rf"\b{re.escape(a)}\b", text)]


def _swap_one(rng: random.Random, text: str, found: Sequence[tuple[str, str]]) -> str | None:
    """The text with one of the ``found`` words swapped for its replacement, or None when there is none."""
    if not found:
        return None
    a, b = rng.choice(found)
    return re.sub(rf"\b{re.escape(a)}\b", b, text, count=1)


def _synonym(rng: random.Random, text: str) -> str | None:
    """The text with one word swapped for a synonym, or None when none of the list occurs."""
    return _swap_one(rng, text, _occurring(text, SYNONYMS + [(b, a) for a, b in SYNONYMS]))


def _harmless(rng: random.Random, text: str) -> str | None:
    """An edit that cannot change the answer: greeting, contraction, case, punctuation."""
    choice = rng.randrange(4)
    if choice == 0:
        return rng.choice(HARMLESS_PREFIX) + text[0].lower() + text[1:]
    if choice == 1:
        for long, short in CONTRACT:
            if long in text:
                return text.replace(long, short, 1)
        return None
    if choice == 2:
        return text.lower().rstrip("?.! ")
    return text.rstrip("?.! ") + "? Thanks in advance."


NOT_MOVABLE = frozenset({"going", "due", "able", "used", "according", "related", "prior", "went", "come", "came"})


def _perturb(rng: random.Random, text: str) -> tuple[str, str] | None:
    """A small edit of a real question that changes its answer, or None if none applies."""
    options: list[tuple[str, str]] = []
    numbers = re.findall(r"\b\d+(?:\.\d+)?\b", text)
    if numbers:
        n = rng.choice(numbers)
        new = str(int(float(n)) * 2 + 3) if "." not in n else str(float(n) + 1.5)
        options.append(("number", re.sub(rf"\b{re.escape(n)}\b", new, text, count=1)))
    for pattern, repl in NEG_INSERT:
        if re.search(pattern, text) and " not " not in text and "n't" not in text:
            options.append(("negation", re.sub(pattern, repl, text, count=1)))
    if " not " in text:
        options.append(("negation", text.replace(" not ", " ", 1)))
    elif "n't " in text:
        options.append(("negation", re.sub(r"n't\b", "", text, count=1).replace("ca ", "can ").replace("wo ", "will ")))
    low = text.lower()
    for kind, words in KINDS.items():
        for w in words:
            if re.search(rf"\b{re.escape(w.lower())}\b", low):
                other = rng.choice([x for x in words if x != w])
                new = re.sub(rf"\b{re.escape(w)}\b", other, text, count=1, flags=re.IGNORECASE)
                options.append(("entity", new))
                break
        _ = kind
    for a, b in OPPOSITES:
        for x, y in ((a, b), (b, a)):
            if re.search(rf"\b{x}\b", text):
                options.append(("comparative", re.sub(rf"\b{x}\b", y, text, count=1)))
    # Only two content words around the marker are swapped ("knee to hip"); swapping
    # function words ("happens to a") makes word salad, not a question going the other way.
    for m in re.finditer(r"\b([A-Za-z]{3,}) (to|into|than|before|after|from) ([A-Za-z]{3,})\b", text):
        left, right = m.group(1).lower(), m.group(3).lower()
        if left in _STOP or right in _STOP or left in NOT_MOVABLE or right in NOT_MOVABLE:
            continue
        swapped = text[: m.start()] + f"{m.group(3)} {m.group(2)} {m.group(1)}" + text[m.end() :]
        options.append(("direction", swapped))
        break
    options = [(k, t) for k, t in options if t != text]
    return rng.choice(options) if options else None


def generate_from_mqp(rng: random.Random, rows: Sequence[tuple[str, str, int]]) -> list[Pair]:
    """Perturbed and harmlessly edited copies of the real questions, grouped with their source."""
    pairs: list[Pair] = []
    seen: set[str] = set()
    for q1, q2, _label in rows:
        for q in (q1, q2):
            if q in seen or len(q) > 220:
                continue
            seen.add(q)
            group = "mqp:" + q1
            bad = _perturb(rng, q)
            if bad is not None:
                pairs.append(Pair(q, bad[1], 0, "gen", group, bad[0] + "(mqp)"))
            if rng.random() < 0.5:
                ok = _harmless(rng, q)
                if ok is not None and ok != q:
                    pairs.append(Pair(q, ok, 1, "gen", group, "harmless(mqp)"))
            same = _synonym(rng, q) if rng.random() < SYNONYM_SHARE else None
            if same is not None:
                pairs.append(Pair(q, same, 1, "gen", group, "synonym(mqp)"))
    return pairs


# Same-meaning rewrites of everyday chat wording (training only): a single changed word or phrase that
# keeps the question. The written contrasts change one word for a *different* thing (an entity, an aspect);
# without these the pair model reads every single substitution as a trap ("signs" for "symptoms").
CHAT_SYNONYMS = [  # read both ways
    ("symptoms", "signs"), ("big", "large"), ("bigger", "larger"), ("biggest", "largest"), ("movie", "film"),
    ("movies", "films"), ("start", "begin"), ("fastest", "quickest"), ("fix", "repair"), ("easy", "simple"),
    ("easiest", "simplest"), ("best", "top"), ("way", "method"), ("ways", "methods"), ("tips", "advice"),
    ("ideas", "suggestions"), ("How do I", "How can I"), ("What is", "What's"),
    ("kind of", "type of"), ("kinds of", "types of"), ("difference", "distinction"), ("important", "essential"),
    ("problem", "issue"), ("happy", "glad"), ("scared", "afraid"), ("tired", "exhausted"), ("hard", "difficult"),
    ("boss", "manager"), ("kids", "children"), ("child", "kid"), ("mom", "mother"), ("dad", "father"),
    ("apartment", "flat"), ("trip", "journey"), ("capital", "capital city"), ("country", "nation"),
    ("cheap", "inexpensive"), ("expensive", "pricey"), ("doctor", "physician"), ("medicine", "medication"),
    ("sick", "ill"), ("illness", "disease"), ("phone", "cell phone"), ("laptop", "notebook"), ("computer", "PC"),
    ("dictionary", "dict"), ("integer", "int"), ("remove", "delete"), ("change", "modify"), ("check", "verify"),
    ("learn", "study"), ("think", "believe"), ("a lot of", "lots of"), ("usually", "typically"),
    ("often", "frequently"), ("roughly", "approximately"), ("the US", "the United States"),
    ("the USA", "the United States"), ("the UK", "the United Kingdom"), ("NYC", "New York City"),
    ("TV", "television"), ("info", "information"), ("quick", "fast"),
    ("suggest", "recommend"), ("buy", "purchase"), ("maybe", "perhaps"), ("worried", "concerned"),
]
CHAT_ONE_WAY = [("Which", "What"), ("How do you", "How do I"), ("Tell me", "Can you tell me"),
                ("Give me", "Can you give me")]
CHAT_REWRITES = [
    (r"^How do I (.+)\?$", r"How to \1?"),
    (r"^How can I (.+)\?$", r"What's the best way to \1?"),
    (r"^What are (?:some )?(?:good )?(.+)\?$", r"Can you suggest \1?"),
    (r"^Can you (.+)\?$", r"Could you \1?"),
    (r"^Could you (.+)\?$", r"Please \1."),
    (r"^Write ([^?]+?)\.?$", r"Can you write \1?"),
    (r"^Explain ([^?]+?)\.?$", r"Could you explain \1?"),
    (r"^Is it safe to (.+)\?$", r"Is it OK to \1?"),
    (r"^Why does (.+)\?$", r"What makes \1?"),
]


def _chat_synonym(rng: random.Random, text: str) -> str | None:
    """One word or phrase of ``text`` swapped for a same-meaning one (either way round), or None."""
    found = _occurring(text, CHAT_ONE_WAY + CHAT_SYNONYMS + [(b, a) for a, b in CHAT_SYNONYMS])
    rewrites = [(pat, repl) for pat, repl in CHAT_REWRITES if re.search(pat, text)]
    if rewrites and (not found or rng.random() < 0.3):
        pat, repl = rng.choice(rewrites)
        return re.sub(pat, repl, text, count=1)
    return _swap_one(rng, text, found)


def generate_from_contrasts(rng: random.Random) -> list[tuple[_pairs.Pair, str]]:
    """Single same-meaning edits of the written contrasts' base prompts (each in its base prompt's part)."""
    out = []
    bases = {p.a: p.part for p in _pairs.load(["contrast"])}
    for base, part in sorted(bases.items()):
        edited = _chat_synonym(rng, base)
        if edited is not None and edited != base:
            out.append((_pairs.Pair(base, edited, 1, 1.0, "generated", "synonym(chat)", part), base))
    return out


def generated(seed: int = 20261125) -> list[_pairs.Pair]:
    """Template pairs and perturbed MQP questions (from MQP's non-test part), split train / cal by group."""
    rng = random.Random(seed)
    mqp = [(p.a, p.b, p.same) for p in _pairs.load(["mqp"], ["train", "cal"])]
    out = []
    for p in generate_templates(rng, 30) + generate_from_mqp(rng, mqp):
        share = int(hashlib.sha1(("calg" + p.group).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        part = "cal" if share < 0.15 else "train"
        out.append(_pairs.Pair(p.a, p.b, p.label, float(p.label), "generated", p.kind, part))
    if CHAT_EDITS:
        out += [p for p, _ in generate_from_contrasts(random.Random(seed + 1))]
    return out


#: Whether generated() includes the single same-meaning edits of chat prompts (generate_from_contrasts):
#: off for the shipped files; train_pair_model.py --chat-edits turns it on (tried 2026-12-04, not shipped).
CHAT_EDITS = False
