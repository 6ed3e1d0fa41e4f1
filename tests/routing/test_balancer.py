"""The balancer: Peak-EWMA cost with two random choices, the breaker, affinity with bounded loads.

Everything is deterministic: a fake clock the tests move by hand and a seeded rng.
"""

from __future__ import annotations

import heapq
import json
import math
import os
import random
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asgi_llmguard.routing.balancer import Balancer, BalancerConfig, BreakerState, Lease


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(backends: list[str], clock: Clock | None = None, seed: int = 7,
         on_state: Any = None, **config: Any) -> Balancer:
    return Balancer(backends, BalancerConfig(**config), clock=clock or Clock(), rng=random.Random(seed),
                    on_state=on_state)


def take(balancer: Balancer, backend: str) -> Lease:
    lease = balancer.acquire([backend])
    assert lease is not None and lease.backend == backend
    return lease


def observe(balancer: Balancer, backend: str, latency: float) -> None:
    take(balancer, backend).succeeded(latency)


def fail(balancer: Balancer, backend: str, times: int = 1) -> None:
    for _ in range(times):
        take(balancer, backend).failed()


def cost(balancer: Balancer, backend: str) -> float:
    value = balancer.snapshot()[backend]["cost"]
    assert isinstance(value, float)
    return value


# -- cost and the two random choices ---------------------------------------------------------------------------


def test_two_choices_send_the_great_majority_of_concurrent_traffic_to_the_fast_backends() -> None:
    clock = Clock()
    balancer = make(["fast-1", "fast-2", "slow"], clock)
    latency = {"fast-1": 0.1, "fast-2": 0.1, "slow": 1.0}
    ends: list[tuple[float, int, Lease]] = []
    chosen: Counter[str] = Counter()
    for i in range(5000):  # a request every 20 ms, each answered after its backend's latency
        clock.now = 1000.0 + i * 0.02
        while ends and ends[0][0] <= clock.now:
            _, _, done = heapq.heappop(ends)
            done.succeeded(latency[done.backend])
        lease = balancer.acquire()
        assert lease is not None
        chosen[lease.backend] += 1
        heapq.heappush(ends, (clock.now + latency[lease.backend], i, lease))
    assert chosen["slow"] / 5000 < 0.05
    assert chosen["fast-1"] / 5000 > 0.4 and chosen["fast-2"] / 5000 > 0.4


def test_one_slow_answer_raises_the_cost_at_once_and_it_decays_with_time() -> None:
    clock = Clock()
    balancer = make(["a"], clock, decay_seconds=10.0)
    for _ in range(3):
        observe(balancer, "a", 0.1)
    assert cost(balancer, "a") == pytest.approx(0.1)
    observe(balancer, "a", 1.0)
    assert cost(balancer, "a") == pytest.approx(1.0)  # the peak, not a weighted mean
    observe(balancer, "a", 0.1)  # a fast answer at the same instant does not undo it
    assert cost(balancer, "a") == pytest.approx(1.0)
    clock.advance(10.0)  # one time constant
    assert cost(balancer, "a") == pytest.approx(math.exp(-1))
    observe(balancer, "a", 0.1)
    assert cost(balancer, "a") == pytest.approx(math.exp(-1) + 0.1 * (1 - math.exp(-1)))


def test_requests_in_flight_raise_the_cost() -> None:
    balancer = make(["fast", "slow"])
    observe(balancer, "fast", 0.1)
    observe(balancer, "slow", 0.5)
    held = [balancer.acquire() for _ in range(4)]
    assert [lease.backend for lease in held if lease] == ["fast"] * 4  # 0.1 * 4 < 0.5
    assert balancer.snapshot()["fast"]["inflight"] == 4
    lease = balancer.acquire()  # 0.1 * (4 + 1) == 0.5 ties: fewer in flight wins
    assert lease is not None and lease.backend == "slow"
    lease = balancer.acquire()  # 0.1 * 5 < 0.5 * 2
    assert lease is not None and lease.backend == "fast"


