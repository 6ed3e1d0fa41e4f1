"""VectorIndex: exact where small, usearch where large, and namespaces that never leak."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from asgi_llmguard.cache import index as vectorindex
from asgi_llmguard.cache.index import VectorIndex

DIMS = 384


def unit_vectors(count: int, seed: int = 0) -> npt.NDArray[np.float32]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, DIMS)).astype(np.float32)
    unit: npt.NDArray[np.float32] = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit


def near(vector: npt.NDArray[np.float32], noise: float, seed: int = 1) -> npt.NDArray[np.float32]:
    """A vector close to ``vector``, as a paraphrase's embedding is close to the original's."""
    rng = np.random.default_rng(seed)
    moved = vector + noise * rng.standard_normal(vector.shape).astype(np.float32) / np.sqrt(DIMS)
    unit: npt.NDArray[np.float32] = moved / np.linalg.norm(moved, axis=-1, keepdims=True)
    return unit


@pytest.fixture(params=["exact", "usearch"])
def index(request: pytest.FixtureRequest) -> VectorIndex:
    """Every behaviour holds for both search strategies."""
    return VectorIndex(DIMS, brute_force_below=256 if request.param == "exact" else 0)


def test_stored_vector_is_its_own_nearest_neighbour_with_similarity_one(index: VectorIndex) -> None:
    vectors = unit_vectors(50)
    for key, vector in enumerate(vectors):
        index.add("ns", key, vector)

    best = index.search("ns", vectors[17], k=3)

    assert best[0].key == 17
    assert best[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert len(best) == 3
    assert [n.similarity for n in best] == sorted((n.similarity for n in best), reverse=True)


def test_similarity_is_cosine_even_for_vectors_that_are_not_unit_length(index: VectorIndex) -> None:
    a = np.zeros(DIMS, dtype=np.float32)
    a[0] = 3.0
    b = np.zeros(DIMS, dtype=np.float32)
    b[0], b[1] = 1.0, 1.0
    index.add("ns", 1, a)

    [hit] = index.search("ns", b, k=4)

    assert hit.key == 1
    assert hit.similarity == pytest.approx(1 / np.sqrt(2), abs=1e-5)


def test_namespaces_never_see_each_others_entries(index: VectorIndex) -> None:
    vectors = unit_vectors(2)
    index.add("model-a", 1, vectors[0])
    index.add("model-b", 2, vectors[1])

    assert [n.key for n in index.search("model-a", vectors[1], k=10)] == [1]
    assert [n.key for n in index.search("model-b", vectors[0], k=10)] == [2]
    assert index.search("model-c", vectors[0]) == []
    assert len(index) == 2
    assert index.namespace_size("model-a") == 1


def test_same_key_in_two_namespaces_is_two_entries(index: VectorIndex) -> None:
    vectors = unit_vectors(2)
    index.add("a", 7, vectors[0])
    index.add("b", 7, vectors[1])
    index.remove("a", 7)

    assert index.namespace_size("a") == 0
    [hit] = index.search("b", vectors[1])
    assert hit.key == 7
    assert hit.similarity == pytest.approx(1.0, abs=1e-5)


def test_removed_entry_is_never_returned_and_last_removal_drops_namespace(index: VectorIndex) -> None:
    vectors = unit_vectors(3)
    for key, vector in enumerate(vectors):
        index.add("ns", key, vector)

    index.remove("ns", 1)

    assert 1 not in [n.key for n in index.search("ns", vectors[1], k=10)]
    assert index.namespace_size("ns") == 2
    index.remove("ns", 0)
    index.remove("ns", 2)
    assert "ns" not in index.namespaces()
    assert len(index) == 0
    index.remove("ns", 2)  # unknown keys and namespaces are ignored
    index.remove("nowhere", 5)


def test_re_adding_a_key_replaces_its_vector(index: VectorIndex) -> None:
    vectors = unit_vectors(3)
    index.add("ns", 1, vectors[0])
    index.add("ns", 2, vectors[1])

    index.add("ns", 1, vectors[2])

    assert len(index) == 2
    [hit] = index.search("ns", vectors[2], k=1)
    assert hit.key == 1
    assert hit.similarity == pytest.approx(1.0, abs=1e-5)
    assert all(n.similarity < 0.5 for n in index.search("ns", vectors[0], k=10))


def test_clear_one_namespace_or_all(index: VectorIndex) -> None:
    vectors = unit_vectors(3)
    index.add("a", 1, vectors[0])
    index.add("a", 2, vectors[1])
    index.add("b", 3, vectors[2])

    index.clear("a")
    assert len(index) == 1
    assert index.search("a", vectors[0]) == []

    index.clear()
    assert len(index) == 0
    assert index.namespaces() == []


def test_wrong_dimensions_zero_vectors_and_bad_keys_are_refused(index: VectorIndex) -> None:
    with pytest.raises(ValueError, match="384"):
        index.add("ns", 1, np.ones(10, dtype=np.float32))
    with pytest.raises(ValueError, match="non-zero"):
        index.add("ns", 1, np.zeros(DIMS, dtype=np.float32))
    with pytest.raises(ValueError, match="keys"):
        index.add("ns", -1, unit_vectors(1)[0])
    assert len(index) == 0


def test_namespace_moves_to_usearch_when_it_grows_and_keeps_its_results() -> None:
    vectors = unit_vectors(300)
    queries = near(vectors[:40], noise=0.8)
    index = VectorIndex(DIMS, brute_force_below=100)
    for key in range(99):
        index.add("ns", key, vectors[key])
    assert not index.uses_usearch("ns")
    before = [index.search("ns", q, k=3) for q in queries]

    index.add("ns", 99, vectors[99])

    assert index.uses_usearch("ns")
    after = [index.search("ns", q, k=3) for q in queries]
    # usearch is approximate: the nearest neighbour (what a cache lookup serves first) must not change,
    # and the runners-up, whose similarities are close together here, may swap only rarely.
    assert [hits[0].key for hits in after] == [hits[0].key for hits in before]
    for old, new in zip(before, after, strict=True):
        assert new[0].similarity == pytest.approx(old[0].similarity, abs=1e-4)
    kept = sum(len({n.key for n in new} & {n.key for n in old}) for old, new in zip(before, after, strict=True))
    assert kept / (3 * len(queries)) >= 0.95
    for key in range(100, 300):
        index.add("ns", key, vectors[key])
    assert len(index) == 300
    assert index.search("ns", vectors[250], k=1)[0].key == 250


def test_recall_at_one_against_brute_force_on_5000_vectors() -> None:
    """Queries near stored entries (cosine about 0.7, below any cache threshold) as the cache asks them."""
    vectors = unit_vectors(5000)
    index = VectorIndex(DIMS)
    for key, vector in enumerate(vectors):
        index.add("ns", key, vector)
    assert index.uses_usearch("ns")
    queries = near(vectors[::5], noise=1.0)  # 1,000 queries

    truth = np.argmax(queries @ vectors.T, axis=1)
    found = np.array([index.search("ns", query, k=1)[0].key for query in queries])

    recall = float(np.mean(found == truth))
    assert recall >= 0.99, recall


def test_expansion_search_reaches_existing_and_new_usearch_namespaces_and_refuses_nonsense() -> None:
    index = VectorIndex(DIMS, brute_force_below=0, expansion_search=40)
    vectors = unit_vectors(20)
    for key, vector in enumerate(vectors):
        index.add("a", key, vector)
    index.expansion_search = 99
    index.add("b", 1, vectors[0])
    for namespace in ("a", "b"):
        assert index._namespaces[namespace].index.expansion_search == 99  # type: ignore[union-attr]
    assert index.search("a", vectors[3], k=1)[0].key == 3
    with pytest.raises(ValueError, match="expansion_search"):
        index.expansion_search = 0
    with pytest.raises(ValueError, match="expansion_search"):
        VectorIndex(DIMS, expansion_search=0)


@pytest.fixture
def held_build(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Background graph builds wait for this event, so a test can act while one is in progress."""
    release = threading.Event()
    real = vectorindex._build_graph

    def build_when_released(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(10), "the test never released the build"
        return real(*args, **kwargs)

    monkeypatch.setattr(vectorindex, "_build_graph", build_when_released)
    return release


def test_background_move_serves_exact_results_meanwhile_and_keeps_every_change(held_build: threading.Event) -> None:
    vectors = unit_vectors(160)
    index = VectorIndex(DIMS, brute_force_below=100, background_moves=True)
    for key in range(100):
        index.add("ns", key, vectors[key])
    assert index.moving("ns") and not index.uses_usearch("ns")

    # While the graph is built from a copy: adds, a replaced vector and removals, all searched exactly.
    for key in range(100, 150):
        index.add("ns", key, vectors[key])
    index.add("ns", 5, vectors[150])  # key 5 now points elsewhere
    for key in (7, 120):
        index.remove("ns", key)
    assert index.search("ns", vectors[130], k=1)[0].key == 130
    assert index.moving("ns")

    held_build.set()
    index.wait_for_moves(timeout=10)

    assert index.uses_usearch("ns") and not index.moving("ns")
    assert len(index) == 148
    for key in (0, 42, 99, 100, 149):
        assert index.search("ns", vectors[key], k=1)[0].key == key
    replaced = index.search("ns", vectors[150], k=1)[0]
    assert replaced.key == 5 and replaced.similarity == pytest.approx(1.0, abs=1e-5)
    for gone in (7, 120):
        assert index.search("ns", vectors[gone], k=1)[0].key != gone
    assert index.search("ns", vectors[5], k=1)[0].key != 5  # the old vector of a replaced key is gone


def test_namespace_emptied_or_cleared_during_a_background_move_stays_gone(held_build: threading.Event) -> None:
    vectors = unit_vectors(100)
    index = VectorIndex(DIMS, brute_force_below=50, background_moves=True)
    for namespace in ("emptied", "cleared"):
        for key in range(50):
            index.add(namespace, key, vectors[key])
        assert index.moving(namespace)
    for key in range(50):
        index.remove("emptied", key)
    index.clear("cleared")

    held_build.set()
    index.wait_for_moves(timeout=10)

    assert len(index) == 0 and index.namespaces() == []
    index.add("cleared", 1, vectors[1])  # a namespace starts again small and exact
    assert not index.uses_usearch("cleared") and not index.moving("cleared")


def test_failed_background_build_leaves_the_namespace_exact_and_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = unit_vectors(60)
    index = VectorIndex(DIMS, brute_force_below=50, background_moves=True)
    real = vectorindex._build_graph

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError("no room for the graph")

    monkeypatch.setattr(vectorindex, "_build_graph", fail)
    for key in range(50):
        index.add("ns", key, vectors[key])
    index.wait_for_moves(timeout=10)
    assert not index.uses_usearch("ns")
    assert index.search("ns", vectors[3], k=1)[0].key == 3

    monkeypatch.setattr(vectorindex, "_build_graph", real)
    index.add("ns", 50, vectors[50])  # still past the limit: tries again
    index.wait_for_moves(timeout=10)
    assert index.uses_usearch("ns")
    assert index.search("ns", vectors[50], k=1)[0].key == 50


def test_empty_like_keeps_the_settings_and_nothing_else() -> None:
    index = VectorIndex(DIMS, brute_force_below=77, expansion_search=33, background_moves=True)
    index.add("ns", 1, unit_vectors(1)[0])
    fresh = index.empty_like()
    assert (fresh.dimensions, fresh.brute_force_below, fresh.expansion_search, fresh.background_moves) == (
        DIMS, 77, 33, True)
    assert len(fresh) == 0
