"""Training-data preparation for the reader (no model, no training run)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from transformers import AutoTokenizer

from qa.training.calibration_fit import sweep
from qa.embedding import packaged_minilm_path
from qa.evaluation.squad import SquadExample
from qa.training.train_reader import featurize, rebalance, without_answer

PARAS = [
    "Ada Lovelace wrote the first program for the Analytical Engine.",
    "Charles Babbage designed the Analytical Engine in London.",
    "The engine was never finished in Babbage's lifetime.",
]


def _examples() -> list[SquadExample]:
    return [
        SquadExample("a1", "Engine", PARAS[0], "Who wrote the first program?", ("Ada Lovelace",), (0,)),
        SquadExample("a2", "Engine", PARAS[1], "Who designed the engine?", ("Charles Babbage", "Babbage"), (0, 8)),
        SquadExample("a3", "Engine", PARAS[1], "Where was it designed?", ("London",), (PARAS[1].index("London"),)),
        SquadExample("u1", "Engine", PARAS[2], "Who finished the engine?", ()),
    ]


def test_rebalance_counts_and_hard_negatives():
    out = rebalance(_examples(), unanswerable_repeat=3, negatives=1.0, answerable_fraction=1.0, seed=0)
    assert sum(e.id == "u1" for e in out) == 3
    negs = [e for e in out if e.id.endswith("-neg")]
    # every answerable question has a paragraph without its answer ("Babbage" is in
    # two paragraphs, so a2's negative can only be the first one)
    assert len(negs) == 3
    for n in negs:
        assert n.is_impossible
        original = next(e for e in _examples() if e.id + "-neg" == n.id)
        assert n.context != original.context and n.question == original.question
        assert not any(a.lower() in n.context.lower() for a in original.answers)
    assert next(n for n in negs if n.id == "a2-neg").context == PARAS[0]


def test_rebalance_is_deterministic_and_keeps_a_share():
    a = rebalance(_examples(), 1, 0.0, answerable_fraction=2 / 3, seed=7)
    b = rebalance(_examples(), 1, 0.0, answerable_fraction=2 / 3, seed=7)
    assert [e.id for e in a] == [e.id for e in b]
    assert sum(not e.is_impossible for e in a) == 2 and sum(e.is_impossible for e in a) == 1


def test_without_answer_drops_the_answers_sentence_and_keeps_the_rest():
    context = ("General Popov commanded the 58th Army. He was dismissed in July. "
               "Colonel Ivanov replaced him. The army is based near Berdyansk.")
    e = SquadExample("q", "Army", context, "Who replaced Popov?", ("Colonel Ivanov",), (context.index("Colonel"),))
    d = without_answer(e)
    assert d is not None and d.is_impossible and d.id == "q-del" and d.question == e.question
    assert d.context == ("General Popov commanded the 58th Army. He was dismissed in July. "
                         "The army is based near Berdyansk.")
    # An answer whose text also occurs in another sentence cannot be taken out: no example.
    twice = SquadExample("t", "Army", "Ivanov came. Ivanov left.", "Who came?", ("Ivanov",), (0,))
    assert without_answer(twice) is None
    # Nothing left once the answer's sentence goes: no example.
    alone = SquadExample("o", "Army", "Ivanov replaced him.", "Who replaced him?", ("Ivanov",), (0,))
    assert without_answer(alone) is None


def test_rebalance_adds_deletions_as_unanswerable():
    # One-sentence paragraphs: nothing would be left, so no deletions are made.
    out = rebalance(_examples(), 1, 0.0, answerable_fraction=1.0, seed=0, deletions=1.0)
    assert not any(e.id.endswith("-del") for e in out) and len(out) == 4
    longer = [SquadExample("x", "T", "Ada wrote. Bob read. Cy slept.", "Who read?", ("Bob",), (11,))]
    out = rebalance(longer, 1, 0.0, answerable_fraction=1.0, seed=0, deletions=1.0)
    assert [(e.id, e.context, e.is_impossible) for e in out if e.id.endswith("-del")] == [
        ("x-del", "Ada wrote. Cy slept.", True)]


def test_featurize_labels_answer_tokens_and_null():
    tok = AutoTokenizer.from_pretrained(packaged_minilm_path())
    feats = featurize(_examples(), tok, max_length=64, stride=16)
    assert len(feats) == 4
    ids, _, s, e = feats[2]
    assert tok.decode(ids[s:e + 1]).lower() == "london"
    assert feats[3][2:] == (0, 0)  # unanswerable: [CLS]


def test_sweep_scores_answers_and_abstentions():
    probs = np.array([0.9, 0.2, 0.8, 0.1])
    f1 = np.array([1.0, 1.0, 0.0, 0.0])
    impossible = np.array([False, False, True, True])
    lo, hi = sweep(probs, f1, impossible, [0.0, 0.5])
    assert lo["f1"] == 50.0 and lo["no_answer_accuracy"] == 0.0
    assert hi["f1"] == 50.0 and hi["f1_answerable"] == 50.0 and hi["no_answer_accuracy"] == 50.0


def test_linear_schedule_fits_its_decay_to_the_time_left():
    from qa.training.train_reader import LinearSchedule

    s = LinearSchedule(warmup=10, total=1000)
    assert s(5) == 0.5 and s(10) == 1.0
    assert s.fit(step=100, steps_per_s=2.0, seconds_left=50) == 200  # 100 more steps fit
    assert s(150) == (200 - 150) / (200 - 10) and s(200) == 0.0
    assert s.fit(step=150, steps_per_s=100.0, seconds_left=1e6) == 1000  # never past the planned end
    assert s.fit(step=300, steps_per_s=1.0, seconds_left=0) == 301  # out of time: ends at the next step
    # at the planned end with time to spare: the run ends there (it used to go on at lr 0 until the deadline)
    assert s.fit(step=1000, steps_per_s=100.0, seconds_left=1e6) == 1000


def _tiny_squad(folder):
    """A SQuAD folder with every file of the full mix: a few training questions, validation on "Oxygen"."""
    import json

    train = {"data": [{"title": "Engine", "paragraphs": [
        {"context": PARAS[0], "qas": [{"id": "t1", "question": "Who wrote the first program?",
                                       "answers": [{"text": "Ada Lovelace", "answer_start": 0}]}]},
        {"context": PARAS[1], "qas": [{"id": "t2", "question": "Where was it designed?",
                                       "answers": [{"text": "London", "answer_start": PARAS[1].index("London")}]},
                                      {"id": "t3", "question": "Who designed the engine?",
                                       "answers": [{"text": "Charles Babbage", "answer_start": 0}]}]}]}]}
    ctx = "Oxygen was discovered by Carl Wilhelm Scheele in Uppsala in 1773."
    dev = {"data": train["data"] + [{"title": "Oxygen", "paragraphs": [{"context": ctx, "qas": [
        {"id": "v1", "question": "Who discovered oxygen?",
         "answers": [{"text": "Carl Wilhelm Scheele", "answer_start": ctx.index("Carl")}]},
        {"id": "v2", "question": "When was oxygen discovered?",
         "answers": [{"text": "1773", "answer_start": ctx.index("1773")}]}]}]}]}
    (folder / "train").mkdir(parents=True)
    for name in ("dev-v2.0-half.json", "train/train-v1.1-full.json", "train/train-v2.0-prefix.json",
                 "train/qed-train.json"):
        (folder / name).write_text(json.dumps(train))
    (folder / "dev-v1.1.json").write_text(json.dumps(dev))
    return folder


@pytest.mark.slow
def test_a_tiny_real_run_under_a_time_budget_validates_and_exports(tmp_path):
    """The device script's path on the CPU: from the shipped reader, a time budget, all validation, fp16 export."""
    import json

    from qa.config import SHIPPED_READER
    from qa.training import train_reader

    data = _tiny_squad(tmp_path / "squad")
    rc = train_reader.main(["--mix", "full", "--data", str(data), "--init", str(SHIPPED_READER),
                            "--out", str(tmp_path / "run"), "--export", str(tmp_path / "export"),
                            "--epochs", "50", "--batch-size", "2", "--lr", "1e-5", "--save-every", "0",
                            "--eval-every", "0", "--eval-questions", "0", "--time-budget", "30", "--threads", "1"])
    assert rc == 0
    log = (tmp_path / "run" / "train.log").read_text()
    assert "hardware: cpu" in log and "native bf16" in log
    (val,) = [json.loads(x) for x in (tmp_path / "run" / "val.jsonl").read_text().splitlines()]
    assert val["questions"] == 2 and val["windows"] == 2 * val["step"]
    windows = int(re.search(r"windows (\d+), mean len", log).group(1))
    planned = math.ceil(windows / 2) * 50  # batch 2, 50 epochs
    assert 0 < val["step"] <= planned
    # cut short by the budget (how far it gets depends on the machine's load) or done in time; the log says which
    assert ("time budget" in log) == (val["step"] < planned), log[-500:]
    assert val["f1"] > 50  # the shipped reader answers both questions; a few tiny steps at lr 1e-5 keep that
    record = json.loads((tmp_path / "export" / "training.json").read_text())
    assert record["time_budget"] == 30 and record["init"] == str(SHIPPED_READER)
    assert record["step"] == val["step"] and record["windows"] == val["windows"]  # a cooldown's curve point uses them
    from safetensors import safe_open

    with safe_open(str(tmp_path / "export" / "model.safetensors"), "pt") as f:
        assert str(f.get_tensor(next(iter(f.keys()))).dtype) == "torch.float16"


