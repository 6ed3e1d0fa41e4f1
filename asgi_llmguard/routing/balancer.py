"""Which upstream takes the next request: Peak-EWMA cost, power of two choices,
a circuit breaker per backend and key affinity by consistent hashing with bounded loads.

Pure computation: no I/O, nothing awaits. :class:`LLMProxy <asgi_llmguard.routing.proxy.LLMProxy>`
asks :meth:`Balancer.acquire` for a :class:`Lease` and ends it with exactly one
of ``succeeded(latency)``, ``failed()`` or ``released()``.

Cost (Peak-EWMA, as in Finagle and Linkerd). Each backend keeps an estimate of
its latency. Until the first observation it is ``initial_latency_s``; the
first observation replaces it. Afterwards an observation ``x`` at ``elapsed``
seconds after the previous one makes it ``max(x, estimate * w + x * (1 - w))``
with ``w = exp(-elapsed / tau)``: a slower answer replaces the estimate at
once, faster ones pull it down smoothly. Read, the estimate decays towards zero
(``estimate * w``), so a backend left alone because it looked slow gets tried
again. The load cost is ``estimate * (inflight + 1)``; a backend whose estimate
is zero (never observed with the default guess of 0, or idle for ages) and
already has a request in flight is the most expensive choice, so an unknown
backend takes one request at a time until it has answered.

Failures. A failed request is observed as a latency of
``max(time it took, 2 * the highest success-latency estimate in the pool, 1 s)``.
The reference is a second estimate per backend fed by successful answers only
(the guess until the first), so penalties never feed penalties: they would
otherwise escalate without bound while flapping backends stay closed. The
factor 2 puts a backend that just failed behind every backend that answers,
even the slowest, at equal load; a connection refused in 2 ms never makes a
backend look fast; the 1 s floor (a typical LLM time to first token) covers a
start where nothing is measured yet.

Breaker. ``failure_threshold`` consecutive failures open a backend's breaker;
after the cool-down it is ``half_open`` (checked lazily, whenever the balancer
is asked) and lets one request through, the probe. The probe's success closes
it; its failure opens it again with twice the cool-down (at most
``max_open_seconds``); a released probe just frees the slot. Only the probe
moves a half-open breaker: leases taken before the breaker opened still update
the latency estimates when they end, but not the breaker. A half-open backend
whose probe slot is free is chosen before anything else, cost and affinity
included: otherwise a pool of healthy backends would starve it of the one
request it needs to recover, and the price is one request per cool-down, which
the proxy can retry elsewhere.

Choice. Without an affinity key: two distinct closed candidates drawn at random,
the cheaper one taken (ties: fewer in flight). With an affinity key: a ring of
``virtual_nodes`` blake2b points per backend; the first closed candidate
clockwise from the key's point whose in-flight count is below
``load_factor * (total_inflight + 1) / n_available`` takes it (Mirrokni,
Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads", 2016). The
same key stays on the same backend while loads allow; a backend leaving the
choice moves only its own keys.

Not thread-safe by design: use one Balancer from one thread (the event loop).
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = ["Balancer", "BalancerConfig", "BreakerState", "Lease"]

BreakerState = Literal["closed", "half_open", "open"]

_FAILURE_FLOOR_S = 1.0  # least latency a failure counts as; see the module docstring
_UNKNOWN_BUSY = math.inf  # cost of a backend with no estimate and a request already in flight


@dataclass(frozen=True, slots=True)
class BalancerConfig:
    """Tuning of a :class:`Balancer`; every value is checked when the config is made."""

    decay_seconds: float = 10.0
    """Peak-EWMA time constant tau: how fast an estimate forgets."""
    initial_latency_s: float = 0.0
    """Cost guess for a backend never observed; 0 means new backends get tried first."""
    failure_threshold: int = 5
    """Consecutive failures that open the breaker."""
    open_seconds: float = 5.0
    """First cool-down while open; doubles on each failed probe ..."""
    max_open_seconds: float = 60.0
    """... up to this."""
    load_factor: float = 1.25
    """Bounded-load factor c for affinity: no backend takes more than c times the average."""
    virtual_nodes: int = 100
    """Points per backend on the affinity hash ring."""
    policy: Literal["p2c", "round_robin"] = "p2c"
    """How a request without affinity picks among closed backends: Peak-EWMA power of two choices,
    or plain round robin (the common default elsewhere; kept as the benchmark's baseline)."""

    def __post_init__(self) -> None:
        def positive(name: str, value: float) -> None:
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"BalancerConfig.{name} must be a finite number above 0, not {value!r}")

        def whole(name: str, value: int) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BalancerConfig.{name} must be a whole number of at least 1, not {value!r}")

        positive("decay_seconds", self.decay_seconds)
        if not (math.isfinite(self.initial_latency_s) and self.initial_latency_s >= 0):
            raise ValueError(f"BalancerConfig.initial_latency_s must be a finite number of at least 0, "
                             f"not {self.initial_latency_s!r}")
        whole("failure_threshold", self.failure_threshold)
        positive("open_seconds", self.open_seconds)
        positive("max_open_seconds", self.max_open_seconds)
        if self.max_open_seconds < self.open_seconds:
            raise ValueError(
                f"BalancerConfig.max_open_seconds ({self.max_open_seconds!r}) must be at least "
                f"open_seconds ({self.open_seconds!r})"
            )
        if not (math.isfinite(self.load_factor) and self.load_factor >= 1):
            raise ValueError(f"BalancerConfig.load_factor must be a finite number of at least 1, "
                             f"not {self.load_factor!r}")
        whole("virtual_nodes", self.virtual_nodes)
        if self.policy not in ("p2c", "round_robin"):
            raise ValueError(f"BalancerConfig.policy must be 'p2c' or 'round_robin', not {self.policy!r}")


