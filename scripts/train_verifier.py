"""Train the semantic cache's verifier and write asgi_llmguard/data/verifier.json.

Why: raw cosine serves wrong answers for near-duplicate prompts, and hand-written
vetoes reject too many true paraphrases. A small logistic model over pair
features (see asgi_llmguard/verify.py) learns how much each kind of difference
matters from two sources:

* MQP dev pairs (doctor-written paraphrases and look-alike negatives), given
  with ``--mqp``. Only learned weights leave this script; no MQP text does.
* Generated pairs: hard negatives made by perturbing MQP questions and
  general-domain template prompts (swap a number, negate, reverse a direction,
  swap a named thing for another of its kind, flip a comparative), and
  positives made by rewording the same slots with another template or by
  harmless edits (greetings, contractions, punctuation). The vocabulary here is
  deliberately different from tests/data/trap_pairs.csv, which is never used
  for training.

The cosine floor (DEFAULT_THRESHOLD) and the score cut-off are chosen from
out-of-fold scores: the largest MQP paraphrase hit rate whose wrong answers stay
within budget on MQP and on generated traps. Folds are grouped (an MQP
question and everything generated from it stay in one fold). The script prints
5-fold held-out figures in which the threshold choice is made inside each
training part, so they are honest estimates for unseen data.

Usage: python scripts/train_verifier.py [--mqp PATH] [--out PATH] [--seed N]
Deterministic for a given seed. Needs the embedding model (LLMGUARD_EMBEDDING_MODEL_DIR
or .models/all-MiniLM-L6-v2); embeddings are cached in --cache between runs.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import json
import os
import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _load_verify_module() -> ModuleType:
    """verify.py by path: it is pure computation and needs none of the package's other imports."""
    spec = importlib.util.spec_from_file_location("_llmguard_verify", ROOT / "asgi_llmguard" / "cache" / "verify.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_verify = _load_verify_module()
FEATURE_NAMES: tuple[str, ...] = _verify.FEATURE_NAMES
pair_features = _verify.pair_features

DEFAULT_MQP = ROOT.parent / "shared" / "data" / "paraphrase" / "mqp_dev.csv"
DEFAULT_OUT = ROOT / "asgi_llmguard" / "data" / "verifier.json"
TRAIN_FLOOR = 0.6  # pairs below this cosine never reach the verifier, so they do not train it
MQP_WRONG_BUDGET = 0.008  # wrong share of hits allowed on MQP when choosing (target 1%, with margin)
GEN_FALSE_BUDGET = 0.01  # share of generated traps allowed through (about 3% of hits on a trap set)
EDIT_FLOORS = [0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9]
# The paraphrase head sees few real negatives near the threshold: a handful of robust features
# and a firm prior keep it from fitting the noise of one data set.
PARA_FEATURES: list[str] | None = [
    "cos",
    "cos_sq",
    "jaccard",
    "sub_min",
    "sub_max",
    "add_only",
    "len_ratio",
    "cap_sub",
    "num_one_side",
    "neg_diff",
    "qtype_diff",
    "contrast_diff",
]
PARA_L2 = 1.0
WRONG_TOLERANCE = 0.0  # ties only: MQP wrong answers come first
HIT_FLOOR = 0.34  # chosen in-sample on out-of-fold scores; held-out hit rates come out a little lower
THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(21)]


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


def _synonym(rng: random.Random, text: str) -> str | None:
    """The text with one word swapped for a synonym, or None when none of the list occurs."""
    found = [(a, b) for a, b in SYNONYMS if re.search(rf"\b{a}\b", text)]
    found += [(b, a) for a, b in SYNONYMS if re.search(rf"\b{b}\b", text)]
    if not found:
        return None
    a, b = rng.choice(found)
    return re.sub(rf"\b{a}\b", b, text, count=1)


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
        if left in _verify._STOP or right in _verify._STOP or left in NOT_MOVABLE or right in NOT_MOVABLE:
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


