"""Every pair we have, through the default verifier: served or not, per set, and what changed since a saved run.

Why: a rule is kept only when it refuses traps and no rewording anywhere (docs/cache-quality.md). That is
checked over more than the held-out parts bench/cache_quality.py reads: every labelled set in all its parts, the
generated pairs, the blind files (``tests/data/fresh_*.csv``, ``question_shapes.csv``), the written reshapes
(``bench/research/data/reshapes/``) and the **cross traps**: within a group of our everyday, gateway and trap
files, each rewording stored and each of the group's traps asked, the way a trap meets a stored prompt that was
itself a rewording.

Usage:
    python bench/research/verdicts.py --save before.json      # on the code before a change
    python bench/research/verdicts.py --against before.json   # after it: the table and every verdict that moved

Pair-model logits and embeddings are cached between runs (bench/research/train_verifier.py, bench/_pairs.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import _pairs  # noqa: E402
import generated_pairs  # noqa: E402
import train_verifier  # noqa: E402

from asgi_llmguard.cache.verify import Verifier  # noqa: E402


def blind_pairs() -> Iterator[_pairs.Pair]:
    """The files no rule or weight was fitted on when they were written (their stem names the set)."""
    for path in [*sorted(_pairs.DATA.glob("fresh_*.csv")), _pairs.DATA / "question_shapes.csv"]:
        for r in _pairs._read(path):
            same = int(r["same_answer"])
            kind = r.get("category", "")
            yield _pairs.Pair(r["prompt_a"], r["prompt_b"], same, float(same), path.stem, kind, "blind")
    for path in sorted((_pairs.CONTRASTS / "reshapes").glob("*.csv")):
        for r in _pairs._read(path):
            same = int(r["same_answer"])
            yield _pairs.Pair(r["base"], r["variant"], same, float(same), f"reshapes_{path.stem}", r["kind"], "blind")


def cross_traps() -> Iterator[_pairs.Pair]:
    """Each rewording of a group stored, each trap of the group asked; in the group's part (bench/_pairs.py)."""
    for name in _pairs.OUR_GROUPED:
        for group, (rewordings, traps) in _pairs.groups(name).items():
            for stored in rewordings:
                for asked in traps:
                    yield _pairs.Pair(stored, asked, 0, 0.0, "cross", name, _pairs.group_part(group))


def verdicts() -> tuple[list[_pairs.Pair], list[bool]]:
    pairs = [*_pairs.load(), *generated_pairs.generated(), *blind_pairs(), *cross_traps()]
    cos = _pairs.cosines(pairs)
    logits = train_verifier.pair_logits(pairs)
    verifier = Verifier(pair_model=train_verifier._NoPairModel())
    vectors = _pairs.embed([p.b for p in pairs])  # the query's topic, as the cache reads it from its embedding
    served = [verifier.check(p.b, p.a, float(c), pair_logit=float(lg),
                             general=verifier.general_topic(vectors[p.b])).accepted
              for p, c, lg in zip(pairs, cos, logits, strict=True)]
    return pairs, served


def _key(p: _pairs.Pair) -> str:
    return "\t".join((p.set, p.part, p.a, p.b))


def table(pairs: list[_pairs.Pair], served: list[bool]) -> None:
    """Rewordings served and traps served, per set (the cross traps per part)."""
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        groups.setdefault(f"{p.set} ({p.part})" if p.set == "cross" else p.set, []).append(i)
    print(f"{'set':32s} {'rewordings served':>22s} {'traps served':>18s}")
    for name, idx in groups.items():
        same = [i for i in idx if pairs[i].same == 1]
        traps = [i for i in idx if pairs[i].same == 0]
        rew = f"{np.mean([served[i] for i in same]):.1%} of {len(same)}" if same else "-"
        print(f"{name:32s} {rew:>22s} {sum(served[i] for i in traps):>8d} of {len(traps):<8d}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", type=Path, help="write every pair's verdict here")
    ap.add_argument("--against", type=Path, help="a file --save wrote: print every verdict that moved since")
    args = ap.parse_args()
    pairs, served = verdicts()
    table(pairs, served)
    if args.save is not None:
        args.save.write_text(json.dumps({_key(p): s for p, s in zip(pairs, served, strict=True)}), encoding="utf-8")
        print(f"wrote {args.save}")
    if args.against is not None:
        before = json.loads(args.against.read_text(encoding="utf-8"))
        moved = [(p, s) for p, s in zip(pairs, served, strict=True) if _key(p) in before and before[_key(p)] != s]
        print(f"\n{len(moved)} verdicts moved ({sum(_key(p) not in before for p in pairs)} pairs new since):")
        for p, s in moved:
            label = "rewording" if p.same == 1 else "trap" if p.same == 0 else "unlabelled"
            print(f"  {'now served' if s else 'now refused':11s} {label:10s} {p.set} ({p.part}): {p.a!r} / {p.b!r}")


if __name__ == "__main__":
    main()
