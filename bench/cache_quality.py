"""How trustworthy are semantic cache hits? Raw cosine against find+verify.

For each pair set it prints the paraphrase hit rate (same-answer pairs served
from the cache), false hits per negative (different-answer pairs served) and
wrong answers as a share of all hits, for:

* raw cosine at 0.86 (the usual single-threshold cache),
* raw cosine at the shipped DEFAULT_THRESHOLD,
* find+verify: cosine >= DEFAULT_THRESHOLD, then the packaged verifier.

Sets: MQP dev pairs (``--mqp``) and tests/data/trap_pairs.csv (our own traps,
never used for training). The verifier was trained on MQP dev, so its MQP row
is in-sample; the k-fold held-out MQP row (train on the other folds, choose the
rule inside them, test on the held-out fold) is the honest figure.

Usage: python bench/cache_quality.py [--mqp PATH] [--folds 5]
Model from LLMGUARD_EMBEDDING_MODEL_DIR or .models/all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "asgi_llmguard" / "data" / "verifier.json"
TRAPS = ROOT / "tests" / "data" / "trap_pairs.csv"


def _load(name: str, path: Path) -> ModuleType:
    """A script or module by path, so the bench needs none of the package's other imports."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def row(label: str, hit: np.ndarray, y: np.ndarray) -> str:
    pos, neg = y == 1, y == 0
    hits, false = int(hit.sum()), int((hit & neg).sum())
    return (
        f"  {label:34s} hit {100 * (hit & pos).sum() / max(pos.sum(), 1):5.1f}%   "
        f"false/neg {100 * false / max(neg.sum(), 1):5.2f}%   "
        f"wrong/hits {100 * false / hits if hits else 0.0:5.2f}% ({false}/{hits})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mqp", type=Path, default=ROOT.parent / "shared" / "data" / "paraphrase" / "mqp_dev.csv")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llmguard_verifier_emb.npz")
    args = ap.parse_args()

    tv = _load("_train_verifier", ROOT / "scripts" / "train_verifier.py")
    verifier = tv._verify.Verifier(WEIGHTS)
    threshold = float(tv._verify.DEFAULT_THRESHOLD)

    with args.mqp.open(newline="", encoding="utf-8") as fh:
        mqp = [(r["question_1"], r["question_2"], int(r["is_paraphrase"]), "mqp") for r in csv.DictReader(fh)]
    with TRAPS.open(newline="", encoding="utf-8") as fh:
        traps = [(r["prompt_a"], r["prompt_b"], int(r["same_answer"]), r["category"]) for r in csv.DictReader(fh)]
    vecs = tv.embed_all([p[0] for p in mqp + traps] + [p[1] for p in mqp + traps], args.cache)

    print(
        f"DEFAULT_THRESHOLD {threshold:.2f}; verifier cut-offs: paraphrase {verifier.accept_score:.2f}, "
        f"edit {verifier.edit_floor:.2f}"
    )
    for name, pairs in (
        ("MQP dev (in-sample: the verifier trained on it)", mqp),
        ("trap_pairs.csv (never trained on)", traps),
    ):
        y = np.array([p[2] for p in pairs])
        cos = np.array([float(vecs[a] @ vecs[b]) for a, b, _l, _c in pairs])
        t0 = time.perf_counter()
        ok = np.array([verifier.check(a, b, c).accepted for (a, b, _l, _c), c in zip(pairs, cos, strict=True)])
        per_check = (time.perf_counter() - t0) / len(pairs) * 1e6
        verified = (cos >= threshold) & ok
        print(f"\n{name}: {int((y == 1).sum())} same-answer pairs, {int((y == 0).sum())} different-answer")
        print(row("raw cosine >= 0.86", cos >= 0.86, y))
        print(row(f"raw cosine >= {threshold:.2f}", cos >= threshold, y))
        print(row(f"find+verify (cos >= {threshold:.2f})", verified, y))
        print(f"  verify costs {per_check:.0f} us per check (pure Python)")
        if name.startswith("trap"):
            for cat in sorted({p[3] for p in pairs}):
                sel = np.array([p[3] == cat for p in pairs])
                raw = int((cos[sel] >= 0.86).sum())
                print(
                    f"    {cat:12s} n={int(sel.sum()):3d}  served raw>=0.86: {raw:3d}  "
                    f"served find+verify: {int(verified[sel].sum()):3d}"
                )

    # The honest MQP figure: k-fold held-out, with generated pairs as in training.
    pairs, x, cos = tv.build_dataset(args.mqp, args.seed, args.cache)
    test_hit, _rules = tv.cross_validate(pairs, x, cos, args.seed, args.folds)
    is_mqp = np.array([p.source == "mqp" for p in pairs])
    y = np.array([p.label for p in pairs])
    print(f"\nMQP dev, {args.folds}-fold held-out (rule and weights chosen without the held-out fold):")
    print(row("raw cosine >= 0.86", cos[is_mqp] >= 0.86, y[is_mqp]))
    # The shipped check also refuses, before the heads, a pair whose codes (IDs, versions, years),
    # operators or kinds of question (when / where / why / how / who) differ.
    differ = np.array([tv._verify.hard_rule_refusal(p.a, p.b) is not None for p in pairs])
    print(row("find+verify, heads only", test_hit[is_mqp], y[is_mqp]))
    print(row("find+verify (+ hard rules, shipped)", (test_hit & ~differ)[is_mqp], y[is_mqp]))
    print(f"generated traps, {args.folds}-fold held-out:")
    print(row("raw cosine >= 0.86", cos[~is_mqp] >= 0.86, y[~is_mqp]))
    print(row("find+verify, heads only", test_hit[~is_mqp], y[~is_mqp]))
    print(row("find+verify (+ hard rules, shipped)", (test_hit & ~differ)[~is_mqp], y[~is_mqp]))


if __name__ == "__main__":
    main()
