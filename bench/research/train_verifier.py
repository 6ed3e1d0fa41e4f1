"""Fit the verifier's combiner and choose its strictness points; write asgi_llmguard/data/verifier.json.

Why: the pair model (bench/research/train_pair_model.py) reads two prompts together, but alone it
misjudges some kinds of pair (long medical questions, where cosine ranks better) and misses some
differences that word-level features see at once (an opposite swapped in, two words trading
places). A logistic combiner weighs its logit with the cosine and those features.

Everything here is fitted on the ``cal`` part of bench/_pairs.py (and of the generated pairs),
which the pair model never trained on; the ``test`` part is left to bench/cache_quality.py. Each
set weighs the same in the fit, whatever its size, so that PAWS and STS-B do not drown the chat
prompts. Pairs a hard rule refuses, and pairs under the lowest cosine floor, never reach the
combiner and do not train it.

The three strictness points are (cosine floor, combiner cut-off) pairs chosen on the same part: the
one that serves the most rewordings (mean hit rate over our everyday, gateway, question and
contrast sets) while the traps served (pooled over the near-duplicate traps people wrote, and apart
over the rule-made ones, which are harder and noisier) and the wrong share of hits on MQP and on our
question pairs stay within that point's budget.

A topic probe (``fit_topic``): a logistic model on the embedding that tells MQP's prompts (train and cal
parts) from our other sets', so that the ``rewording`` credit (REWORDING below) can leave the doctors'
questions, which bind the cut, judged as before (asgi_llmguard/cache/topic.py).

Last, the wrong share of hits at a ladder of cuts (same part, our chat, question and medical sets
pooled): the calibration from which the error budget picks a namespace's starting cut for a
wrong-rate target (``Verifier.start_cut``). ``--keep-combiner`` keeps the packaged file's combiner and
chooses the points and the calibration again (after a change to the rules, say); ``--keep-points`` keeps the
points too and writes only the calibration.

Usage: python bench/research/train_verifier.py [--out PATH] [--keep-combiner | --keep-points]
(the packaged pair model must be in place; pair logits and embeddings are cached between runs.)
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import _pairs  # noqa: E402
import generated_pairs  # noqa: E402

from asgi_llmguard.cache import verify  # noqa: E402
from asgi_llmguard.cache.operating_points import operating_point  # noqa: E402

OUT = _pairs.ROOT / "asgi_llmguard" / "data" / "verifier.json"
LOGIT_CACHE = _pairs.EMBEDDING_CACHE.with_name("llmguard_pair_logits.pkl")

#: What the combiner reads, besides the pair model's logit: the cosine and the word-level features
#: that name a difference (a refusal is blamed on the one that pushed hardest).
INPUTS = ["cos", verify.PAIR_MODEL, "num_diff", "num_one_side", "neg_diff", "direction", "swap", "opposite",
          "degree", "cap_sub", "num_unit_diff", "qtype_diff", "contrast_diff", "identical"]
FIT_FLOOR = 0.65
REWORDING_SETS = ("everyday", "gateway", "questions", "contrast")
#: Near-duplicate traps people wrote (the kind the outside check holds out) and traps made by rule from a
#: template (bench/research/data/contrast_*.csv, generated_pairs.py): harder than real ones, with some label
#: noise ("Can cats give toxoplasmosis to humans?" / "Can all cats ..."), so each has its own budget.
TRAP_SETS = ("everyday", "gateway", "traps")
RULE_MADE_TRAP_SETS = ("contrast", "generated")


@dataclass(frozen=True)
class Budget:
    traps_served: float  # share of near-duplicate traps served (TRAP_SETS, pooled)
    rule_made_served: float  # share of rule-made traps served (RULE_MADE_TRAP_SETS, pooled)
    mqp_wrong: float  # wrong share of hits on MQP
    questions_wrong: float  # wrong share of hits on our question pairs


BUDGETS = {
    "strict": Budget(0.01, 0.015, 0.025, 0.03),
    "balanced": Budget(0.02, 0.03, 0.025, 0.045),
    "loose": Budget(0.04, 0.05, 0.05, 0.07),
}
THRESHOLDS = [round(0.70 + 0.01 * i, 2) for i in range(19)]
#: How far under its floor each point judges short prompts (verify.Reach), chosen on the cal part by
#: hand from a small grid (docs/cache-quality.md): the strict point looks no lower than its floor.
REACH: dict[str, dict[str, float] | None] = {
    "strict": None,
    "balanced": {"floor": 0.76, "penalty": 1.5, "max_words": 20, "near": 0.80},
    "loose": {"floor": 0.76, "penalty": 1.5, "max_words": 20, "near": 0.80},
}
#: What a long prompt restated in other words earns over the floor (verify.Restatement), chosen on the cal
#: part from a small grid (docs/cache-quality.md, "Long prompts restated"): both points then serve one from
#: log-odds -1 (1.5 - 2.5, 0.4 - 1.5); none at the strict point.
RESTATEMENT: dict[str, dict[str, float] | None] = {
    "strict": None,
    "balanced": {"min_words": 12, "min_changed": 0.25, "credit": 2.5},
    "loose": {"min_words": 12, "min_changed": 0.25, "credit": 1.5},
}
#: What a reworded prompt off the medical topic earns (verify.Rewording), chosen on the cal part from a small
#: grid (min_changed 0.3-0.45, credit 0.5-1.0; docs/cache-quality.md, "Rewordings off the medical topic"):
#: the largest credit whose rule-made traps stay within the point's budget. None at the strict point.
REWORDING: dict[str, dict[str, float] | None] = {
    "strict": None,
    "balanced": {"min_changed": 0.4, "credit": 0.8},
    "loose": {"min_changed": 0.4, "credit": 0.8},
}
#: The sets whose prompts (train and cal parts) the topic probe reads as off the medical topic; MQP's read as on it.
TOPIC_OTHER_SETS = ("everyday", "gateway", "traps", "questions", "paws", "sts")
TOPIC_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
#: Log-odds a query must pass to read as a health question. Chosen on 2026-12-06 over every set with
#: bench/research/verdicts.py, in steps of 0.5: up to 2.0 no trap of a cal part (cross traps included) is served
#: more, and 20 rewordings are ("How many bones does an adult human have?", "How does a vaccine train the immune
#: system?"); at 2.5 an MQP cal trap and a cross cal trap are ("toddler" / "newborn" sleeping through the night).
TOPIC_MARGIN = 2.0
#: Cut-offs at which the wrong share of hits is calibrated (for the error budget's starting cut).
CALIBRATION_CUTS = [round(0.5 + 0.25 * i, 2) for i in range(17)]
CALIBRATION_SETS = ("everyday", "gateway", "traps", "questions", "mqp")
CUTS = [round(-2.0 + 0.1 * i, 1) for i in range(61)]


def pair_logits(pairs: Sequence[_pairs.Pair], cache: Path = LOGIT_CACHE) -> np.ndarray:
    """The packaged pair model's logit for each pair, read as the cache reads it (query b, stored a), one pair
    per call as the cache calls it: the model quantises its activations with one scale over the whole batch, so
    a pair scored beside others (longer ones, padding) gets another logit, by up to a few tenths."""
    from asgi_llmguard.cache.pair_model import PairModel

    model_file = _pairs.ROOT / "asgi_llmguard" / "data" / "pair_model.onnx"
    stamp = f"{model_file.stat().st_mtime_ns} one pair per call"
    store: dict[tuple[str, str], float] = {}
    if cache.is_file():
        saved = pickle.loads(cache.read_bytes())
        store = saved["logits"] if saved.get("stamp") == stamp else {}
    missing = sorted({(p.b, p.a) for p in pairs} - set(store))
    if missing:
        print(f"scoring {len(missing)} pairs ...", file=sys.stderr)
        model = PairModel(threads=2)
        for q, c in missing:
            store[(q, c)] = model.logits(q, [c])[0]
        cache.write_bytes(pickle.dumps({"stamp": stamp, "logits": store}))
    return np.array([store[(p.b, p.a)] for p in pairs])


def design(pairs: Sequence[_pairs.Pair], cos: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The combiner's inputs for each pair, in INPUTS order."""
    rows = []
    for p, c, z in zip(pairs, cos, logits, strict=True):
        values = dict(zip(verify.FEATURE_NAMES, verify.pair_features(p.b, p.a, float(c)), strict=True))
        values[verify.PAIR_MODEL] = float(z)
        rows.append([values[name] for name in INPUTS])
    return np.array(rows)


