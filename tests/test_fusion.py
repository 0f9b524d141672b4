"""qa.fusion by hand (pure NumPy), and the retriever's near-duplicate rule on a
made boilerplate corpus (fake embedder: plumbing, no quality claims)."""

from __future__ import annotations

import numpy as np
import pytest

from qa.chunking import Chunker
from qa.config import ChunkingConfig, RetrievalConfig
from qa.fusion import duplicate_groups, fused_scores, group_weights, one_per_group, top_rows, zscore
from qa.retrieval import Retriever

from conftest import build_store, make_doc
from fakes import FakeEmbedder


def unit(*rows):
    v = np.asarray(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_duplicate_groups_are_connected_components():
    v = unit([1, 0, 0], [0, 1, 0], [1, 0.01, 0], [0, 1, 0.02], [0, 0, 1], [0.999, 0, 0.02])
    labels = duplicate_groups(v, 0.95, block=2)  # blocks smaller than n: links across blocks
    assert labels.tolist() == [0, 1, 0, 1, 4, 0]
    assert group_weights(labels).tolist() == pytest.approx([1 / 3, 1 / 2, 1 / 3, 1 / 2, 1, 1 / 3])
    # a threshold above every pair: each row its own group
    assert duplicate_groups(v, 1.01).tolist() == list(range(6))
    assert duplicate_groups(np.zeros((0, 3), np.float32), 0.95).tolist() == []


def test_weighted_zscore_counts_a_group_of_copies_once():
    # 1 unique chunk + 4 copies of one chunk + 1 other: with group weights the
    # statistics are those of the three distinct chunks.
    scores = np.array([[3.0, 1.0, 1.0, 1.0, 1.0, 0.0]])
    labels = np.array([0, 1, 1, 1, 1, 5])
    got = zscore(scores, group_weights(labels))
    distinct = zscore(np.array([[3.0, 1.0, 0.0]]))[0]
    assert got[0].tolist() == pytest.approx([distinct[0], *[distinct[1]] * 4, distinct[2]], abs=1e-6)
    assert np.allclose(zscore(scores, np.ones(6)), zscore(scores), atol=1e-6)
    assert zscore(np.array([[2.0, 2.0]]), np.array([0.5, 0.5])).tolist() == [[0.0, 0.0]]
    both = fused_scores(scores, scores, 0.5, 0.5, group_weights(labels))
    assert np.allclose(both, got, atol=1e-6)


def test_top_rows_and_one_slot_per_group():
    cols, vals = top_rows(np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]]), 3)
    assert cols.tolist() == [[1, 3, 2], [0, 1, 2]]
    assert np.allclose(vals, [[0.9, 0.9, 0.5], [3.0, 2.0, 1.0]])
    assert top_rows(np.zeros((2, 0)), 3)[0].shape == (2, 0)
    # columns best first; 7, 2 and 9 are one group: only 7 (the best) keeps a slot
    assert one_per_group(np.array([7, 2, 5, 9, 4, -1]), np.array([1, 1, 5, 1, 4, -1]), 3).tolist() == [7, 5, 4]
    assert one_per_group(np.array([7, 2]), np.array([1, 1]), 3).tolist() == [7]


BOILERPLATE = "Report of the annual budget meeting of the finance committee, approved by all committee members."


def boilerplate_store():
    """A PDF-like report whose every page repeats the committee boilerplate, and one short
    page that answers the question; each page one chunk."""
    pages = [BOILERPLATE] * 8
    report = make_doc("report.pdf", "\n\n".join(pages))
    note = make_doc("note.html", "The finance committee approved a budget of 4 million euros for 2025.")
    chunker = Chunker(ChunkingConfig(max_words=20, overlap_sentences=0))
    return build_store([report, note], chunker, FakeEmbedder(dim=256))


def test_boilerplate_copies_take_one_slot_and_the_unique_chunk_is_retrieved():
    store = boilerplate_store()
    note_rows = [i for i, c in enumerate(store.chunks) if c.doc_id == "note.html"]
    assert len(store) >= 9 and len(note_rows) == 1
    q = ["What budget did the finance committee approve?"]
    emb = FakeEmbedder(dim=256)
    # Without the rule: the copies take every slot and the answer is not read.
    [plain] = Retriever(emb, RetrievalConfig(top_k=5, duplicate_cosine=None)).run(store, q)
    assert note_rows[0] not in [h.row for h in plain]
    assert len({store.chunks[h.row].text for h in plain}) == 1
    # With it: one slot for the boilerplate, the note is read.
    [dedup] = Retriever(emb, RetrievalConfig(top_k=5)).run(store, q)
    assert note_rows[0] in [h.row for h in dedup]
    assert len(dedup) == 2  # two distinct texts in the whole index


def test_large_index_path_groups_the_pool():
    # Above duplicate_stats_max the groups are found among each question's pool.
    store = boilerplate_store()
    note_row = next(i for i, c in enumerate(store.chunks) if c.doc_id == "note.html")
    cfg = RetrievalConfig(top_k=5, duplicate_stats_max=0)
    [hits] = Retriever(FakeEmbedder(dim=256), cfg).run(store, ["What budget did the finance committee approve?"])
    assert note_row in [h.row for h in hits] and len(hits) == 2
    # and through candidate fusion
    cfg = RetrievalConfig(top_k=5, duplicate_stats_max=0, exact_fusion_max=0, fusion_candidates=5)
    [hits] = Retriever(FakeEmbedder(dim=256), cfg).run(store, ["What budget did the finance committee approve?"])
    assert note_row in [h.row for h in hits] and len(hits) == 2


def test_duplicate_cosine_is_checked():
    with pytest.raises(ValueError, match="duplicate_cosine"):
        RetrievalConfig(duplicate_cosine=1.5)
