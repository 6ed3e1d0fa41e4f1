"""Outcomes per namespace and the error budget: the verifier cut-off each namespace is held to.

Every judged comparison is an *observation*: the verifier's log-odds ``z`` of a candidate the cache
would serve at the floor cut, and whether its answer was wrong. Observations come from audited
hits, from shadow mode, and for free from misses: a candidate refused at the namespace's cut still
has an answer, and the miss's fresh answer tells whether it would have been right. They are
counted in bins of ``z`` over a grid of cut-offs; the wrong-hit rate a cut ``c`` would give is the
share of wrong observations among those with ``z >= c``, with a Wilson upper bound.

With ``LLMGUARD_CACHE_MAX_WRONG_RATE`` set, a namespace starts at the loosest cut the verifier's
offline calibration allows for the target (``Verifier.start_cut``; never looser than the strictness
point's own cut) and serves. It *tightens*, one grid step at a time, while the observations at its
cut include a wrong one and their Wilson upper bound exceeds the target, until the bound is back
under (or no cut on the grid is: then it serves no semantic hit until clean evidence comes in). A
clean record is no evidence against a cut: without that rule a namespace would tighten on its first
right answer (1 of 1 right still bounds the wrong rate at 73%) and never serve, which is what the
first version did. It *loosens* below where it stands, never below the floor, one grid step at a
time, only while the band of scores it opens is itself shown under the target: the band's own
observations (at least ``MIN_BAND``) put their upper bound under it (0 wrong needs about 3/target of
them). Clean evidence at high scores says little about the band below, and a band with a few clean
observations may still hold a wrong rate of several per cent: when 30 clean ones were enough, a
namespace held to 2% loosened into such bands and broke its target in 7 of 20 runs of the audit bench.
The cut is a function of the counts alone, so replicas sharing the counts agree on it. This is
vCache's idea (a decision threshold learned online from observed outcomes, under an error rate the
user sets; Schroeder et al., ICLR 2026) at the namespace's grain, with a bound instead of a fitted
curve, starting from the offline-tuned cut instead of from nothing.

The counts live in a small store: a dict in one process, Redis hashes shared by replicas (each
replica reads them back at most every ``refresh_seconds``). Served (audit) and would-be-served
(shadow) comparisons are also counted per cache entry, so that ``/stats`` can name the popular
entries whose answers are judged wrong; each namespace keeps at most ``MAX_ENTRIES`` of them, the
most judged.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ...core.bounds import wilson_upper

if TYPE_CHECKING:
    from redis.asyncio import Redis

FIELDS = ("audited", "wrong", "would_hit", "would_hit_wrong", "unjudged")
# Loosening opens a band of scores (one grid step) no hit was served from: it must hold at least this many
# observations of its own, whose upper bound is under the target, not ride on clean evidence from higher scores.
MIN_BAND = 30
MAX_VIEWS = 10_000  # namespaces a process keeps a view of (least recently used dropped)
MAX_ENTRIES = 1000  # entries per namespace whose own outcomes are kept (the most judged stay)
SHOWN_ENTRIES = 5  # entries per namespace shown by summary(): the most judged


class OutcomeStore(Protocol):
    """Integer counters per namespace."""

    async def add(self, namespace: str, counts: Mapping[str, int]) -> None: ...

    async def read(self, namespace: str) -> dict[str, int]: ...

    async def namespaces(self, limit: int) -> list[str]: ...

    async def add_entry(self, namespace: str, entry_id: int, wrong: bool) -> None:
        """One judged comparison of a served (or would-be-served) entry."""

    async def entries(self, namespace: str, limit: int) -> dict[int, tuple[int, int]]:
        """The ``limit`` most judged entries of ``namespace``: id -> (judged, wrong)."""
        ...


def _most_judged(rows: Mapping[int, tuple[int, int]], limit: int) -> dict[int, tuple[int, int]]:
    ranked = sorted(rows.items(), key=lambda item: (-item[1][0], -item[1][1], item[0]))
    return dict(ranked[:limit])


class MemoryOutcomeStore:
    def __init__(self) -> None:
        self._data: dict[str, dict[str, int]] = {}
        self._entries: dict[str, dict[int, tuple[int, int]]] = {}

    async def add(self, namespace: str, counts: Mapping[str, int]) -> None:
        row = self._data.setdefault(namespace, {})
        for name, value in counts.items():
            row[name] = row.get(name, 0) + value

    async def read(self, namespace: str) -> dict[str, int]:
        return dict(self._data.get(namespace, {}))

    async def namespaces(self, limit: int) -> list[str]:
        return list(self._data)[-limit:]

    async def add_entry(self, namespace: str, entry_id: int, wrong: bool) -> None:
        rows = self._entries.setdefault(namespace, {})
        judged, wrongs = rows.get(entry_id, (0, 0))
        rows[entry_id] = (judged + 1, wrongs + int(wrong))
        if len(rows) > 2 * MAX_ENTRIES:
            self._entries[namespace] = _most_judged(rows, MAX_ENTRIES)

    async def entries(self, namespace: str, limit: int) -> dict[int, tuple[int, int]]:
        return _most_judged(self._entries.get(namespace, {}), limit)


class RedisOutcomeStore:
    """One hash per namespace (``<prefix>audit:<namespace>``) and a sorted set of namespaces by last use."""

    def __init__(self, redis: Redis, prefix: str, *, ttl_seconds: int = 30 * 86400) -> None:
        self.redis = redis
        self.prefix = prefix + "audit:"
        self.ttl = ttl_seconds

    async def add(self, namespace: str, counts: Mapping[str, int]) -> None:
        key = self.prefix + namespace
        async with self.redis.pipeline(transaction=False) as pipe:
            for name, value in counts.items():
                pipe.hincrby(key, name, value)
            pipe.expire(key, self.ttl)
            pipe.zadd(self.prefix + "namespaces", {namespace: time.time()})
            await pipe.execute()

    async def read(self, namespace: str) -> dict[str, int]:
        raw = await self.redis.hgetall(self.prefix + namespace)
        return {_text(k): int(v) for k, v in raw.items()}

    async def namespaces(self, limit: int) -> list[str]:
        names = await self.redis.zrevrange(self.prefix + "namespaces", 0, limit - 1)
        return [_text(n) for n in names if isinstance(n, bytes | str)]

    async def add_entry(self, namespace: str, entry_id: int, wrong: bool) -> None:
        """Fields ``<id>`` (judged) and ``<id>w`` (wrong) of ``<prefix>audit:<namespace>:entries``; past
        ``2 * MAX_ENTRIES`` entries the least judged are dropped."""
        key = self.prefix + namespace + ":entries"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, str(entry_id), 1)
            if wrong:
                pipe.hincrby(key, f"{entry_id}w", 1)
            pipe.expire(key, self.ttl)
            pipe.hlen(key)
            *_, fields = await pipe.execute()
        if int(fields) > 4 * MAX_ENTRIES:  # two fields at most per entry
            rows = await self._rows(key)
            kept = _most_judged(rows, MAX_ENTRIES)
            dropped = [f for i in rows if i not in kept for f in (str(i), f"{i}w")]
            if dropped:
                await self.redis.hdel(key, *dropped)

    async def entries(self, namespace: str, limit: int) -> dict[int, tuple[int, int]]:
        return _most_judged(await self._rows(self.prefix + namespace + ":entries"), limit)

    async def _rows(self, key: str) -> dict[int, tuple[int, int]]:
        raw = {_text(k): int(v) for k, v in (await self.redis.hgetall(key)).items()}
        return {int(k): (v, raw.get(k + "w", 0)) for k, v in raw.items() if k.isdigit()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def default_grid(floor: float, *cuts: float, step: float = 0.5, levels: int = 16) -> tuple[float, ...]:
    """Cut-offs from ``floor`` upwards (log-odds of the verifier's combiner), ``cuts`` (the default and the
    starting cut) among them."""
    grid = {round(floor + i * step, 4) for i in range(levels)}
    grid.update(round(c, 4) for c in cuts if c >= floor)
    return tuple(sorted(grid))


@dataclass
class NamespaceOutcomes:
    """What one namespace's audits and comparisons showed, and the cut it is held to."""

    counts: dict[str, int] = field(default_factory=dict)
    fetched_at: float = 0.0
    cut: float = math.inf

    def get(self, name: str) -> int:
        return self.counts.get(name, 0)


