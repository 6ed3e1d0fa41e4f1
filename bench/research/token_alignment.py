# ruff: noqa: E501  (a research script: long report lines read better whole)
"""Research: do contextual token-vector features close the verifier's MQP gap?

Why this exists: the cache's verifier (asgi_llmguard/cache/verify.py, 27 cheap pair
features) reaches about 35% paraphrase hits on held-out MQP with 3-4% of hits
wrong; the target is <= 1% wrong at >= 33% hits. The embedding model's ONNX
forward pass already produces the contextual token vectors (last hidden state)
that are mean-pooled into the prompt embedding, so features built on them are
free at embedding time. This script measures whether BERTScore-style alignment
features (each word's best cosine to the other prompt's words; precision /
recall / F; worst-aligned content word; unaligned numbers / negations; IDF
weighting from the vocabulary rank or from MQP training folds) help, alone
or added to the existing features, under the same honest protocol as
scripts/train_verifier.py: 5-fold grouped CV (group = question_1), three fold
seeds, every cut-off chosen inside the training part only.

It writes nothing into the package. Usage (from the repository root):

    HF_HUB_OFFLINE=1 .venv/bin/python bench/research/token_alignment.py \
        [--mqp PATH] [--work /tmp/research] [--sk /tmp/research/sk]

--sk is an optional pip --target dir with scikit-learn (for gradient boosting);
without it the boosting rows are skipped. Token vectors are cached in --work.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import importlib.util
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = os.environ.get("LLMGUARD_EMBEDDING_MODEL_DIR", str(ROOT / ".models" / "all-MiniLM-L6-v2"))
TRAPS = ROOT / "tests" / "data" / "trap_pairs.csv"
GEN_SEED = 20261125  # generator seed of scripts/train_verifier.py (fixed); fold seeds vary below
FOLD_SEEDS = (20261125, 1, 2)
HIT_FLOOR = 0.34
FLOOR = 0.6  # cosine below which no pair reaches the verifier (as train_verifier.TRAIN_FLOOR)


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


tv = _load("_train_verifier", ROOT / "scripts" / "train_verifier.py")
V = tv._verify
BASE_FEATURES: tuple[str, ...] = tuple(V.FEATURE_NAMES)
BASE_PARA: list[str] = list(tv.PARA_FEATURES)

# ---------------------------------------------------------------- token vectors
_FUNCTION = set(V._STOP) | set(V._QWORDS) | set(V._ARTICLES)
_NEG = set(V._NEGATIONS) | {"not"}


@dataclass
class Tok:
    """One prompt as words: contextual vectors (unit length), and what each word is."""

    words: list[str]
    vecs: np.ndarray  # n_words x 384, float32, unit rows
    content: np.ndarray  # bool: not a function word or punctuation
    is_num: np.ndarray
    is_neg: np.ndarray
    rank_w: np.ndarray  # IDF proxy from the vocabulary rank (BERT ids are roughly by frequency)
    n_tokens: int  # word pieces incl. [CLS]/[SEP]: what would be stored per entry


def load_model(threads: int):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import fastembed

    return fastembed.TextEmbedding(
        "sentence-transformers/all-MiniLM-L6-v2", specific_model_path=MODEL_DIR, threads=threads
    )


def hidden_states(model, texts: list[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(token vectors, input ids, pooled embedding) per text from ONE onnx forward pass each batch."""
    out = model.model.onnx_embed(texts)
    h, mask, ids = out.model_output, out.attention_mask, out.input_ids
    res = []
    for i in range(len(texts)):
        n = int(mask[i].sum())
        hv = np.asarray(h[i, :n], dtype=np.float32)
        pooled = hv.mean(axis=0)
        pooled /= np.linalg.norm(pooled)
        res.append((hv, np.asarray(ids[i, :n]), pooled))
    return res


def to_words(hv: np.ndarray, ids: np.ndarray, tokenizer) -> Tok:
    """Merge word pieces ("##") into words (mean of piece vectors); drop [CLS]/[SEP]."""
    pieces = [tokenizer.id_to_token(int(i)) for i in ids]
    words: list[str] = []
    groups: list[list[int]] = []
    for j, p in enumerate(pieces):
        if p in ("[CLS]", "[SEP]", "[PAD]"):
            continue
        if p.startswith("##") and groups:
            words[-1] += p[2:]
            groups[-1].append(j)
        else:
            words.append(p)
            groups.append([j])
    # "don ' t" -> the "t" is a negation
    for k in range(2, len(words)):
        if words[k] == "t" and words[k - 1] == "'":
            words[k] = "not"
    vecs = np.stack([hv[g].mean(axis=0) for g in groups]) if groups else np.zeros((0, hv.shape[1]), np.float32)
    vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-9)
    alnum = np.array([any(c.isalnum() for c in w) for w in words], dtype=bool)
    content = alnum & np.array([w not in _FUNCTION or w in _NEG for w in words], dtype=bool)
    is_num = np.array([w.replace(".", "").replace(",", "").isdigit() or w in V._NUMBER_WORDS for w in words], bool)
    is_neg = np.array([w in _NEG for w in words], dtype=bool)
    rank_w = np.array([math.log1p(max(0, max(int(ids[j]) for j in g) - 1995)) + 0.5 * (len(g) - 1) for g in groups])
    return Tok(words, vecs.astype(np.float32), content, is_num, is_neg, rank_w, len(ids))


