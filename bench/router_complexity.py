"""How well the router's complexity estimate tells simple requests from complex ones, and what it costs.

    .venv/bin/python bench/router_complexity.py [--rounds 200] [--verbose]

Prompts: tests/data/router_prompts.jsonl, each labelled ``simple`` or ``complex``
and put in the ``dev`` split (the estimator was tuned on it) or the ``test`` split
(written before the estimator, measured once it was frozen). Each line becomes a
chat request: ``history_turns`` adds that many neutral earlier user/assistant
pairs before the prompt, ``max_tokens`` is sent as is, ``tools`` adds that many
function definitions and ``response_format`` sends ``{"type": ...}``.

The bench prints, per split, the accuracy of the two-tier choice at the default
threshold (``choose_tier(score, 2)``: 0.5) and its confusion matrix; the mean
time of one ``estimate_complexity`` call over all prompts; and the threshold
that maximises accuracy on dev (ties broken towards 0.5), with the accuracy it
would give on both splits. ``--verbose`` lists every misrouted prompt with its
signals.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from asgi_llmguard.core.openai_protocol import ParsedRequest, parse_request  # noqa: E402
from asgi_llmguard.routing.complexity import choose_tier, estimate_complexity  # noqa: E402

PROMPTS = ROOT / "tests" / "data" / "router_prompts.jsonl"
LABELS = ("simple", "complex")


def load(path: Path = PROMPTS) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def build_request(item: dict[str, Any]) -> ParsedRequest:
    """The chat request a labelled prompt stands for (see the module docstring)."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a helpful assistant."}]
    for turn in range(item.get("history_turns", 0)):
        messages.append({"role": "user", "content": f"(earlier user turn {turn + 1})"})
        messages.append({"role": "assistant", "content": f"(earlier assistant turn {turn + 1})"})
    messages.append({"role": "user", "content": item["prompt"]})
    body: dict[str, Any] = {"model": "auto", "messages": messages}
    if "max_tokens" in item:
        body["max_tokens"] = item["max_tokens"]
    if item.get("tools"):
        body["tools"] = [{"type": "function", "function": {"name": f"tool_{i}", "description": f"Tool {i}.",
                                                           "parameters": {"type": "object", "properties": {}}}}
                         for i in range(item["tools"])]
    if "response_format" in item:
        fmt: dict[str, Any] = {"type": item["response_format"]}
        if item["response_format"] == "json_schema":
            fmt["json_schema"] = {"name": "result", "schema": {"type": "object"}}
        body["response_format"] = fmt
    return parse_request(json.dumps(body).encode(), "chat")


def accuracy(scored: list[tuple[float, str]], threshold: float) -> float:
    right = sum((score >= threshold) == (label == "complex") for score, label in scored)
    return right / len(scored) if scored else 0.0


def confusion(scored: list[tuple[float, str]], threshold: float | None = None) -> dict[tuple[str, str], int]:
    """(label, routed) → count; routed by ``choose_tier`` (default thresholds) unless ``threshold`` is given."""
    counts = {(label, routed): 0 for label in LABELS for routed in LABELS}
    for score, label in scored:
        tier = choose_tier(score, 2) if threshold is None else choose_tier(score, 2, [threshold])
        counts[label, LABELS[tier]] += 1
    return counts


def best_threshold(scored: list[tuple[float, str]]) -> tuple[float, float]:
    """The threshold in 0.01 steps with the highest accuracy; among equals, the one nearest 0.5."""
    candidates = [round(0.01 * i, 2) for i in range(1, 100)]
    best = max(candidates, key=lambda t: (accuracy(scored, t), -abs(t - 0.5)))
    return best, accuracy(scored, best)


def mean_estimate_us(requests: list[ParsedRequest], rounds: int) -> float:
    for request in requests:  # warm-up (compiled patterns, caches)
        estimate_complexity(request)
    clock = time.perf_counter
    start = clock()
    for _ in range(rounds):
        for request in requests:
            estimate_complexity(request)
    return (clock() - start) / (rounds * len(requests)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed passes over all prompts")
    parser.add_argument("--verbose", action="store_true", help="list misrouted prompts with their signals")
    args = parser.parse_args()

    items = load()
    requests = [build_request(item) for item in items]
    estimates = [estimate_complexity(request) for request in requests]
    by_split: dict[str, list[tuple[float, str]]] = {"dev": [], "test": []}
    for item, estimate in zip(items, estimates, strict=True):
        by_split[item["split"]].append((estimate.score, item["label"]))

    print(f"{len(items)} prompts from {PROMPTS.relative_to(ROOT)}; two tiers, default threshold 0.5")
    for split, scored in by_split.items():
        counts = confusion(scored)
        right = counts["simple", "simple"] + counts["complex", "complex"]
        print(f"\n{split}: accuracy {accuracy(scored, 0.5):.3f} ({right}/{len(scored)})")
        print(f"  {'label / routed to':<18} {'cheap':>6} {'strong':>7}")
        for label in LABELS:
            print(f"  {label:<18} {counts[label, 'simple']:>6} {counts[label, 'complex']:>7}")

    per_call = mean_estimate_us(requests, args.rounds)
    print(f"\nestimate_complexity: {per_call:.1f} us per prompt (mean over {args.rounds} x {len(requests)} calls)")

    threshold, dev_best = best_threshold(by_split["dev"])
    print(f"\nbest threshold on dev: {threshold:.2f} (dev accuracy {dev_best:.3f}, "
          f"test accuracy at it {accuracy(by_split['test'], threshold):.3f}); "
          f"default 0.50: dev {accuracy(by_split['dev'], 0.5):.3f}, test {accuracy(by_split['test'], 0.5):.3f}")
    plateau = [round(0.01 * i, 2) for i in range(1, 100) if accuracy(by_split["dev"], 0.01 * i) == dev_best]
    print(f"  thresholds reaching that dev accuracy: {plateau[0]:.2f} .. {plateau[-1]:.2f} "
          f"({len(plateau)} of 99 steps)")

    if args.verbose:
        print("\nmisrouted at 0.5:")
        for item, estimate in zip(items, estimates, strict=True):
            routed = LABELS[choose_tier(estimate.score, 2)]
            if routed != item["label"]:
                shown = {k: v for k, v in estimate.signals.items() if v}
                text = item["prompt"].replace("\n", " ")
                print(f"  [{item['split']}] {item['label']:<7} {estimate.score:.2f} {text[:70]!r} {shown}")


if __name__ == "__main__":
    main()