def test_a_backend_never_measured_takes_one_request_at_a_time() -> None:
    balancer = make(["known", "new"])
    observe(balancer, "known", 0.5)
    first = balancer.acquire()
    assert first is not None and first.backend == "new"  # unmeasured costs nothing: try it
    for _ in range(5):
        lease = balancer.acquire()
        assert lease is not None and lease.backend == "known"  # but not a second one before it answered
    first.succeeded(0.2)
    lease = balancer.acquire()
    assert lease is not None and lease.backend == "new"


def test_an_initial_latency_guess_is_the_cost_of_an_unmeasured_backend() -> None:
    balancer = make(["known", "new"], initial_latency_s=2.0)
    observe(balancer, "known", 0.5)
    assert cost(balancer, "new") == pytest.approx(2.0)
    lease = balancer.acquire()
    assert lease is not None and lease.backend == "known"


def test_a_failure_puts_a_backend_behind_every_answering_one_before_the_breaker_opens() -> None:
    balancer = make(["a", "b", "c"])
    observe(balancer, "a", 2.0)
    observe(balancer, "b", 3.0)
    observe(balancer, "c", 2.5)
    fail(balancer, "a")  # a connection refused at once: no elapsed time, still not "fast"
    assert balancer.state("a") == "closed"
    assert cost(balancer, "a") == pytest.approx(6.0)  # twice the slowest answer in the pool
    for _ in range(50):
        lease = balancer.acquire()
        assert lease is not None and lease.backend != "a"
        lease.released()


def test_the_failure_penalty_has_a_floor_and_counts_the_time_the_request_took() -> None:
    clock = Clock()
    balancer = make(["a", "b"], clock)
    observe(balancer, "b", 0.1)
    fail(balancer, "a")
    assert cost(balancer, "a") == pytest.approx(1.0)  # 2 * 0.1 is below the 1 s floor
    lease = take(balancer, "b")
    clock.advance(30.0)
    lease.failed()  # a timeout after 30 s
    assert cost(balancer, "b") == pytest.approx(30.0)


def test_repeated_failures_do_not_escalate_the_penalty() -> None:
    balancer = make(["a", "b"], failure_threshold=1000)
    observe(balancer, "a", 2.0)
    observe(balancer, "b", 2.0)
    for _ in range(50):  # two flapping backends must not feed each other's penalties
        fail(balancer, "a")
        fail(balancer, "b")
        observe(balancer, "a", 2.0)
    assert cost(balancer, "a") == pytest.approx(4.0)
    assert cost(balancer, "b") == pytest.approx(4.0)


# -- the breaker -----------------------------------------------------------------------------------------------


def test_the_breaker_opens_half_opens_with_one_probe_and_closes_on_its_success() -> None:
    clock = Clock()
    balancer = make(["a", "b"], clock, failure_threshold=3, open_seconds=5.0)
    fail(balancer, "a", 2)
    assert balancer.state("a") == "closed"
    fail(balancer, "a")
    assert balancer.state("a") == "open"
    assert balancer.snapshot()["a"]["consecutive_failures"] == 3
    assert balancer.acquire(["a"]) is None
    assert all(lease and lease.backend == "b" for lease in (balancer.acquire() for _ in range(20)))
    clock.advance(4.999)
    assert balancer.acquire(["a"]) is None
    clock.advance(0.001)
    assert balancer.state("a") == "half_open"
    probe = balancer.acquire(["a"])
    assert probe is not None and probe.backend == "a" and probe.probe
    assert balancer.acquire(["a"]) is None  # exactly one probe at a time
    probe.succeeded(0.3)
    assert balancer.state("a") == "closed"
    assert balancer.snapshot()["a"]["consecutive_failures"] == 0
    first, second = balancer.acquire(["a"]), balancer.acquire(["a"])
    assert first is not None and second is not None and not first.probe and not second.probe


