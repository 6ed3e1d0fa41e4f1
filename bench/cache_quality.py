"""How many rewordings does the semantic cache serve, and how many traps? Raw cosine against the verifier.

For each held-out set (the ``test`` part of bench/_pairs.py: nothing here trained the pair model,
the combiner or the strictness points) it prints, as the cache would see each pair (the first
prompt stored, the second asked):

* rewordings served: same-answer pairs served from the cache (the hit rate);
* traps served: different-answer pairs served (a wrong answer each);
* wrong share: wrong answers as a share of all hits;

for raw cosine at 0.86 (the usual single-threshold cache) and for the shipped verifier at each
strictness point. Then, per refusal reason of the default point, how many rewordings and how many
traps it refused (over all our sets), and the cost of one check against one embedding.

    python bench/cache_quality.py [--plot docs/cache-quality-curve.png] [--through-demo]

``--plot`` draws hit rate against wrong share for raw cosine (every floor from 0.70 to 0.99) and for
the three strictness points (needs matplotlib). ``--through-demo`` replays the everyday, gateway,
trap and question sets through a real demo server with its default settings, as an outside client
would: store the first prompt, ask the second, read ``X-LLMGuard-Cache`` and whether the answer was
made for the prompt asked (the demo's mock answer quotes its prompt).
Model from LLMGUARD_EMBEDDING_MODEL_DIR or .models/all-MiniLM-L6-v2.
"""

from __future__ import annotations

import argparse
import collections
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _pairs

from asgi_llmguard.cache.verify import STRICTNESS_LEVELS, Verdict, Verifier

TEST_SETS = ("everyday", "gateway", "traps", "questions", "mqp", "paws", "sts")
OUR_SETS = ("everyday", "gateway", "traps", "questions")
RAW = 0.86
HARD_RULES = ("numbers_differ", "symbols_differ", "question_type")


def row(label: str, served: np.ndarray, same: np.ndarray) -> str:
    pos, neg = same == 1, same == 0
    hits = int((served & (pos | neg)).sum())
    wrong = int((served & neg).sum())
    return (f"  {label:30s} rewordings {100 * (served & pos).sum() / max(pos.sum(), 1):5.1f}%   "
            f"traps {100 * wrong / max(neg.sum(), 1):5.2f}%   wrong/hits {100 * wrong / max(hits, 1):5.2f}% "
            f"({wrong}/{hits})")