# ---------------------------------------------------------------- embedding
def embed_all(texts: Iterable[str], cache: Path) -> dict[str, np.ndarray]:
    """Embeddings for every text, reusing a cache keyed by a hash of the text."""
    wanted = sorted(set(texts))
    store: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as data:
            store = {k: data[k] for k in data.files}
    key = {t: hashlib.sha1(t.encode()).hexdigest() for t in wanted}
    missing = [t for t in wanted if key[t] not in store]
    if missing:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import fastembed

        model_dir = os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2"))
        model = fastembed.TextEmbedding(
            "sentence-transformers/all-MiniLM-L6-v2", specific_model_path=model_dir, threads=max(1, os.cpu_count() or 1)
        )
        print(f"embedding {len(missing)} texts ...", file=sys.stderr)
        for t, v in zip(missing, model.embed(missing, batch_size=64), strict=True):
            store[key[t]] = np.asarray(v, dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **store)
    return {t: store[key[t]] for t in wanted}


# ---------------------------------------------------------------- model
def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method on standardised features."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    beta = np.zeros(d + 1)
    reg = np.full(d + 1, l2)
    reg[-1] = 0.0
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ beta, -30, 30)))
        grad = xb.T @ (w * (p - y)) + reg * beta
        hess = (xb * (w * p * (1 - p))[:, None]).T @ xb + np.diag(reg + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta[:-1], float(beta[-1])


@dataclass
class Model:
    mean: np.ndarray
    scale: np.ndarray
    weights: np.ndarray
    bias: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.mean) / self.scale) @ self.weights + self.bias
        return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def train(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, cos: np.ndarray, use: Sequence[str] | None = None, l2: float = 1.0
) -> Model:
    """One head on the pairs that reach the verifier; features outside `use` get weight 0."""
    keep = (cos >= TRAIN_FLOOR) & (w > 0)
    mean = x[keep].mean(axis=0)
    scale = x[keep].std(axis=0)
    scale[scale < 1e-6] = 1.0
    cols = [i for i, n in enumerate(FEATURE_NAMES) if use is None or n in use]
    weights = np.zeros(len(FEATURE_NAMES))
    sub, bias = fit_logistic(((x[keep] - mean) / scale)[:, cols], y[keep], w[keep], l2)
    weights[cols] = sub
    return Model(mean, scale, weights, bias)


@dataclass
class Heads:
    """The paraphrase head (real pairs) and the edit head (generated near-duplicates)."""

    paraphrase: Model
    edit: Model

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.paraphrase.predict(x), self.edit.predict(x)