def test_a_failed_probe_doubles_the_cool_down_up_to_the_cap_and_success_resets_it() -> None:
    clock = Clock()
    balancer = make(["a"], clock, failure_threshold=1, open_seconds=5.0, max_open_seconds=15.0)
    fail(balancer, "a")
    for cool_down in (5.0, 10.0, 15.0, 15.0):
        clock.advance(cool_down - 0.01)
        assert balancer.state("a") == "open"
        clock.advance(0.01)
        assert balancer.state("a") == "half_open"
        fail(balancer, "a")  # the probe fails
        assert balancer.state("a") == "open"
    clock.advance(15.0)
    take(balancer, "a").succeeded(0.1)
    assert balancer.state("a") == "closed"
    fail(balancer, "a")
    clock.advance(4.99)
    assert balancer.state("a") == "open"
    clock.advance(0.01)
    assert balancer.state("a") == "half_open"


def test_a_released_probe_frees_the_probe_slot_and_leaves_the_breaker_half_open() -> None:
    clock = Clock()
    balancer = make(["a"], clock, failure_threshold=1)
    fail(balancer, "a")
    clock.advance(5.0)
    probe = take(balancer, "a")
    assert balancer.acquire() is None
    probe.released()
    assert balancer.state("a") == "half_open"
    again = balancer.acquire()
    assert again is not None and again.probe


def test_a_success_in_closed_resets_the_consecutive_failures() -> None:
    balancer = make(["a"], failure_threshold=3)
    fail(balancer, "a", 2)
    observe(balancer, "a", 0.1)
    fail(balancer, "a", 2)
    assert balancer.state("a") == "closed"
    assert balancer.snapshot()["a"]["consecutive_failures"] == 2
    fail(balancer, "a")
    assert balancer.state("a") == "open"


def test_a_due_probe_goes_before_cheaper_closed_backends() -> None:
    clock = Clock()
    balancer = make(["a", "b"], clock, failure_threshold=1)
    observe(balancer, "b", 0.01)
    fail(balancer, "a")
    clock.advance(5.0)
    probe = balancer.acquire(affinity_key="whatever")
    assert probe is not None and probe.backend == "a" and probe.probe
    lease = balancer.acquire()
    assert lease is not None and lease.backend == "b"


def test_only_the_probe_moves_a_half_open_breaker() -> None:
    clock = Clock()
    balancer = make(["a"], clock, failure_threshold=2)
    old = [take(balancer, "a") for _ in range(5)]
    old[0].failed()
    old[1].failed()
    assert balancer.state("a") == "open"
    old[2].succeeded(0.1)  # taken before the breaker opened
    assert balancer.state("a") == "open"
    clock.advance(5.0)
    probe = take(balancer, "a")
    old[3].succeeded(0.1)
    old[4].failed()
    assert balancer.state("a") == "half_open"
    assert balancer.acquire(["a"]) is None  # and the probe is still the one out
    probe.succeeded(0.1)
    assert balancer.state("a") == "closed"
    assert balancer.snapshot()["a"]["inflight"] == 0


def test_on_state_sees_every_transition_in_order() -> None:
    clock = Clock()
    seen: list[tuple[str, BreakerState]] = []
    balancer = make(["a", "b"], clock, on_state=lambda name, state: seen.append((name, state)),
                    failure_threshold=2, open_seconds=1.0)
    fail(balancer, "a", 2)
    fail(balancer, "b", 2)
    clock.advance(1.0)
    balancer.snapshot()  # the lazy open -> half_open, in configured order
    take(balancer, "a").failed()
    take(balancer, "b").succeeded(0.2)
    clock.advance(2.0)
    assert balancer.acquire(["a"]) is not None
    assert seen == [
        ("a", "open"), ("b", "open"),
        ("a", "half_open"), ("b", "half_open"),
        ("a", "open"), ("b", "closed"),
        ("a", "half_open"),
    ]


# -- candidates, exclude, nothing available --------------------------------------------------------------------


