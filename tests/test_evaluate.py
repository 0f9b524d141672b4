"""Evaluation metrics, gold parsing and the `qa eval` command.

The fast tests need no model. The slow one runs the real pipeline on the seed
gold set and fails when a figure falls under its floor (set from the shipped
model's measurement; raise them when the model improves, never lower them to
make a regression pass).
"""

from __future__ import annotations

import collections
import json
import re
import string
from pathlib import Path
from types import SimpleNamespace

import pytest

from qa import evaluation as ev
from qa.evaluation import cli as evcli
from qa.types import Answer, Chunk, Citation

ROOT = Path(__file__).resolve().parent.parent
SEED_GOLD = ROOT / "tests" / "gold" / "seeds.jsonl"
SEED_DOC = "000_c67c6b8288ab472d.txt"

# Floors for the seed gold set with the shipped reader (qa/models/reader) and the
# default retrieval settings. Figures are ×100 except recall (a fraction).
# Measured with the round-3 weights shipped December 7 (run r3-2 step 4450 + cooldown)
# and their size-free calibration (threshold 0.110; `python -m qa.evaluate
# tests/gold/seeds.jsonl`, AVX512-BF16 machine, bf16): F1 64.9, answerable F1 79.0,
# 33/41 answered right, unanswerable declined 16.7% (2/12), no-answer accuracy 79.2,
# citation accuracy 0.850. Before (step 2275, 0.125): F1 67.2, answerable F1 77.1,
# 32/41 right, 4/12 declined, no-answer accuracy 75.5, best span 82.5. The floors sit
# a few points below the measured figures (bf16 and fp32 machines read a little
# differently); the unanswerable floor fails at 1 of 12 declined.
SEED_F1_FLOOR = 62.0
SEED_F1_ANSWERABLE_FLOOR = 73.0
SEED_UNANSWERABLE_DECLINED_FLOOR = 15.0
SEED_BEST_SPAN_F1_ANSWERABLE_FLOOR = 78.0  # the reader's reading, whatever the threshold
SEED_NO_ANSWER_ACCURACY_FLOOR = 70.0
SEED_RECALL_AT_1_FLOOR = 1.0  # one document: it must always be retrieved
SEED_CITATION_ACCURACY_FLOOR = 0.80


# --- the official SQuAD v1.1 evaluate script, verbatim, as the reference ------


def _official_normalize(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    return white_space_fix(remove_articles(remove_punc(s.lower())))


def _official_f1(prediction, ground_truth):
    prediction_tokens = _official_normalize(prediction).split()
    ground_truth_tokens = _official_normalize(ground_truth).split()
    common = collections.Counter(prediction_tokens) & collections.Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def _official_em(prediction, ground_truth):
    return _official_normalize(prediction) == _official_normalize(ground_truth)


def _official_max(fn, prediction, ground_truths):
    return max(fn(prediction, gt) for gt in ground_truths)


CASES = [  # (prediction, gold answers): answerable, v1.1 semantics
    ("the Eiffel Tower", ["Eiffel Tower"]),
    ("Eiffel Tower in Paris", ["the Eiffel Tower"]),
    ("Paris", ["London", "paris!"]),
    ("Denver Broncos", ["Denver Broncos", "The Denver Broncos", "Broncos"]),
    ("Santa Clara, California", ["Santa Clara", "Levi's Stadium"]),
    ("1,000 years", ["1000 years"]),
    ("an   apple a day", ["apple day"]),
    ("Martin Luther's theses", ["Luther", "95 theses"]),
    ("x", ["completely different"]),
    ("the the the", ["a an the"]),  # both normalise to ""
    ("Ünïcödé café", ["unicode cafe", "Ünïcödé Café"]),
]


@pytest.mark.parametrize("pred,golds", CASES)
def test_metrics_match_the_official_script(pred, golds):
    m = ev.answer_metrics([pred], [golds])
    assert m["em"] == pytest.approx(100.0 * _official_max(_official_em, pred, golds))
    if _official_normalize(pred) or any(_official_normalize(g) for g in golds):
        assert m["f1"] == pytest.approx(100.0 * _official_max(_official_f1, pred, golds))


def test_metrics_over_a_mixed_set_by_hand():
    preds = ["the Eiffel Tower", "Eiffel Tower in Paris", "Paris", "", "x"]
    golds = [["Eiffel Tower"], ["the Eiffel Tower"], ["London", "paris!"], [], []]
    m = ev.answer_metrics(preds, golds)
    f1_2 = 2 * 0.5 * 1.0 / 1.5  # 2 common tokens of 4 predicted, 2 gold
    assert (m["n"], m["n_answerable"], m["n_unanswerable"]) == (5, 3, 2)
    assert m["em"] == pytest.approx(60.0)
    assert m["f1"] == pytest.approx(100 * (1 + f1_2 + 1 + 1 + 0) / 5)
    assert m["em_answerable"] == pytest.approx(200 / 3)
    assert m["f1_answerable"] == pytest.approx(100 * (2 + f1_2) / 3)
    assert m["em_unanswerable"] == m["f1_unanswerable"] == pytest.approx(50.0)
    assert m["no_answer_accuracy"] == pytest.approx(80.0)  # only "x" for an unanswerable is wrong
    assert m["answered"] == pytest.approx(80.0)


def test_abstaining_on_answerable_scores_zero():
    m = ev.answer_metrics(["", "  "], [["Paris"], ["Rome"]])
    assert m["em"] == m["f1"] == 0.0
    assert m["no_answer_accuracy"] == 0.0
    assert m["f1_unanswerable"] is None


def test_threshold_turns_low_confidence_answers_into_abstentions():
    cands, scores, golds = ["Paris", "Rome", "Oslo"], [0.9, 0.4, 0.2], [["Paris"], ["Rome"], []]
    assert ev.at_threshold(cands, scores, 0.5) == ["Paris", "", ""]
    sweep = {row["threshold"]: row for row in ev.threshold_sweep(cands, scores, golds, [0.0, 0.3, 0.5, 1.0])}
    assert sweep[0.0]["f1"] == pytest.approx(200 / 3)
    assert sweep[0.3]["f1"] == pytest.approx(100.0)
    assert sweep[0.5]["f1"] == pytest.approx(200 / 3)
    assert sweep[1.0]["answered"] == 0.0


def test_gold_rank_counts_each_document_once():
    assert ev.gold_rank(["a", "a", "b", "c"], "b") == 2
    assert ev.gold_rank(["a", "b", "a", "c"], "c") == 3
    assert ev.gold_rank(["a", "b"], "z") is None
    assert ev.gold_rank([], "z") is None


def test_recall_and_mrr_on_hand_made_rankings():
    m = ev.retrieval_metrics([1, 2, None, 7])
    assert m["recall@1"] == pytest.approx(0.25)
    assert m["recall@5"] == pytest.approx(0.5)
    assert m["recall@10"] == pytest.approx(0.75)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 0 + 1 / 7) / 4)
    assert ev.retrieval_metrics([None, None])["mrr"] == 0.0
    assert ev.retrieval_metrics([3], ks=[2, 3])["recall@2"] == 0.0


