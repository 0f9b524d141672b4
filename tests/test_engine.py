"""Inference engines (qa.engine): the choice rule, the cache, the fallback, and
quality gates that fail when an engine's output drifts from PyTorch fp32.

The export/cache tests use a tiny randomly initialised BERT written to a
temporary folder (a real export through the real toolchain, seconds); the
quality gates (``slow``) use the shipped embedder and reader.
"""

from __future__ import annotations

import json
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from qa import engine
from qa.config import EngineConfig, ReaderConfig, Settings
from qa.errors import ConfigError
from qa.engine import EngineError, ModelSpec, load_runner, pick
from qa.engine.choice import _warned
from qa.engine.export import export_fp32

REPO = Path(__file__).resolve().parent.parent


# --- the rule ----------------------------------------------------------------------------


def test_pick_leaves_torch_only_for_a_clear_win():
    assert pick({"torch": 1.0, "onnx": 0.95}, 1.1) == "torch"  # 5% cheaper: noise, stay
    assert pick({"torch": 1.0, "onnx": 0.8}, 1.1) == "onnx"
    assert pick({"torch": 1.0, "onnx": 0.8, "onnx-int8": 0.5}, 1.1) == "onnx-int8"
    assert pick({"torch": 0.5, "onnx": 0.8}, 1.1) == "torch"
    assert pick({}, 1.1) == "torch"
    assert pick({"onnx": 0.8}, 1.1) == "onnx"  # torch failed to measure


def test_int8_is_a_candidate_only_for_models_named():
    assert "onnx-int8" not in engine.candidates(EngineConfig(), "embedder")  # neither gate holds
    assert "onnx-int8" not in engine.candidates(EngineConfig(), "reader")
    assert "onnx-int8" in engine.candidates(EngineConfig(int8=("reader",)), "reader")
    assert "onnx-int8" in engine.candidates(EngineConfig(int8=("embedder",)), "embedder")
    assert engine.candidates(EngineConfig(), "embedder", bf16=False) == ["torch", "onnx"]


@pytest.mark.parametrize("kw", [dict(kind="tensorrt"), dict(min_speedup=0.5), dict(threads=-1),
                                dict(int8=("retriever",))])
def test_bad_engine_settings_are_refused(kw):
    with pytest.raises(ValueError):
        EngineConfig(**kw)


def test_unknown_engine_from_the_environment_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("QA_ENGINE", "gpu-magic")
    with pytest.raises(EngineError, match="QA_ENGINE"):
        load_runner(ModelSpec("embedder", tmp_path, "0" * 64), EngineConfig(cache_dir=tmp_path))


# --- a tiny real model: export, cache, lock, fallback ----------------------------------------


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=256)  # fits the probe batch
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertForQuestionAnswering(cfg).save_pretrained(str(folder))
    return folder


def _feeds(batch: int = 3, length: int = 12) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    ids = rng.integers(5, 200, size=(batch, length), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[0, 8:] = 0  # one padded row
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


@pytest.mark.parametrize("role", ["embedder", "reader"])
def test_onnx_export_matches_torch_and_is_cached(tiny_bert, tmp_path, role):
    spec = ModelSpec(role, tiny_bert, "ab" * 32)
    cache = EngineConfig(cache_dir=tmp_path)
    ref = load_runner(spec, EngineConfig(kind="torch", cache_dir=tmp_path))(_feeds())
    onnx = load_runner(spec, EngineConfig(kind="onnx", cache_dir=tmp_path))
    assert onnx.name == "onnx" and onnx.engine_id["sha256"]
    got = onnx(_feeds())
    assert len(got) == len(ref) == (1 if role == "embedder" else 2)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a[1:], b[1:], atol=1e-4)  # unpadded rows
    if role == "embedder":  # padding must not change a row's embedding
        np.testing.assert_allclose(got[0][0], ref[0][0], atol=1e-4)
    path = engine.onnx_path(spec, "onnx", cache.cache_dir)
    before = path.stat().st_mtime_ns
    load_runner(spec, EngineConfig(kind="onnx", cache_dir=tmp_path))
    assert path.stat().st_mtime_ns == before, "a cached graph must not be exported again"
    assert not list(tmp_path.glob("*.tmp*")), "no temporary files left behind"