def quantise(t: Tok, mode: str) -> Tok:
    """The stored side's vectors after a round trip through float16 or per-token int8."""
    if mode == "fp32":
        return t
    if mode == "fp16":
        v = t.vecs.astype(np.float16).astype(np.float32)
    else:  # int8, symmetric, one float scale per word vector
        scale = np.abs(t.vecs).max(axis=1, keepdims=True) / 127.0
        v = (np.round(t.vecs / np.maximum(scale, 1e-12)).astype(np.int8).astype(np.float32)) * scale
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-9)
    return Tok(t.words, v.astype(np.float32), t.content, t.is_num, t.is_neg, t.rank_w, t.n_tokens)


# ---------------------------------------------------------------- pair features
TOKEN_FEATURES: tuple[str, ...] = (
    "bs_f",  # BERTScore F over all words
    "bs_min",  # min of precision and recall
    "c_mean_min",  # content words' mean alignment, the worse side
    "c_worst",  # alignment of the worst-aligned content word (either side)
    "c_p10",
    "c_p25",
    "n_un50",
    "n_un60",
    "n_un70",
    "frac_un70",
    "worst_is_num",
    "worst_is_neg",
    "un_num",  # an unaligned (<0.7) content word is a number
    "un_neg",  # ... a negation
    "un_cos",  # cosine of the means of unaligned content words between the sides
    "un_one_side",
    "rk_wmean_min",  # vocab-rank-IDF weighted mean alignment, worse side
    "rk_wun_max",  # vocab-rank-IDF weighted unaligned mass, worse side
    "rk_worst",  # worst alignment among rare-ish content words (rank weight >= 6, id > ~400 words in)
)
IDF_FEATURES: tuple[str, ...] = ("idf_wmean_min", "idf_wun_max", "idf_worst")