def test_contains_answer_normalises_and_respects_word_boundaries():
    assert ev.contains_answer("It was fired by THE British, they said.", ["british"])
    assert ev.contains_answer("58th Combined Arms Army", ["the 58th Combined-Arms Army", "x"]) is False
    assert ev.contains_answer("58th Combined Arms Army", ["58th Combined Arms Army."])
    assert not ev.contains_answer("Popovich said", ["Popov"])
    assert not ev.contains_answer("anything", [])


def test_percentile_interpolates():
    assert ev.percentile([10, 20, 30, 40], 50) == pytest.approx(25)
    assert ev.percentile([5], 95) == 5
    assert ev.percentile([], 50) is None


# --- gold files ---------------------------------------------------------------


def _write(tmp_path: Path, *lines: str) -> Path:
    p = tmp_path / "gold.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return p


def test_load_gold_reads_records_and_skips_blank_lines(tmp_path):
    p = _write(tmp_path, '{"id": "q1", "question": " Who? ", "answers": ["Ann", "Ann Lee"], "doc_id": "d.txt"}',
               "", '{"id": 2, "question": "Where?", "answers": []}')
    gold = ev.load_gold(p)
    assert [g.id for g in gold] == ["q1", "2"]
    assert gold[0].question == "Who?" and gold[0].answers == ("Ann", "Ann Lee") and gold[0].doc_id == "d.txt"
    assert not gold[1].answerable and gold[1].doc_id is None


def test_load_gold_reads_a_file_saved_with_a_byte_order_mark_and_crlf(tmp_path):
    """Notepad's UTF-8 (BOM, CRLF): line 1 was "not valid JSON (Unexpected UTF-8 BOM)"."""
    p = tmp_path / "gold.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + '{"id": "q1", "question": "Who?", "answers": ["Åse"]}\r\n'
                  '{"id": "q2", "question": "Where?", "answers": []}\r\n'.encode("utf-8"))
    gold = ev.load_gold(p)
    assert [g.id for g in gold] == ["q1", "q2"] and gold[0].answers == ("Åse",)


@pytest.mark.parametrize("line,message", [
    ('{"id": "q1", "question": "Who?", "answers": ["Ann"]', ":2: not valid JSON"),
    ('["q1", "Who?"]', ":2: expected a JSON object"),
    ('{"id": "q1", "answers": ["Ann"]}', ":2: missing required field 'question'"),
    ('{"id": "q1", "question": "Who?", "answers": "Ann"}', ":2: 'answers' must be a list"),
    ('{"id": "q1", "question": "Who?", "answers": ["Ann", ""]}', ":2: 'answers' must be a list"),
    ('{"id": "q1", "question": "   ", "answers": []}', ":2: 'question' must be a non-empty string"),
    ('{"id": "q1", "question": "Who?", "answers": [], "doc_id": 3}', ":2: 'doc_id' must be a string"),
    ('{"id": "q0", "question": "Who?", "answers": []}', ":2: duplicate id 'q0'"),
])
def test_malformed_gold_lines_are_reported_with_their_line(tmp_path, line, message):
    p = _write(tmp_path, '{"id": "q0", "question": "Ok?", "answers": ["yes"]}', line)
    with pytest.raises(ev.GoldFormatError) as e:
        ev.load_gold(p)
    assert str(e.value).startswith(str(p)) and message in str(e.value)