def fit_logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression by Newton's method on standardised inputs."""
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
class Measured:
    rewordings: float
    traps_served: float
    rule_made_served: float
    mqp_wrong: float
    questions_wrong: float


def measure(accept: np.ndarray, pairs: Sequence[_pairs.Pair]) -> Measured:
    sets = np.array([p.set for p in pairs])
    same = np.array([p.same for p in pairs])

    def hit_rate(name: str) -> float:
        m = (sets == name) & (same == 1)
        return float(accept[m].mean()) if m.any() else 0.0

    def wrong_share(name: str) -> float:
        m = (sets == name) & (same >= 0) & accept
        return float((same[m] == 0).mean()) if m.any() else 0.0

    traps = np.isin(sets, TRAP_SETS) & (same == 0)
    rule_made = np.isin(sets, RULE_MADE_TRAP_SETS) & (same == 0)
    return Measured(
        rewordings=float(np.mean([hit_rate(s) for s in REWORDING_SETS])),
        traps_served=float(accept[traps].mean()),
        rule_made_served=float(accept[rule_made].mean()) if rule_made.any() else 0.0,
        mqp_wrong=wrong_share("mqp"),
        questions_wrong=wrong_share("questions"),
    )


@dataclass(frozen=True)
class Exceptions:
    """A point's reach under its floor and its restatement credit over it, with the pairs each applies to."""

    reach: dict[str, float] | None
    short: np.ndarray  # pairs the reach judges under the floor (verify.Reach.fits: short, asking alike)
    penalty: np.ndarray  # what each pair would pay under the floor (verify.Reach.penalty_at its cosine)
    restatement: dict[str, float] | None
    restated: np.ndarray  # a long prompt restated that earns the credit (verify.earns_credit)
    rewording: dict[str, float] | None = None
    reworded: np.ndarray | None = None  # a reworded pair off the medical topic (verify.earns_rewording_credit)

    def to_point(self) -> dict[str, dict[str, float]]:
        return ({"reach": self.reach} if self.reach is not None else {}) | (
            {"restatement": self.restatement} if self.restatement is not None else {}) | (
            {"rewording": self.rewording} if self.rewording is not None else {})


