"""The learning curve file, its table/plot, the ship rule and the run's status parsing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.evaluation.squad import SquadExample
from qa.reader import Span
from qa.training import reader_curve, reader_runs
from qa.training.reader_curve import CurvePoint


def _curve():
    curve = {"shipped": None, "runs": {}, "points": []}
    reader_curve.add_point(curve, CurvePoint("round 2", 8064, 68.9, 732))
    reader_curve.add_point(curve, CurvePoint("reader-continued", 54176, 73.5, 732))
    curve["shipped"] = "reader-continued"
    return curve


def test_ship_rule_needs_one_point_over_the_shipped_reader():
    curve = _curve()
    assert reader_curve.ship_verdict(74.5, curve).startswith("SHIP")
    assert reader_curve.ship_verdict(74.49, curve).startswith("keep")
    curve["shipped"] = None
    assert "measure it first" in reader_curve.ship_verdict(80.0, curve)


def test_points_replace_by_label_and_run_logs_land_at_their_windows(tmp_path):
    curve = _curve()
    reader_curve.add_point(curve, CurvePoint("round 2", 8064, 68.5, 732))
    assert [p["f1"] for p in curve["points"] if p["label"] == "round 2"] == [68.5]
    log = tmp_path / "val.jsonl"
    log.write_text('{"step": 300, "f1": 68.19, "time": 1}\n\n{"step": 600, "windows": 19200, "f1": 70.37, '
                   '"questions": 732, "time": 2}\n')
    assert reader_curve.add_run_log(curve, log, "continued", origin_windows=8064) == 2
    periodic = {p["label"]: p for p in curve["points"] if p["kind"] == "periodic"}
    assert periodic["continued step 300"]["windows"] == 8064 + 300 * 32
    assert periodic["continued step 300"]["questions"] == 400  # old logs: the 400-question sample
    assert periodic["continued step 600"]["windows"] == 8064 + 19200
    path = tmp_path / "docs" / "reader-curve.json"
    reader_curve.save_curve(curve, path)
    assert [p["windows"] for p in json.loads(path.read_text())["points"]] == sorted(
        p["windows"] for p in curve["points"])
    assert reader_curve.shipped_f1(reader_curve.load_curve(path)) == 73.5


def test_render_writes_table_and_png(tmp_path):
    path = tmp_path / "reader-curve.json"
    reader_curve.save_curve(_curve(), path)
    reader_curve.render(path)
    table = path.with_suffix(".md").read_text()
    assert "| reader-continued (shipped) | 54,176 | **73.50** | 732 |" in table
    png = path.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 300_000


def test_score_spans_counts_misses_and_missing_spans():
    ctx = "Oxygen was discovered by Carl Wilhelm Scheele."
    exs = [SquadExample("a", "Oxygen", ctx, "Who?", ("Carl Wilhelm Scheele",), (25,)),
           SquadExample("b", "Oxygen", ctx, "Who else?", ("Scheele",), (38,))]
    spans = [Span(ctx.index("Carl"), len(ctx) - 1, 1.0, 0.0, 0), None]
    em, f1 = reader_curve.score_spans(exs, spans)
    assert (em, f1) == (50.0, 50.0)


def test_status_reads_the_run_files(tmp_path):
    run = tmp_path / "full"
    run.mkdir()
    (run / "train.log").write_text(
        "2026-12-03 19:00:00,000 hardware: cpu AMD EPYC, 2 cores, 2 threads, native bf16 no\n"
        "2026-12-03 19:01:00,000 step 10/10812 epoch 0.00 loss 1.421 lr 1.39e-06 2.5 windows/s eta 2300 min\n"
        "2026-12-03 19:09:00,000 step 20/10812 epoch 0.01 loss 1.419 lr 2.78e-06 3.1 windows/s eta 1850 min\n")
    (run / "val.jsonl").write_text('{"step": 300, "f1": 71.5, "time": 1}\n')
    (tmp_path / "train.pid").write_text("999999999\n")  # no such process
    s = reader_runs.status(tmp_path)
    assert (s["step"], s["total_steps"], s["windows_per_s"], s["alive"]) == (20, 10812, 3.1, False)
    assert s["hardware"].startswith("cpu AMD EPYC") and s["validation"][0]["f1"] == 71.5


def test_start_refuses_while_the_run_is_alive(tmp_path, capsys):
    import subprocess
    import sys
    import time

    # a live process whose command line names train_reader, as the real run's does
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "qa.training.train_reader"])
    try:
        (tmp_path / "train.pid").write_text(f"{proc.pid}\n")
        deadline = time.time() + 20  # until the child has exec'd (its command line is pytest's before)
        while reader_runs.running_pid(tmp_path) is None and time.time() < deadline:
            time.sleep(0.05)
        assert reader_runs.start(tmp_path, tmp_path) == 0
        assert "already going" in capsys.readouterr().out
        assert not (tmp_path / "code").exists()  # nothing snapshotted, nothing started
        assert (tmp_path / "train.pid").read_text().strip() == str(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert reader_runs.running_pid(tmp_path) is None


def test_run_arguments_match_the_long_schedule():
    from pathlib import Path

    args = reader_runs.train_args(Path("/r"), Path("/d"))
    pairs = dict(zip(args[::2], args[1::2]))
    assert float(pairs["--epochs"]) == 3 and float(pairs["--lr"]) == 3e-5 and pairs["--seed"] == "13"
    assert pairs["--warmup"] == "0.02" and pairs["--out"] == "/r/full" and pairs["--init"] == "qa/models/reader"


def _run_with_export(tmp_path, step: int, f1: float, curve_f1_shipped: float = 73.5):
    """A runs folder holding one export of ``step``, measured on the curve at ``f1``, and a shipped reader."""
    runs, target, curve_path = tmp_path / "runs", tmp_path / "reader", tmp_path / "curve.json"
    export = runs / reader_runs.RUN / "exports" / f"step-{step}"
    export.mkdir(parents=True)
    target.mkdir()
    for name in reader_runs.SHIP_FILES:
        (export / name).write_text(f"new {name}")
        (target / name).write_text(f"old {name}")
    (target / "README.md").write_text("model card")
    (target / "calibration.json").write_text("{}")
    (target / "training.json").write_text('{"train_examples": 112925}')
    (export / "training.json").write_text(json.dumps({
        "data": "/somewhere/shared/data/squad", "out": "/root/.cache/qa/reader-runs/full", "step": step,
        "train_examples": -1, "train_unanswerable": -1,
        "init_training": {"train_examples": 112925, "train_unanswerable": 11121}}))
    curve = _curve()
    curve["points"][-1]["f1"] = curve_f1_shipped
    reader_curve.add_point(curve, CurvePoint(f"{reader_runs.CURVE_RUN} step {step}", 120_000, f1, 732,
                                             run=reader_runs.CURVE_RUN))
    reader_curve.save_curve(curve, curve_path)
    return runs, target, curve_path


def test_ship_swaps_in_a_validated_export_and_recalibrates_it(tmp_path):
    runs, target, curve_path = _run_with_export(tmp_path, 2275, 75.7)
    calls = []
    assert reader_runs.ship(runs, target=target, curve_path=curve_path,
                            calibrate=lambda model, preds: calls.append((model, preds)) or 0) == 0
    assert all((target / n).read_text() == f"new {n}" for n in reader_runs.SHIP_FILES)
    assert (target / "README.md").read_text() == "model card"  # the card stays; calibration is refit
    record = json.loads((target / "training.json").read_text())
    assert record["out"] == "RUNS/full" and not record["data"].startswith("/")
    assert (record["train_examples"], record["train_unanswerable"]) == (112925, 11121)
    assert calls == [(target, runs / "full" / "calib-preds-step-2275.json")]
    curve = reader_curve.load_curve(curve_path)
    assert curve["shipped"] == "r3 step 2275"  # the next export is judged against this one
    assert reader_curve.ship_verdict(76.0, curve).startswith("keep")
    assert not list(tmp_path.glob("reader.ship.*"))


def test_ship_refuses_an_export_under_the_ship_rule_or_not_measured(tmp_path, capsys):
    runs, target, curve_path = _run_with_export(tmp_path, 2275, 74.0)  # +0.5 over 73.5: under the rule
    never = lambda *_: pytest.fail("no recalibration for a refused ship")  # noqa: E731
    assert reader_runs.ship(runs, target=target, curve_path=curve_path, calibrate=never) == 1
    assert "keep the shipped reader" in capsys.readouterr().err
    assert (target / "model.safetensors").read_text() == "old model.safetensors"
    assert reader_runs.ship(runs, step=999, target=target, curve_path=curve_path, calibrate=never) == 1
    assert "no export of step 999" in capsys.readouterr().err
    curve = reader_curve.load_curve(curve_path)
    curve["points"] = [p for p in curve["points"] if not p["label"].startswith("r3")]
    reader_curve.save_curve(curve, curve_path)
    assert reader_runs.ship(runs, target=target, curve_path=curve_path, calibrate=never) == 1
    assert "not on the curve" in capsys.readouterr().err
    assert reader_curve.load_curve(curve_path)["shipped"] == "reader-continued"


def test_a_run_restarted_from_newer_shipped_weights_goes_on_the_curve_after_them(tmp_path):
    runs, curve_path = tmp_path / "runs", tmp_path / "curve.json"
    curve = _curve()
    reader_curve.add_point(curve, CurvePoint("r3 step 2275", 126_976, 75.7, 732, run="r3"))
    curve["shipped"] = "r3 step 2275"
    reader_curve.save_curve(curve, curve_path)
    assert reader_runs.run_origin(runs) == ("r3", reader_runs.ORIGIN_WINDOWS)  # the run begun on December 3
    # the machine did not come back: a fresh run starts at the shipped reader, under a name of its own
    other_recipe = tmp_path / "shipped"
    other_recipe.mkdir()
    (other_recipe / "training.json").write_text(json.dumps({**reader_runs.RECIPE, "lr": 1e-4, "step": 2275}))
    assert reader_runs.record_origin(runs, curve_path, shipped_dir=other_recipe) == ("r3-2", 126_976)
    assert reader_runs.run_origin(runs) == ("r3-2", 126_976)
    (runs / "full" / "val.jsonl").write_text('{"step": 75, "f1": 76.0}\n')
    curve = reader_curve.load_curve(curve_path)
    name, origin = reader_runs.run_origin(runs)
    reader_curve.add_run_log(curve, runs / "full" / "val.jsonl", name, origin)
    labels = {p["label"]: p["windows"] for p in curve["points"]}
    assert labels["r3-2 step 75"] == 126_976 + 75 * 32 and labels["r3 step 2275"] == 126_976  # nothing replaced


def test_lower_priority_writes_the_autogroup_nice(tmp_path):
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "autogroup").write_text("/autogroup-7 nice 0\n")
    assert reader_runs.lower_priority(4242, proc=tmp_path)
    assert (tmp_path / "4242" / "autogroup").read_text() == "19\n"
    assert not reader_runs.lower_priority(4343, proc=tmp_path)  # no such process: reported, not raised


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="no scheduler autogroups on this kernel")
def test_the_background_run_yields_the_cpu_to_questions(tmp_path, monkeypatch):
    """The run is niced in its own session, i.e. its own autogroup, where nice alone does nothing
    against other sessions (ask() p50 1,068 ms beside it instead of 79 ms): ``start`` lowers the group."""
    import os
    import signal
    import stat

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(reader_runs, "snapshot_code", lambda target: target.mkdir(parents=True, exist_ok=True))
    runs = tmp_path / "runs"
    assert reader_runs.start(runs, tmp_path, python=str(fake)) == 0
    pid = int((runs / "train.pid").read_text())
    try:
        assert Path(f"/proc/{pid}/autogroup").read_text().split()[-1] == "19"
    finally:
        os.kill(pid, signal.SIGKILL)


def test_a_restart_from_this_recipes_weights_goes_on_with_their_schedule(tmp_path):
    """Shipped weights that are this recipe's own at step 2275: the fresh run starts at that step
    (learning rate and data order go on) instead of a new schedule on top of them, and its points
    still land after the shipped point on the curve."""
    runs, curve_path = tmp_path / "runs", tmp_path / "curve.json"
    curve = _curve()
    reader_curve.add_point(curve, CurvePoint("r3 step 2275", 126_976, 75.7, 732, run="r3"))
    curve["shipped"] = "r3 step 2275"
    reader_curve.save_curve(curve, curve_path)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "training.json").write_text(json.dumps({**reader_runs.RECIPE, "step": 2275, "windows": 72_800}))
    assert reader_runs.shipped_step(shipped) == 2275
    name, origin = reader_runs.record_origin(runs, curve_path, shipped_dir=shipped)
    assert name == "r3-2" and origin + 2275 * 32 == 126_976  # step 2275 of the new run is the shipped point
    args = reader_runs.train_args(runs, tmp_path)
    assert args[args.index("--start-step") + 1] == "2275"
    assert args[args.index("--lr") + 1] == "3e-05" and args[args.index("--epochs") + 1] == "3.0"
    # another recipe's weights (or none recorded): the schedule starts at 0
    (shipped / "training.json").write_text(json.dumps({**reader_runs.RECIPE, "seed": 42, "step": 2275}))
    assert reader_runs.shipped_step(shipped) == 0
    (runs / "full" / "origin.json").unlink()
    assert "--start-step" not in reader_runs.train_args(runs, tmp_path)


def test_restart_warmup_climbs_back_to_the_schedule():
    from qa.training.train_reader import restart_warmup

    assert restart_warmup(2275, 2275, 216) == pytest.approx(1 / 216)
    assert restart_warmup(2275 + 107, 2275, 216) == pytest.approx(0.5)
    assert restart_warmup(2275 + 215, 2275, 216) == 1.0 and restart_warmup(9000, 2275, 216) == 1.0


def _fake_train(calls: list, windows: int = 4576):
    """Stands in for ``train_reader.main`` (plumbing only): writes an export as training would."""

    def train(argv: list[str]) -> int:
        calls.append(argv)
        a = dict(zip(argv[::2], argv[1::2]))
        out, export, source = Path(a["--out"]), Path(a["--export"]), Path(a["--init"])
        out.mkdir(parents=True)
        (out / "checkpoint.pt").write_text("big")
        export.mkdir(parents=True)
        for name in reader_runs.SHIP_FILES:
            (export / name).write_text(f"cooled {name}")
        (export / "training.json").write_text(json.dumps({
            **reader_runs.COOLDOWN, "init": str(source), "out": str(out), "export": str(export), "step": 143,
            "windows": windows, "train_examples": 4000, "train_unanswerable": 300,
            "init_training": json.loads((source / "training.json").read_text())}))
        return 0

    return train


def test_cooldown_branches_an_export_onto_the_curve_and_ships_from_it(tmp_path, capsys):
    """A cooldown is trained from the export (not the run's checkpoint), lands on the curve beside it
    at its own windows, may be shipped, and a restart from it goes on with the run's schedule."""
    runs, target, curve_path = _run_with_export(tmp_path, 4450, 76.38, curve_f1_shipped=75.7)
    export = runs / "full" / "exports" / "step-4450"
    export.joinpath("training.json").write_text(json.dumps({**reader_runs.RECIPE, "step": 4450,
                                                            "init_training": {"train_examples": 112925}}))
    calls: list = []
    measured: list = []
    assert reader_runs.cooldown(runs, None, curve_path=curve_path, train=_fake_train(calls),
                                validate=lambda d, data: measured.append(d) or {"f1": 76.95, "questions": 732}) == 0
    cooled = runs / "full" / reader_runs.COOLDOWNS / "step-4450"
    args = dict(zip(calls[0][::2], calls[0][1::2]))
    assert args["--init"] == str(export) and float(args["--lr"]) == reader_runs.COOLDOWN["lr"]
    assert args["--eval-every"] == "0" and measured == [cooled]  # measured like the exports, on all 732
    assert not (runs / "full" / reader_runs.COOLDOWNS / "step-4450.run").exists()  # its checkpoint goes
    assert json.loads((cooled / "training.json").read_text())["cooldown"]["schedule_step"] == 4450
    curve = reader_curve.load_curve(curve_path)
    point = next(p for p in curve["points"] if p["kind"] == "cooldown")
    assert point["label"] == "r3 step 4450 + cooldown" and point["f1"] == 76.95
    assert point["windows"] == reader_runs.ORIGIN_WINDOWS + 4450 * 32 + 4576
    assert "SHIP" in capsys.readouterr().out  # 76.95 >= 75.7 + 1
    reader_curve.render(curve_path)
    assert "| r3 step 4450 + cooldown | " in curve_path.with_suffix(".md").read_text()

    calls = []
    assert reader_runs.ship(runs, target=target, curve_path=curve_path, cooled=True,
                            calibrate=lambda model, preds: calls.append(preds) or 0) == 0
    assert (target / "model.safetensors").read_text() == "cooled model.safetensors"
    assert calls == [runs / "full" / "calib-preds-cooldown-step-4450.json"]
    curve = reader_curve.load_curve(curve_path)
    assert curve["shipped"] == "r3 step 4450 + cooldown" and reader_curve.shipped_f1(curve) == 76.95
    record = json.loads((target / "training.json").read_text())
    assert record["init"] == "RUNS/full/exports/step-4450" and not record["out"].startswith("/")
    # the machine did not come back: the fresh run goes on at the export's step of the schedule
    assert reader_runs.shipped_step(target) == 4450
    name, origin = reader_runs.record_origin(tmp_path / "runs2", curve_path, shipped_dir=target)
    assert origin + 4450 * 32 == point["windows"]


def test_cooldown_needs_an_export(tmp_path, capsys):
    never = lambda *_: pytest.fail("nothing to train")  # noqa: E731
    assert reader_runs.cooldown(tmp_path / "runs", None, curve_path=tmp_path / "c.json", train=never) == 1
    assert "run `make train-reader-export` first" in capsys.readouterr().err
    runs, target, curve_path = _run_with_export(tmp_path, 2275, 75.7)
    assert reader_runs.ship(runs, target=target, curve_path=curve_path, cooled=True, calibrate=never) == 1
    assert "no cooldown in" in capsys.readouterr().err


def test_a_relative_runs_folder_keeps_the_checkpoint_outside_the_code_snapshot(tmp_path, monkeypatch):
    """``--runs runs`` (or ``make ... RUNS=runs``): the run is started in ``RUNS/code``, so a relative
    ``--out`` put its checkpoint inside the snapshot, which the next ``start`` wipes (progress lost)."""
    import stat
    import time

    seen = tmp_path / "argv.txt"
    fake = tmp_path / "python"
    fake.write_text(f'#!/bin/sh\n{{ pwd; echo "$@"; }} > {seen}.tmp && mv {seen}.tmp {seen}\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(reader_runs, "snapshot_code", lambda target: target.mkdir(parents=True, exist_ok=True))
    monkeypatch.chdir(tmp_path)
    assert reader_runs.start(Path("runs"), tmp_path, python=str(fake)) == 0
    deadline = time.time() + 20
    while not seen.exists() and time.time() < deadline:
        time.sleep(0.05)
    cwd, argv = seen.read_text().splitlines()
    args = argv.split()
    out = Path(cwd) / args[args.index("--out") + 1]  # as the training resolves it
    assert out == tmp_path / "runs" / "full"
    assert not out.is_relative_to(tmp_path / "runs" / "code")


def test_two_starts_at_once_start_one_run(tmp_path, monkeypatch, capsys):
    """Two sessions' ``make train-reader-bg`` at the same moment: both found no live pid (the first
    writes it only once its run is spawned) and started two runs on one checkpoint; one must refuse."""
    import os
    import signal
    import stat
    import threading
    import time

    spawned = tmp_path / "spawned"
    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\necho $$ >> {spawned}\nexec sleep 30\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(reader_runs, "snapshot_code",  # git archive takes a while: both starts are inside it
                        lambda target: time.sleep(0.5) or target.mkdir(parents=True, exist_ok=True))
    monkeypatch.setattr(reader_runs, "record_origin", lambda runs: None)
    runs = tmp_path / "runs"
    runs.mkdir()
    starts = [threading.Thread(target=reader_runs.start, args=(runs, tmp_path), kwargs={"python": str(fake)})
              for _ in range(2)]
    for t in starts:
        t.start()
    for t in starts:
        t.join()
    time.sleep(1.0)  # a second run, if one was started, has written its pid by now
    pids = [int(x) for x in spawned.read_text().split()] if spawned.exists() else []
    try:
        assert len(pids) == 1, pids
        assert int((runs / "train.pid").read_text()) == pids[0]
        assert "nothing started" in capsys.readouterr().out
        # and while it runs, a later start refuses as well
        assert reader_runs.start(runs, tmp_path, python=str(fake)) == 0
        assert "nothing started" in capsys.readouterr().out
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)


def test_a_full_or_unwritable_runs_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """start, export, cooldown and ship write into the runs folder: a full disk or a runs path that cannot
    be a folder gave an OSError traceback; one line now, and the run's checkpoint is left alone."""
    import errno

    from qa.training import train_reader

    squad_dir = tmp_path / "squad"
    squad_dir.mkdir()
    (squad_dir / "dev-v1.1.json").write_text('{"data": []}')
    not_a_folder = tmp_path / "runs-file"
    not_a_folder.write_text("")
    assert reader_runs.main(["start", "--runs", str(not_a_folder), "--data", str(squad_dir)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(not_a_folder) in err and len(err.splitlines()) == 1

    runs = tmp_path / "runs"
    (runs / reader_runs.RUN).mkdir(parents=True)
    (runs / reader_runs.RUN / "checkpoint.pt").write_bytes(b"weights")

    def full(argv):
        raise OSError(errno.ENOSPC, "No space left on device", str(runs / reader_runs.RUN / "exports"))

    monkeypatch.setattr(train_reader, "main", full)
    assert reader_runs.main(["export", "--runs", str(runs)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "No space left on device" in err and len(err.splitlines()) == 1
    assert (runs / reader_runs.RUN / "checkpoint.pt").read_bytes() == b"weights"


def test_reader_curve_cli_without_an_export_or_a_log_is_one_line(tmp_path, capsys):
    """--validate a folder the export never reached, --run-log a log not written yet: one line, exit 1;
    --plot of a curve in a folder not made yet writes it (the table's write had no folder)."""
    assert reader_curve.main(["--validate", str(tmp_path / "exports" / "step-25")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: no reader model at") and len(err.splitlines()) == 1
    curve = tmp_path / "new" / "reader-curve.json"
    assert reader_curve.main(["--run-log", str(tmp_path / "val.jsonl"), "--run", "r9", "--curve", str(curve)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "val.jsonl" in err and len(err.splitlines()) == 1
    assert reader_curve.main(["--plot", "--curve", str(curve)]) == 0
    assert curve.with_suffix(".md").exists() and curve.with_suffix(".png").exists()
    assert "Traceback" not in capsys.readouterr().err


def test_a_half_written_validation_line_does_not_stop_status_or_the_curve(tmp_path):
    """The run appends to val.jsonl while status or an export reads it (or it stopped mid-line on a full
    disk): the partial last line is skipped, the points before it are read."""
    run = tmp_path / "full"
    run.mkdir()
    (run / "val.jsonl").write_text('{"step": 300, "f1": 71.5, "time": 1}\n{"step": 600, "f1')
    assert [v["step"] for v in reader_runs.status(tmp_path)["validation"]] == [300]
    curve = _curve()
    assert reader_curve.add_run_log(curve, run / "val.jsonl", "r9", 0) == 1
