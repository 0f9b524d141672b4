"""The contract every ``VectorIndex`` and ``LexicalIndex`` backend passes.

One parametrized fixture over backend factories: exact FAISS, the FAISS ANN
backends (HNSW with tombstones, IVF) and Milvus Lite (a local .db file;
skipped with the reason when pymilvus / milvus-lite cannot run here). Small
random unit vectors, fixed seed, so the whole suite takes seconds (Milvus Lite
starts its server once per test module).
"""

from __future__ import annotations

import numpy as np
import pytest

from qa.store.backends import LEXICAL_BACKENDS, VECTOR_BACKENDS, Bm25Index
from qa.store.backends import FaissHnswIndex, FaissIvfIndex
from qa.store.backends.faiss_flat import FaissFlatIndex

DIM = 16
N = 300


def _unit(rng, n, dim=DIM):
    v = rng.standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _milvus_reason() -> str | None:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except Exception as e:  # pragma: no cover - depends on the machine
        return f"pymilvus / milvus-lite not importable here: {e}"
    return None


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    reason = _milvus_reason()
    if reason:
        pytest.skip(reason)
    return str(tmp_path_factory.mktemp("milvus") / "contract.db")


FACTORIES = {
    "faiss-flat": lambda dim, ctx: FaissFlatIndex(dim),
    "faiss-hnsw": lambda dim, ctx: FaissHnswIndex(dim),
    "faiss-ivf": lambda dim, ctx: FaissIvfIndex(dim),
    "milvus-lite": lambda dim, ctx: __import__("qa.store.backends.milvus", fromlist=["MilvusIndex"]).MilvusIndex(
        dim, uri=ctx["milvus_uri"](), index_type="FLAT"),
}
EXACT = {"faiss-flat", "milvus-lite"}


@pytest.fixture(params=[pytest.param(k, marks=pytest.mark.milvus) if k.startswith("milvus") else k
                        for k in sorted(FACTORIES)])
def make(request):
    """make(dim=DIM) -> a fresh, empty backend of the parametrized kind."""
    ctx = {"milvus_uri": lambda: request.getfixturevalue("milvus_uri")}
    kind = request.param
    created = []

    def factory(dim: int = DIM):
        index = FACTORIES[kind](dim, ctx)
        created.append(index)
        return index

    factory.kind = kind
    factory.exact = kind in EXACT
    yield factory
    for index in created:  # Milvus: drop the test collections
        if hasattr(index, "drop"):
            index.drop()


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    ids = rng.permutation(10_000)[:N].astype(np.int64) * 3 + 5  # sparse, unordered, stable ids
    return ids, _unit(rng, N)


def _exact(ids, vecs, q, k):
    s = q @ vecs.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, axis=1), ids[order]


def test_registered():
    for name in ("faiss-flat", "faiss-hnsw", "faiss-ivf", "milvus"):
        assert name in VECTOR_BACKENDS and VECTOR_BACKENDS[name].name == name
    assert LEXICAL_BACKENDS["bm25s"] is Bm25Index


def test_empty_index(make):
    index = make()
    assert index.dim == DIM and len(index) == 0
    assert index.ids().shape == (0,) and index.ids().dtype == np.int64
    scores, ids = index.search(_unit(np.random.default_rng(0), 2), 3)
    assert scores.shape == ids.shape == (2, 3)
    assert (ids == -1).all() and np.isneginf(scores).all()
    assert index.delete(np.array([1, 2])) == 0
    with pytest.raises(KeyError):
        index.get(np.array([1]))


def test_add_search_ordering(make, data):
    ids, vecs = data
    index = make()
    index.add(ids[:200], vecs[:200])
    index.add(ids[200:], vecs[200:])
    assert len(index) == N
    q = vecs[[3, 150, 299]]
    scores, got = index.search(q, 10)
    assert scores.shape == got.shape == (3, 10) and got.dtype == np.int64
    assert (got[:, 0] == ids[[3, 150, 299]]).all()  # a stored vector finds itself first
    assert np.allclose(scores[:, 0], 1.0, atol=1e-4)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first
    # each score is the inner product with the returned id's vector
    lookup = dict(zip(ids.tolist(), vecs))
    for qi in range(3):
        want = np.array([q[qi] @ lookup[int(i)] for i in got[qi]])
        assert np.allclose(scores[qi], want, atol=1e-4)
    ex_s, ex_i = _exact(ids, vecs, _unit(np.random.default_rng(1), 20), 10)
    s, i = index.search(_unit(np.random.default_rng(1), 20), 10)
    if make.exact:
        assert np.allclose(s, ex_s, atol=1e-4)
        assert (i == ex_i).mean() > 0.97  # ties aside
    else:
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(i.tolist(), ex_i.tolist())])
        assert recall >= 0.9