def test_candidates_and_exclude_are_respected() -> None:
    balancer = make(["a", "b", "c", "d"])
    for _ in range(100):
        lease = balancer.acquire(["a", "b", "c"], exclude=["b"])
        assert lease is not None and lease.backend in {"a", "c"}
        lease.released()
    for _ in range(20):
        lease = balancer.acquire(exclude={"a", "b", "c"})
        assert lease is not None and lease.backend == "d"
        lease.succeeded(0.1)
    for _ in range(20):
        lease = balancer.acquire(["a", "b"], affinity_key="k", exclude=("a",))
        assert lease is not None and lease.backend == "b"


def test_none_when_no_candidate_may_take_a_request() -> None:
    clock = Clock()
    balancer = make(["a", "b"], clock, failure_threshold=1)
    assert balancer.acquire(exclude=["a", "b"]) is None
    assert balancer.acquire([]) is None
    assert balancer.acquire(["a"], exclude=["a"]) is None
    fail(balancer, "a")
    fail(balancer, "b")
    assert balancer.acquire() is None
    assert balancer.acquire(affinity_key="k") is None
    clock.advance(5.0)
    probes = [balancer.acquire(), balancer.acquire()]
    assert sorted(lease.backend for lease in probes if lease) == ["a", "b"]
    assert balancer.acquire() is None  # both half-open with their probe out


# -- affinity --------------------------------------------------------------------------------------------------


def affinity_map(balancer: Balancer, keys: list[str], **kwargs: Any) -> dict[str, str]:
    mapping = {}
    for key in keys:
        lease = balancer.acquire(affinity_key=key, **kwargs)
        assert lease is not None
        mapping[key] = lease.backend
        lease.released()
    return mapping


KEYS = [f"system prompt {i}" for i in range(3000)]


AFFINITY_SCRIPT = """
import json, sys
from asgi_llmguard.routing.balancer import Balancer
balancer = Balancer(["http://up-1", "http://up-2", "http://up-3"])
mapping = {}
for i in range(300):
    lease = balancer.acquire(affinity_key=f"system prompt {i}")
    mapping[f"system prompt {i}"] = lease.backend
    lease.released()
json.dump(mapping, sys.stdout)
"""


def test_the_same_key_goes_to_the_same_backend_in_every_process() -> None:
    names = ["http://up-1", "http://up-2", "http://up-3"]
    first = affinity_map(make(names, seed=1), KEYS[:300])
    assert affinity_map(make(names, seed=1), KEYS[:300]) == first
    assert affinity_map(make(names, seed=99), KEYS[:300]) == first  # the rng plays no part
    assert len(set(first.values())) == 3
    for hash_seed in ("1", "2"):  # replicas must agree: Python's str hash() differs per process
        other = subprocess.run([sys.executable, "-c", AFFINITY_SCRIPT], capture_output=True, text=True, check=True,
                               env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=60)
        assert json.loads(other.stdout) == first


def test_keys_spread_evenly_across_backends() -> None:
    shares = Counter(affinity_map(make(["a", "b", "c"]), KEYS).values())
    assert set(shares) == {"a", "b", "c"}
    for count in shares.values():
        assert 0.25 <= count / len(KEYS) <= 0.42


def test_bounded_load_moves_a_key_off_an_overloaded_backend() -> None:
    balancer = make(["a", "b", "c"], load_factor=1.25)
    first = balancer.acquire(affinity_key="hot")
    assert first is not None
    # total 1 in flight: the bound is 1.25 * 2 / 3 < 1, so the key's backend is full
    second = balancer.acquire(affinity_key="hot")
    assert second is not None and second.backend != first.backend
    first.released()
    second.released()
    third = balancer.acquire(affinity_key="hot")
    assert third is not None and third.backend == first.backend


def test_bounded_load_keeps_every_backend_within_the_bound_under_one_hot_key() -> None:
    balancer = make(["a", "b", "c", "d"], load_factor=1.25)
    held = []
    for m in range(1, 201):
        lease = balancer.acquire(affinity_key="hot")
        assert lease is not None
        held.append(lease)
        loads = [int(row["inflight"]) for row in balancer.snapshot().values()]
        assert max(loads) <= math.ceil(1.25 * m / 4)
    assert Counter(lease.backend for lease in held).most_common(1)[0][1] <= math.ceil(1.25 * 200 / 4)


