"""Calibration: the model's calibration.json (fitting, storing, loading) and the
user's own operating point (``qa calibrate``), with fakes only except the last
test."""

from __future__ import annotations

import json
import random

import pytest

from qa.errors import ModelError
from qa.evaluation.calibrate import choose_threshold, point
from qa.reader import Calibration, ReadResult, Span, choose
from qa.reader.calibration import calibration_fingerprint
from qa.store.threshold import LEGACY_FILE, THRESHOLD_FILE
from qa.store.threshold import load_threshold as load_user_threshold
from qa.store.threshold import save_threshold as save_user_threshold

USER_CALIBRATION_FILE = THRESHOLD_FILE
from qa.training import calibrate_reader as cr

from conftest import TINY_DOCS, FakeReader  # noqa: E402  (tests/ is on the path)

# --- calibration.json beside the weights ----------------------------------------


def test_an_old_calibration_file_still_loads_and_chooses_by_margin(tmp_path):
    (tmp_path / "calibration.json").write_text('{"a": 0.5, "b": -2.0, "threshold": 0.3, "reliability": []}')
    cal = Calibration.load(tmp_path)
    assert (cal.a, cal.b, cal.threshold, dict(cal.choice)) == (0.5, -2.0, 0.3, {})
    spans = [Span(0, 3, 9.0, 1.0, 1), Span(0, 3, 5.0, 0.0, 0)]
    assert choose(ReadResult(spans, 0.0), cal, 0.0, ["abc", "abc"], [1.0, 0.0])[0] is spans[0]


def test_a_malformed_choice_model_is_a_model_error(tmp_path):
    (tmp_path / "calibration.json").write_text(json.dumps(
        {"a": 1, "b": 0, "threshold": 0.5, "choice": {"open": {"features": ["margin", "moon_phase"], "mean": [0, 0],
                                                                "scale": [1, 1], "coef": [1, 1], "intercept": 0}}}))
    with pytest.raises(ModelError, match="moon_phase"):
        Calibration.load(tmp_path)


def synthetic_predictions(seed: int = 0) -> dict:
    """Validation-shaped candidates where the right answer sits in the passage
    retrieval ranks first, while a wrong one in another passage often has the
    larger raw margin: a choice model should learn to prefer the first passage."""
    rng = random.Random(seed)
    settings: dict[str, list[dict]] = {name: [] for name in cr.SETTINGS}
    articles = ["Huguenot", "Oxygen", "Teacher"]
    for i in range(150):
        title = articles[i % 3]
        right, wrong = f"right{i}", f"wrong{i}"
        ctx0, ctx1 = f"the answer is {right} here", f"maybe {wrong} there"
        m_right, m_wrong = rng.gauss(2.0, 1.0), rng.gauss(2.5, 1.0)
        s0 = [ctx0.index(right), ctx0.index(right) + len(right), m_right, 0.0, 0]
        s1 = [ctx1.index(wrong), ctx1.index(wrong) + len(wrong), m_wrong, 0.0, 1]
        answerable = i % 10 != 0
        answers = [right] if answerable else []
        for name in ("open", "article"):
            settings[name].append({"id": f"{name}{i}", "title": title, "question": f"what is {right}?",
                                   "answers": answers, "contexts": [ctx0, ctx1],
                                   "retrieval": [rng.gauss(2.0, 0.3), rng.gauss(0.5, 0.3)], "spans": [s1, s0]})
        settings["reader"].append({"id": f"r{i}", "title": title, "question": f"what is {right}?", "answers": answers, "contexts": [ctx0],
                                   "retrieval": None, "spans": [[*s0[:2], m_right + 1.0, 0.0, 0]]})
    for i in range(60):
        ctx = f"nothing about q{i}"
        for name in ("offtopic", "offtopic_article", "offtopic_paragraph"):
            settings[name].append({"id": f"x{i}", "title": f"offtopic-{i % 3}", "question": f"what about q{i}?",
                                   "answers": [], "contexts": [ctx],
                                   "retrieval": None if name == "offtopic_paragraph" else [rng.gauss(-1.0, 0.3)],
                                   "spans": [[0, 7, rng.gauss(1.0, 1.0), 0.0, 0]]})
    return settings


