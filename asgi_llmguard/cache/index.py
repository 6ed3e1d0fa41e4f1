"""Nearest-neighbour search for the semantic cache, one index per namespace.

A namespace (model, system prompt, parameters, tenant, ...) never shares
entries with another, so each gets its own index, created on its first entry
and dropped with its last. Small namespaces, the common case, are searched
exactly with one matrix product; a namespace that reaches ``brute_force_below``
entries moves to a usearch HNSW index (cosine metric over int8-quantised vectors,
its candidates rescored with the exact vectors kept beside it) and stays there
until it empties.

usearch holds the GIL while it searches; at cache sizes a search takes
microseconds, so the index is used from the event loop directly. It is not
locked: use one instance from one thread (the event loop). Building the graph
for a namespace that crosses the limit takes about a second at 4096 entries;
with ``background_moves`` it is built on a worker thread (usearch releases the
GIL while it inserts) from a copy, the namespace is searched exactly meanwhile,
and the graph is swapped in, with the changes made since the copy, on the
first operation on that namespace after it is ready.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from usearch.index import Index

__all__ = ["Neighbour", "VectorIndex"]

_MAX_KEY = 2**64 - 1  # usearch keys are unsigned 64-bit integers
# The HNSW graph's shape and search breadth (bench/index_scale.py measures them at 100k and 1M).
CONNECTIVITY = 32
EXPANSION_SEARCH = 48
OVERFETCH = 4  # candidates fetched beyond k, rescored exactly
_CHANGES_APPLIED_INLINE = 32  # more keys changed during a background build are applied in the thread too


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A stored entry near the query; ``similarity`` is the cosine, 1.0 for the same direction."""

    key: int
    similarity: float


class _Exact:
    """A small namespace: unit vectors in a growable matrix, searched exactly."""

    __slots__ = ("keys", "matrix", "positions")

    def __init__(self, dimensions: int, capacity: int) -> None:
        self.matrix = np.empty((max(capacity, 1), dimensions), dtype=np.float32)
        self.keys: list[int] = []
        self.positions: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: int, unit: npt.NDArray[np.float32]) -> None:
        position = self.positions.get(key)
        if position is None:
            position = len(self.keys)
            if position == self.matrix.shape[0]:
                grown = np.empty((position * 2, self.matrix.shape[1]), dtype=np.float32)
                grown[:position] = self.matrix
                self.matrix = grown
            self.keys.append(key)
            self.positions[key] = position
        self.matrix[position] = unit

    def remove(self, key: int) -> bool:
        position = self.positions.pop(key, None)
        if position is None:
            return False
        last = len(self.keys) - 1
        if position != last:  # move the last row into the hole
            moved = self.keys[last]
            self.keys[position] = moved
            self.matrix[position] = self.matrix[last]
            self.positions[moved] = position
        self.keys.pop()
        return True

    def search(self, unit: npt.NDArray[np.float32], k: int) -> list[Neighbour]:
        count = len(self.keys)
        scores = self.matrix[:count] @ unit
        if k < count:
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.argsort(-scores[top], kind="stable")]
        else:
            top = np.argsort(-scores, kind="stable")
        return [Neighbour(self.keys[i], _clip(float(scores[i]))) for i in top]


class _Approximate:
    """A large namespace: an HNSW graph over int8-quantised vectors finds candidates, the exact
    unit vectors kept beside it score them.

    int8 makes each distance 4x cheaper than float32 (search 2-2.5x faster, measured), but its
    cosines are off by up to ~0.015; the cache compares similarities with a threshold and the
    verifier reads them, so the candidates are rescored exactly, and a few more than asked are
    fetched so that the quantisation cannot push the true nearest out of the top ``k``.
    """

    __slots__ = ("exact", "index")

    def __init__(self, dimensions: int, moving: _Exact | None = None, *, threads: int = 1,
                 expansion_search: int = EXPANSION_SEARCH, graph: Index | None = None) -> None:
        self.exact = moving if moving is not None else _Exact(dimensions, 1024)
        if graph is None:
            graph = _build_graph(dimensions, list(self.exact.keys), self.exact.matrix[: len(self.exact)],
                                 threads=threads, expansion_search=expansion_search)
        self.index: Index = graph

    def __len__(self) -> int:
        return len(self.exact)

    def __contains__(self, key: int) -> bool:
        return key in self.exact.positions

    def add(self, key: int, unit: npt.NDArray[np.float32]) -> None:
        if key in self.exact.positions:  # usearch refuses duplicate keys: replace
            self.index.remove(key)
        self.index.add(key, unit)
        self.exact.add(key, unit)

    def remove(self, key: int) -> bool:
        if not self.exact.remove(key):
            return False
        self.index.remove(key)
        return True

    def search(self, unit: npt.NDArray[np.float32], k: int) -> list[Neighbour]:
        exact = self.exact
        matches = self.index.search(unit, min(len(exact), k + OVERFETCH))
        positions = [exact.positions[key] for key in matches.keys.tolist() if key in exact.positions]
        if not positions:
            return []
        scores = exact.matrix[positions] @ unit
        order = np.argsort(-scores, kind="stable")[:k]
        return [Neighbour(exact.keys[positions[i]], _clip(float(scores[i]))) for i in order]