@pytest.mark.parametrize("how", ["exclude", "candidates", "breaker"])
def test_removing_a_backend_moves_only_its_own_keys(how: str) -> None:
    names = ["a", "b", "c", "d"]
    keys = KEYS[:2000]
    balancer = make(names, failure_threshold=1)
    before = affinity_map(balancer, keys)
    if how == "exclude":
        after = affinity_map(balancer, keys, exclude=["b"])
    elif how == "candidates":
        after = affinity_map(balancer, keys, candidates=["a", "c", "d"])
    else:
        fail(balancer, "b")
        after = affinity_map(balancer, keys)
    moved = {key for key in keys if after[key] != before[key]}
    assert moved == {key for key in keys if before[key] == "b"}
    assert moved and "b" not in after.values()
    assert len(set(after[key] for key in moved)) == 3  # its keys spread over the others


# -- leases, snapshot, validation ------------------------------------------------------------------------------


def test_a_lease_ends_once_and_further_calls_are_no_ops() -> None:
    balancer = make(["a"], failure_threshold=2)
    lease = take(balancer, "a")
    lease.failed()
    lease.failed()
    lease.succeeded(0.1)
    lease.released()
    row = balancer.snapshot()["a"]
    assert row["inflight"] == 0 and row["consecutive_failures"] == 1 and row["state"] == "closed"
    lease = take(balancer, "a")
    lease.succeeded(0.1)
    lease.failed()
    lease.released()
    assert balancer.snapshot()["a"] == {"state": "closed", "cost": pytest.approx(1.0), "inflight": 0,
                                        "consecutive_failures": 0}
    assert "ended" in repr(lease)


@pytest.mark.parametrize("latency", [-0.1, math.nan, math.inf])
def test_a_bad_latency_is_refused_and_the_lease_stays_open(latency: float) -> None:
    balancer = make(["a"])
    lease = take(balancer, "a")
    with pytest.raises(ValueError, match="latency_s"):
        lease.succeeded(latency)
    assert balancer.snapshot()["a"]["inflight"] == 1
    lease.succeeded(0.2)
    assert cost(balancer, "a") == pytest.approx(0.2)


def test_snapshot_and_backends() -> None:
    balancer = make(["b", "a"])
    assert balancer.backends == ("b", "a")
    assert list(balancer.snapshot()) == ["b", "a"]
    assert balancer.snapshot()["a"] == {"state": "closed", "cost": 0.0, "inflight": 0, "consecutive_failures": 0}