def _weighted(align: np.ndarray, w: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    if not mask.any():
        return 1.0, 0.0
    ww = w[mask]
    s = float(ww.sum()) or 1.0
    return float((ww * align[mask]).sum() / s), float((ww * (1.0 - align[mask])).sum() / s)


def alignments(a: Tok, b: Tok) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = a.vecs @ b.vecs.T
    if s.size == 0:
        return np.ones(len(a.words)), np.ones(len(b.words)), s
    return s.max(axis=1), s.max(axis=0), s


def token_features(a: Tok, b: Tok) -> list[float]:
    al_a, al_b, _s = alignments(a, b)
    pa = float(al_a.mean()) if len(al_a) else 1.0
    pb = float(al_b.mean()) if len(al_b) else 1.0
    f = 2 * pa * pb / (pa + pb) if pa + pb > 0 else 0.0
    ca, cb = al_a[a.content], al_b[b.content]
    cm = min(float(ca.mean()) if len(ca) else 1.0, float(cb.mean()) if len(cb) else 1.0)
    pooled = np.concatenate([ca, cb])
    if len(pooled):
        worst = float(pooled.min())
        p10, p25 = float(np.percentile(pooled, 10)), float(np.percentile(pooled, 25))
        wi = int(pooled.argmin())
        num_all = np.concatenate([a.is_num[a.content], b.is_num[b.content]])
        neg_all = np.concatenate([a.is_neg[a.content], b.is_neg[b.content]])
        worst_num, worst_neg = float(num_all[wi]), float(neg_all[wi])
        un = pooled < 0.7
        un_num = float((un & num_all).any())
        un_neg = float((un & neg_all).any())
    else:
        worst = p10 = p25 = 1.0
        worst_num = worst_neg = un_num = un_neg = 0.0
    n50, n60, n70 = (float(min(6, int((pooled < t).sum()))) / 6.0 for t in (0.5, 0.6, 0.7))
    frac70 = float((pooled < 0.7).mean()) if len(pooled) else 0.0
    ua = a.content & (al_a < 0.7)
    ub = b.content & (al_b < 0.7)
    one = 0.0
    if ua.any() and ub.any():
        ma, mb = a.vecs[ua].mean(0), b.vecs[ub].mean(0)
        ucos = float(ma @ mb / (np.linalg.norm(ma) * np.linalg.norm(mb) + 1e-9))
    elif ua.any() or ub.any():
        one = 1.0
        side, other = (a, b) if ua.any() else (b, a)
        m1 = side.vecs[ua if side is a else ub].mean(0)
        m2 = other.vecs[other.content].mean(0) if other.content.any() else other.vecs.mean(0)
        ucos = float(m1 @ m2 / (np.linalg.norm(m1) * np.linalg.norm(m2) + 1e-9))
    else:
        ucos = 1.0
    rwa, rua = _weighted(al_a, a.rank_w, a.content)
    rwb, rub = _weighted(al_b, b.rank_w, b.content)
    rare = np.concatenate([ca[a.rank_w[a.content] >= 6.0], cb[b.rank_w[b.content] >= 6.0]])
    rk_worst = float(rare.min()) if len(rare) else 1.0
    return [
        f,
        min(pa, pb),
        cm,
        worst,
        p10,
        p25,
        n50,
        n60,
        n70,
        frac70,
        worst_num,
        worst_neg,
        un_num,
        un_neg,
        ucos,
        one,
        min(rwa, rwb),
        max(rua, rub),
        rk_worst,
    ]


def idf_features(a: Tok, b: Tok, idf: dict[str, float], default: float) -> list[float]:
    al_a, al_b, _ = alignments(a, b)
    wa = np.array([idf.get(w, default) for w in a.words])
    wb = np.array([idf.get(w, default) for w in b.words])
    m1, u1 = _weighted(al_a, wa, a.content)
    m2, u2 = _weighted(al_b, wb, b.content)
    thr = 0.5 * default  # rarer than about sqrt(N) documents
    rare = np.concatenate([al_a[a.content & (wa >= thr)], al_b[b.content & (wb >= thr)]])
    return [min(m1, m2), max(u1, u2), float(rare.min()) if len(rare) else 1.0]


def fold_idf(texts: list[str], toks: dict[str, Tok]) -> tuple[dict[str, float], float]:
    """IDF over the given questions only (the training part of a fold)."""
    df: dict[str, int] = {}
    for t in set(texts):
        for w in set(toks[t].words):
            df[w] = df.get(w, 0) + 1
    n = len(set(texts))
    return {w: math.log((n + 1) / (c + 1)) for w, c in df.items()}, math.log(n + 1)


# ---------------------------------------------------------------- evaluation helpers
def rates(hit: np.ndarray, y: np.ndarray) -> tuple[float, float, float, int, int]:
    pos, neg = y == 1, y == 0
    hits, false = int(hit.sum()), int((hit & neg).sum())
    return float((hit & pos).sum() / pos.sum()), false / neg.sum(), (false / hits if hits else 0.0), hits, false


def fit_lr(x: np.ndarray, y: np.ndarray, l2: float = 1.0):
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    w, b = tv.fit_logistic((x - mean) / scale, y, np.ones(len(y)), l2)
    return lambda z: ((z - mean) / scale) @ w + b


def fit_gbm(x: np.ndarray, y: np.ndarray):
    from sklearn.ensemble import HistGradientBoostingClassifier

    m = HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=8, min_samples_leaf=20, l2_regularization=1.0, random_state=0
    )
    m.fit(x, y)
    return lambda z: m.decision_function(z)


def cutoff(score: np.ndarray, y: np.ndarray, eligible: np.ndarray, floor: float = HIT_FLOOR) -> float:
    """Largest cut-off whose hit rate (over all positives) stays >= floor."""
    pos_scores = np.sort(score[eligible & (y == 1)])[::-1]
    need = math.ceil(floor * (y == 1).sum())
    if need > len(pos_scores):
        return -np.inf
    return float(pos_scores[need - 1])


@dataclass
class Result:
    name: str
    per_seed: list[tuple[float, float, float, int, int]]
    at33: list[float]  # wrong share of hits at a 33% hit rate, pooled held-out ranking


def eval_mqp_model(name, fitter, feats_fn, y, cos, groups, texts_q1, seeds, k=5) -> Result:
    """MQP-only model: train on the training part (cos >= FLOOR), cut-off from inner out-of-fold scores."""
    per_seed, at33 = [], []
    elig_all = cos >= FLOOR
    for seed in seeds:
        folds = np.array([tv.fold_of(g, k, seed) for g in groups])
        inner = np.array([tv.fold_of(g + ":inner", k, seed) for g in groups])
        hit = np.zeros(len(y), bool)
        pooled_score = np.full(len(y), -np.inf)
        for f in range(k):
            tr, te = folds != f, folds == f
            x = feats_fn(tr)  # features may depend on the training part (fold IDF)
            oof = np.full(len(y), -np.inf)
            for g in range(k):
                itr = tr & (inner != g) & elig_all
                ite = tr & (inner == g) & elig_all
                oof[ite] = fitter(x[itr], y[itr])(x[ite])
            c = cutoff(oof[tr], y[tr], elig_all[tr])  # training part only
            model = fitter(x[tr & elig_all], y[tr & elig_all])
            s = np.full(te.sum(), -np.inf)
            e = elig_all[te]
            s[e] = model(x[te][e])
            pooled_score[te] = s
            hit[te] = s >= c
        per_seed.append(rates(hit, y))
        at33.append(wrong_at(pooled_score, y, 0.33))
    return Result(name, per_seed, at33)