def test_cli_reports_a_malformed_gold_file_in_one_line(tmp_path, capsys):
    p = _write(tmp_path, "not json")
    assert evcli.main([str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and f"{p}:1: not valid JSON" in err and "\n" not in err


def test_cli_reports_a_gold_folder_in_one_line(tmp_path, capsys):
    """A folder given as GOLD was an IsADirectoryError traceback."""
    assert evcli.main([str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path}: is a folder; give the gold JSONL file"


def test_cli_reports_an_unreadable_gold_file_in_one_line(tmp_path, monkeypatch, capsys):
    p = _write(tmp_path, '{"id": "q0", "question": "Ok?", "answers": ["yes"]}')

    def refuse(self, *args, **kwargs):  # chmod 0 would not stop root
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", refuse)
    assert evcli.main([str(p)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {p}: cannot be read (Permission denied)"


def test_cli_needs_exactly_one_source(capsys):
    assert evcli.main([]) == 2
    assert evcli.main(["a.jsonl", "--squad", "b.json"]) == 2


@pytest.mark.parametrize("option, value", [
    ("--limit", "0"), ("--limit", "-1"), ("--batch-size", "0"), ("--batch-size", "-1"), ("--depth", "0"),
    ("--top-k", "0"), ("--min-score", "2"), ("--min-score", "-0.1"), ("--min-score", "nan"), ("--limit", "ten"),
])
def test_cli_refuses_out_of_range_numbers_before_any_work(tmp_path, monkeypatch, capsys, option, value):
    """--limit 0 used to run every question, --limit -1 all but the last, --batch-size -1
    answered nothing, --min-score 2 or nan was reported as a threshold: each now a usage error."""
    gold = _write(tmp_path, '{"id": "q0", "question": "Ok?", "answers": ["yes"]}')
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: pytest.fail("the run started"))
    with pytest.raises(SystemExit) as e:
        evcli.main([str(gold), option, value])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and value in err


def test_squad_gold_gives_each_paragraph_a_document(tmp_path):
    data = {"data": [
        {"title": "Art_A", "paragraphs": [
            {"context": "Alpha para.", "qas": [{"id": "1", "question": "Q1?", "answers": [{"text": "Alpha", "answer_start": 0}]}]},
            {"context": "Beta para.", "qas": [{"id": "2", "question": "Q2?", "answers": [{"text": "Beta", "answer_start": 0}]},
                                             {"id": "3", "question": "Q3?", "answers": [], "is_impossible": True}]}]},
        {"title": "Art_B", "paragraphs": [
            {"context": "Gamma para.", "qas": [{"id": "4", "question": "Q4?", "answers": [{"text": "Gamma", "answer_start": 0}]}]}]},
    ]}
    f = tmp_path / "squad.json"
    f.write_text(json.dumps(data))
    gold, docs = ev.squad_gold(f)
    assert [d.id for d in docs] == ["Art_A/000", "Art_A/001", "Art_B/000"]
    assert [g.doc_id for g in gold] == ["Art_A/000", "Art_A/001", "Art_A/001", "Art_B/000"]
    assert gold[2].answers == () and gold[1].context == "Beta para." and gold[3].title == "Art_B"
    assert docs[1].text == "Beta para." and docs[1].title == "Art A"


_SQUAD_QA = {"id": "1", "question": "Q?", "answers": [{"text": "Alpha", "answer_start": 0}]}


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON (Expecting property name"),
    ('{"id": "1", "question": "Q?", "answers": []}\n{"id": "2", "question": "R?", "answers": []}\n',
     "not valid JSON (Extra data at line 2 column 1); a SQuAD file is one JSON object"),
    (json.dumps({"version": "1.1"}), "the top level: missing field 'data'"),
    (json.dumps([1, 2]), "the top level: not in SQuAD v1.1/v2.0 format"),
    (json.dumps({"data": [{"paragraphs": []}]}), "data[0]: missing field 'title'"),
    (json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Alpha.", "qas": [
        _SQUAD_QA, {"id": "2", "question": "R?"}]}]}]}), "data[0].paragraphs[0].qas[1]: missing field 'answers'"),
    (json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Alpha.", "qas": [
        {**_SQUAD_QA, "question": None}]}]}]}), "data[0].paragraphs[0].qas[0]: not in SQuAD v1.1/v2.0 format"),
])
def test_malformed_squad_files_are_reported_with_their_record(tmp_path, capsys, content, message):
    """A SQuAD file that is not JSON or misses a field was a bare KeyError / JSONDecodeError traceback."""
    f = tmp_path / "squad.json"
    f.write_text(content)
    with pytest.raises(ev.GoldFormatError) as e:
        ev.squad_gold(f)
    assert str(e.value).startswith(f"{f}: ") and message in str(e.value)
    assert evcli.main(["--squad", str(f), "--mode", "reader"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {f}: ") and message in err and "\n" not in err


def test_squad_file_with_a_byte_order_mark_is_read(tmp_path):
    f = tmp_path / "squad.json"
    f.write_bytes(b"\xef\xbb\xbf" + json.dumps({"data": [{"title": "T", "paragraphs": [
        {"context": "Alpha.", "qas": [_SQUAD_QA]}]}]}).encode("utf-8"))
    gold, docs = ev.squad_gold(f)
    assert [g.answers for g in gold] == [("Alpha",)] and docs[0].text == "Alpha."


def test_missing_squad_file_is_one_line(tmp_path, capsys):
    assert evcli.main(["--squad", str(tmp_path / "nope.json")]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'nope.json'}: no such file"
    assert evcli.main(["--squad", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}: is a folder; give the SQuAD JSON file"


# --- the command on a stand-in pipeline (no models) ----------------------------


class FakeQA:
    """Answers from a lookup table; retrieval returns a fixed ranking."""

    def __init__(self, table: dict[str, tuple[str, float, str]]) -> None:
        self.table = table
        self.settings = SimpleNamespace(retrieval=SimpleNamespace(mode="hybrid"), index_dir=Path("fake"))
        self.reader = SimpleNamespace(threshold=0.5, path=Path("fake-reader"))

    def retrieve(self, questions, top_k=None, mode=None):
        return [[Chunk("other.txt", 0, 1, "x"), Chunk(SEED_DOC, 0, 1, "y"), Chunk("other.txt", 2, 3, "z")]
                for _ in questions]

    def ask_batch(self, questions, histories=None, top_k=None, min_score=None, mode=None):
        assert min_score == 0.0  # every candidate is seen; the threshold is applied afterwards
        out = []
        for q in questions:
            ans, score, cite = self.table[q]
            out.append(Answer(q, ans, score, [Citation(SEED_DOC, "t", 0, len(cite), cite, score)]))
        return out


def test_cli_end_to_end_on_a_stand_in_pipeline(tmp_path, monkeypatch, capsys):
    gold = _write(
        tmp_path,
        json.dumps({"id": "1", "question": "Who?", "answers": ["Ann Lee"], "doc_id": SEED_DOC}),
        json.dumps({"id": "2", "question": "Where?", "answers": ["Oslo"], "doc_id": SEED_DOC}),
        json.dumps({"id": "3", "question": "When?", "answers": [], "doc_id": SEED_DOC}),
    )
    fake = FakeQA({"Who?": ("Ann Lee", 0.9, "Said Ann Lee."), "Where?": ("Oslo", 0.3, "In Oslo."),
                   "When?": ("Monday", 0.2, "On Monday.")})
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: fake)
    out_json, out_png = tmp_path / "r.json", tmp_path / "r.png"
    assert evcli.main([str(gold), "--json", str(out_json), "--plot", str(out_png)]) == 0
    table = capsys.readouterr().out
    assert "R@1" in table and "hybrid" in table
    r = json.loads(out_json.read_text())["results"]["hybrid"]
    assert r["threshold"] == 0.5
    assert r["answers"]["em"] == pytest.approx(200 / 3)  # "Oslo" scored 0.3 < 0.5: abstained
    assert r["answers"]["no_answer_accuracy"] == pytest.approx(200 / 3)
    assert r["best_candidate"]["em_answerable"] == pytest.approx(100.0)
    assert r["retrieval"]["recall@1"] == 0.0 and r["retrieval"]["recall@5"] == 1.0
    assert r["retrieval"]["mrr"] == pytest.approx(0.5)
    assert r["citation_accuracy"] == 1.0
    assert r["latency_ms"]["how"] == "single ask() call"
    assert out_png.stat().st_size > 1000


def test_cli_retrieval_only_without_anything_to_rank_says_why(tmp_path, monkeypatch, capsys):
    """--retrieval-only printed an empty table (gold without doc_id) or raised a TypeError (reader mode)."""
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: pytest.fail("the run started"))
    gold = _write(tmp_path, json.dumps({"id": "1", "question": "Who?", "answers": ["Ann Lee"]}),
                  json.dumps({"id": "2", "question": "When?", "answers": [], "doc_id": SEED_DOC}))
    assert evcli.main([str(gold), "--retrieval-only"]) == 2
    assert 'add "doc_id" to the gold lines' in capsys.readouterr().err
    sq = tmp_path / "s.json"
    sq.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Ann Lee founded it.", "qas": [
        {"id": "q1", "question": "Who?", "answers": [{"text": "Ann Lee", "answer_start": 0}]}]}]}]}))
    assert evcli.main(["--squad", str(sq), "--mode", "reader", "--retrieval-only"]) == 2
    assert "--retrieval-only has nothing to measure in --mode reader" in capsys.readouterr().err