@pytest.mark.parametrize(("backends", "message"), [
    ([], "at least one backend"),
    (["a", "b", "a"], "repeated: a"),
    (["a", ""], "non-empty"),
])
def test_bad_backend_lists_are_refused(backends: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Balancer(backends)


def test_one_string_is_not_a_list_of_backends() -> None:
    with pytest.raises(TypeError, match="not one string"):
        Balancer("http://up-1")
    balancer = make(["a", "b"])
    with pytest.raises(TypeError, match="not one string"):
        balancer.acquire(exclude="a")


@pytest.mark.parametrize(("field", "value"), [
    ("decay_seconds", 0.0), ("decay_seconds", math.nan), ("decay_seconds", math.inf),
    ("initial_latency_s", -1.0), ("failure_threshold", 0), ("failure_threshold", 2.5),
    ("open_seconds", -1.0), ("max_open_seconds", 1.0), ("load_factor", 0.9), ("virtual_nodes", 0),
    ("virtual_nodes", True),
])
def test_bad_config_values_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        BalancerConfig(**{field: value})


def test_unknown_backends_are_refused() -> None:
    balancer = make(["a", "b"])
    with pytest.raises(ValueError, match="unknown backend 'z'"):
        balancer.acquire(["a", "z"])
    with pytest.raises(ValueError, match="unknown backend 'z'"):
        balancer.acquire(exclude=["z"])
    with pytest.raises(ValueError, match="unknown backend 'z'"):
        balancer.state("z")
    assert balancer.snapshot()["a"]["inflight"] == 0


# -- properties ------------------------------------------------------------------------------------------------

NAMES = ["a", "b", "c", "d"]
subsets = st.lists(st.sampled_from(NAMES), unique=True, max_size=4)
operations = st.lists(st.one_of(
    st.tuples(st.just("acquire"), st.none() | subsets, subsets, st.none() | st.sampled_from(["k1", "k2", "k3"])),
    st.tuples(st.just("end"), st.integers(0, 40), st.sampled_from(["succeeded", "failed", "released"]),
              st.floats(0.0, 5.0)),
    st.tuples(st.just("tick"), st.floats(0.0, 20.0)),
), max_size=120)
LEGAL = {("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations, st.integers(0, 2**32))
def test_invariants_hold_for_any_sequence_of_calls(ops: list[tuple[Any, ...]], seed: int) -> None:
    clock = Clock()
    states: dict[str, BreakerState] = dict.fromkeys(NAMES, "closed")

    def on_state(name: str, state: BreakerState) -> None:
        assert (states[name], state) in LEGAL
        states[name] = state

    config = BalancerConfig(failure_threshold=2, open_seconds=1.0, max_open_seconds=4.0)
    balancer = Balancer(NAMES, config, clock=clock, rng=random.Random(seed), on_state=on_state)
    out: list[Lease] = []
    for op in ops:
        if op[0] == "tick":
            clock.advance(op[1])
        elif op[0] == "end" and out:
            ending = out.pop(op[1] % len(out))
            if op[2] == "succeeded":
                ending.succeeded(op[3])
            else:
                getattr(ending, op[2])()
        elif op[0] == "acquire":
            _, candidates, exclude, key = op
            before = balancer.snapshot()
            allowed = [n for n in NAMES if (candidates is None or n in candidates) and n not in exclude]
            lease = balancer.acquire(candidates, affinity_key=key, exclude=exclude)
            probes_out = {held.backend for held in out if held.probe}
            if lease is None:
                for name in allowed:
                    assert before[name]["state"] == "open" or (
                        before[name]["state"] == "half_open" and name in probes_out)
                continue
            assert lease.backend in allowed
            assert lease.backend not in probes_out
            if lease.probe:
                assert before[lease.backend]["state"] == "half_open"
            else:
                assert before[lease.backend]["state"] == "closed"
                if key is not None:
                    ready = [n for n in allowed if before[n]["state"] == "closed"]
                    total = sum(int(before[n]["inflight"]) for n in ready)
                    assert int(before[lease.backend]["inflight"]) < 1.25 * (total + 1) / len(ready)
            out.append(lease)
        snapshot = balancer.snapshot()
        for name in NAMES:
            row = snapshot[name]
            assert row["inflight"] == sum(1 for held in out if held.backend == name) >= 0
            assert row["state"] == states[name]
            assert 0.0 <= float(row["cost"]) < math.inf
        for held in out:
            if held.probe:
                assert snapshot[held.backend]["state"] == "half_open"


def test_round_robin_takes_turns_whatever_the_latency_and_skips_open_breakers() -> None:
    balancer = make(["a", "b", "c"], policy="round_robin", failure_threshold=1)
    order = []
    for _ in range(6):
        lease = balancer.acquire()
        assert lease is not None
        order.append(lease.backend)
        lease.succeeded(5.0 if lease.backend == "c" else 0.001)  # c is slow: round robin does not care
    assert order == ["a", "b", "c", "a", "b", "c"]
    fail(balancer, "b")
    picked = []
    for _ in range(4):
        lease = balancer.acquire()
        assert lease is not None
        picked.append(lease.backend)
        lease.released()
    assert "b" not in picked and set(picked) == {"a", "c"}


def test_an_unknown_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="policy"):
        BalancerConfig(policy="random")  # type: ignore[arg-type]