def test_calibrate_reader_fits_a_choice_model_that_beats_the_margin_and_stores_it(tmp_path, capsys):
    model_dir = tmp_path / "reader"
    model_dir.mkdir()
    (model_dir / "calibration.json").write_text('{"a": 1, "b": 0, "threshold": 0.5}')
    cache = tmp_path / "preds.json"
    cache.write_text(json.dumps({"version": cr.CACHE_VERSION, "weights": cr.weights_fingerprint(model_dir),
                                 "n_offtopic": 60, "settings": synthetic_predictions()}))
    plot = tmp_path / "sizes.png"
    assert cr.main(["--model", str(model_dir), "--predictions", str(cache), "--offtopic", "60",
                    "--plot", str(plot)]) == 0
    out = capsys.readouterr().out
    assert "re-using the predictions" in out and "leave-one-article-out" in out
    saved = json.loads((model_dir / "calibration.json").read_text())
    assert saved["validation"]["kept"] == "model"
    assert saved["validation"]["model"]["best_f1"] > saved["validation"]["margin"]["best_f1"] + 20
    assert 0.0 <= saved["threshold"] <= 1.0 and saved["fitted_on"] == ["Huguenot", "Oxygen", "Teacher"]
    assert set(saved["by_size"]) == {"one paragraph", "one article", "three articles"}
    assert all(0.0 <= r["ece"] <= 1.0 and r["offtopic"] == 60 for r in saved["by_size"].values())
    assert plot.stat().st_size > 1000
    cal = Calibration.load(model_dir)
    assert cal.choice["open"] == cal.choice["reader"]  # one size-free model
    assert not cal.choice["open"].uses_retrieval
    coef = dict(zip(cal.choice["open"].features, cal.choice["open"].coef))
    assert coef["passage_rank"] < 0  # learned: the first-retrieved passage holds the answer
    with pytest.raises(SystemExit):  # retrieval scores are refused
        cr.main(["--model", str(model_dir), "--predictions", str(cache), "--features", "margin,retrieval"])
    # Applied to a new question shaped like the training ones, it picks the right passage.
    ctx = ["the answer is yes here", "maybe no there"]
    spans = [Span(ctx[1].index("no"), ctx[1].index("no") + 2, 3.0, 0.0, 1),
             Span(ctx[0].index("yes"), ctx[0].index("yes") + 3, 2.0, 0.0, 0)]
    best, _ = choose(ReadResult(spans, 0.0), cal, 0.0, ctx, [2.0, 0.5])
    assert best is spans[1]


def test_predictions_made_with_other_weights_are_not_reused(tmp_path, monkeypatch):
    model_dir = tmp_path / "reader"
    model_dir.mkdir()
    cache = tmp_path / "preds.json"
    cache.write_text(json.dumps({"version": cr.CACHE_VERSION, "weights": "something-else", "n_offtopic": 60,
                                 "settings": synthetic_predictions()}))
    called = []
    monkeypatch.setattr(cr, "predict", lambda *a, **k: called.append(1) or synthetic_predictions(1))
    monkeypatch.setattr(cr, "SpanReader", lambda *a, **k: None)
    data = cr.load_or_predict(model_dir, tmp_path, cache, 60)
    assert called and len(data["open"]) == 150 and set(data) == set(cr.SETTINGS)
    assert json.loads(cache.read_text())["weights"] == cr.weights_fingerprint(model_dir)


# --- the user's threshold, stored with the index ----------------------------------