def test_cli_output_files_that_cannot_be_written_are_one_line(tmp_path, monkeypatch, capsys):
    """--json / --plot naming a folder, or a file that cannot be written, was a traceback
    after the whole run; a folder is now refused before it."""
    gold = _write(tmp_path, json.dumps({"id": "1", "question": "Who?", "answers": ["Ann Lee"], "doc_id": SEED_DOC}))
    fake = FakeQA({"Who?": ("Ann Lee", 0.9, "Said Ann Lee.")})
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: pytest.fail("the run started"))
    for option in ("--json", "--plot", "--predictions"):
        assert evcli.main([str(gold), option, str(tmp_path)]) == 2
        assert capsys.readouterr().err.strip() == f"error: {option} {tmp_path} is a folder; give a file name"
    monkeypatch.setattr(qa, "default_qa", lambda: fake)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    assert evcli.main([str(gold), "--json", str(blocker / "r.json")]) == 1
    out = capsys.readouterr()
    assert "R@1" in out.out  # the figures are shown all the same
    assert out.err.strip().splitlines()[-1].startswith(f"error: --json {blocker / 'r.json'} could not be written")


@pytest.mark.parametrize("content", ["{broken", '{"id": "q1", "question": "Who?", "answers": []}'])
def test_cli_refuses_a_predictions_file_it_did_not_write(tmp_path, monkeypatch, capsys, content):
    """A --predictions file that is not a cache was a JSONDecodeError traceback (or a KeyError);
    it is refused, never read past and overwritten."""
    import qa.reader

    sq = tmp_path / "s.json"
    sq.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"context": "Ann Lee founded it.", "qas": [
        {"id": "q1", "question": "Who?", "answers": [{"text": "Ann Lee", "answer_start": 0}]}]}]}]}))
    preds = tmp_path / "p.json"
    preds.write_text(content)
    monkeypatch.setattr(qa.reader, "SpanReader",
                        lambda config: SimpleNamespace(config=config, path=tmp_path, run=pytest.fail))
    monkeypatch.setattr(evcli, "weights_fingerprint", lambda path: "w")
    with pytest.raises(SystemExit) as e:
        evcli.main(["--squad", str(sq), "--mode", "reader", "--predictions", str(preds)])
    assert str(e.value).startswith(f"error: --predictions {preds} ") and "give another file name" in str(e.value)
    assert preds.read_text() == content