def log_odds(verdicts: Sequence[Verdict]) -> np.ndarray:
    """Each verdict's combined log-odds (minus infinity where a hard rule refused before the combiner)."""
    score = np.clip(np.array([v.score for v in verdicts]), 1e-15, 1 - 1e-15)
    hard = np.array([v.score == 0.0 and v.reason in HARD_RULES for v in verdicts])
    return np.where(hard, -np.inf, np.log(score / (1 - score)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--plot", type=Path, help="write the hit rate / wrong share curve to this PNG")
    ap.add_argument("--through-demo", action="store_true", help="also replay our sets through a real demo server")
    args = ap.parse_args()

    verifiers = {name: Verifier(strictness=name) for name in STRICTNESS_LEVELS}
    pairs = _pairs.load(TEST_SETS, ["test"])
    pairs = [p for p in pairs if p.same >= 0]
    cos = _pairs.cosines(pairs)
    # The pair model runs once per pair, judged with no floor at all; each strictness point then sets the
    # floor, what its reach asks of short pairs under it, what a restated long pair earns over it (up to the
    # cut: at the point's own cut that is plain addition), and the cut-off.
    floorless = Verifier(strictness="balanced", threshold=1e-9)
    balanced = [floorless.check(p.b, p.a, float(c)) for p, c in zip(pairs, cos, strict=True)]
    z = log_odds(balanced)
    vectors = _pairs.embed([p.b for p in pairs])
    served = {}
    for name, v in verifiers.items():
        adjustment = [v.adjustment(p.b, p.a, float(c)) for p, c in zip(pairs, cos, strict=True)]
        # A reworded pair off the medical topic earns its credit wherever it is judged (up to the cut: plain
        # addition here too).
        credit = [v.rewording_credit(p.b, p.a, float(c), v.general_topic(vectors[p.b]))
                  for p, c in zip(pairs, cos, strict=True)]
        served[name] = np.array([adj is not None for adj in adjustment]) & (
            z + np.array([adj or 0.0 for adj in adjustment]) + np.array(credit) >= v.cut)
        # Out of every floor's reach the nearest stored prompt is still served as the same question in other
        # words (the verifier decides that without the pair model).
        served[name] |= np.array([adj is None and v.check(p.b, p.a, float(c)).accepted
                                  for p, c, adj in zip(pairs, cos, adjustment, strict=True)])
    sets = np.array([p.set for p in pairs])
    same = np.array([p.same for p in pairs])
    points = ", ".join(f"{n} (cosine ≥ {v.threshold:.2f}, cut {v.cut:+.1f}{_reach(v)})" for n, v in verifiers.items())
    print(f"strictness points: {points}")
    for name in TEST_SETS:
        m = sets == name
        print(f"\n{name} (test part): {int((same[m] == 1).sum())} same-answer pairs, {int((same[m] == 0).sum())} "
              f"different-answer")
        print(row(f"raw cosine >= {RAW}", cos[m] >= RAW, same[m]))
        for level in STRICTNESS_LEVELS:
            print(row(f"verifier, {level}", served[level][m], same[m]))

    print("\nRefusals at the default point (balanced), over our sets' test parts, pairs above its cosine floor:")
    floor = verifiers["balanced"].threshold
    ours = np.isin(sets, OUR_SETS) & (cos >= floor)
    counts: collections.Counter[tuple[str, int]] = collections.Counter()
    default = verifiers["balanced"]  # as served: with the point's restatement credit, which the floorless lacks
    for i in np.where(ours)[0]:
        verdict = default.check(pairs[i].b, pairs[i].a, float(cos[i]),
                                general=default.general_topic(vectors[pairs[i].b]))
        if not verdict.accepted:
            counts[(verdict.reason or "?", int(same[i]))] += 1
    n_pos, n_neg = int((same[ours] == 1).sum()), int((same[ours] == 0).sum())
    print(f"  {'reason':16s} {'rewordings refused':>20s} {'traps refused':>16s}   (of {n_pos} and {n_neg})")
    for reason in sorted({r for r, _ in counts}, key=lambda r: -counts[(r, 0)] - counts[(r, 1)]):
        print(f"  {reason:16s} {counts[(reason, 1)]:20d} {counts[(reason, 0)]:16d}")

    cost(verifiers["balanced"], pairs)
    if args.plot is not None:
        plot(args.plot, pairs, cos, served)
    if args.through_demo:
        through_demo([p for p in pairs if p.set in OUR_SETS])


def _reach(verifier: Verifier) -> str:
    reach, restatement = verifier.reach, verifier.restatement
    out = ""
    if reach is not None:
        near = "" if reach.near is None else f"from cosine {reach.near:.2f} at cut {verifier.cut:+.1f}, "
        out = (f"; prompts of ≤ {reach.max_words} words {near}from cosine {reach.floor:.2f} "
               f"at cut {verifier.cut + reach.penalty:+.1f}")
    return out + ("" if restatement is None else (
        f"; prompts of ≥ {restatement.min_words} words restated ({restatement.min_changed:.0%} of words changed, "
        f"numbers and negations kept) at cut {verifier.cut - restatement.credit:+.1f}"))


def cost(verifier: Verifier, pairs: Sequence[_pairs.Pair]) -> None:
    """One check (hard rules, pair model, features, combiner) against one embedding, both on one thread."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import fastembed

    model = fastembed.TextEmbedding("sentence-transformers/all-MiniLM-L6-v2", specific_model_path=str(_pairs.MODEL_DIR),
                                    threads=1)
    sample = [p for p in pairs if p.set in ("everyday", "gateway")][:200]
    check_s, embed_s = [], []
    for p in sample * 2:
        t = time.perf_counter()
        verifier.check(p.b, p.a, 0.9)
        check_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        list(model.embed([p.b]))
        embed_s.append(time.perf_counter() - t)
    check, embed = statistics.median(check_s), statistics.median(embed_s)
    print(f"\none check p50 {1000 * check:.2f} ms, one embedding p50 {1000 * embed:.2f} ms "
          f"(check ÷ embedding {check / embed:.2f}; everyday and gateway prompts, one thread each)")


def plot(path: Path, pairs: Sequence[_pairs.Pair], cos: np.ndarray, served: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("Our chat prompts (everyday, gateway, traps)", ("everyday", "gateway", "traps")),
              ("Our question pairs", ("questions",)), ("Medical question pairs (MQP)", ("mqp",))]
    sets = np.array([p.set for p in pairs])
    same = np.array([p.same for p in pairs])
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    for ax, (title, names) in zip(axes, panels, strict=True):
        m = np.isin(sets, names)
        pos, neg = m & (same == 1), m & (same == 0)

        def point(accept: np.ndarray, pos: np.ndarray = pos, neg: np.ndarray = neg) -> tuple[float, float]:
            hits = (accept & (pos | neg)).sum()
            return 100 * (accept & neg).sum() / max(hits, 1), 100 * (accept & pos).sum() / max(pos.sum(), 1)

        floors = np.round(np.arange(0.70, 0.995, 0.01), 2)
        curve = [point(cos >= t) for t in floors]
        ax.plot([c[0] for c in curve], [c[1] for c in curve], "-", color="grey", label="raw cosine, floor 0.70 to 0.99")
        for t in (0.80, 0.86, 0.90, 0.95):
            x, y = point(cos >= t)
            ax.annotate(f"{t:.2f}", (x, y), fontsize=8, color="grey", xytext=(3, 3), textcoords="offset points")
        for name, marker in zip(STRICTNESS_LEVELS, ("s", "o", "^"), strict=True):
            x, y = point(served[name])
            ax.plot([x], [y], marker, markersize=9, label=f"verifier, {name}")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("wrong answers, % of hits")
        ax.set_ylabel("same-answer pairs served, %")
        ax.grid(alpha=0.3)
        ax.set_xlim(left=0)
        ax.set_ylim(0, 100)
    axes[0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Semantic cache: hit rate against wrong answers (held-out test parts; bench/cache_quality.py)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


_ECHO = re.compile(r'You said: "(.*)"\.', re.DOTALL)


def _answer_labels() -> dict[frozenset[str], int]:
    """Whether one answer serves two prompts, for every two prompts our sets say it of: each labelled pair, and
    across a group of the everyday, gateway and trap files two rewordings of one base (the same answer) or a
    rewording and a trap (another answer). What the demo serves for another stored prompt is judged by it."""
    labels = {frozenset((p.a, p.b)): p.same for p in _pairs.load(OUR_SETS) if p.same >= 0}
    for name in _pairs.OUR_GROUPED:
        for rewordings, traps in _pairs.groups(name).values():
            for i, x in enumerate(rewordings):
                labels.update({frozenset((x, y)): 1 for y in rewordings[i + 1:] if y != x})
                labels.update({frozenset((x, y)): 0 for y in traps if y != x})
    return labels


def through_demo(pairs: Sequence[_pairs.Pair]) -> None:
    """Store the first prompt, ask the second, through a real demo server with its default settings.

    All pairs share one cache, as one app's users do, so a prompt may be served the answer stored for a prompt of
    another pair (the mock's answer says which: it echoes the prompt it answered). Such a hit is right when it is
    the same question, or a prompt our sets say has the same answer; wrong when they say it has another; and
    unjudged otherwise."""
    import httpx
    from _servers import demo_server, pick_free_port

    labels = _answer_labels()
    env = {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}
    outcome: collections.Counter[tuple[str, int, str]] = collections.Counter()
    read_by_hand: list[str] = []
    with demo_server(pick_free_port(), guarded=True, env=env) as server, \
            httpx.Client(base_url=server.base_url, timeout=60) as client:
        for p in pairs:
            client.post("/v1/chat/completions", json=_chat(p.a))
            response = client.post("/v1/chat/completions", json=_chat(p.b))
            header = response.headers.get("x-llmguard-cache", "?")
            if header == "hit":
                echoed = _ECHO.search(response.json()["choices"][0]["message"]["content"])
                answered = echoed.group(1) if echoed else None
                if answered != p.a:
                    label = 1 if answered == p.b else labels.get(frozenset((answered or "", p.b)))
                    header = {1: "right hit for another prompt", 0: "wrong hit for another prompt"}.get(
                        label if label is not None else -1, "unjudged hit for another prompt")
                    if label != 1:
                        read_by_hand.append(f"  {header}: asked {p.b!r}, served the answer to {answered!r}")
            outcome[(p.set, p.same, header)] += 1
    print("\nThrough a real demo server (default settings), test parts:")
    for name in OUR_SETS:
        pos = sum(v for (s, y, _), v in outcome.items() if s == name and y == 1)
        neg = sum(v for (s, y, _), v in outcome.items() if s == name and y == 0)
        right = outcome[(name, 1, "hit")] + outcome[(name, 1, "right hit for another prompt")]
        wrong_other = sum(v for (s, _, h), v in outcome.items() if s == name and h == "wrong hit for another prompt")
        unjudged = sum(v for (s, _, h), v in outcome.items() if s == name and h == "unjudged hit for another prompt")
        bypass = sum(v for (s, _, h), v in outcome.items() if s == name and h == "bypass")
        print(f"  {name:10s} rewordings served {100 * right / max(pos, 1):5.1f}% of {pos}   "
              f"traps served {100 * outcome[(name, 0, 'hit')] / max(neg, 1):5.2f}% of {neg}   "
              f"wrong hits for another stored prompt {wrong_other}   unjudged {unjudged}   bypassed {bypass}")
    if read_by_hand:
        print("Hits for another stored prompt that our sets do not call right (to read by hand):")
        print("\n".join(read_by_hand))


def _chat(prompt: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


if __name__ == "__main__":
    main()
