"""Nothing a client writes moves its request into another identity: real uvicorn, real HTTP clients.

The demo runs under uvicorn, which believes ``X-Forwarded-For`` from the addresses in
``FORWARDED_ALLOW_IPS`` (loopback by default), so a client on 127.0.0.1 stands in for a trusted
reverse proxy that names the real client in that header.

- Without a bearer token, ``"user": "alice"`` from another client address is neither served
  Alice's answers nor charged to Alice's limits (the ``user`` field no longer names an identity).
- With ``FORWARDED_ALLOW_IPS`` empty (no trusted proxy), a client rotating ``X-Forwarded-For`` is
  still one client: its limit holds.
"""

from __future__ import annotations

import httpx
import pytest
from servers import pick_free_port, run_server

pytestmark = pytest.mark.slow

CHAT = "/v1/chat/completions"
DEMO = ["demo_app", "--no-access-log"]
ENV = {"LLMGUARD_RATE_LIMIT_RPM": "3", "LLMGUARD_RATE_LIMIT_WINDOW_SECONDS": "600", "LLMGUARD_CACHE_SEMANTIC": "false",
       "LLMGUARD_DEMO_TTFT_MS": "0", "LLMGUARD_DEMO_TOKEN_MS": "0"}


def ask(http: httpx.Client, base: str, prompt: str, *, user: str, forwarded_for: str) -> httpx.Response:
    body = {"model": "mock-small", "messages": [{"role": "user", "content": prompt}], "user": user}
    return http.post(base + CHAT, json=body, headers={"x-forwarded-for": forwarded_for})


def test_the_user_field_from_another_address_gets_neither_alices_answers_nor_her_limits() -> None:
    with run_server(DEMO, pick_free_port(), env=ENV) as base, httpx.Client(timeout=30) as http:
        alice = ask(http, base, "What is my account balance?", user="alice", forwarded_for="203.0.113.7")
        assert (alice.status_code, alice.headers["x-llmguard-cache"]) == (200, "miss")
        assert alice.headers["x-ratelimit-remaining-requests"] == "2"

        # Mallory, from another address behind the same trusted proxy, says she is alice.
        mallory = [ask(http, base, "What is my account balance?", user="alice", forwarded_for="198.51.100.9")
                   for _ in range(4)]
        assert mallory[0].headers["x-llmguard-cache"] == "miss"  # not Alice's stored answer
        assert [r.status_code for r in mallory] == [200, 200, 200, 429]  # her own three requests
        assert [r.headers["x-ratelimit-remaining-requests"] for r in mallory[:3]] == ["2", "1", "0"]

        # Alice's bucket is untouched, and her answer is still hers.
        again = ask(http, base, "What is my account balance?", user="alice", forwarded_for="203.0.113.7")
        assert (again.status_code, again.headers["x-llmguard-cache"]) == (200, "hit")
        assert again.headers["x-ratelimit-remaining-requests"] == "1"


def test_without_a_trusted_proxy_rotating_x_forwarded_for_buys_nothing() -> None:
    env = {**ENV, "FORWARDED_ALLOW_IPS": ""}  # uvicorn believes X-Forwarded-For from no one
    with run_server(DEMO, pick_free_port(), env=env) as base, httpx.Client(timeout=30) as http:
        statuses = [ask(http, base, f"question {n}", user=f"user-{n}", forwarded_for=f"192.0.2.{n}").status_code
                    for n in range(10)]
    assert statuses == [200] * 3 + [429] * 7