def test_concurrent_first_use_builds_one_file(tiny_bert, tmp_path):
    spec = ModelSpec("reader", tiny_bert, "cd" * 32)
    calls = []

    def counting_export(s, t):
        calls.append(t)
        export_fp32(s, t)

    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(
        engine.ensure_onnx(spec, "onnx-int8", tmp_path, exporter=counting_export))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(set(paths)) == 1 and paths[0].exists()
    r = engine.OrtRunner(paths[0], "onnx-int8")
    assert r(_feeds())[0].shape == (3, 12)


def test_a_damaged_cache_file_falls_back_to_torch_with_one_warning(tiny_bert, tmp_path):
    spec = ModelSpec("embedder", tiny_bert, "ef" * 32)
    _warned.clear()
    engine.onnx_path(spec, "onnx", tmp_path).write_bytes(b"not an onnx graph")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        r1 = load_runner(spec, EngineConfig(kind="onnx", cache_dir=tmp_path))
        r2 = load_runner(spec, EngineConfig(kind="onnx", cache_dir=tmp_path))
    assert r1.name == r2.name == "torch"
    assert len([w for w in seen if "using PyTorch fp32" in str(w.message)]) == 1
    assert r1(_feeds())[0].shape == (3, 32)


def test_auto_measures_once_per_machine_and_caches_the_choice(tiny_bert, tmp_path, monkeypatch):
    spec = ModelSpec("reader", tiny_bert, "12" * 32)
    measured = []
    cfg = EngineConfig(cache_dir=tmp_path, int8=())

    def fake_measure(spec, config, names, build):
        measured.append(list(names))
        return {"torch": 1.0, "onnx": 0.5}

    assert load_runner(spec, cfg, bf16=False, measure=fake_measure).name == "onnx"
    assert load_runner(spec, cfg, bf16=False, measure=fake_measure).name == "onnx"
    assert measured == [["torch", "onnx"]]
    choices = json.loads((tmp_path / "choices.json").read_text())
    (entry,) = choices.values()
    assert entry["engine"] == "onnx" and entry["cpu_seconds"] == {"torch": 1.0, "onnx": 0.5}
    monkeypatch.setenv("QA_ENGINE", "torch")  # the override wins over the measured choice
    assert load_runner(spec, cfg, bf16=False, measure=fake_measure).name == "torch"
    assert measured == [["torch", "onnx"]]
    # the measurement is kept with the weights it was made for (``qa info`` shows it beside the engine)
    (rec,) = engine.measured_choices(cfg, "12" * 32)
    assert rec["cpu_seconds"] == {"torch": 1.0, "onnx": 0.5} and rec["role"] == "reader"
    assert engine.measured_choices(cfg, "34" * 32) == []


def test_info_shows_the_measurement_made_for_the_engines_it_could_choose_from(tmp_path, write_docs):
    """``qa info`` showed the newest measurement of the weights on this CPU, whichever candidates it timed:
    after one run with QA_BF16=0 (or int8 allowed), a machine running torch-bf16 said
    'on torch-bf16 (auto measured CPU s: torch 0.598, onnx 0.296)', the numbers of another choice."""
    from dataclasses import replace

    from qa.engine.cpu import cpu_info
    from tests.fakes import make_fake_qa

    cfg = EngineConfig(cache_dir=tmp_path / "engines")
    current = engine.candidates(cfg, "embedder", True)
    other = [*current, "onnx-int8"]  # a run that allowed int8 for the embedder
    cpu = cpu_info()["model"]
    record = {"role": "embedder", "weights": "fake-weights-0", "cpu": cpu}
    (tmp_path / "engines").mkdir()
    (tmp_path / "engines" / "choices.json").write_text(json.dumps({
        "a": {**record, "engine": "torch", "candidates": current, "cpu_seconds": {n: 1.0 for n in current},
              "measured": "2026-12-07 01:00:00"},
        "b": {**record, "engine": "onnx-int8", "candidates": other, "cpu_seconds": {n: 2.0 for n in other},
              "measured": "2026-12-07 02:00:00"}}))
    qa = make_fake_qa(index_dir=tmp_path / "idx", corpus_dir=write_docs({"a.txt": "Alpha."}),
                      settings=replace(Settings(), engine=cfg))
    assert qa.info()["embedder"]["auto_measured_cpu_s"] == {n: 1.0 for n in current}


