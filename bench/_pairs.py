"""The labelled prompt pairs that train and measure the cache's verifier, in fixed parts.

Every set is cut, by a hash of its group (a base prompt and everything made from it stay together),
into the same three parts on every run:

* ``train``: what the pair model (bench/research/train_pair_model.py) learns from;
* ``cal``: held out from the pair model; the combiner's weights and the strictness points are
  chosen on it (bench/research/train_verifier.py);
* ``test``: held out from both; only bench/cache_quality.py reads it, for the figures in docs.

Sets (``same`` is 1 when one answer serves both prompts):

=============  ===========================================  ======================================
name           file                                         parts
=============  ===========================================  ======================================
everyday       tests/data/everyday_pairs.csv (ours)         test 40%, cal 60%
gateway        tests/data/gateway_pairs.csv (ours)          test 40%, cal 60%
traps          tests/data/trap_pairs.csv (ours)             test 40%, cal 60%
questions      tests/data/question_pairs.csv (ours)         test 70%, cal 30%
mqp            ../shared/data/paraphrase/mqp_dev.csv        test 30%, cal 70%
paws           ../shared/data/pairs/paws_wiki.csv           test = its test split; dev: cal 20%
sts            ../shared/data/pairs/sts_benchmark.csv       train, cal = dev, test; same = score
contrast       bench/research/data/contrast_*.csv (ours)    cal 10%, train 90%
=============  ===========================================  ======================================

STS-B scores become soft targets for training (``target``) and, for measuring, score ≥ 4 counts as
the same answer and ≤ 3 as a different one (``same`` is -1 between, and such pairs are skipped).
"""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("LLMGUARD_SHARED_DATA", ROOT.parent / "shared" / "data"))
DATA = ROOT / "tests" / "data"
CONTRASTS = ROOT / "bench" / "research" / "data"
MODEL_DIR = Path(os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", ROOT / ".models" / "all-MiniLM-L6-v2"))
EMBEDDING_CACHE = Path(os.environ.get("TMPDIR", "/tmp")) / "llmguard_pairs_emb.npz"

SETS = ("everyday", "gateway", "traps", "questions", "mqp", "paws", "sts", "contrast")


@dataclass(frozen=True, slots=True)
class Pair:
    """Two prompts as the cache sees them: ``a`` was stored first, ``b`` is the new request."""

    a: str
    b: str
    same: int  # 1 same answer, 0 different, -1 neither (an STS-B score between 3 and 4)
    target: float  # the training target: ``same``, or an STS-B score mapped onto 0..1
    set: str
    kind: str  # the set's category or kind column
    part: str  # train, cal or test


def _share(key: str, salt: str) -> float:
    return int(hashlib.sha1((salt + key).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


#: Our own CSV sets whose rows carry a group (a base prompt, its rewordings and its traps), by set name.
OUR_GROUPED = {"everyday": "everyday_pairs.csv", "gateway": "gateway_pairs.csv", "traps": "trap_pairs.csv"}


def _group_of(row: dict[str, str]) -> str:
    return row.get("group") or row["prompt_a"]


def group_part(group: str) -> str:
    """The part a group of our own sets falls in. No train part: the pair model learns this style from the written
    contrasts, and the strictness points are chosen on these sets' cal part, the kind of traffic they must serve."""
    return "test" if _share(group, "e1") < 0.4 else "cal"


def groups(name: str) -> dict[str, tuple[list[str], list[str]]]:
    """One of :data:`OUR_GROUPED`'s sets by group: its rewordings of the base prompt and its traps."""
    out: dict[str, tuple[list[str], list[str]]] = {}
    for r in _read(DATA / OUR_GROUPED[name]):
        rewordings, traps = out.setdefault(_group_of(r), ([], []))
        (rewordings if r["same_answer"] == "1" else traps).append(r["prompt_b"])
    return out


def _ours(name: str, file: str) -> list[Pair]:
    """One of our own CSV sets (prompt_a, prompt_b, same_answer, category[, group])."""
    out = []
    for r in _read(DATA / file):
        label = int(r["same_answer"])
        part = group_part(_group_of(r))
        out.append(Pair(r["prompt_a"], r["prompt_b"], label, float(label), name, r["category"], part))
    return out


def _questions() -> list[Pair]:
    out = []
    for r in _read(DATA / "question_pairs.csv"):
        label = int(r["is_duplicate"])
        part = "test" if _share(r["question_1"], "q1") < 0.7 else "cal"
        out.append(Pair(r["question_1"], r["question_2"], label, float(label), "questions", r["topic"], part))
    return out


def _mqp() -> list[Pair]:
    out = []
    for r in _read(SHARED / "paraphrase" / "mqp_dev.csv"):
        q1, label = r["question_1"], int(r["is_paraphrase"])
        # No train part: 1,500 doctor-labelled pairs teach a pair model little (docs/cache-quality.md), and
        # the combiner needs them all to weigh the cosine for long medical questions.
        part = "test" if _share(q1, "s1") < 0.3 else "cal"
        out.append(Pair(q1, r["question_2"], label, float(label), "mqp", "medical", part))
    return out


def _paws() -> list[Pair]:
    out = []
    for r in _read(SHARED / "pairs" / "paws_wiki.csv"):
        label = int(r["is_paraphrase"])
        split = r["paws_split"]
        part = "test" if split == "test" else ("cal" if _share(r["sentence_1"], "calp") < 0.2 else "train")
        out.append(Pair(r["sentence_1"], r["sentence_2"], label, float(label), "paws", "wiki", part))
    return out


def _sts() -> list[Pair]:
    out = []
    parts = {"train": "train", "dev": "cal", "test": "test"}
    for r in _read(SHARED / "pairs" / "sts_benchmark.csv"):
        score = float(r["score_0_to_5"])
        same = 1 if score >= 4.0 else (0 if score <= 3.0 else -1)
        target = min(1.0, max(0.0, (score - 2.5) / 2.0))
        out.append(Pair(r["sentence_1"], r["sentence_2"], same, target, "sts", r["source"], parts[r["stsb_split"]]))
    return out


def _contrasts() -> list[Pair]:
    out = []
    for path in sorted(CONTRASTS.glob("contrast_*.csv")):
        for r in _read(path):
            label = int(r["same_answer"])
            part = "cal" if _share(r["base"], "calc") < 0.1 else "train"
            out.append(Pair(r["base"], r["variant"], label, float(label), "contrast", r["kind"], part))
    return out


_LOADERS = {
    "everyday": lambda: _ours("everyday", "everyday_pairs.csv"),
    "gateway": lambda: _ours("gateway", "gateway_pairs.csv"),
    "traps": lambda: _ours("traps", "trap_pairs.csv"),
    "questions": _questions,
    "mqp": _mqp,
    "paws": _paws,
    "sts": _sts,
    "contrast": _contrasts,
}


def load(names: Iterable[str] = SETS, parts: Iterable[str] = ("train", "cal", "test")) -> list[Pair]:
    """The pairs of the named sets that fall in the given parts."""
    wanted = set(parts)
    return [p for name in names for p in _LOADERS[name]() if p.part in wanted]


def cosines(pairs: Sequence[Pair], cache: Path = EMBEDDING_CACHE) -> np.ndarray:
    """Each pair's cosine under the embedding model the cache uses (vectors cached by text hash)."""
    vectors = embed([p.a for p in pairs] + [p.b for p in pairs], cache)
    return np.array([float(vectors[p.a] @ vectors[p.b]) for p in pairs], dtype=np.float64)


def embed(texts: Iterable[str], cache: Path = EMBEDDING_CACHE) -> dict[str, np.ndarray]:
    """Unit vectors for every text, reusing a cache keyed by a hash of the text."""
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

        model = fastembed.TextEmbedding(
            "sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(MODEL_DIR), threads=os.cpu_count() or 1
        )
        print(f"embedding {len(missing)} texts ...", file=sys.stderr)
        for t, v in zip(missing, model.embed(missing, batch_size=64), strict=True):
            store[key[t]] = np.asarray(v, dtype=np.float32)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **store)
    return {t: store[key[t]] for t in wanted}