class ErrorBudget:
    """Counts outcomes per namespace and, with a ``target``, chooses each namespace's cut-off.

    ``target`` None: outcomes are counted and every namespace keeps ``default_cut``. With a target a
    namespace starts at ``start_cut`` (``default_cut`` unless given: :meth:`.Verifier.start_cut` picks
    one for the target from the verifier's offline calibration).
    """

    def __init__(self, store: OutcomeStore, *, default_cut: float, target: float | None,
                 grid: Sequence[float], refresh_seconds: float = 1.0, min_band: int = MIN_BAND,
                 start_cut: float | None = None) -> None:
        if list(grid) != sorted(grid) or not grid:
            raise ValueError("the cut-off grid must be a non-empty increasing sequence")
        self.store = store
        self.default_cut = default_cut
        self.target = target
        self.grid = tuple(grid)
        self.refresh_seconds = refresh_seconds
        self.min_band = min_band
        # Where a namespace starts: the starting cut's place on the grid (the first grid cut at or above it).
        start = default_cut if start_cut is None else start_cut
        self._start = next((i for i, c in enumerate(self.grid) if c >= start - 1e-9), len(self.grid) - 1)
        self._views: OrderedDict[str, NamespaceOutcomes] = OrderedDict()
        self._refreshing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def floor(self) -> float:
        """The loosest cut a namespace may be held to (observations below it are not counted)."""
        return self.grid[0] if self.target is not None else self.default_cut

    # -- deciding ------------------------------------------------------------------------------------

    def cut_for(self, namespace: str) -> float:
        """The cut-off in force for ``namespace`` now (from the local view; refreshed in the background)."""
        if self.target is None:
            return self.default_cut
        view = self._view(namespace)
        if time.monotonic() - view.fetched_at > self.refresh_seconds:
            self._refresh_soon(namespace)
        return view.cut

    def choose(self, counts: Mapping[str, int]) -> float:
        """The cut a namespace with these counts is held to (see the module's docstring); inf: none."""
        if self.target is None:
            return self.default_cut
        target = self.target
        n = [0] * len(self.grid)  # observations with z >= grid[i]
        w = [0] * len(self.grid)
        n_total = w_total = 0
        for i in range(len(self.grid) - 1, -1, -1):
            n_total += counts.get(f"n{i}", 0)
            w_total += counts.get(f"w{i}", 0)
            n[i], w[i] = n_total, w_total
        i = self._start
        while w[i] and wilson_upper(w[i], n[i]) > target:  # tighten, a step at a time, until back under
            i += 1
            if i == len(self.grid):
                i = -1  # even the tightest cut has served wrong answers beyond the budget
                break
        for j in range(len(self.grid) - 1 if i < 0 else i - 1, -1, -1):  # loosen, a step at a time
            band_n = n[j] - (n[j + 1] if j + 1 < len(self.grid) else 0)
            band_w = w[j] - (w[j + 1] if j + 1 < len(self.grid) else 0)
            if band_n < self.min_band or wilson_upper(band_w, band_n) > target:
                break
            i = j
        return math.inf if i < 0 else self.grid[i]

    def _bin(self, z: float) -> int | None:
        if z < self.grid[0]:
            return None
        for i in range(len(self.grid) - 1, -1, -1):
            if z >= self.grid[i]:
                return i
        return None  # pragma: no cover - z >= grid[0] always finds a bin

    # -- recording -----------------------------------------------------------------------------------

    async def record(self, namespace: str, *, z: float | None, wrong: bool | None, kind: str,
                     would_hit: bool = False, entry_id: int | None = None) -> None:
        """One comparison: ``kind`` is "audit" (a served hit), "shadow" (a would-hit in shadow mode) or
        "probe" (a refused candidate compared with a miss's fresh answer); ``wrong`` None: unjudged.
        ``entry_id``: the compared entry, counted on its own when it was served or would have been."""
        counts: dict[str, int] = {}
        if kind == "shadow" and would_hit:
            counts["would_hit"] = 1
            counts["would_hit_wrong"] = int(bool(wrong))
        if wrong is None:
            counts["unjudged"] = 1
        else:
            if kind == "audit":
                counts["audited"] = 1
                counts["wrong"] = int(wrong)
            b = None if z is None or self.target is None else self._bin(z)
            if b is not None:
                counts[f"n{b}"] = 1
                counts[f"w{b}"] = int(wrong)
        view = self._view(namespace)
        for name, value in counts.items():
            view.counts[name] = view.get(name) + value
        view.cut = self.choose(view.counts)
        try:
            await self.store.add(namespace, counts)
            if entry_id is not None and wrong is not None and (kind == "audit" or (kind == "shadow" and would_hit)):
                await self.store.add_entry(namespace, entry_id, wrong)
        except Exception:  # Redis down: this replica still learns from its own view
            return

    # -- reading -------------------------------------------------------------------------------------

    def _view(self, namespace: str) -> NamespaceOutcomes:
        view = self._views.get(namespace)
        if view is None:
            view = NamespaceOutcomes(cut=self.default_cut if self.target is None else self.choose({}))
            self._views[namespace] = view
            if len(self._views) > MAX_VIEWS:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(namespace)
        return view

    async def refresh(self, namespace: str) -> NamespaceOutcomes:
        """Read the namespace's shared counts (other replicas' too) and choose its cut again."""
        view = self._view(namespace)
        try:
            counts = await self.store.read(namespace)
        except Exception:
            return view
        view.counts = counts
        view.fetched_at = time.monotonic()
        view.cut = self.choose(counts)
        return view

    def _refresh_soon(self, namespace: str) -> None:
        if namespace in self._refreshing:
            return
        self._refreshing.add(namespace)

        async def run() -> None:
            try:
                await self.refresh(namespace)
            finally:
                self._refreshing.discard(namespace)

        self._spawn(run())

    def _spawn(self, job: Coroutine[Any, Any, None]) -> None:
        try:
            task = asyncio.get_running_loop().create_task(job)
        except RuntimeError:  # no loop (a synchronous caller): nothing to refresh now
            job.close()
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def summary(self, limit: int = 20) -> dict[str, dict[str, Any]]:
        """Per namespace (the most recently used ``limit``): outcomes, rates with upper bounds, cut in force,
        and its most judged entries (``entries``: id -> judged, wrong, rate and upper bound)."""
        try:
            names = await self.store.namespaces(limit)
        except Exception:
            names = list(self._views)[-limit:]
        result: dict[str, dict[str, Any]] = {}
        for name in names:
            view = await self.refresh(name)
            audited, wrong = view.get("audited"), view.get("wrong")
            would, would_wrong = view.get("would_hit"), view.get("would_hit_wrong")
            result[name[:16]] = {
                "audited": audited, "wrong": wrong,
                "wrong_rate": round(wrong / audited, 6) if audited else None,
                "wrong_rate_upper": round(wilson_upper(wrong, audited), 6),
                "would_hit": would, "would_hit_wrong": would_wrong,
                "cut": None if math.isinf(view.cut) else view.cut,
                "entries": await self._entry_summary(name),
            }
        return result

    async def _entry_summary(self, namespace: str) -> dict[str, dict[str, float | int]]:
        try:
            rows = await self.store.entries(namespace, SHOWN_ENTRIES)
        except Exception:
            return {}
        return {str(entry_id): {"judged": judged, "wrong": wrong, "wrong_rate": round(wrong / judged, 6),
                                "wrong_rate_upper": round(wilson_upper(wrong, judged), 6)}
                for entry_id, (judged, wrong) in rows.items()}
