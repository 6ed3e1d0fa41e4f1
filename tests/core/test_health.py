"""The shared view of Redis: a short probed pause when it is unreachable, none when it is slow, and
one log event per change of state, whatever the number of calls (a clock of our own drives time)."""

from __future__ import annotations

import structlog.testing

from asgi_llmguard.core.health import Health

REFUSED = ConnectionRefusedError("refused")
LATE = TimeoutError()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make() -> tuple[Health, Clock]:
    clock = Clock()
    return Health(pause=0.25, settle=1.0, slow_grace=1.0, clock=clock), clock


def test_an_unreachable_redis_pauses_calls_then_lets_one_probe_through_per_pause() -> None:
    health, clock = make()
    health.failed("cache", REFUSED, unreachable=True)
    assert health.unreachable and [health.allow() for _ in range(3)] == [False] * 3  # fail fast
    clock.now += 0.25
    assert [health.allow() for _ in range(3)] == [True, False, False]  # one probe, the others wait
    health.failed("ratelimit", REFUSED, unreachable=True)  # the probe failed: another pause
    assert not health.allow()
    clock.now += 0.25
    assert health.allow()
    health.succeeded()  # the probe answered: every call goes to Redis again
    assert all(health.allow() for _ in range(3)) and not health.unreachable


def test_a_probe_that_never_reports_does_not_block_the_next_one() -> None:
    health, clock = make()
    health.failed("cache", REFUSED, unreachable=True)
    clock.now += 0.25
    assert health.allow()  # this probe is cancelled with its request: no success, no failure
    clock.now += 0.25
    assert health.allow()


def test_a_slow_call_is_not_an_outage_but_a_second_of_nothing_but_slow_calls_pauses() -> None:
    health, clock = make()
    health.succeeded()
    for _ in range(5):
        health.failed("cache", LATE, unreachable=False)
        assert health.allow()  # no pause: the next call asks Redis again
        clock.now += 0.1
    health.succeeded()
    clock.now += 0.6
    health.failed("cache", LATE, unreachable=False)
    assert health.allow()  # a success 0.6 s ago: still merely slow
    clock.now += 1.0
    health.failed("cache", LATE, unreachable=False)  # nothing answered in time for a second
    assert not health.allow() and not health.unreachable  # paused, yet known not to be refused


def test_one_degraded_and_one_recovered_event_per_outage_with_counts() -> None:
    health, clock = make()
    with structlog.testing.capture_logs() as events:
        health.succeeded()
        for n in range(50):
            health.failed("cache" if n % 2 else "ratelimit", REFUSED, unreachable=True)
            health.allow()
            clock.now += 0.01
        health.allow()
        health.succeeded()  # back, but failures were 0.01 s ago: not settled yet
        clock.now += 0.5
        health.failed("cache", REFUSED, unreachable=True)  # a last stale connection
        clock.now += 1.0
        health.succeeded()
        health.succeeded()
    names = [e["event"] for e in events]
    assert names == ["llmguard.redis.degraded", "llmguard.redis.recovered"]
    degraded, recovered = events
    assert degraded["part"] == "ratelimit" and degraded["unreachable"] is True
    assert "refused" in degraded["error"] and degraded["log_level"] == "warning"
    assert recovered["failures"] == {"cache": 26, "ratelimit": 25}
    assert recovered["fail_fast"] > 0 and recovered["seconds"] > 1.5
    assert not health.degraded