@pytest.mark.slow
def test_a_fresh_run_can_start_where_its_init_weights_left_the_schedule(tmp_path):
    """--start-step: the schedule (learning rate, data order) goes on from that step, with a warm-up for the
    new optimizer, rather than starting again on top of weights that have already been through it."""
    import json

    from qa.config import SHIPPED_READER
    from qa.training import train_reader

    data = _tiny_squad(tmp_path / "squad")
    rc = train_reader.main(["--mix", "full", "--data", str(data), "--init", str(SHIPPED_READER),
                            "--out", str(tmp_path / "run"), "--epochs", "4", "--batch-size", "2", "--lr", "1e-5",
                            "--warmup", "0.5", "--start-step", "3", "--save-every", "0", "--eval-every", "0",
                            "--eval-questions", "0", "--threads", "1"])
    assert rc == 0
    log = (tmp_path / "run" / "train.log").read_text()
    total = int(re.search(r"continuing the schedule at step 3/(\d+)", log).group(1))
    assert total > 3
    (val,) = [json.loads(x) for x in (tmp_path / "run" / "val.jsonl").read_text().splitlines()]
    assert val["step"] == total  # it went on from step 3 to the schedule's end
    assert f"done: {total} steps" in log


def _damaged_checkpoints(run):
    """A truncated checkpoint (a copy cut short) and one of another model (same keys, other weights)."""
    import torch

    run.mkdir(parents=True, exist_ok=True)
    buf = run / "whole.pt"
    torch.save({"model": {"w": torch.zeros(3)}, "opt": {}, "sched": {}, "step": 50, "args": {"batch_size": 32}}, buf)
    whole = buf.read_bytes()
    buf.unlink()
    return {"truncated": whole[: len(whole) // 2], "other model": whole}


@pytest.mark.parametrize("damage", ["truncated", "other model"])
def test_exporting_a_damaged_or_foreign_checkpoint_is_one_line_and_leaves_it(tmp_path, capsys, damage):
    from qa.config import SHIPPED_READER
    from qa.training import train_reader

    run = tmp_path / "run"
    data = _damaged_checkpoints(run)[damage]
    (run / "checkpoint.pt").write_bytes(data)
    rc = train_reader.main(["--export-checkpoint", "--out", str(run), "--export", str(tmp_path / "export"),
                            "--init", str(SHIPPED_READER)])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    (line,) = [ln for ln in err.splitlines() if "error:" in ln]
    assert str(run / "checkpoint.pt") in line
    assert ("cannot be read" if damage == "truncated" else "another model") in line
    assert (run / "checkpoint.pt").read_bytes() == data  # the run's progress stays
    assert not (tmp_path / "export").exists()


@pytest.mark.parametrize("damage", ["truncated", "other model"])
def test_resuming_from_a_damaged_or_foreign_checkpoint_refuses_and_keeps_it(tmp_path, capsys, damage):
    """A resume must not train on (and overwrite) a checkpoint it cannot load: one line, nothing written."""
    from qa.config import SHIPPED_READER
    from qa.training import train_reader

    squad_dir = _tiny_squad(tmp_path / "squad")
    run = tmp_path / "run"
    data = _damaged_checkpoints(run)[damage]
    (run / "checkpoint.pt").write_bytes(data)
    rc = train_reader.main(["--mix", "full", "--data", str(squad_dir), "--init", str(SHIPPED_READER),
                            "--out", str(run), "--epochs", "1", "--batch-size", "2", "--save-every", "1",
                            "--eval-every", "0", "--eval-questions", "0", "--threads", "1"])
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert "error: " + str(run / "checkpoint.pt") in err
    assert (run / "checkpoint.pt").read_bytes() == data
    assert not (run / "val.jsonl").exists()


def test_reader_runs_export_stops_at_an_unreadable_checkpoint(tmp_path, capsys):
    from qa.training import reader_runs

    run = tmp_path / "runs" / reader_runs.RUN
    data = _damaged_checkpoints(run)["truncated"]
    (run / "checkpoint.pt").write_bytes(data)
    curve = tmp_path / "curve.json"
    assert reader_runs.export(tmp_path / "runs", None, curve_path=curve) == 1
    assert "cannot be read" in capsys.readouterr().err
    assert (run / "checkpoint.pt").read_bytes() == data and not curve.exists()
    assert not list(run.glob("exports/step-*"))