def test_the_probe_is_shaped_like_a_real_call_and_its_shape_is_part_of_the_choice(tiny_bert, tmp_path):
    """An 8-row probe overstated ONNX for the reader (1.53x vs 1.02x on real 32-window batches): the probe
    takes one real call's rows, and a choice measured with another probe shape is measured again."""
    spec = ModelSpec("reader", tiny_bert, "56" * 32)
    shapes = []

    def runner_for(name):
        def run(feeds):
            shapes.append(feeds["input_ids"].shape)
            return [np.zeros((feeds["input_ids"].shape[0], 2))]
        return run

    times = engine.measure(spec, EngineConfig(cache_dir=tmp_path), ["torch"], runner_for)
    assert set(shapes) == {EngineConfig().probe_reader} and times["torch"] >= 0
    # the probe is one real call: as many rows as the reader and the embedder take per call
    assert EngineConfig().probe_reader[0] == ReaderConfig().batch_size
    assert EngineConfig().probe_embedder[0] == Settings().embed_batch_size
    calls = []

    def fake_measure(*a):
        calls.append(1)
        return {"torch": 1.0, "onnx": 2.0}

    for probe in ((32, 192), (32, 192), (8, 192)):
        load_runner(spec, EngineConfig(cache_dir=tmp_path, probe_reader=probe), bf16=False, measure=fake_measure)
    assert len(calls) == 2
    with pytest.raises(ConfigError, match="probe_reader"):
        EngineConfig(probe_reader=(0, 192))


def test_auto_really_times_the_candidates(tiny_bert, tmp_path):
    spec = ModelSpec("embedder", tiny_bert, "34" * 32)
    times = engine.measure(spec, EngineConfig(cache_dir=tmp_path), ["torch", "onnx"],
                           lambda name: load_runner(spec, EngineConfig(kind=name, cache_dir=tmp_path)))
    assert set(times) == {"torch", "onnx"} and all(t > 0 for t in times.values())


def test_bf16_probe_reaches_both_models(monkeypatch):
    """One probe (qa.engine) decides bf16 for the embedder and the reader."""
    import qa.embedding
    import qa.reader.model

    assert not hasattr(qa.embedding, "bf16_autocast") and not hasattr(qa.embedding, "_cpu_has_bf16")
    assert qa.reader.model.load_runner is engine.load_runner is qa.embedding.load_runner
    monkeypatch.setenv("QA_BF16", "0")
    assert engine.cpu_has_bf16() is False


# --- quality gates on the shipped models (slow) ---------------------------------------------


def _seed_texts() -> list[str]:
    from qa.chunking import Chunker
    from qa.ingest.loading import document_from_text

    docs = [document_from_text(p.name, p.read_text()) for p in sorted((REPO / "seeds").glob("*.txt"))]
    return [c.text for c in Chunker().run_many(docs)]


@pytest.mark.slow
def test_embedder_engines_stay_close_to_fp32():
    """Cosine of every seed chunk's embedding to PyTorch fp32: ONNX fp32 is the
    same function (>= 0.9999); int8 stays within what its measured retrieval
    loss allows (docs/engine.md: mean 0.993, min 0.987 on SQuAD chunks)."""
    from qa.embedding import Embedder

    texts = _seed_texts()
    ref = Embedder(engine=EngineConfig(kind="torch"), bf16=False).run(texts)
    onnx = Embedder(engine=EngineConfig(kind="onnx")).run(texts)
    int8 = Embedder(engine=EngineConfig(kind="onnx-int8")).run(texts)
    assert (onnx * ref).sum(1).min() >= 0.9999
    cos = (int8 * ref).sum(1)
    assert cos.mean() >= 0.985 and cos.min() >= 0.96, (cos.mean(), cos.min())