def wrong_at(score: np.ndarray, y: np.ndarray, hr: float) -> float:
    order = np.argsort(-score, kind="stable")
    need = math.ceil(hr * (y == 1).sum())
    tp = np.cumsum(y[order] == 1)
    idx = int(np.searchsorted(tp, need))
    if idx >= len(order) or not np.isfinite(score[order[idx]]):
        return float("nan")
    sel = order[: idx + 1]
    return float((y[sel] == 0).sum() / len(sel))


def fmt(res: Result) -> str:
    hr = np.array([r[0] for r in res.per_seed]) * 100
    fp = np.array([r[1] for r in res.per_seed]) * 100
    wr = np.array([r[2] for r in res.per_seed]) * 100
    counts = ", ".join(f"{r[4]}/{r[3]}" for r in res.per_seed)
    a33 = np.array(res.at33) * 100
    return (
        f"| {res.name} | {hr.mean():.1f} ({hr.min():.1f}-{hr.max():.1f}) | {fp.mean():.2f} ({fp.min():.2f}-{fp.max():.2f}) "
        f"| {wr.mean():.2f} ({wr.min():.2f}-{wr.max():.2f}) [{counts}] | "
        + (f"{np.nanmean(a33):.2f} ({np.nanmin(a33):.2f}-{np.nanmax(a33):.2f})" if np.isfinite(a33).any() else "-")
        + " |"
    )