def test_cli_warns_of_gold_the_index_cannot_score(tmp_path, monkeypatch, capsys, fake_models, write_docs):
    """A gold doc_id the index does not hold (a typo) silently scored "gold not retrieved",
    and an answer missing from its document silently scored a miss: each is now a warning."""
    corpus = write_docs({"alpha.txt": "Alpha Station sits on the northern ridge. It was built in 1962."})
    fq = fake_models(index_dir=tmp_path / "index", corpus_dir=corpus)
    gold = _write(
        tmp_path,
        json.dumps({"id": "ok", "question": "Where does Alpha Station sit?", "answers": ["northern ridge"],
                    "doc_id": "alpha.txt"}),
        json.dumps({"id": "typo", "question": "When was it built?", "answers": ["1962"], "doc_id": "alhpa.txt"}),
        json.dumps({"id": "absent", "question": "Who built it?", "answers": ["Norland Survey"],
                    "doc_id": "alpha.txt"}),
        json.dumps({"id": "none", "question": "Who paid?", "answers": [], "doc_id": "alpha.txt"}),
    )
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: fq)
    assert evcli.main([str(gold)]) == 0
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning: ")]
    assert warnings == [
        "warning: 1 gold question(s) name a doc_id this index does not hold (typo: 'alhpa.txt'); "
        "they count as not retrieved",
        "warning: the answer of 1 gold question(s) is not in the text of its doc_id (absent: 'Norland Survey'); "
        "they cannot be answered right",
    ]
    assert evcli.gold_warnings(ev.load_gold(gold)[:1], fq.store.documents) == []
    seed = {SEED_DOC: SimpleNamespace(text=(ROOT / "seeds" / SEED_DOC).read_text(encoding="utf-8"))}
    assert evcli.gold_warnings(ev.load_gold(SEED_GOLD), seed) == []  # "Washington-based", "resting,”" hold theirs


# --- the real thing -----------------------------------------------------------


def test_seed_gold_file_is_well_formed():
    gold = ev.load_gold(SEED_GOLD)
    text = (ROOT / "seeds" / SEED_DOC).read_text(encoding="utf-8")
    assert len(gold) >= 40
    assert sum(not g.answerable for g in gold) >= 8
    assert all(g.doc_id == SEED_DOC for g in gold)
    for g in gold:
        if g.answerable:  # the first variant is verbatim in the article
            assert g.answers[0] in text, g.id


@pytest.mark.slow
def test_seed_gold_set_clears_its_floors(tmp_path):
    from qa.config import ReaderConfig

    # The reader ships in the repository: a missing one is a failure, not a skip.
    assert (Path(ReaderConfig().path) / "config.json").exists(), f"no reader model at {ReaderConfig().path}"
    out = tmp_path / "seeds.json"
    assert evcli.main([str(SEED_GOLD), "--json", str(out)]) == 0
    results = json.loads(out.read_text())["results"]
    (r,) = results.values()
    a = r["answers"]
    assert a["f1"] >= SEED_F1_FLOOR, a
    assert a["f1_answerable"] >= SEED_F1_ANSWERABLE_FLOOR, a
    assert a["no_answer_accuracy"] >= SEED_NO_ANSWER_ACCURACY_FLOOR, a
    assert a["f1_unanswerable"] >= SEED_UNANSWERABLE_DECLINED_FLOOR, a
    assert r["best_candidate"]["f1_answerable"] >= SEED_BEST_SPAN_F1_ANSWERABLE_FLOOR, r["best_candidate"]
    assert r["retrieval"]["recall@1"] >= SEED_RECALL_AT_1_FLOOR, r["retrieval"]
    assert r["citation_accuracy"] is None or r["citation_accuracy"] >= SEED_CITATION_ACCURACY_FLOOR, r


# --- where answers are lost -----------------------------------------------------