def test_user_threshold_is_stored_atomically_and_read_back(tmp_path):
    f = save_user_threshold(tmp_path / "idx", {"threshold": 0.2, "gold": "g.jsonl"})
    assert f.name == USER_CALIBRATION_FILE and json.loads(f.read_text())["threshold"] == 0.2
    assert [p.name for p in f.parent.iterdir() if p.name != ".lock"] == [USER_CALIBRATION_FILE]  # no temp file left
    assert load_user_threshold(tmp_path / "idx")["threshold"] == 0.2
    save_user_threshold(tmp_path / "idx", {"threshold": 0.7})
    assert load_user_threshold(tmp_path / "idx")["threshold"] == 0.7  # the cache sees the new file
    with pytest.raises(ValueError):
        save_user_threshold(tmp_path / "idx", {"threshold": 1.5})
    assert load_user_threshold(tmp_path / "missing") is None


def test_a_threshold_stored_under_the_old_name_is_still_read_and_replaced(tmp_path):
    # Indexes from before threshold.json kept the record as calibration.json.
    (tmp_path / LEGACY_FILE).write_text(json.dumps({"threshold": 0.25}))
    assert load_user_threshold(tmp_path)["threshold"] == 0.25
    save_user_threshold(tmp_path, {"threshold": 0.4})
    assert load_user_threshold(tmp_path)["threshold"] == 0.4
    assert not (tmp_path / LEGACY_FILE).exists()  # one record per index


def test_the_threshold_is_written_under_the_index_writer_lock(tmp_path):
    import threading

    from qa.store import writer_lock

    lock = writer_lock(tmp_path)
    lock.acquire()  # an update in progress in this folder
    t = threading.Thread(target=save_user_threshold, args=(tmp_path, {"threshold": 0.3}))
    try:
        t.start()
        t.join(0.5)
        assert t.is_alive() and load_user_threshold(tmp_path) is None  # waits for the writer
    finally:
        lock.release()
    t.join(10)
    assert load_user_threshold(tmp_path)["threshold"] == 0.3


def test_a_broken_user_threshold_file_is_ignored(tmp_path, caplog):
    (tmp_path / USER_CALIBRATION_FILE).write_text("{not json")
    assert load_user_threshold(tmp_path) is None
    assert "qa calibrate" in caplog.text


def test_threshold_precedence(tiny_docs, tmp_path, fake_models):
    from dataclasses import replace

    from qa.config import ReaderConfig, Settings

    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    assert q.threshold == 0.5  # the reader's own
    save_user_threshold(tmp_path / "i", {"threshold": 0.123})
    assert q.threshold == 0.123
    a = q.ask("Who is the harbour master?")
    assert a.threshold == 0.123
    assert q.ask("Who is the harbour master?", min_score=0.9).threshold == 0.9  # a call's own wins
    s = replace(Settings(), reader=replace(ReaderConfig(), min_score=0.3))
    q2 = fake_models(index_dir=tmp_path / "i", corpus_dir=None, settings=s, reader=FakeReader(s.reader))
    assert q2.threshold == 0.3  # configured min_score wins over the stored one


# --- choosing the user's threshold --------------------------------------------------

CANDS = ["a", "b", "c", "d", "e", "x"]
SCORES = [0.9, 0.8, 0.6, 0.4, 0.3, 0.5]
GOLDS = [["a"], ["b"], ["zzz"], ["d"], ["e"], []]  # c is wrong; the last question has no answer
RIGHT = [True, True, False, True, True, False]


def test_the_curve_point_by_hand():
    p = point(0.5, CANDS, SCORES, RIGHT, GOLDS)
    assert p["answered"] == pytest.approx(400 / 6)  # a, b, c, x
    assert p["precision"] == pytest.approx(50.0)  # a, b right; c, x wrong
    assert p["withheld"] == pytest.approx(50.0)  # d, e hidden of 4 right
    assert p["declined"] == 0.0
    assert p["f1"] == pytest.approx(200 / 6)


