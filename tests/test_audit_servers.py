"""Shadow mode through a real uvicorn demo process, its mock answering by meaning (``--answers``).

Labelled everyday pairs become a stream: the first prompt of each group, then its labelled
rewording or near-duplicate. The answers file gives each paraphrase cluster one answer, so the
mock's truth is known: a would-hit is wrong exactly when the two prompts are in different clusters.
The official openai client asks; no response may be a cache hit, and /stats must report the
would-hits seen in the headers and a wrong rate that matches the truth within its bound.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import httpx
import openai
import pytest
from servers import ROOT, run_server

pytestmark = pytest.mark.model

PAIRS = ROOT / "tests" / "data" / "everyday_pairs.csv"


def stream_and_answers(path: Path, groups: int = 60) -> tuple[list[tuple[str, int]], dict[str, int]]:
    """(prompt, cluster) in order, and the answers file; one pair per group, alternating same/different."""
    seen: set[str] = set()
    firsts: list[tuple[str, int]] = []
    seconds: list[tuple[str, int]] = []
    cluster_of: dict[str, int] = {}
    with PAIRS.open(newline="") as handle:
        for row in csv.DictReader(handle):
            group = row["group"]
            want_same = len(seen) % 2 == 0
            if group in seen or (row["same_answer"] == "1") != want_same or len(seen) >= groups:
                continue
            if row["prompt_a"] in cluster_of or row["prompt_b"] in cluster_of:
                continue
            seen.add(group)
            a = len(cluster_of)
            cluster_of[row["prompt_a"]] = a
            cluster_of[row["prompt_b"]] = a if row["same_answer"] == "1" else len(cluster_of) + 1000
            firsts.append((row["prompt_a"], a))
            seconds.append((row["prompt_b"], cluster_of[row["prompt_b"]]))
    representative: dict[int, str] = {}
    for prompt, cluster in cluster_of.items():
        representative.setdefault(cluster, prompt)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["prompt", "answer"])
        for prompt, cluster in cluster_of.items():
            writer.writerow([prompt, f"Here is what you need to know about: {representative[cluster]}"])
    return firsts + seconds, cluster_of


def test_shadow_mode_never_serves_a_hit_and_its_wrong_rate_matches_the_mock(tmp_path: Path, free_port: int,
                                                                               model_dir: Path) -> None:
    stream, cluster_of = stream_and_answers(tmp_path / "answers.csv")
    env = {"LLMGUARD_CACHE_MODE": "shadow", "LLMGUARD_CACHE_VERIFY": "false", "LLMGUARD_CACHE_THRESHOLD": "0.8",
           # the cosine alone (no verifier) would serve some near-duplicates: wrong would-hits to count
           "LLMGUARD_EMBEDDING_MODEL_DIR": str(model_dir),
           # the mock is deterministic: one cluster, one answer to the letter; a strict judge is right here
           "LLMGUARD_CACHE_AUDIT_JUDGE_THRESHOLD": "0.99",
           "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}
    with run_server(["demo_app", "--answers", str(tmp_path / "answers.csv"), "--no-access-log"], free_port,
                    env) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-shadow", max_retries=0, timeout=30)
        caches, shadows = [], []
        for prompt, _ in stream:
            raw = client.chat.completions.with_raw_response.create(
                model="mock-small", messages=[{"role": "user", "content": prompt}])
            completion = raw.parse()
            assert completion.choices[0].message.content.startswith("Here is what you need to know about")
            caches.append(raw.headers["x-llmguard-cache"])
            shadows.append(raw.headers.get("x-llmguard-shadow", raw.headers["x-llmguard-cache"]))  # or bypass
        deadline = time.monotonic() + 20
        while True:  # comparisons finish in the background, after each response
            stats = httpx.get(url + "/stats").json()
            judged = stats["shadow"]["judged"] + stats["audit"]["unjudged"]
            if stats["shadow"]["would_hit"] >= shadows.count("hit") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        mock_calls = httpx.get(url + "/mock/stats").json()["calls"]
    assert "hit" not in caches and mock_calls == len(stream)  # nothing served from the cache
    would_hit = shadows.count("hit")
    assert would_hit >= 10, shadows
    shadow = stats["shadow"]
    assert shadow["would_hit"] == would_hit and judged >= would_hit
    # the truth: a would-hit of a second prompt is wrong when its own first prompt has another answer
    # (its nearest stored prompt is its own first one); a first prompt's would-hit is always wrong
    firsts = len(stream) // 2
    truth_wrong = sum(1 for i, (prompt, cluster) in enumerate(stream) if shadows[i] == "hit"
                      and (i < firsts or cluster != cluster_of[stream[i - firsts][0]]))
    truth = truth_wrong / would_hit
    print(f"shadow: {shadow}, truth wrong {truth_wrong}/{would_hit}")
    assert truth_wrong > 0 and shadow["wrong_rate"] is not None
    margin = shadow["wrong_rate_upper"] - shadow["wrong_rate"]
    assert abs(shadow["wrong_rate"] - truth) <= margin
    assert truth <= shadow["wrong_rate_upper"]
    assert stats["cache"]["hit"] == 0