@pytest.mark.parametrize("right,given,in_read,in_chosen,cause", [
    (True, True, True, True, None),
    (True, False, True, True, "declined_right"),
    (False, True, False, False, "not_retrieved"),
    (False, False, False, False, "not_retrieved"),  # declined, but it was wrong anyway: blame retrieval
    (False, True, True, False, "other_passage"),
    (False, True, True, True, "wrong_span"),
    (False, True, None, None, "wrong_span"),  # reading comprehension: the gold paragraph was given
])
def test_miss_cause(right, given, in_read, in_chosen, cause):
    assert ev.metrics.miss_cause(right, given, in_read, in_chosen) == cause


def test_miss_breakdown_by_hand():
    cands = ["Ann Lee", "Oslo", "Bergen", "Monday", "x", "y"]
    scores = [0.9, 0.3, 0.9, 0.9, 0.9, 0.1]
    golds = [["Ann Lee"], ["Oslo"], ["Oslo"], ["Tuesday"], [], []]
    in_read = [True, True, False, True, None, None]
    in_chosen = [True, True, False, False, None, None]
    m = ev.metrics.miss_breakdown(cands, scores, golds, 0.5, in_read, in_chosen)
    assert (m["n_answerable"], m["right"], m["declined_right"], m["not_retrieved"], m["other_passage"],
            m["wrong_span"], m["answered_unanswerable"]) == (4, 1, 1, 1, 1, 0, 1)
    assert m["percent"]["right"] == 25.0 and sum(m["percent"].values()) == pytest.approx(100.0)


def test_whereabouts_of_the_gold_answer_in_an_answer():
    from qa.evaluation.runs import answer_whereabouts

    g = ev.GoldQuestion("1", "Who?", ("Ann Lee",), "a.txt")
    chosen = Citation("a.txt", "A", 0, 20, "Bo Ek met someone.", 0.9, 0, 5)
    other = Citation("a.txt", "A", 40, 80, "Then Ann Lee left.", 0.2)
    wrong_doc = Citation("b.txt", "B", 0, 20, "Ann Lee in b.", 0.2)
    assert answer_whereabouts(g, Answer("Who?", "Bo Ek", 0.9, [chosen, other])) == (True, False)
    assert answer_whereabouts(g, Answer("Who?", "Bo Ek", 0.9, [chosen, wrong_doc])) == (False, False)
    low = Answer("Who?", "", 0.1, [other], best_candidate="Ann Lee",
                 best_candidate_citation=Citation("a.txt", "A", 40, 80, "Then Ann Lee left.", 0.1, 45, 52))
    assert answer_whereabouts(g, low) == (True, True)
    assert answer_whereabouts(ev.GoldQuestion("2", "?", ()), low) == (None, None)


def test_cli_splits_misses_by_cause_in_the_table_and_json(tmp_path, monkeypatch, capsys):
    gold = _write(
        tmp_path,
        json.dumps({"id": "1", "question": "Who?", "answers": ["Ann Lee"], "doc_id": SEED_DOC}),
        json.dumps({"id": "2", "question": "Where?", "answers": ["Oslo"], "doc_id": SEED_DOC}),
        json.dumps({"id": "3", "question": "When?", "answers": ["Tuesday"], "doc_id": SEED_DOC}),
        json.dumps({"id": "4", "question": "Why?", "answers": ["rain"], "doc_id": SEED_DOC}),
        json.dumps({"id": "5", "question": "How?", "answers": [], "doc_id": SEED_DOC}),
    )
    fake = FakeQA({"Who?": ("Ann Lee", 0.9, "Said Ann Lee."),      # right
                   "Where?": ("Oslo", 0.3, "In Oslo."),            # right but declined
                   "When?": ("Monday", 0.9, "On Monday."),         # Tuesday in no passage: not retrieved
                   "Why?": ("sun", 0.9, "Sun and rain."),          # rain in its own passage: wrong span
                   "How?": ("Monday", 0.2, "On Monday.")})
    import qa

    monkeypatch.setattr(qa, "default_qa", lambda: fake)
    out_json = tmp_path / "r.json"
    assert evcli.main([str(gold), "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "where answers are lost" in table and "declined although right" in table
    m = json.loads(out_json.read_text())["results"]["hybrid"]["misses"]
    assert (m["right"], m["declined_right"], m["not_retrieved"], m["other_passage"], m["wrong_span"]) == (1, 1, 1, 0, 1)
    assert m["answered_unanswerable"] == 0
    best = json.loads(out_json.read_text())["results"]["hybrid"]["misses_best_candidate"]
    assert best["right"] == 2 and best["declined_right"] == 0


def test_reader_mode_predictions_are_cached_and_reused(tmp_path, monkeypatch, capsys):
    """--predictions: the second run re-measures from the cache without the model."""
    from qa.evaluation import cli as evcli

    data = {"data": [{"title": "T", "paragraphs": [{"context": "Ann Lee founded the mill in 1911.", "qas": [
        {"id": "q1", "question": "Who founded the mill?", "answers": [{"text": "Ann Lee", "answer_start": 0}]},
        {"id": "q2", "question": "When?", "answers": [{"text": "1911", "answer_start": 28}]}]}]}]}
    sq = tmp_path / "s.json"
    sq.write_text(json.dumps(data))
    calls = _reader_answering_ann_lee(monkeypatch, tmp_path)
    preds, out = tmp_path / "p.json", tmp_path / "r.json"
    assert evcli.main(["--squad", str(sq), "--mode", "reader", "--predictions", str(preds), "--json", str(out)]) == 0
    assert calls == [2] and preds.exists()
    first = json.loads(out.read_text())["results"]["reader"]
    assert evcli.main(["--squad", str(sq), "--mode", "reader", "--predictions", str(preds), "--json", str(out)]) == 0
    assert calls == [2]  # nothing read again
    again = json.loads(out.read_text())["results"]["reader"]
    assert again["answers"] == first["answers"]
    assert again["misses"]["wrong_span"] == 1 and again["misses"]["right"] == 1


def test_reader_mode_with_a_partly_filled_predictions_cache_times_only_what_it_reads(tmp_path, monkeypatch, capsys):
    """--predictions holding some of the questions (a run with --limit before, or
    other articles): the questions taken from the cache were not timed, so they
    get no latency, and the run is scored (it failed with an IndexError after
    reading: latencies were kept per batch read, not per question)."""
    from qa.evaluation import cli as evcli

    qas = [{"id": f"q{i}", "question": f"Who founded mill {i}?", "answers": [{"text": "Ann Lee", "answer_start": 0}]}
           for i in range(5)]
    sq = tmp_path / "s.json"
    sq.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [
        {"context": "Ann Lee founded the mill in 1911.", "qas": qas}]}]}))
    calls = _reader_answering_ann_lee(monkeypatch, tmp_path)
    preds, out = tmp_path / "p.json", tmp_path / "r.json"
    common = ["--squad", str(sq), "--mode", "reader", "--predictions", str(preds), "--json", str(out)]
    assert evcli.main(common + ["--limit", "3", "--batch-size", "2"]) == 0
    assert calls == [2, 1]
    assert evcli.main(common + ["--batch-size", "2"]) == 0  # q0, q1 cached; q2 cached beside q3; q4 read
    assert calls == [2, 1, 1, 1]
    r = json.loads(out.read_text())["results"]["reader"]
    assert r["n"] == 5 and r["answers"]["em"] == pytest.approx(100.0)
    assert r["latency_ms"]["n"] == 2  # q3 and q4: the two questions read in this run
    assert "2 of 5 questions timed" in r["latency_ms"]["how"]
    assert "2 of 5 questions timed" in capsys.readouterr().out