def test_threshold_criteria():
    t, crit, note = choose_threshold(CANDS, SCORES, RIGHT, GOLDS, precision=0.5)
    assert t == 0.0 and not note  # everything answered is already 4/6 precise
    t, _, _ = choose_threshold(CANDS, SCORES, RIGHT, GOLDS, precision=0.75)
    assert t == 0.8  # 0.3: 4/6, 0.4: 3/5, 0.5: 2/4, 0.6: 2/3, 0.8: 2/2
    assert point(t, CANDS, SCORES, RIGHT, GOLDS)["precision"] >= 75.0
    t, _, _ = choose_threshold(CANDS, SCORES, RIGHT, GOLDS, max_withheld=0.25)
    assert t == 0.4  # hides e only
    t, _, note = choose_threshold(CANDS, SCORES, RIGHT, GOLDS, precision=1.0)
    assert t == 0.8 and not note
    t, crit, _ = choose_threshold(CANDS, SCORES, RIGHT, GOLDS)
    assert crit["rule"] == "best F1 over all questions"
    best = max(point(x, CANDS, SCORES, RIGHT, GOLDS)["f1"] for x in [0.0, *SCORES])
    assert point(t, CANDS, SCORES, RIGHT, GOLDS)["f1"] == pytest.approx(best)
    with pytest.raises(Exception, match="either"):
        choose_threshold(CANDS, SCORES, RIGHT, GOLDS, precision=0.5, max_withheld=0.1)


def write_gold(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


GOLD_ROWS = [
    {"id": "1", "question": "Who is the harbour master?", "answers": ["harbour"]},
    {"id": "2", "question": "What does the station record?", "answers": ["station"]},
    {"id": "3", "question": "Which mill broke?", "answers": ["Gamma"]},  # the fake reads "mill": wrong
    {"id": "4", "question": "What colour is the zeppelin?", "answers": []},
]


class ScoredReader(FakeReader):
    """FakeReader whose margins depend on the word found: harbour 3, station 2, broke 1."""

    MARGINS = {"harbour": 3.0, "station": 2.0, "broke": 1.0}

    def run(self, questions, passages):
        out = super().run(questions, passages)
        return [ReadResult([Span(sp.start, sp.end, self.MARGINS.get(ps[sp.passage][sp.start:sp.end].lower(), 0.0),
                                 0.0, sp.passage) for sp in r.spans], r.null_score)
                for r, ps in zip(out, passages)]


def test_qa_calibrate_stores_a_threshold_that_ask_then_uses(tiny_docs, tmp_path, fake_models):
    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None, reader=ScoredReader())
    q.add_documents(tiny_docs)
    gold = write_gold(tmp_path / "gold.jsonl", GOLD_ROWS)
    report = q.calibrate(gold, precision=1.0)
    assert report.stored == tmp_path / "i" / USER_CALIBRATION_FILE
    stored = json.loads(report.stored.read_text())
    assert stored["threshold"] == report.threshold and stored["n"] == 4
    assert stored["reader_fingerprint"] == calibration_fingerprint(q.reader.calibration)
    assert report.at_threshold["precision"] == 100.0 and report.at_threshold["withheld"] == 0.0
    assert report.threshold == pytest.approx(1 / (1 + 2.718281828459045 ** -2.0))  # "station" (margin 2) kept
    assert q.threshold == report.threshold
    broke = q.ask("Which mill broke?")
    assert not broke.found and broke.low_confidence and broke.best_candidate == "broke"
    assert broke.best_candidate_citation.answer_start >= 0
    assert q.ask("What does the station record?").found
    text = report.format()
    assert "precision" in text and "withheld" in text and "<- chosen" in text
    # Dry run: figures, nothing stored.
    (tmp_path / "i" / USER_CALIBRATION_FILE).unlink()
    assert q.calibrate(gold, store=False).stored is None
    assert not (tmp_path / "i" / USER_CALIBRATION_FILE).exists()