def _new_graph(dimensions: int, expansion_search: int) -> Index:
    from usearch.index import Index

    return Index(ndim=dimensions, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                 expansion_search=expansion_search)


def _build_graph(dimensions: int, keys: list[int], units: npt.NDArray[np.float32], *, threads: int,
                 expansion_search: int) -> Index:
    """An HNSW graph over the given unit vectors.

    One thread by default: usearch's parallel batch insert leaves a few nodes unreachable in small
    graphs (2 of 100 random vectors, measured), and an unreachable entry is a lost hit. Bulk loads
    of large namespaces pass threads=0 (all cores) for build speed.
    """
    graph = _new_graph(dimensions, expansion_search)
    if keys:
        graph.add(np.asarray(keys, dtype=np.uint64), units, threads=threads)
    return graph


@dataclass(slots=True)
class _Move:
    """A namespace's HNSW graph being built off the event loop from a copy of its vectors."""

    graph: Future[Index]
    touched: set[int] = field(default_factory=set)  # keys added, replaced or removed since the copy


def _in_thread(work: Callable[[], Index]) -> Future[Index]:
    """Run a graph job on a daemon thread (a shutdown never waits for it); the future holds the graph."""
    result: Future[Index] = Future()

    def run() -> None:
        try:
            result.set_result(work())
        except BaseException as exc:  # handed to the event loop's side, which stays exact
            result.set_exception(exc)

    threading.Thread(target=run, name="llmguard-hnsw-build", daemon=True).start()
    return result


def _apply_changes(graph: Index, space: _Exact, touched: set[int]) -> Callable[[], Index]:
    """A job bringing a graph up to date with the keys touched since its copy: each is removed, and
    put back with its current vector if it is still stored. The vectors are copied now, on the
    event loop's side, so the job reads nothing the loop may change."""
    current = [key for key in touched if key in space.positions]
    rows = space.matrix[[space.positions[key] for key in current]].copy() if current else None

    def apply() -> Index:
        for key in touched:
            if graph.contains(key):
                graph.remove(key)
        if rows is not None:
            graph.add(np.asarray(current, dtype=np.uint64), rows, threads=1)
        return graph

    return apply


def _clip(similarity: float) -> float:
    return min(1.0, max(-1.0, similarity))