def exceptions(pairs: Sequence[_pairs.Pair], cos: np.ndarray, reach: dict[str, float] | None,
               restatement: dict[str, float] | None, rewording: dict[str, float] | None = None,
               general: np.ndarray | None = None) -> Exceptions:
    """``general``: each pair's query is off the medical topic (the topic probe's reading), for ``rewording``."""
    # Read as the verifier reads a weight file's point (the floor and cut do not matter here).
    point = operating_point({"threshold": 1.0, "cut": 0.0, "reach": reach, "restatement": restatement,
                             "rewording": rewording}, "train_verifier", "trial")
    short = np.zeros(len(pairs), dtype=bool)
    penalty = np.zeros(len(pairs))
    if point.reach is not None:
        short = np.array([point.reach.fits(p.b, p.a) for p in pairs])
        penalty = np.array([point.reach.penalty_at(float(c)) for c in cos])
    restated = np.zeros(len(pairs), dtype=bool)
    if point.restatement is not None:
        restated = np.array([verify.earns_credit(point.restatement, p.b, p.a) for p in pairs])
    reworded = np.zeros(len(pairs), dtype=bool)
    if point.rewording is not None and general is not None:
        reworded = np.array([bool(g) and verify.earns_rewording_credit(
            point.rewording, p.b, p.a, verify.pair_features(p.b, p.a, float(c))[_DIRECTION])
            for p, c, g in zip(pairs, cos, general, strict=True)])
    return Exceptions(reach, short, penalty, restatement, restated, rewording, reworded)


_DIRECTION = verify.FEATURE_NAMES.index("direction")


def accepted(z: np.ndarray, cos: np.ndarray, hard: np.ndarray, threshold: float, cut: float,
             ex: Exceptions, point_cut: float | None = None) -> np.ndarray:
    """Which pairs a point serves at ``cut``: over its floor, a restated long prompt with its credit, which
    lifts it to the point's own cut (``point_cut``, default ``cut``) and no further (verify.Verifier.check);
    under the floor, within its reach, at the cut plus the reach's penalty; then, over the floor or within the
    reach, a reworded pair off the medical topic with its credit, lifted the same way."""
    top = cut if point_cut is None else point_cut
    credit = ex.restated * (ex.restatement["credit"] if ex.restatement is not None else 0.0)
    lifted = np.where(credit > 0, np.maximum(z, np.minimum(z + credit, top)), z)
    judged = cos >= threshold
    if ex.reach is not None:
        reach = (cos >= ex.reach["floor"]) & (cos < threshold) & ex.short
        lifted = np.where(reach, z - ex.penalty, lifted)
        judged |= reach
    if ex.rewording is not None and ex.reworded is not None:
        lifted = np.where(ex.reworded, np.maximum(lifted, np.minimum(lifted + ex.rewording["credit"], top)), lifted)
    return judged & (lifted >= cut) & ~hard