# --- official scoring on the real SQuAD files (no model: predictions made from the gold) ---


def _official_v2_scores(prediction, answers):
    """SQuAD 2.0's evaluate script (get_raw_scores, compute_exact, compute_f1), independently."""
    def tokens(s):
        return _official_normalize(s).split() if s else []

    golds = [a for a in answers if _official_normalize(a)] or [""]
    em = max(int(_official_normalize(a) == _official_normalize(prediction)) for a in golds)
    f1s = []
    for a in golds:
        g, p = tokens(a), tokens(prediction)
        same = sum((collections.Counter(g) & collections.Counter(p)).values())
        if not g or not p:
            f1s.append(int(g == p))
        elif same == 0:
            f1s.append(0)
        else:
            pr, rc = same / len(p), same / len(g)
            f1s.append(2 * pr * rc / (pr + rc))
    return em, max(f1s)


def _predictions_from(example):
    """Realistic predictions for one question: its answers, the words around the
    first one, a part of it, the sentence holding it, a wrong span, nothing."""
    ctx = example.context
    if not example.answers:
        words = ctx.split()
        return ["", " ".join(words[:3]), words[-1]]
    a, s = example.answers[0], example.answer_starts[0]
    e = s + len(a)
    before = ctx[max(0, ctx.rfind(" ", 0, max(0, s - 1)) + 1):s]
    after = ctx[e:ctx.find(" ", e + 1) if ctx.find(" ", e + 1) > 0 else len(ctx)]
    sent0 = ctx.rfind(". ", 0, s) + 2 if ctx.rfind(". ", 0, s) >= 0 else 0
    sent1 = ctx.find(". ", e)
    return [*example.answers, before + a, a + after, before + a + after, a.split()[0], a[: len(a) // 2],
            ctx[sent0: sent1 + 1 if sent1 > 0 else len(ctx)], ctx[:40], "", a.upper() + "."]


@pytest.mark.parametrize("name", ["squad/dev-v1.1.json", "squad/dev-v2.0-half.json", "ood/squadshifts-new-wiki.json",
                                  "ood/qed-dev.json"])
def test_scores_match_the_official_scripts_on_real_squad_strings(name):
    """Every question of the held-out articles (all of the ood sets), about ten
    predictions each: per question EM/F1 equal the SQuAD 2.0 script's (but for a
    prediction of only punctuation or articles to an unanswerable question, an
    answer here, a decline there), and where neither side normalises to nothing
    (where v1.1 and 2.0 differ, and this project follows 2.0) the v1.1 script's;
    the averages too. SQuAD-Shifts holds gold answers such as "A" (a grade), which
    normalise to nothing: a prediction "A" scored EM 1 and F1 1 against them,
    where the 2.0 script drops such a gold answer and v1.1 gives F1 0."""
    from qa.evaluation.squad import HELD_OUT_ARTICLES, best_scores, data_dir, load_squad

    path = data_dir() / name
    if not path.exists():
        pytest.skip(f"{path} not here")
    examples = [e for e in load_squad(path) if name.startswith("ood/") or e.title in HELD_OUT_ARTICLES]
    preds, golds, official = [], [], []
    for ex in examples:
        for p in _predictions_from(ex):
            em, f1 = best_scores(p, ex.answers)
            oem, of1 = _official_v2_scores(p, ex.answers)
            if not ex.answers and p.strip() and not _official_normalize(p):
                # the one deliberate difference: "." to an unanswerable question is an
                # answer given (wrong), where the 2.0 script scores it as a decline
                assert (em, f1) == (0.0, 0.0) and (oem, of1) == (1, 1)
                continue
            assert (em, f1) == pytest.approx((oem, of1)), (ex.id, p, ex.answers)
            if ex.answers and _official_normalize(p) and all(_official_normalize(a) for a in ex.answers):
                assert em == _official_max(_official_em, p, ex.answers), (ex.id, p)
                assert f1 == pytest.approx(_official_max(_official_f1, p, ex.answers)), (ex.id, p)
            preds.append(p)
            golds.append(ex.answers)
            official.append((oem, of1))
    assert len(preds) > 10_000
    keep = [i for i, (p, g) in enumerate(zip(preds, golds)) if g or not p.strip() or _official_normalize(p)]
    preds, golds, official = [preds[i] for i in keep], [golds[i] for i in keep], [official[i] for i in keep]
    m = ev.answer_metrics(preds, golds)
    assert m["em"] == pytest.approx(100 * sum(e for e, _ in official) / len(official))
    assert m["f1"] == pytest.approx(100 * sum(f for _, f in official) / len(official))


def test_the_table_names_the_operating_threshold_as_it_was_used():
    """The threshold line printed 0.125 (step 2275's default) as 0.12 and a threshold
    `qa calibrate` stored at a candidate's own score (0.2387) as 0.24."""
    from qa.evaluation.report import format_table

    rows = {"a": {"n": 1, "threshold": 0.125}, "b": {"n": 1, "threshold": 0.2387}, "c": {"n": 1, "threshold": 0.11}}
    assert format_table(rows).splitlines()[-1] == "threshold: 0.11, 0.125, 0.2387"


def test_retrieval_only_latency_in_the_p50_column_is_a_median(monkeypatch):
    """--retrieval-only put the mean time a question (all batches' time / n) in the
    table's "p50 ms" column, with no p95: one slow batch moved the "median"."""
    from qa.evaluation import runs
    from qa.evaluation.report import format_table

    clock = iter([0.0, 0.010, 1.0, 1.010, 2.0, 2.010, 3.0, 3.100])  # batches of one: 10, 10, 10, 100 ms
    monkeypatch.setattr(runs.time, "perf_counter", lambda: next(clock))

    class Retriever:
        def retrieve(self, questions, top_k=None, mode=None):
            return [[Chunk("d", 0, 1, "x")] for _ in questions]

    gold = [ev.GoldQuestion(f"q{i}", "Who?", ("Ann",), "d") for i in range(4)]
    run = runs.Run("bm25", gold)
    runs.run_retrieval(Retriever(), run, None, 5, 1)
    r = runs.summarise(run, None)
    assert r["retrieval"]["latency_ms"]["p50"] == pytest.approx(10.0)
    assert r["retrieval"]["latency_ms"]["p95"] == pytest.approx(86.5)
    assert r["retrieval"]["ms_per_question"] == pytest.approx(32.5)  # the mean, as before
    row = format_table({"bm25": r}).splitlines()[2].split()
    assert row[-3:] == ["10.0", "86.5", "-"]  # p50, p95, build s


def test_the_eval_index_help_states_the_real_default(monkeypatch):
    """`qa eval --help` said "default: index/ for GOLD": wrong under QA_INDEX_DIR (and
    outside a checkout); GOLD is asked of the default index, kept in step with its folder."""
    monkeypatch.setenv("QA_INDEX_DIR", "/srv/qa/myindex")
    monkeypatch.setenv("QA_CORPUS_DIR", "/srv/qa/mydocs")
    action = next(a for a in evcli.build_parser()._actions if "--index" in a.option_strings)
    assert "/srv/qa/myindex" in action.help and "kept in step with /srv/qa/mydocs" in action.help, action.help
    assert "index/ for" not in action.help and "temporary" in action.help


def _reader_answering_ann_lee(monkeypatch, tmp_path) -> list[int]:
    """Installs a reader that answers every question with the passage's first 7
    characters (no model: these tests are about the predictions cache); returns
    the list that records how many questions each call read."""
    from qa.evaluation import cli as evcli
    from qa.reader import Calibration, ReadResult, Span

    calls: list[int] = []

    class Reader:
        def __init__(self, config):
            self.config, self.path, self.loaded = config, tmp_path, False
            self.calibration = Calibration(a=1.0, b=0.0, threshold=0.5)

        @property
        def threshold(self):
            return 0.5

        def run(self, questions, passages):
            calls.append(len(questions))
            return [ReadResult([Span(0, 7, 3.0, 0.0, 0)], 0.0) for _ in questions]

    import qa.reader

    monkeypatch.setattr(qa.reader, "SpanReader", Reader)
    monkeypatch.setattr(evcli, "_calibration_only", lambda r: Calibration(a=1.0, b=0.0, threshold=0.5))
    return calls