class VectorIndex:
    """Per-namespace cosine nearest-neighbour search over integer keys.

    Adding an existing key replaces its vector. Vectors need not be unit
    length (they are normalised on the way in) but must be non-zero and finite.
    """

    def __init__(self, dimensions: int, *, brute_force_below: int = 256,
                 expansion_search: int = EXPANSION_SEARCH, background_moves: bool = False) -> None:
        if dimensions < 1:
            raise ValueError("dimensions must be positive")
        if expansion_search < 1:
            raise ValueError("expansion_search must be positive")
        self.dimensions = dimensions
        self.brute_force_below = max(0, brute_force_below)
        self.background_moves = background_moves
        self._expansion_search = expansion_search
        self._namespaces: dict[str, _Exact | _Approximate] = {}
        self._moves: dict[str, _Move] = {}
        self._size = 0

    def empty_like(self) -> VectorIndex:
        """A new, empty index with the same settings (for rebuilding one from a snapshot or a scan)."""
        return VectorIndex(self.dimensions, brute_force_below=self.brute_force_below,
                           expansion_search=self._expansion_search, background_moves=self.background_moves)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, namespace: object) -> bool:
        return namespace in self._namespaces

    def namespace_size(self, namespace: str) -> int:
        space = self._namespaces.get(namespace)
        return 0 if space is None else len(space)

    def namespaces(self) -> list[str]:
        return list(self._namespaces)

    @property
    def expansion_search(self) -> int:
        """How many graph nodes a usearch search keeps in view: more finds the nearest more often, slower."""
        return self._expansion_search

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        if value < 1:
            raise ValueError("expansion_search must be positive")
        self._expansion_search = value
        for space in self._namespaces.values():
            if isinstance(space, _Approximate):
                space.index.expansion_search = value  # type: ignore[misc]  # usearch has a setter; its stub hides it

    def uses_usearch(self, namespace: str) -> bool:
        """Whether the namespace has moved to an approximate index (for tests and stats)."""
        self._settle(namespace)
        return isinstance(self._namespaces.get(namespace), _Approximate)

    def moving(self, namespace: str) -> bool:
        """Whether the namespace's graph is being built in the background (searched exactly meanwhile)."""
        self._settle(namespace)
        return namespace in self._moves

    def wait_for_moves(self, timeout: float | None = None) -> None:
        """Block until every background build has finished, then swap the graphs in (tests, benches)."""
        while self._moves:  # settling may start a catch-up job: wait for that one too
            for namespace, move in list(self._moves.items()):
                move.graph.exception(timeout)  # waits; a failed build is not raised: the namespace stays exact
                self._settle(namespace)

    def add(self, namespace: str, key: int, vector: npt.ArrayLike) -> None:
        key = _check_key(key)
        unit = self._unit(vector)
        self._settle(namespace)
        space = self._namespaces.get(namespace)
        if space is None:
            if self.brute_force_below > 0:
                space = _Exact(self.dimensions, min(self.brute_force_below, 16))
            else:
                space = _Approximate(self.dimensions, expansion_search=self._expansion_search)
            self._namespaces[namespace] = space
        before = len(space)
        space.add(key, unit)
        self._size += len(space) - before
        move = self._moves.get(namespace)
        if move is not None:
            move.touched.add(key)
        elif isinstance(space, _Exact) and len(space) >= self.brute_force_below:
            self._start_move(namespace, space)

    def remove(self, namespace: str, key: int) -> None:
        """Forget one entry; unknown keys and namespaces are ignored."""
        self._settle(namespace)
        space = self._namespaces.get(namespace)
        if space is None or not space.remove(key):
            return
        self._size -= 1
        move = self._moves.get(namespace)
        if move is not None:
            move.touched.add(key)
        if len(space) == 0:
            del self._namespaces[namespace]
            self._moves.pop(namespace, None)

    def search(self, namespace: str, vector: npt.ArrayLike, k: int = 4) -> list[Neighbour]:
        """Up to ``k`` entries of the namespace nearest to ``vector``, best first."""
        self._settle(namespace)
        space = self._namespaces.get(namespace)
        if space is None or k < 1:
            return []
        return space.search(self._unit(vector), k)

    def clear(self, namespace: str | None = None) -> None:
        if namespace is None:
            self._namespaces.clear()
            self._moves.clear()  # a build still running finishes into a future nobody reads
            self._size = 0
            return
        self._moves.pop(namespace, None)
        space = self._namespaces.pop(namespace, None)
        if space is not None:
            self._size -= len(space)

    def _start_move(self, namespace: str, space: _Exact) -> None:
        """Move a namespace that reached the limit to an HNSW graph: now, or from a copy in a thread."""
        if not self.background_moves:
            self._namespaces[namespace] = _Approximate(self.dimensions, space,
                                                       expansion_search=self._expansion_search)
            return
        keys, units = list(space.keys), space.matrix[: len(space)].copy()
        dimensions, expansion_search = self.dimensions, self._expansion_search
        self._moves[namespace] = _Move(_in_thread(lambda: _build_graph(dimensions, keys, units, threads=1,
                                                                       expansion_search=expansion_search)))

    def _settle(self, namespace: str) -> None:
        """Swap in a namespace's finished graph once it has caught up with the changes since its copy.

        Many changes (a busy namespace during a long build) are applied by one more job in the
        thread, so the event loop only ever applies a few. A build that failed leaves the namespace
        exact (correct, only slower); the next add past the limit tries again.
        """
        move = self._moves.get(namespace)
        if move is None or not move.graph.done():
            return
        del self._moves[namespace]
        space = self._namespaces.get(namespace)
        if move.graph.exception() is not None or not isinstance(space, _Exact):
            return
        catch_up = _apply_changes(move.graph.result(), space, move.touched)
        if len(move.touched) > _CHANGES_APPLIED_INLINE:
            self._moves[namespace] = _Move(_in_thread(catch_up))
            return
        self._namespaces[namespace] = _Approximate(self.dimensions, space, graph=catch_up())

    def _unit(self, vector: npt.ArrayLike) -> npt.NDArray[np.float32]:
        array = np.asarray(vector, dtype=np.float32).reshape(-1)
        if array.shape[0] != self.dimensions:
            raise ValueError(f"expected a vector of {self.dimensions} dimensions, got {array.shape[0]}")
        norm = float(np.linalg.norm(array))
        if not np.isfinite(norm) or norm == 0.0:
            raise ValueError("a vector must be finite and non-zero to have a direction")
        return array / np.float32(norm)


def _check_key(key: int) -> int:
    if isinstance(key, bool) or not isinstance(key, int | np.integer) or not 0 <= key <= _MAX_KEY:
        raise ValueError(f"keys are integers from 0 to 2**64 - 1, got {key!r}")
    return int(key)