def choose(z: np.ndarray, cos: np.ndarray, hard: np.ndarray, pairs: Sequence[_pairs.Pair], budget: Budget,
           ex: Exceptions) -> tuple[float, float, Measured]:
    best: tuple[float, float, Measured] | None = None
    for t in THRESHOLDS:
        if ex.reach is not None and t < ex.reach["floor"]:
            continue
        for cut in CUTS:
            m = measure(accepted(z, cos, hard, t, cut, ex), pairs)
            if (m.traps_served <= budget.traps_served and m.rule_made_served <= budget.rule_made_served
                    and m.mqp_wrong <= budget.mqp_wrong
                    and m.questions_wrong <= budget.questions_wrong
                    and (best is None or m.rewordings > best[2].rewordings)):
                best = (t, cut, m)
    if best is None:
        raise SystemExit(f"no operating point meets {budget}")
    return best


class _NoPairModel:
    """The pair model's place when its logits are already known (cached above)."""

    def logits(self, query: str, candidates: Sequence[str]) -> list[float]:
        raise AssertionError("logits are passed in")


def calibration(z: np.ndarray, cos: np.ndarray, hard: np.ndarray, pairs: Sequence[_pairs.Pair], threshold: float,
                point_cut: float, ex: Exceptions) -> dict[str, list[float] | list[int]]:
    """Hits and wrong hits at each calibration cut, pooled over our chat, question and medical sets (cal part),
    as the default point serves them: what :meth:`Verifier.start_cut` reads a wrong-rate target against."""
    sets = np.array([p.set for p in pairs])
    same = np.array([p.same for p in pairs])
    pool = np.isin(sets, CALIBRATION_SETS) & (same >= 0)
    served = [pool & accepted(z, cos, hard, threshold, c, ex, point_cut) for c in CALIBRATION_CUTS]
    hits = [int(s.sum()) for s in served]
    wrong = [int((s & (same == 0)).sum()) for s in served]
    return {"cuts": CALIBRATION_CUTS, "hits": hits, "wrong": wrong}


def fit_combiner(pairs: Sequence[_pairs.Pair], x: np.ndarray, cos: np.ndarray, hard: np.ndarray
                 ) -> dict[str, object]:
    """The logistic combiner fitted on the cal part, each set weighing the same."""
    same = np.array([p.same for p in pairs])
    sets = np.array([p.set for p in pairs])
    fit = (cos >= FIT_FLOOR) & (same >= 0) & ~hard
    weight = np.zeros(len(pairs))
    for name in set(sets[fit]):
        m = fit & (sets == name)
        weight[m] = fit.sum() / (len(set(sets[fit])) * m.sum())
    mean = x[fit].mean(axis=0)
    scale = x[fit].std(axis=0)
    scale[scale < 1e-6] = 1.0
    w, bias = fit_logistic((x[fit] - mean) / scale, same[fit].astype(float), weight[fit])
    print("combiner weights:", {n: round(float(v), 3) for n, v in zip(INPUTS, w, strict=True)}, "bias", round(bias, 3))
    return {
        "inputs": INPUTS,
        "weights": [round(float(v), 6) for v in w],
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "bias": round(bias, 6),
    }


def fit_topic() -> dict[str, object]:
    """The topic probe: MQP's prompts (train and cal) against those of TOPIC_OTHER_SETS, each side weighing
    the same; a logistic model on the embedding (asgi_llmguard/cache/topic.py)."""
    pairs = _pairs.load(("mqp", *TOPIC_OTHER_SETS), parts=["train", "cal"])
    medical = sorted({t for p in pairs if p.set == "mqp" for t in (p.a, p.b)})
    other = sorted({t for p in pairs if p.set != "mqp" for t in (p.a, p.b)} - set(medical))
    vectors = _pairs.embed(medical + other)
    x = np.stack([vectors[t] for t in medical + other])
    y = np.r_[np.ones(len(medical)), np.zeros(len(other))]
    w = np.where(y == 1, len(y) / (2 * len(medical)), len(y) / (2 * len(other)))
    weights, bias = fit_logistic(x, y, w)
    print(f"topic probe: {len(medical)} medical prompts against {len(other)} others")
    return {"model": TOPIC_MODEL, "weights": [round(float(v), 6) for v in weights], "bias": round(bias, 6),
            "margin": TOPIC_MARGIN}