@pytest.mark.parametrize("gold, match", [
    ([{"id": "1", "question": "Which mill broke?", "answers": ["wheel"]}], "gold item 0 is a dict, not a GoldQuestion"),
    ("GOLDQ", "not one GoldQuestion"),
    (42, "gold must be a path or a list, not int"),
])
def test_qa_calibrate_names_gold_it_cannot_use(tmp_path, fake_models, tiny_docs, gold, match):
    """A list of dicts was an AttributeError ('dict' object has no attribute 'question'),
    one GoldQuestion a TypeError (not iterable)."""
    from qa.errors import ArgumentError
    from qa.evaluation import GoldQuestion

    if gold == "GOLDQ":
        gold = GoldQuestion("1", "Which mill broke?", ("wheel",))
    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    with pytest.raises(ArgumentError, match=match):
        q.calibrate(gold, store=False)


def test_cli_calibrate(tiny_docs, tmp_path, fake_models, capsys):
    from qa.cli import main

    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    gold = write_gold(tmp_path / "gold.jsonl", GOLD_ROWS)
    assert main(["calibrate", str(gold), "--index", str(tmp_path / "i"), "--max-withheld", "0"],
                qa_factory=fake_models) == 0
    out = capsys.readouterr().out
    assert "Chosen threshold" in out and "withheld 0.0% of right answers" in out
    assert "threshold  answered  precision  withheld" in out
    assert (tmp_path / "i" / USER_CALIBRATION_FILE).exists()


def test_cli_calibrate_options_exclude_each_other(tmp_path, fake_models):
    from qa.cli import main

    with pytest.raises(SystemExit) as e:
        main(["calibrate", "g.jsonl", "--precision", "0.9", "--max-withheld", "0.1"], qa_factory=fake_models)
    assert e.value.code == 2


def test_cli_calibrate_reports_a_bad_gold_file_in_one_line(tmp_path, fake_models, capsys, tiny_docs):
    from qa.cli import main

    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q"}\n')
    assert main(["calibrate", str(bad), "--index", str(tmp_path / "i")], qa_factory=fake_models) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "answers" in err and err.count("\n") == 1


@pytest.mark.slow
def test_qa_calibrate_on_the_seed_gold_set_sets_the_threshold_ask_uses(real_qa, tmp_path):
    """The real reader over seeds/: `qa calibrate tests/gold/seeds.jsonl` stores a
    threshold with the index and ask() then holds answers against it."""
    from pathlib import Path

    from qa.api import QA

    gold = Path(__file__).parent / "gold" / "seeds.jsonl"
    q = QA(index_dir=tmp_path / "index", corpus_dir=real_qa.settings.corpus_dir, settings=real_qa.settings,
           embedder=real_qa.embedder, reader=real_qa.reader, retriever=real_qa.retriever)
    report = q.calibrate(gold, max_withheld=0.1)
    assert report.stored is not None and report.stored.parent == tmp_path / "index"
    assert report.at_threshold["withheld"] <= 10.0
    assert q.threshold == pytest.approx(report.threshold)
    a = q.ask("Who commanded the 58th Combined Arms Army?")
    assert a.threshold == pytest.approx(report.threshold)
    assert a.best_candidate and (a.found == (a.score >= report.threshold))
    off = q.ask("What is the boiling point of tungsten?")
    assert off.threshold == pytest.approx(report.threshold)


def test_cli_calibrate_draws_no_progress_bar_where_stderr_is_not_a_terminal(tiny_docs, tmp_path, fake_models,
                                                                            capsys):
    # `qa calibrate GOLD 2> log` filled the log with the bar's carriage-return frames (every
    # other bar is off when not a terminal), and an error printed after a bar never closed
    # shared its line: "asking:   0%| ... error: no documents are indexed ...".
    from qa.cli import main

    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    gold = write_gold(tmp_path / "gold.jsonl", GOLD_ROWS)
    assert main(["calibrate", str(gold), "--index", str(tmp_path / "i"), "--dry-run"], qa_factory=fake_models) == 0
    assert capsys.readouterr().err == ""
    q.remove_documents(list(TINY_DOCS))
    assert main(["calibrate", str(gold), "--index", str(tmp_path / "i"), "--dry-run"], qa_factory=fake_models) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no documents are indexed") and err.count("\n") == 1, err


