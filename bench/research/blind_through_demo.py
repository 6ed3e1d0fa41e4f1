"""The blind pair files through a real demo server, as an outside check measures: rewordings and traps served.

Why: ``verdicts.py`` and ``tests/cache/test_verify.py`` judge each pair on its own, with the verifier. The issue's
held-out check goes through the demo's HTTP interface with default settings, where every prompt asked is stored and a
prompt may meet another pair's prompt first. One demo server per file (its cache shared by the file's pairs, as one
app's users share it): each first prompt asked, then its pair, and ``X-LLMGuard-Cache`` read. A hit counts for its
pair when it got the answer stored for the pair's first prompt or for the same text; a hit that got another
prompt's answer (the mock echoes the prompt it answered) is counted apart and printed, to be read by hand, as is
every trap served.

Usage:
    python bench/research/blind_through_demo.py [tests/data/fresh_everyday_pairs_18.csv ...]  # default: all blind
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from _servers import ROOT, demo_server, pick_free_port  # noqa: E402

_ECHO = re.compile(r'You said: "(.*)"\.', re.DOTALL)
_INSTANT_MOCK = {"LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}


def _chat(prompt: str) -> dict[str, object]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt}]}


def replay(path: Path) -> tuple[int, int, int, int, int]:
    """(rewordings served, rewordings, traps served, traps, hits for another prompt) for one file, through its own
    demo server."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    served = {1: 0, 0: 0}
    asked = {1: 0, 0: 0}
    other = 0
    with demo_server(pick_free_port(), guarded=True, env=_INSTANT_MOCK, name=path.stem) as server, \
            httpx.Client(base_url=server.base_url, timeout=60) as client:
        for row in rows:
            client.post("/v1/chat/completions", json=_chat(row["prompt_a"]))
            response = client.post("/v1/chat/completions", json=_chat(row["prompt_b"]))
            same = int(row["same_answer"])
            asked[same] += 1
            if response.headers.get("x-llmguard-cache") != "hit":
                continue
            echoed = _ECHO.search(response.json()["choices"][0]["message"]["content"])
            answered = echoed.group(1) if echoed else "?"
            if answered in (row["prompt_a"], row["prompt_b"]):
                served[same] += 1
                if not same:
                    print(f"  trap served: {row['prompt_b']!r} got the answer to {answered!r}")
            else:
                other += 1
                print(f"  hit for another prompt ({'rewording' if same else 'trap'} pair): {row['prompt_b']!r} got "
                      f"the answer to {answered!r} (its pair: {row['prompt_a']!r})")
    return served[1], asked[1], served[0], asked[0], other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", type=Path)
    args = ap.parse_args()
    files = args.files or sorted((ROOT / "tests" / "data").glob("fresh_*.csv"))
    print(f"{'file':34s} {'rewordings served':>22s} {'traps served':>14s} {'hits for another prompt':>24s}")
    for path in files:
        hit, same, trap, traps, other = replay(path)
        print(f"{path.stem:34s} {hit:>7d} of {same:<4d} {100 * hit / max(same, 1):5.1f}% {trap:>6d} of {traps:<5d}"
              f" {other:>16d}", flush=True)


if __name__ == "__main__":
    main()