# ---------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mqp", type=Path, default=tv.DEFAULT_MQP)
    ap.add_argument("--work", type=Path, default=Path("/tmp/research"))
    ap.add_argument("--sk", type=Path, default=None)
    ap.add_argument("--skip-pipeline", action="store_true")
    ap.add_argument("--n-seeds", type=int, default=3, help="fold seeds: the project's seed, then 1, 2, ...")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.sk is not None:
        sys.path.append(str(args.sk))  # appended: the venv's numpy keeps precedence
    t0 = time.time()

    pairs, x27, cos = tv.build_dataset(args.mqp, GEN_SEED, args.work / "emb.npz")
    with TRAPS.open(newline="", encoding="utf-8") as fh:
        traps = [(r["prompt_a"], r["prompt_b"], int(r["same_answer"]), r["category"]) for r in csv.DictReader(fh)]
    texts = sorted({p.a for p in pairs} | {p.b for p in pairs} | {t[0] for t in traps} | {t[1] for t in traps})

    # token vectors, one forward pass per batch; cached
    cache = args.work / f"tok_{hashlib.sha1(''.join(texts).encode()).hexdigest()[:12]}.pkl"
    model = load_model(threads=1)
    if cache.is_file():
        toks, pooled_check = pickle.loads(cache.read_bytes())
    else:
        bulk = load_model(threads=os.cpu_count() or 1)
        toks, maxdiff = {}, 0.0
        ordered = sorted(texts, key=len)
        for i in range(0, len(ordered), 64):
            batch = ordered[i : i + 64]
            for t, (hv, ids, pooled) in zip(batch, hidden_states(bulk, batch), strict=True):
                toks[t] = to_words(hv, ids, bulk.model.tokenizer)
                toks[t].pooled = pooled  # type: ignore[attr-defined]
        sample = ordered[:: max(1, len(ordered) // 200)]
        ref = np.array(list(bulk.embed(sample, batch_size=64)))
        maxdiff = float(max(np.abs(toks[t].pooled - r).max() for t, r in zip(sample, ref, strict=True)))
        cosdiff = float(
            max(abs(float(toks[p.a].pooled @ toks[p.b].pooled) - c) for p, c in zip(pairs, cos, strict=True))
        )
        pooled_check = (maxdiff, cosdiff)
        cache.write_bytes(pickle.dumps((toks, pooled_check)))
    print(
        f"# pooled(onnx_embed hidden state) vs emb.embed: max |diff| {pooled_check[0]:.2e} over 200 texts; "
        f"pair cosine max |diff| vs train_verifier cosines {pooled_check[1]:.2e}"
    )
    print(
        f"# texts {len(texts)}, pairs {len(pairs)} ({sum(p.source == 'mqp' for p in pairs)} MQP); "
        f"setup {time.time() - t0:.0f}s"
    )

    y_all = np.array([p.label for p in pairs], float)
    is_mqp = np.array([p.source == "mqp" for p in pairs])
    xt_all = np.array([token_features(toks[p.a], toks[p.b]) for p in pairs])

    # ---- MQP-only section
    mq = np.where(is_mqp)[0]
    y, c, x27m, xtm = y_all[mq], cos[mq], x27[mq], xt_all[mq]
    mpairs = [pairs[i] for i in mq]
    groups = [p.group for p in mpairs]
    q1 = [p.a for p in mpairs]
    print(
        f"# MQP positives {int(y.sum())}, negatives {int((1 - y).sum())}; cos>={FLOOR}: "
        f"{int(((c >= FLOOR) & (y == 1)).sum())} pos, {int(((c >= FLOOR) & (y == 0)).sum())} neg"
    )

    def idf_block(tr: np.ndarray) -> np.ndarray:
        train_q = [p.a for p, t in zip(mpairs, tr, strict=True) if t] + [
            p.b for p, t in zip(mpairs, tr, strict=True) if t
        ]
        idf, default = fold_idf(train_q, toks)
        return np.array([idf_features(toks[p.a], toks[p.b], idf, default) for p in mpairs])

    results: list[Result] = []
    seeds = (FOLD_SEEDS[0], *range(1, args.n_seeds))
    # raw cosine
    per, a33 = [], []
    for _s in seeds:
        per.append(rates(c >= 0.86, y))
        a33.append(wrong_at(c, y, 0.33))
    results.append(Result("raw cosine >= 0.86 (fixed)", per, a33))
    results.append(
        eval_mqp_model(
            "raw cosine, cut-off for 34% hits in training part",
            lambda x_, y_: lambda z: z[:, 0],
            lambda tr: c[:, None],
            y,
            c,
            groups,
            q1,
            seeds,
        )
    )
    # shipped verifier (trained on all MQP: in-sample, reference only)
    ver = V.Verifier()
    hit = np.array(
        [(cc >= ver.threshold) and ver.check(p.a, p.b, cc).accepted for p, cc in zip(mpairs, c, strict=True)]
    )
    results.append(
        Result("shipped verifier, cos>=0.83 (IN-SAMPLE, trained on all MQP)", [rates(hit, y)] * 1, [float("nan")])
    )

    # single token scores
    names_t = list(TOKEN_FEATURES)
    for fname in ("bs_f", "bs_min", "c_worst", "c_p25", "rk_wmean_min"):
        j = names_t.index(fname)
        results.append(
            eval_mqp_model(
                f"token score {fname} alone",
                lambda x_, y_: lambda z: z[:, 0],
                lambda tr, j=j: xtm[:, j : j + 1],
                y,
                c,
                groups,
                q1,
                seeds,
            )
        )
    # logistic regressions, MQP only
    results.append(
        eval_mqp_model("LR 27 existing features (MQP only)", fit_lr, lambda tr: x27m, y, c, groups, q1, seeds)
    )
    results.append(
        eval_mqp_model(
            "LR cos + 19 token features", fit_lr, lambda tr: np.hstack([c[:, None], xtm]), y, c, groups, q1, seeds
        )
    )
    results.append(
        eval_mqp_model("LR 27 + 19 token features", fit_lr, lambda tr: np.hstack([x27m, xtm]), y, c, groups, q1, seeds)
    )
    results.append(
        eval_mqp_model(
            "LR 27 + 19 token + 3 fold-IDF features",
            fit_lr,
            lambda tr: np.hstack([x27m, xtm, idf_block(tr)]),
            y,
            c,
            groups,
            q1,
            seeds,
        )
    )
    have_sk = False
    try:
        import sklearn  # noqa: F401

        have_sk = True
    except ImportError:
        print("# scikit-learn not importable: boosting rows skipped")
    if have_sk:
        results.append(
            eval_mqp_model("GBM 27 existing features (MQP only)", fit_gbm, lambda tr: x27m, y, c, groups, q1, seeds)
        )
        results.append(
            eval_mqp_model(
                "GBM 27 + 19 token features", fit_gbm, lambda tr: np.hstack([x27m, xtm]), y, c, groups, q1, seeds
            )
        )
    print(f"# MQP-only models done {time.time() - t0:.0f}s")

    # ---- the shipped pipeline (two heads, generated data, rule choice), retrained inside folds
    ext_names = BASE_FEATURES + TOKEN_FEATURES
    x_ext = np.hstack([x27, xt_all])
    para_tok = ["bs_min", "c_mean_min", "c_worst", "c_p25", "n_un70", "un_cos", "rk_wun_max"]
    pipe_rows = []
    if not args.skip_pipeline:
        for label, xx, names, para in (
            ("pipeline as shipped (2 heads, +generated), retrained in folds", x27, BASE_FEATURES, BASE_PARA),
            ("pipeline + 19 token features (edit head all, para head +7)", x_ext, ext_names, BASE_PARA + para_tok),
        ):
            tv.FEATURE_NAMES, tv.PARA_FEATURES = names, para
            per, gen = [], []
            for seed in seeds:
                test_hit, _rules = tv.cross_validate(pairs, xx, cos, seed, 5)
                per.append(rates(test_hit[is_mqp], y_all[is_mqp]))
                gen.append(rates(test_hit[~is_mqp], y_all[~is_mqp]))
            pipe_rows.append((label, per, gen))
            results.append(Result(label, per, [float("nan")]))
            print(
                f"# {label}: generated traps held-out, false/neg per seed: "
                + ", ".join(f"{100 * g[1]:.2f}% (wrong {g[4]}/{g[3]} hits)" for g in gen)
            )
        tv.FEATURE_NAMES, tv.PARA_FEATURES = BASE_FEATURES, BASE_PARA
    print(f"# pipeline done {time.time() - t0:.0f}s")

    def pipeline_cv(xx, names, para, hit_floor=0.34):
        """tv.cross_validate with a feature set patched in; held-out MQP hits and generated-trap hits per seed."""
        tv.FEATURE_NAMES, tv.PARA_FEATURES, tv.HIT_FLOOR = names, para, hit_floor
        try:
            return [tv.cross_validate(pairs, xx, cos, seed, 5)[0] for seed in seeds]
        finally:
            tv.FEATURE_NAMES, tv.PARA_FEATURES, tv.HIT_FLOOR = BASE_FEATURES, BASE_PARA, 0.34

    def pipe_line(label, hits):
        m = [rates(h[is_mqp], y_all[is_mqp]) for h in hits]
        g = [rates(h[~is_mqp], y_all[~is_mqp]) for h in hits]
        gtxt = ", ".join(f"{100 * x[1]:.2f}%" for x in g)
        return fmt(Result(label, m, [float("nan")])) + f" gen traps served {gtxt}"

    if not args.skip_pipeline:
        print("\n# ablations: where the token features enter the two-head pipeline (prespecified variant is the first)")
        base_hits = pipeline_cv(x27, BASE_FEATURES, BASE_PARA)
        variants = {
            "para +7, edit all 19 (prespecified)": (x_ext, ext_names, BASE_PARA + para_tok),
            "para +7 only (edit head 27 only)": (None, None, None),
            "edit all 19 only (para head as shipped)": (x_ext, ext_names, BASE_PARA),
            "para +bs_f,bs_min, edit all 19": (x_ext, ext_names, [*BASE_PARA, "bs_f", "bs_min"]),
            "para +all 19, edit all 19": (x_ext, ext_names, BASE_PARA + list(TOKEN_FEATURES)),
        }
        tok_hits = None
        for label, (xx, names, para) in variants.items():
            if xx is None:
                # edit head must not see token features: give them zero variance there is impossible with one x,
                # so run the pipeline with a patched train() that drops token columns for the edit head.
                orig_train = tv.train

                def train_drop(x, y_, w, c_, use=None, l2=1.0, _o=orig_train):
                    if use is None:
                        use = list(BASE_FEATURES)
                    return _o(x, y_, w, c_, use, l2)

                tv.train = train_drop
                try:
                    hits = pipeline_cv(x_ext, ext_names, BASE_PARA + para_tok)
                finally:
                    tv.train = orig_train
            else:
                hits = pipeline_cv(xx, names, para)
            if tok_hits is None:
                tok_hits = hits
            print(pipe_line(label, hits))
        print(
            "\n# paired: MQP negatives served by shipped-pipeline only / token-pipeline only, per seed (exact sign test p)"
        )
        neg = is_mqp & (y_all == 0)
        posm = is_mqp & (y_all == 1)
        for s_i, (hb, ht) in enumerate(zip(base_hits, tok_hits, strict=True)):
            b_only, t_only = int((hb & ~ht & neg).sum()), int((ht & ~hb & neg).sum())
            n = b_only + t_only
            k = min(b_only, t_only)
            p = min(1.0, 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n) if n else 1.0
            pb_only, pt_only = int((hb & ~ht & posm).sum()), int((ht & ~hb & posm).sum())
            print(
                f"#  seed {seeds[s_i]}: false hits base-only {b_only}, token-only {t_only} (p={p:.2f}); "
                f"paraphrase hits base-only {pb_only}, token-only {pt_only}"
            )
        print("\n# hit-floor sweep: can trading hits reach <= 1% wrong? (floor used inside training parts)")
        for floor in (0.34, 0.30, 0.26, 0.22):
            print(
                pipe_line(f"shipped pipeline, hit floor {floor:.2f}", pipeline_cv(x27, BASE_FEATURES, BASE_PARA, floor))
            )
            print(
                pipe_line(
                    f"pipeline + token, hit floor {floor:.2f}",
                    pipeline_cv(x_ext, ext_names, BASE_PARA + para_tok, floor),
                )
            )
        # what is still served wrongly (held-out, first seed): written to --work only, never to the repo
        with (args.work / "still_wrong.txt").open("w", encoding="utf-8") as fh:
            for i in np.where(tok_hits[0] & is_mqp & (y_all == 0))[0]:
                f_ = dict(zip(TOKEN_FEATURES, xt_all[i], strict=True))
                fh.write(
                    f"cos {cos[i]:.3f} bs_min {f_['bs_min']:.3f} c_worst {f_['c_worst']:.3f} | {pairs[i].a} || {pairs[i].b}\n"
                )
        tv.FEATURE_NAMES, tv.PARA_FEATURES = ext_names, BASE_PARA + para_tok
        heads = tv.train_heads(x_ext, y_all, is_mqp, cos)
        tv.FEATURE_NAMES, tv.PARA_FEATURES = BASE_FEATURES, BASE_PARA
        print("\n# pipeline + token heads trained on all data: token-feature weights (standardised) para / edit")
        print(
            "#  "
            + ", ".join(
                f"{n} {heads.paraphrase.weights[27 + j]:+.2f}/{heads.edit.weights[27 + j]:+.2f}"
                for j, n in enumerate(TOKEN_FEATURES)
            )
        )
        print("\n# quantised stored vectors (both sides rounded) in the pipeline + token variant")
        for mode in ("fp16", "int8"):
            xq_all = np.array([token_features(quantise(toks[p.a], mode), quantise(toks[p.b], mode)) for p in pairs])
            print(
                pipe_line(
                    f"pipeline + token, {mode}", pipeline_cv(np.hstack([x27, xq_all]), ext_names, BASE_PARA + para_tok)
                )
            )
        elig = c >= FLOOR
        xx_ = np.hstack([x27m, xtm])[elig]
        mu, sd = xx_.mean(0), xx_.std(0)
        sd[sd < 1e-6] = 1.0
        wts, _b = tv.fit_logistic((xx_ - mu) / sd, y[elig], np.ones(int(elig.sum())), 30.0)
        names_all = list(BASE_FEATURES) + list(TOKEN_FEATURES)
        top = sorted(range(len(names_all)), key=lambda i: -abs(wts[i]))[:12]
        print(
            "\n# LR 27+19 l2=30 on all MQP, largest standardised weights: "
            + ", ".join(f"{names_all[i]} {wts[i]:+.2f}" for i in top)
        )
        print("\n# LR 27 + 19 token with stronger L2 (l2=10, 30): is the MQP-only LR overfitting?")
        for l2 in (10.0, 30.0):
            print(
                fmt(
                    eval_mqp_model(
                        f"LR 27 + 19 token, l2={l2:g}",
                        lambda a_, b_, l2=l2: fit_lr(a_, b_, l2),
                        lambda tr: np.hstack([x27m, xtm]),
                        y,
                        c,
                        groups,
                        q1,
                        seeds,
                    )
                )
            )
            print(
                fmt(
                    eval_mqp_model(
                        f"LR 27 only, l2={l2:g}",
                        lambda a_, b_, l2=l2: fit_lr(a_, b_, l2),
                        lambda tr: x27m,
                        y,
                        c,
                        groups,
                        q1,
                        seeds,
                    )
                )
            )

    print(
        "\n| method (MQP dev, 5-fold grouped held-out, 3 fold seeds) | paraphrase hit % mean (range) | "
        "false hits per negative % | wrong share of hits % [false/hits per seed] | wrong % at 33% hit (pooled ranking) |"
    )
    print("|---|---|---|---|---|")
    for r in results:
        print(fmt(r))

    # ---- quantisation of stored token vectors (both sides rounded: conservative)
    print("\n# quantisation: LR 27+19 token on MQP with both sides' word vectors round-tripped")
    for mode in ("fp16", "int8"):
        xq = np.array([token_features(quantise(toks[p.a], mode), quantise(toks[p.b], mode)) for p in mpairs])
        d = np.abs(xq - xtm).max(axis=0)
        r = eval_mqp_model(
            f"LR 27 + 19 token, {mode} vectors",
            fit_lr,
            lambda tr, xq=xq: np.hstack([x27m, xq]),
            y,
            c,
            groups,
            q1,
            seeds,
        )
        print(
            f"#  {mode}: max |feature diff| {d.max():.4f} (worst {TOKEN_FEATURES[int(d.argmax())]}); "
            f"continuous-feature max diff {max(d[i] for i, n in enumerate(TOKEN_FEATURES) if not n.startswith(('n_', 'worst_is', 'un_num', 'un_neg', 'un_one'))):.4f}"
        )
        print(fmt(r))

    # ---- trap set: the pipeline trained on all MQP + generated, rule from out-of-fold scores
    ty = np.array([t[2] for t in traps], float)
    tcos = np.array([float(toks[a].pooled @ toks[b].pooled) for a, b, _l, _c in traps])
    tx27 = np.array([V.pair_features(a, b, cc) for (a, b, _l, _c), cc in zip(traps, tcos, strict=True)])
    txt = np.array([token_features(toks[a], toks[b]) for a, b, _l, _c in traps])
    print("\n# trap_pairs.csv (never trained on)")
    print(
        f"#  raw cos>=0.86: hit {100 * rates(tcos >= 0.86, ty)[0]:.1f}%, wrong {rates(tcos >= 0.86, ty)[4]}/{rates(tcos >= 0.86, ty)[3]}"
    )
    folds = np.array([tv.fold_of(p.group, 5, GEN_SEED) for p in pairs])
    for label, xx, txx, names, para in (
        ("pipeline as shipped, retrained", x27, tx27, BASE_FEATURES, BASE_PARA),
        ("pipeline + token features", x_ext, np.hstack([tx27, txt]), ext_names, BASE_PARA + para_tok),
    ):
        tv.FEATURE_NAMES, tv.PARA_FEATURES = names, para
        pa, pb = tv.oof_scores(xx, y_all, is_mqp, cos, folds, 5)
        rule = tv.choose(cos, pa, pb, y_all, is_mqp)
        heads = tv.train_heads(xx, y_all, is_mqp, cos)
        qa, qb = heads.predict(txx)
        hit = tv.accepted(tcos, qa, qb, rule)
        hr, fp, wr, h, fl = rates(hit, ty)
        cats = {}
        for (_a, _b, _lab, cat), hh in zip(traps, hit, strict=True):
            cats.setdefault(cat, [0, 0])
            cats[cat][0] += int(hh)
            cats[cat][1] += 1
        print(
            f"#  {label}: rule {tuple(round(v, 2) for v in rule)}; hit {100 * hr:.1f}%, false/neg {100 * fp:.2f}%, "
            f"wrong {fl}/{h} ({100 * wr:.1f}%); served by category {cats}"
        )
    tv.FEATURE_NAMES, tv.PARA_FEATURES = BASE_FEATURES, BASE_PARA

    # ---- run-time and storage cost
    print("\n# run-time (one thread)")
    prompt = "I am a 39 year old male weighing about 193 lbs. Do you think I am overweight for my age?"
    for _ in range(5):
        list(model.embed([prompt]))
        model.model.onnx_embed([prompt])
    reps = 60
    te, to = [], []
    for _ in range(reps):
        t1 = time.perf_counter()
        list(model.embed([prompt]))
        t2 = time.perf_counter()
        hidden_states(model, [prompt])
        t3 = time.perf_counter()
        te.append(t2 - t1)
        to.append(t3 - t2)
    tok_q = to_words(*hidden_states(model, [prompt])[0][:2], model.model.tokenizer)
    print(
        f"#  emb.embed median {1e3 * np.median(te):.2f} ms; onnx_embed + pooling median {1e3 * np.median(to):.2f} ms "
        f"({tok_q.n_tokens} tokens)"
    )
    t1 = time.perf_counter()
    for _ in range(reps):
        hv, ids, _p = hidden_states(model, [prompt])[0]
        to_words(hv, ids, model.model.tokenizer)
    t_words = (time.perf_counter() - t1) / reps
    other = toks[mpairs[0].b]
    t1 = time.perf_counter()
    for _ in range(2000):
        token_features(tok_q, other)
    t_feat = (time.perf_counter() - t1) / 2000
    print(
        f"#  word grouping per prompt (incl. the forward pass above) {1e3 * t_words:.2f} ms; "
        f"token features per pair {1e3 * t_feat:.3f} ms"
    )
    ntok = np.array([t.n_tokens for t in toks.values()])
    nwords = np.array([len(t.words) for t in toks.values()])
    mq_txt = {p.a for p in mpairs} | {p.b for p in mpairs}
    ntok_m = np.array([toks[t].n_tokens for t in mq_txt])
    for label, arr in (("all texts", ntok), ("MQP questions", ntok_m)):
        print(
            f"#  {label}: tokens median {np.median(arr):.0f}, p95 {np.percentile(arr, 95):.0f}, max {arr.max()}; "
            f"per entry at median: fp32 {np.median(arr) * 384 * 4 / 1024:.1f} KB, fp16 {np.median(arr) * 384 * 2 / 1024:.1f} KB, "
            f"int8 {np.median(arr) * (384 + 4) / 1024:.1f} KB; at 256 tokens fp16 {256 * 384 * 2 / 1024:.0f} KB"
        )
    print(f"#  words per prompt median {np.median(nwords):.0f} (word-level storage is a little smaller)")
    print(f"# total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