def test_best_f1_over_gold_without_unanswerable_questions_says_it_will_decline_nothing():
    # With no unanswerable question F1 never rewards a decline, so "best F1" chose threshold 0
    # (one gold question was enough) and stored it without a word: from then on every question,
    # off-topic ones too, was answered.
    golds = [("Solberg",), ("1911",), ("red",)]
    cands, scores, right = ["Solberg", "1911", "blue"], [0.9, 0.4, 0.2], [True, True, False]
    t, crit, note = choose_threshold(cands, scores, right, golds)
    assert crit["rule"] == "best F1 over all questions" and t == 0.0
    assert "no unanswerable questions" in note and "--precision" in note
    assert not choose_threshold(cands, scores, right, golds, precision=0.9)[2]  # a criterion of the user's own
    assert not choose_threshold(CANDS, SCORES, RIGHT, GOLDS)[2]  # gold that has some: nothing to say


def test_best_f1_can_choose_to_decline_every_question():
    # The thresholds tried were 0 and the candidates' own scores, so the top candidate was
    # always shown: on gold whose questions the documents do not answer (or one such question)
    # "best F1" chose 0.9 (F1 66.7) or 0 (F1 0) though a threshold above every score declines
    # them all (F1 100), and max_withheld with no right answer to hide kept the top one shown.
    cands, scores, golds = ["x", "y", "z"], [0.2, 0.5, 0.9], [(), (), ()]
    right = [False] * 3
    t, _, _ = choose_threshold(cands, scores, right, golds)
    p = point(t, cands, scores, right, golds)
    assert t > 0.9 and t <= 1.0 and p["f1"] == 100.0 and p["answered"] == 0.0 and p["declined"] == 100.0
    t, _, _ = choose_threshold(["x"], [0.3], [False], [()])
    assert point(t, ["x"], [0.3], [False], [()])["f1"] == 100.0
    t, _, _ = choose_threshold(cands, scores, right, [("p",), ("q",), ()], max_withheld=0.0)
    assert point(t, cands, scores, right, [("p",), ("q",), ()])["answered"] == 0.0
    # a right answer at the top still wins, and a score of 1 cannot be outbid (thresholds are probabilities)
    assert choose_threshold(["a", "z"], [0.9, 0.2], [True, False], [("a",), ()])[0] == 0.9
    assert choose_threshold(["z"], [1.0], [False], [()])[0] <= 1.0


def test_the_printed_curve_keeps_its_columns_on_the_chosen_row():
    """The '<- chosen' mark was part of the declined cell, so that column was as wide as
    the mark and every other row's figure stood far to the right of the chosen row's."""
    from qa.evaluation.calibrate import CalibrationReport

    cands, scores = ["a", "b", "", "c"], [0.9, 0.4, 0.2, 0.05]
    right, golds = [True, False, False, False], [["a"], ["x"], [], []]
    curve = [point(t, cands, scores, right, golds) for t in (0.0, 0.1, 0.5, 0.95)]
    report = CalibrationReport(0.5, {"rule": "best F1"}, point(0.5, cands, scores, right, golds), curve, 4, 2)
    rows = report.format().split("\n")
    header = next(i for i, line in enumerate(rows) if line.lstrip().startswith("threshold"))
    table = rows[header + 2: header + 6]
    assert len(table) == 4 and table[2].endswith("  <- chosen"), table
    ends = {len(line.removesuffix("  <- chosen")) for line in table}
    assert ends == {len(rows[header])}, table  # every row's last figure ends under "declined"