def _seed_reading() -> tuple[list[str], list[str]]:
    """Answerable seed questions with the paragraph that holds their answer."""
    from qa.evaluation.gold import load_gold

    gold = load_gold(REPO / "tests" / "gold" / "seeds.jsonl")
    texts = {p.name: p.read_text() for p in (REPO / "seeds").glob("*.txt")}
    qs = [g for g in gold if g.doc_id in texts and any(a and a in texts[g.doc_id] for a in g.answers)]
    paragraphs = []
    for g in qs:  # the paragraph holding the first gold answer, else the document's start
        doc = texts[g.doc_id]
        at = next(doc.find(a) for a in g.answers if a and a in doc)
        lo = doc.rfind("\n\n", 0, at) + 1
        hi = doc.find("\n\n", at)
        paragraphs.append(doc[lo: hi if hi > 0 else len(doc)][:2000])
    return [g.question for g in qs], paragraphs


@pytest.mark.slow
def test_reader_engines_agree_with_fp32_spans():
    """ONNX fp32 picks the same best span as PyTorch fp32 on every seed question;
    int8 on at least 85% of them."""
    from qa.reader import SpanReader

    questions, paragraphs = _seed_reading()
    spans = {}
    for kind in ("torch", "onnx", "onnx-int8"):
        reader = SpanReader(ReaderConfig(bf16=False, engine=EngineConfig(kind=kind)))
        spans[kind] = [(s.start, s.end) if s else None for s in reader.best_spans(questions, paragraphs)]
    assert len(questions) >= 20
    assert spans["onnx"] == spans["torch"]
    agree = np.mean([a == b for a, b in zip(spans["onnx-int8"], spans["torch"])])
    assert agree >= 0.85, agree


@pytest.mark.slow
@pytest.mark.skipif(not engine.cpu_has_bf16(), reason="the CPU has no native bf16 (AMX / AVX512-BF16)")
def test_bf16_stays_close_to_fp32():
    """bf16 autocast is what ``auto`` picks for both models on CPUs that have it
    (docs/engine.md): embeddings keep cosine >= 0.9995 to fp32 (measured 0.99998
    on the seed chunks) and the reader's best span is fp32's on >= 90% of the
    seed questions."""
    from qa.embedding import Embedder
    from qa.reader import SpanReader

    texts = _seed_texts()
    ref = Embedder(engine=EngineConfig(kind="torch"), bf16=False).run(texts)
    bf16 = Embedder(engine=EngineConfig(kind="torch-bf16")).run(texts)
    assert (bf16 * ref).sum(1).min() >= 0.9995
    questions, paragraphs = _seed_reading()
    spans = {}
    for kind in ("torch", "torch-bf16"):
        reader = SpanReader(ReaderConfig(bf16=kind == "torch-bf16", engine=EngineConfig(kind=kind)))
        assert reader.engine_id["engine"] == kind
        spans[kind] = [(s.start, s.end) if s else None for s in reader.best_spans(questions, paragraphs)]
    agree = np.mean([a == b for a, b in zip(spans["torch-bf16"], spans["torch"])])
    assert agree >= 0.9, agree


def test_the_manifest_records_which_engines_made_the_vectors(tiny_docs, small_chunker):
    from fakes import FakeEmbedder
    from qa.indexing import Indexer
    from qa.types import Document

    class EngineEmbedder(FakeEmbedder):
        engine_id = {"engine": "onnx", "sha256": "f" * 64}

    first = Indexer(small_chunker, EngineEmbedder()).run(list(tiny_docs))
    assert first.manifest.engines == [{"engine": "onnx", "sha256": "f" * 64}]
    emb = EngineEmbedder()
    emb.engine_id = {"engine": "torch"}
    extra = [Document(id="new.txt", text="A new document about lighthouses and ferries.")]
    second = Indexer(small_chunker, emb).run(extra, previous=first)
    assert second.manifest.engines == [{"engine": "onnx", "sha256": "f" * 64}, {"engine": "torch"}]
    third = Indexer(small_chunker, FakeEmbedder()).run([], previous=second)  # nothing embedded: kept as is
    assert third.manifest.engines == second.manifest.engines