def test_padding_when_k_exceeds_n(make, data):
    ids, vecs = data
    index = make()
    index.add(ids[:7], vecs[:7])
    scores, got = index.search(vecs[:2], 12)
    assert scores.shape == got.shape == (2, 12)
    assert sorted(got[0, :7].tolist()) == sorted(ids[:7].tolist())
    assert (got[:, 7:] == -1).all() and np.isneginf(scores[:, 7:]).all()
    assert np.isfinite(scores[:, :7]).all()
    # k = len(index) ranks everything, in exact order
    s, g = index.search(vecs[:1], len(index))
    ex_s, ex_i = _exact(ids[:7], vecs[:7], vecs[:1], 7)
    assert np.allclose(s, ex_s, atol=1e-4) and (g == ex_i).all()


def test_delete_then_search(make, data):
    ids, vecs = data
    index = make()
    index.add(ids, vecs)
    gone = ids[:40]
    assert index.delete(np.concatenate([gone, [10**9]])) == 40  # absent ids are ignored
    assert index.delete(gone) == 0
    assert len(index) == N - 40
    assert set(index.ids().tolist()) == set(ids[40:].tolist())
    _, got = index.search(vecs[:40], 5)
    assert not np.isin(got, gone).any()
    assert (got[:, 0] >= 0).all()
    _, got = index.search(vecs[40:45], 1)
    assert (got[:, 0] == ids[40:45]).all()
    with pytest.raises(KeyError):
        index.get(gone[:1])
    # a deleted id can be added again (an update re-adds a changed chunk)
    index.add(gone[:1], vecs[45:46])
    assert np.allclose(index.get(gone[:1]), vecs[45:46], atol=1e-5)
    assert len(index) == N - 39


def test_duplicate_ids_refused(make, data):
    ids, vecs = data
    index = make()
    index.add(ids[:10], vecs[:10])
    with pytest.raises(ValueError):
        index.add(ids[5:6], vecs[5:6])  # already present
    with pytest.raises(ValueError):
        index.add(np.array([ids[20], ids[20]]), vecs[20:22])  # twice in one batch
    with pytest.raises(ValueError):
        index.add(ids[30:32], vecs[30:31])  # shape mismatch
    assert len(index) == 10


def test_ids_get_round_trip(make, data):
    ids, vecs = data
    index = make()
    index.add(ids, vecs)
    assert sorted(index.ids().tolist()) == sorted(ids.tolist())
    pick = ids[[17, 3, 250]]
    got = index.get(pick)
    assert got.shape == (3, DIM) and got.dtype == np.float32
    assert np.allclose(got, vecs[[17, 3, 250]], atol=1e-5)
    with pytest.raises(KeyError):
        index.get(np.array([ids[0], 123_456_789]))


def test_copy_independence(make, data):
    ids, vecs = data
    index = make()
    index.add(ids[:250], vecs[:250])
    before = index.search(vecs[:5], 5)
    clone = index.copy()
    assert type(clone) is type(index) and len(clone) == 250
    clone.add(ids[250:], vecs[250:])
    clone.delete(ids[:5])
    assert len(clone) == N - 5 and len(index) == 250
    assert sorted(index.ids().tolist()) == sorted(ids[:250].tolist())
    after = index.search(vecs[:5], 5)
    assert (after[1] == before[1]).all() and np.allclose(after[0], before[0])
    assert not np.isin(clone.search(vecs[:5], 5)[1], ids[:5]).any()
    # and the other way round
    index.delete(ids[100:110])
    assert np.allclose(clone.get(ids[100:110]), vecs[100:110], atol=1e-5)