def head_weights(y: np.ndarray, is_mqp: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which pairs teach which head.

    The paraphrase head learns only from real MQP pairs: whether a rewording
    still asks the same thing. The edit head learns from generated pairs which
    small edits change the answer; MQP paraphrases join it as positives so that
    it does not veto the harmless detail changes doctors made when rewording.
    """
    w_para = np.where(is_mqp, 1.0, 0.0)
    n_gen = max(int((~is_mqp).sum()), 1)
    w_edit = np.where(is_mqp, np.where(y == 1, 0.5 * n_gen / max(int((is_mqp & (y == 1)).sum()), 1), 0.0), 1.0)
    return w_para, w_edit


def train_heads(x: np.ndarray, y: np.ndarray, is_mqp: np.ndarray, cos: np.ndarray) -> Heads:
    w_para, w_edit = head_weights(y, is_mqp)
    return Heads(train(x, y, w_para, cos, PARA_FEATURES, PARA_L2), train(x, y, w_edit, cos))


def rates(cos: np.ndarray, hit_mask: np.ndarray, y: np.ndarray) -> tuple[float, float, float, int, int]:
    """Hit rate of positives, false hits per negative, wrong share of hits, hits, false hits."""
    hit = hit_mask
    pos, neg = y == 1, y == 0
    hits = int(hit.sum())
    false = int((hit & neg).sum())
    return (
        float((hit & pos).sum() / max(pos.sum(), 1)),
        float(false / max(neg.sum(), 1)),
        false / hits if hits else 0.0,
        hits,
        false,
    )


def accepted(cos: np.ndarray, pa: np.ndarray, pb: np.ndarray, rule: tuple[float, float, float]) -> np.ndarray:
    t, sa, sb = rule
    return (cos >= t) & (pa >= sa) & (pb >= sb)


def choose(
    cos: np.ndarray, pa: np.ndarray, pb: np.ndarray, y: np.ndarray, is_mqp: np.ndarray
) -> tuple[float, float, float]:
    """The (cosine floor, paraphrase cut-off, edit floor) to ship.

    Among rules that let at most GEN_FALSE_BUDGET of the generated traps through
    and keep the MQP paraphrase hit rate at least HIT_FLOOR (raw cosine at 0.86
    gives 33%), take those within WRONG_TOLERANCE of the fewest wrong answers per
    MQP hit (closer than that is one or two pairs: noise), and of those the one
    that serves the most generated rewordings (short general prompts, unlike
    MQP's long ones). If no rule meets both, the trap budget is raised in steps
    to 3%, and only then is the hit floor lowered.
    """
    m, g = is_mqp, ~is_mqp
    table = []
    for t in THRESHOLDS:
        for sb in EDIT_FLOORS:
            for sa in np.linspace(0.30, 0.98, 35):
                rule = (t, float(sa), sb)
                hit = accepted(cos, pa, pb, rule)
                hr, _fp, wrong, _h, _f = rates(cos[m], hit[m], y[m])
                hr_g, fp_g, _wg, _h2, _f2 = rates(cos[g], hit[g], y[g])
                table.append((hr, wrong, fp_g, hr_g, rule))
    # The hit floor is the requirement; the trap budget gives way first (to 3%), then the floor.
    floor = HIT_FLOOR
    while True:
        for budget in (GEN_FALSE_BUDGET, 0.015, 0.02, 0.025, 0.03):
            ok = [(wrong, hr, hr_g, rule) for hr, wrong, fp_g, hr_g, rule in table if hr >= floor and fp_g <= budget]
            if ok:
                least = min(w for w, _hr, _hg, _r in ok)
                near = [(hr_g, hr, rule) for w, hr, hr_g, rule in ok if w <= least + WRONG_TOLERANCE]
                return max(near)[2]
        floor -= 0.02


def oof_scores(
    x: np.ndarray, y: np.ndarray, is_mqp: np.ndarray, cos: np.ndarray, folds: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    pa = np.zeros(len(y))
    pb = np.zeros(len(y))
    for f in range(k):
        tr, te = folds != f, folds == f
        pa[te], pb[te] = train_heads(x[tr], y[tr], is_mqp[tr], cos[tr]).predict(x[te])
    return pa, pb


def fold_of(group: str, k: int, seed: int) -> int:
    return int(hashlib.sha1(f"{seed}:{group}".encode()).hexdigest(), 16) % k


def cross_validate(
    pairs: Sequence[Pair], x: np.ndarray, cos: np.ndarray, seed: int, k: int
) -> tuple[np.ndarray, list[tuple[float, float, float]]]:
    """Which pairs a verifier trained without them would serve, for each of k grouped folds.

    In each outer fold the rule (threshold and cut-offs) is chosen from inner
    out-of-fold scores of the training part only, then applied to the
    untouched held-out fold: an honest estimate for unseen data.
    """
    y = np.array([p.label for p in pairs], dtype=float)
    is_mqp = np.array([p.source == "mqp" for p in pairs])
    folds = np.array([fold_of(p.group, k, seed) for p in pairs])
    inner_folds = np.array([fold_of(p.group + ":inner", k, seed) for p in pairs])
    test_hit = np.zeros(len(y), dtype=bool)
    per_fold = []
    for f in range(k):
        tr, te = folds != f, folds == f
        pa_in, pb_in = oof_scores(x[tr], y[tr], is_mqp[tr], cos[tr], inner_folds[tr], k)
        rule = choose(cos[tr], pa_in, pb_in, y[tr], is_mqp[tr])
        pa, pb = train_heads(x[tr], y[tr], is_mqp[tr], cos[tr]).predict(x[te])
        test_hit[te] = accepted(cos[te], pa, pb, rule)
        per_fold.append(rule)
    return test_hit, per_fold


def build_dataset(mqp: Path, seed: int, cache: Path) -> tuple[list[Pair], np.ndarray, np.ndarray]:
    rng = random.Random(seed)
    with mqp.open(newline="", encoding="utf-8") as fh:
        rows = [(r["question_1"], r["question_2"], int(r["is_paraphrase"])) for r in csv.DictReader(fh)]
    pairs = [Pair(a, b, lab, "mqp", "mqp:" + a, "mqp") for a, b, lab in rows]
    pairs += generate_from_mqp(rng, rows)
    pairs += generate_templates(rng, per_intent=14)
    vecs = embed_all([p.a for p in pairs] + [p.b for p in pairs], cache)
    cos = np.array([float(vecs[p.a] @ vecs[p.b]) for p in pairs])
    x = np.array([pair_features(p.a, p.b, c) for p, c in zip(pairs, cos, strict=True)])
    # A generated negative whose change no feature can see teaches only that clean pairs are
    # suspect; drop it (the bench still counts the real sets in full).
    seen_cols = [i for i, n in enumerate(FEATURE_NAMES) if n not in ("cos", "cos_sq", "jaccard", "identical")]
    visible = np.array(
        [p.source == "mqp" or p.label == 1 or bool(f[seen_cols].any()) for p, f in zip(pairs, x, strict=True)]
    )
    keep = [i for i in range(len(pairs)) if visible[i]]
    return [pairs[i] for i in keep], x[keep], cos[keep]


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mqp", type=Path, default=DEFAULT_MQP)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llmguard_verifier_emb.npz")
    args = ap.parse_args(argv)

    pairs, x, cos = build_dataset(args.mqp, args.seed, args.cache)
    y = np.array([p.label for p in pairs], dtype=float)
    is_mqp = np.array([p.source == "mqp" for p in pairs])
    k = args.folds
    folds = np.array([fold_of(p.group, k, args.seed) for p in pairs])
    print(
        f"pairs: {is_mqp.sum()} MQP, {(~is_mqp).sum()} generated ({int(((~is_mqp) & (y == 0)).sum())} hard negatives)"
    )
    test_hit, per_fold = cross_validate(pairs, x, cos, args.seed, k)
    for name, sel in (("MQP", is_mqp), ("generated traps", ~is_mqp)):
        yy = y[sel]
        pos, neg = yy == 1, yy == 0
        for label, hit in (("raw cos>=0.86", cos[sel] >= 0.86), ("find+verify", test_hit[sel])):
            hr, fp, wrong, hits, false = rates(cos[sel], hit, yy)
            print(
                f"{k}-fold held-out {name:15s} {label:14s} hit {100 * hr:5.1f}% of {int(pos.sum())} "
                f"positives, false {100 * fp:5.2f}% of {int(neg.sum())} negatives, "
                f"wrong {100 * wrong:5.2f}% of hits ({false}/{hits})"
            )
    print(
        "per-fold rule (threshold, paraphrase cut-off, edit floor):",
        ", ".join(f"({t:.2f}, {a:.2f}, {b:.2f})" for t, a, b in per_fold),
    )
    for kind in sorted({p.kind for p in pairs if p.source == "gen" and p.label == 0}):
        sel = np.array([p.kind == kind and p.source == "gen" for p in pairs])
        print(
            f"  held-out {kind:22s} wrongly served {int(test_hit[sel].sum())}/{int(sel.sum())}"
            f"  (raw>=0.86: {int((cos[sel] >= 0.86).sum())})"
        )

    # The shipped model: all data; the rule from out-of-fold scores.
    pa_all, pb_all = oof_scores(x, y, is_mqp, cos, folds, k)
    t, sa, sb = choose(cos, pa_all, pb_all, y, is_mqp)
    hr, _fp, _wrong, hits, false = rates(cos[is_mqp], accepted(cos, pa_all, pb_all, (t, sa, sb))[is_mqp], y[is_mqp])
    print(
        f"chosen: threshold {t:.2f}, paraphrase cut-off {sa:.2f}, edit floor {sb:.2f} "
        f"(out-of-fold MQP hit {100 * hr:.1f}%, wrong {false}/{hits})"
    )
    heads = train_heads(x, y, is_mqp, cos)

    def head(model: Model) -> dict[str, object]:
        return {
            "weights": [round(float(v), 6) for v in model.weights],
            "mean": [round(float(v), 6) for v in model.mean],
            "scale": [round(float(v), 6) for v in model.scale],
            "bias": round(model.bias, 6),
        }

    out = {
        "version": 1,
        "about": "asgi_llmguard verifier: two logistic heads over pair features; made by scripts/train_verifier.py",
        "seed": args.seed,
        "threshold": t,
        "accept_score": round(sa, 4),
        "edit_floor": round(sb, 4),
        "features": list(FEATURE_NAMES),
        "heads": {"paraphrase": head(heads.paraphrase), "edit": head(heads.edit)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    if abs(float(_verify.DEFAULT_THRESHOLD) - t) > 1e-9:
        print(f"NOTE: set DEFAULT_THRESHOLD = {t:.2f} in asgi_llmguard/verify.py to match the weights")
    for name, wa, wb in zip(FEATURE_NAMES, heads.paraphrase.weights, heads.edit.weights, strict=True):
        print(f"  {name:18s} paraphrase {wa:+.3f}  edit {wb:+.3f}")


if __name__ == "__main__":
    main()
