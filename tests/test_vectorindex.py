"""VectorIndex: exact where small, usearch where large, and namespaces that never leak."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from asgi_llmguard.vectorindex import VectorIndex

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