_DEFAULT_CONFIG = BalancerConfig()


def _hash64(text: str) -> int:
    """A stable 64-bit hash: Python's ``hash()`` is salted per process, a ring must not be."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big")


def _weight(elapsed: float, tau: float) -> float:
    return math.exp(-max(0.0, elapsed) / tau)  # a clock that steps back counts as no time


def _peak_ewma(previous: float, previous_at: float, sample: float, now: float, tau: float) -> float:
    """One Peak-EWMA step: a sample above the estimate replaces it, one below pulls it down with decay."""
    w = _weight(now - previous_at, tau)
    return max(sample, previous * w + sample * (1.0 - w))


class _Backend:
    """One backend's health; mutated only by its Balancer and its leases."""

    __slots__ = ("answered", "cooldown", "estimate", "estimate_at", "failures", "inflight", "latency", "latency_at",
                 "measured", "name", "probe_out", "reopen_at", "state")

    def __init__(self, name: str, initial: float, now: float, cooldown: float) -> None:
        self.name = name
        # Until the first observation each estimate is the configured guess, constant; the first one replaces it.
        self.estimate = initial  # Peak-EWMA of every observation, failures as penalties: the cost
        self.estimate_at = now
        self.measured = False
        self.latency = initial  # Peak-EWMA of successful answers only: the reference for penalties
        self.latency_at = now
        self.answered = False
        self.inflight = 0
        self.failures = 0  # consecutive, i.e. since the last success
        self.state: BreakerState = "closed"
        self.cooldown = cooldown
        self.reopen_at = now  # while open: when it turns half-open
        self.probe_out = False


class Lease:
    """One request's hold on a backend, from :meth:`Balancer.acquire`.

    Exactly one of :meth:`succeeded`, :meth:`failed` and :meth:`released` ends
    it; any later call of the three does nothing.
    """

    __slots__ = ("_balancer", "_ended", "_entry", "_started", "backend", "probe")

    def __init__(self, balancer: Balancer, entry: _Backend, started: float, probe: bool) -> None:
        self._balancer = balancer
        self._entry = entry
        self._started = started
        self._ended = False
        self.backend: str = entry.name
        self.probe: bool = probe
        """True when this request is the probe of a half-open breaker."""

    def __repr__(self) -> str:
        ended = ", ended" if self._ended else ""
        probe = ", probe" if self.probe else ""
        return f"Lease({self.backend!r}{probe}{ended})"

    def succeeded(self, latency_s: float) -> None:
        """The backend answered; ``latency_s`` is the time to its first byte."""
        if self._ended:
            return
        if not (math.isfinite(latency_s) and latency_s >= 0):
            raise ValueError(f"latency_s must be a finite number of seconds of at least 0, not {latency_s!r}")
        self._ended = True
        self._balancer._succeeded(self._entry, self.probe, latency_s)

    def failed(self) -> None:
        """Connection error, 5xx or timeout: counts toward the breaker and raises the cost."""
        if self._ended:
            return
        self._ended = True
        self._balancer._failed(self._entry, self.probe, self._started)

    def released(self) -> None:
        """A neutral end (the client went away, the backend was busy): frees the slot, judges nothing."""
        if self._ended:
            return
        self._ended = True
        self._balancer._released(self._entry, self.probe)