def general_topic(pairs: Sequence[_pairs.Pair], topic: dict[str, object]) -> np.ndarray:
    """Each pair's query off the medical topic, as verify.Verifier.general_topic reads it."""
    from asgi_llmguard.cache.topic import topic_probe

    probe = topic_probe(topic, "train_verifier")
    assert probe is not None
    vectors = _pairs.embed([p.b for p in pairs])
    return np.array([not probe.medical(vectors[p.b], probe.model) for p in pairs])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--keep-combiner", action="store_true",
                    help="keep the weight file's combiner; choose the points and the calibration again")
    ap.add_argument("--keep-points", action="store_true",
                    help="keep the weight file's combiner and points; write the calibration again")
    args = ap.parse_args()
    pairs = _pairs.load(parts=["cal"]) + [p for p in generated_pairs.generated() if p.part == "cal"]
    cos = _pairs.cosines(pairs)
    logits = pair_logits(pairs)
    hard = np.array([verify.hard_rule_refusal(p.b, p.a) is not None for p in pairs])
    # What is kept comes from the packaged file, wherever --out writes (a trial file need not exist yet).
    shipped = json.loads(OUT.read_text(encoding="utf-8"))
    if args.keep_combiner or args.keep_points:
        combiner = shipped["combiner"]
    else:
        combiner = fit_combiner(pairs, design(pairs, cos, logits), cos, hard)
    data: dict[str, object] = {
        "version": 2,
        "about": "asgi_llmguard verifier: a logistic combiner over the pair model's logit, the cosine and word-level "
                 "pair features, three strictness points, a topic probe and a calibration; made by "
                 "bench/research/train_verifier.py",
        "combiner": combiner,
        "strictness": {name: {"threshold": 0.8, "cut": 0.0} for name in BUDGETS},  # chosen below
    }
    with tempfile.TemporaryDirectory() as tmp:  # the combiner as the verifier reads it; args.out is written once
        draft = Path(tmp) / "verifier.json"
        draft.write_text(json.dumps(data), encoding="utf-8")
        verifier = verify.Verifier(draft, pair_model=_NoPairModel())
    # As the verifier decides: pairs a same-question shortcut serves pass at any cut.
    z = np.array([np.inf if verify.same_question_in_other_words(p.b, p.a)
                  else verifier.combined(p.b, p.a, float(c), float(lg))[0]
                  for p, c, lg in zip(pairs, cos, logits, strict=True)])
    topic = shipped["topic"] | {"margin": TOPIC_MARGIN} if args.keep_points else fit_topic()
    data["topic"] = topic
    general = general_topic(pairs, topic)
    points = shipped["strictness"] if args.keep_points else {}
    for name, budget in BUDGETS.items():
        if args.keep_points:
            ex = exceptions(pairs, cos, points[name].get("reach"), points[name].get("restatement"),
                            points[name].get("rewording"), general)
            t, cut = points[name]["threshold"], points[name]["cut"]
            m = measure(accepted(z, cos, hard, t, cut, ex), pairs)
        else:
            ex = exceptions(pairs, cos, REACH[name], RESTATEMENT[name], REWORDING[name], general)
            t, cut, m = choose(z, cos, hard, pairs, budget, ex)
            points[name] = {"threshold": t, "cut": cut} | ex.to_point()
        print(f"{name:9s} threshold {t:.2f} cut {cut:+.1f}: rewordings {m.rewordings:.1%}, traps served "
              f"{m.traps_served:.2%}, rule-made traps {m.rule_made_served:.2%}, MQP wrong {m.mqp_wrong:.2%}, "
              f"questions wrong {m.questions_wrong:.2%} (cal)")
    data["strictness"] = points
    default = points[verify.DEFAULT_STRICTNESS]
    ex = exceptions(pairs, cos, default.get("reach"), default.get("restatement"), default.get("rewording"), general)
    data["calibration"] = calibration(z, cos, hard, pairs, default["threshold"], default["cut"], ex)
    args.out.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"calibration {data['calibration']}\nwrote {args.out}")


if __name__ == "__main__":
    main()