def test_save_load_round_trip(make, data, tmp_path):
    ids, vecs = data
    index = make()
    index.add(ids, vecs)
    index.delete(ids[:10])
    folder = tmp_path / "vectors"
    folder.mkdir()
    index.save(folder)
    loaded = type(index).load(folder)
    assert loaded.dim == DIM and len(loaded) == N - 10
    assert sorted(loaded.ids().tolist()) == sorted(ids[10:].tolist())
    q = vecs[20:25]
    s1, i1 = index.search(q, 8)
    s2, i2 = loaded.search(q, 8)
    assert (i1 == i2).all() and np.allclose(s1, s2, atol=1e-5)
    assert np.allclose(loaded.get(ids[10:13]), vecs[10:13], atol=1e-5)
    assert loaded.config() == index.config()


def test_ann_recall_and_compaction():
    """HNSW tombstones: heavy deletion compacts the graph and search stays right."""
    rng = np.random.default_rng(3)
    vecs = _unit(rng, 2000, 32)
    ids = np.arange(2000, dtype=np.int64)
    index = FaissHnswIndex(32, compact_ratio=0.25)
    index.add(ids, vecs)
    index.delete(ids[:400])  # 20%: tombstones only
    assert index.tombstones == 400 and len(index) == 1600
    index.delete(ids[400:700])  # past 25%: compacted
    assert index.tombstones == 0 and len(index) == 1300
    q = _unit(rng, 50, 32)
    ex_s, ex_i = _exact(ids[700:], vecs[700:], q, 10)
    _, got = index.search(q, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got.tolist(), ex_i.tolist())])
    assert recall >= 0.95


def test_ivf_retrains_as_it_grows():
    rng = np.random.default_rng(4)
    vecs = _unit(rng, 5000, 16)
    index = FaissIvfIndex(16)
    index.add(np.arange(400), vecs[:400])
    small = index.nlist
    index.add(np.arange(400, 5000), vecs[400:])
    assert index.nlist > small and len(index) == 5000
    assert np.allclose(index.get(np.array([0, 4999])), vecs[[0, 4999]], atol=1e-5)


# ------------------------------------------------------------------ lexical
TEXTS = [
    "General Popov commanded the 58th Combined Arms Army.",
    "The cat sat on the mat in the sun.",
    "Oxygen is a chemical element with symbol O.",
    "Armies march on their stomachs, said Napoleon.",
]


@pytest.fixture(params=sorted(LEXICAL_BACKENDS))
def lexical(request):
    return LEXICAL_BACKENDS[request.param]


def test_lexical_contract(lexical, tmp_path):
    ids = np.array([40, 10, 30, 20], dtype=np.int64)
    index = lexical.build(ids, TEXTS, None)
    assert len(index) == 4 and sorted(index.ids().tolist()) == [10, 20, 30, 40]
    queries = ["Who commanded the army?", "oxygen symbol", "zzzz qqqq"]
    scores = index.scores(queries)
    assert scores.shape == (3, 4) and scores.dtype == np.float32
    assert not scores[2].any()  # no indexed term: zeros
    col = {int(i): c for c, i in enumerate(index.ids())}
    assert scores[1, col[30]] > 0 and scores[1, col[10]] == 0
    s, got = index.search(queries, 3)
    assert s.shape == got.shape == (3, 3)
    assert got[0, 0] == 40 and got[1, 0] == 30 and (got[1, 1:] == -1).all() and (got[2] == -1).all()
    assert (s[got == -1] == 0).all() and (np.diff(s[0]) <= 0).all()
    assert np.allclose(s[0, 0], scores[0, col[40]])
    folder = tmp_path / "lex"
    folder.mkdir()
    index.save(folder)
    loaded = lexical.load(folder, None)
    assert (loaded.ids() == index.ids()).all()
    assert np.allclose(loaded.scores(queries), scores)
    empty = lexical.build(np.zeros(0, np.int64), [], None)
    assert len(empty) == 0 and empty.scores(queries).shape == (3, 0)
    assert (empty.search(queries, 2)[1] == -1).all()


def test_transfer_between_backends(make, data):
    """An index moves to another backend without re-embedding (flat -> ANN, FAISS -> Milvus)."""
    from qa.store.base import transfer

    ids, vecs = data
    source = FaissFlatIndex(DIM)
    source.add(ids, vecs)
    target = transfer(source, make(), batch=128)
    assert sorted(target.ids().tolist()) == sorted(ids.tolist())
    assert np.allclose(target.get(ids[:5]), vecs[:5], atol=1e-5)