class Balancer:
    """Chooses a backend per request; see the module docstring for how."""

    def __init__(
        self,
        backends: Sequence[str],
        config: BalancerConfig = _DEFAULT_CONFIG,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_state: Callable[[str, BreakerState], None] | None = None,
    ) -> None:
        if isinstance(backends, str):
            raise TypeError("backends must be a sequence of backend names, not one string")
        names = list(backends)
        if not names:
            raise ValueError("a Balancer needs at least one backend")
        for name in names:
            if not isinstance(name, str) or not name:
                raise ValueError(f"backend names must be non-empty strings, not {name!r}")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"backend names must be unique; repeated: {', '.join(duplicates)}")
        self._config = config
        self._clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._turn = 0  # round robin's position
        self._on_state = on_state
        self._names = tuple(names)
        now = clock()
        self._entries = {name: _Backend(name, config.initial_latency_s, now, config.open_seconds) for name in names}
        ring = sorted((_hash64(f"{name}\x00{i}"), name) for name in names for i in range(config.virtual_nodes))
        self._ring_points = [point for point, _ in ring]
        self._ring_owners = [name for _, name in ring]

    @property
    def backends(self) -> tuple[str, ...]:
        """The configured backends, in the order given."""
        return self._names

    def acquire(
        self,
        candidates: Sequence[str] | None = None,
        *,
        affinity_key: str | None = None,
        exclude: Collection[str] = (),
    ) -> Lease | None:
        """A lease on the backend to try next, or None when no candidate may take a request now.

        ``candidates`` are the backends allowed for this request (None: all);
        ``exclude`` the ones already tried for it. None comes back when every
        allowed backend is open, half-open with its probe out, or excluded.
        """
        allowed = self._allowed(candidates, exclude)
        now = self._clock()
        for entry in allowed:
            self._refresh(entry, now)
        due = [entry for entry in allowed if entry.state == "half_open" and not entry.probe_out]
        if due:
            probe = min(due, key=lambda entry: entry.reopen_at)  # longest waiting first
            probe.probe_out = True
            probe.inflight += 1
            return Lease(self, probe, now, probe=True)
        ready = [entry for entry in allowed if entry.state == "closed"]
        if not ready:
            return None
        if affinity_key is not None:
            chosen = self._by_affinity(ready, affinity_key)
        elif len(ready) == 1:
            chosen = ready[0]
        elif self._config.policy == "round_robin":
            chosen = ready[self._turn % len(ready)]
            self._turn += 1
        else:
            first, second = self._rng.sample(ready, 2)
            chosen = min(first, second, key=lambda entry: (self._load(entry, now), entry.inflight))
        chosen.inflight += 1
        return Lease(self, chosen, now, probe=False)

    def state(self, backend: str) -> BreakerState:
        """The breaker's state now (an open breaker whose cool-down has passed turns half-open here)."""
        entry = self._entry(backend)
        self._refresh(entry, self._clock())
        return entry.state

    def snapshot(self) -> dict[str, dict[str, float | int | str]]:
        """Per backend: ``state``, ``cost`` (latency estimate now, s), ``inflight``, ``consecutive_failures``."""
        now = self._clock()
        result: dict[str, dict[str, float | int | str]] = {}
        for name in self._names:
            entry = self._entries[name]
            self._refresh(entry, now)
            result[name] = {
                "state": entry.state,
                "cost": self._estimate(entry, now),
                "inflight": entry.inflight,
                "consecutive_failures": entry.failures,
            }
        return result

    # -- choice ------------------------------------------------------------------------------------------------

    def _entry(self, backend: str) -> _Backend:
        try:
            return self._entries[backend]
        except KeyError:
            raise ValueError(f"unknown backend {backend!r}; the balancer has {', '.join(self._names)}") from None

    def _allowed(self, candidates: Sequence[str] | None, exclude: Collection[str]) -> list[_Backend]:
        """The backends this request may use, in configured order (so a seeded rng decides the same way)."""
        if isinstance(candidates, str) or isinstance(exclude, str):
            raise TypeError("candidates and exclude take collections of backend names, not one string")
        excluded = {self._entry(name).name for name in exclude}
        if candidates is None:
            return [self._entries[name] for name in self._names if name not in excluded]
        wanted = {self._entry(name).name for name in candidates}
        return [self._entries[name] for name in self._names if name in wanted and name not in excluded]

    def _estimate(self, entry: _Backend, now: float) -> float:
        if not entry.measured:
            return entry.estimate
        return entry.estimate * _weight(now - entry.estimate_at, self._config.decay_seconds)

    def _reference(self, entry: _Backend, now: float) -> float:
        if not entry.answered:
            return entry.latency
        return entry.latency * _weight(now - entry.latency_at, self._config.decay_seconds)

    def _load(self, entry: _Backend, now: float) -> float:
        estimate = self._estimate(entry, now)
        if estimate == 0.0 and entry.inflight:
            return _UNKNOWN_BUSY
        return estimate * (entry.inflight + 1)

    def _by_affinity(self, ready: list[_Backend], key: str) -> _Backend:
        """Consistent hashing with bounded loads over the ``ready`` backends."""
        by_name = {entry.name: entry for entry in ready}
        # inflight < ceil(c * m / n) is, for a whole inflight, the same as inflight < c * m / n.
        bound = self._config.load_factor * (sum(entry.inflight for entry in ready) + 1) / len(ready)
        size = len(self._ring_points)
        start = bisect.bisect_left(self._ring_points, _hash64(key))
        seen: set[str] = set()
        for step in range(size):
            owner = self._ring_owners[(start + step) % size]
            entry = by_name.get(owner)
            if entry is None or owner in seen:
                continue
            if entry.inflight < bound:
                return entry
            seen.add(owner)
            if len(seen) == len(ready):
                break
        # Unreachable: the least-loaded backend is at most the average, which is below the bound.
        return min(ready, key=lambda entry: entry.inflight)  # pragma: no cover

    # -- breaker and estimates ---------------------------------------------------------------------------------

    def _refresh(self, entry: _Backend, now: float) -> None:
        if entry.state == "open" and now >= entry.reopen_at:
            self._move(entry, "half_open")

    def _move(self, entry: _Backend, state: BreakerState) -> None:
        entry.state = state
        if self._on_state is not None:
            self._on_state(entry.name, state)

    def _open(self, entry: _Backend, now: float) -> None:
        entry.reopen_at = now + entry.cooldown
        self._move(entry, "open")

    def _observe(self, entry: _Backend, sample: float, now: float) -> None:
        if entry.measured:
            sample = _peak_ewma(entry.estimate, entry.estimate_at, sample, now, self._config.decay_seconds)
        entry.estimate = sample
        entry.estimate_at = now
        entry.measured = True

    def _succeeded(self, entry: _Backend, probe: bool, latency_s: float) -> None:
        now = self._clock()
        entry.inflight -= 1
        self._observe(entry, latency_s, now)
        if entry.answered:
            latency_s = _peak_ewma(entry.latency, entry.latency_at, latency_s, now, self._config.decay_seconds)
        entry.latency = latency_s
        entry.latency_at = now
        entry.answered = True
        entry.failures = 0
        if probe:
            entry.probe_out = False
            if entry.state == "half_open":
                entry.cooldown = self._config.open_seconds
                self._move(entry, "closed")

    def _failed(self, entry: _Backend, probe: bool, started: float) -> None:
        now = self._clock()
        entry.inflight -= 1
        reference = max(self._reference(other, now) for other in self._entries.values())
        self._observe(entry, max(now - started, 2.0 * reference, _FAILURE_FLOOR_S), now)
        entry.failures += 1
        if probe:
            entry.probe_out = False
            if entry.state == "half_open":
                entry.cooldown = min(entry.cooldown * 2.0, self._config.max_open_seconds)
                self._open(entry, now)
        elif entry.state == "closed" and entry.failures >= self._config.failure_threshold:
            self._open(entry, now)

    def _released(self, entry: _Backend, probe: bool) -> None:
        entry.inflight -= 1
        if probe:
            entry.probe_out = False
