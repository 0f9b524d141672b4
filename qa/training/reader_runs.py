"""The reader-training run that spans sessions: start or resume it, see where it is, export it.

One long schedule (3 epochs of the full mix from the shipped reader, lr 3e-5,
2% warm-up, seed 13) runs niced in the background in ``RUNS/full`` (default
``~/.cache/qa/reader-runs``, ``QA_READER_RUNS`` or ``make ... RUNS=``), outside
the work tree, so it survives when the same machine comes back. Chaining short
runs lost F1 (a fresh warm-up on a finished schedule: 73.6 → 73.0), so every
session resumes this one from its checkpoint instead of starting a new one.

    python -m qa.training.reader_runs start    # = make train-reader-bg: start, or resume after a stop
    python -m qa.training.reader_runs status   # = make train-reader-status
    python -m qa.training.reader_runs export   # = make train-reader-export: latest checkpoint → curve
    python -m qa.training.reader_runs cooldown # = make train-reader-cooldown: an export, annealed → curve
    python -m qa.training.reader_runs ship     # = make train-reader-ship: a validated export → qa/models/reader

The run executes a snapshot of the committed tree (``git archive HEAD`` into
``RUNS/code``), so merges into the work tree cannot change a module under it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from qa._files import atomic_write_json
from qa.config import ReaderRunConfig
from qa.evaluation import squad
from qa.training import reader_curve

REPO = Path(__file__).resolve().parents[2]
RUN = "full"
#: The curve's name for the run begun on December 3 and the windows of the weights it started from
#: (round 2's 8,064 + reader-continued's 46,112: the shipped reader when it began). A run started
#: later records its own in ``RUNS/full/origin.json`` (``record_origin``).
CURVE_RUN = "r3"
ORIGIN_WINDOWS = 54_176
ORIGIN_FILE = "origin.json"
BATCH_SIZE = 32


#: The one long schedule's recipe (``train_reader`` options; ``training.json`` keys).
RECIPE = {"mix": "full", "epochs": 3.0, "lr": 3e-5, "warmup": 0.02, "negatives": 0.1, "seed": 13,
          "batch_size": BATCH_SIZE}

#: A cooldown branch off an export (``cooldown``): the export's weights trained on for ~4.6k windows
#: (6 minutes on a 2-core bf16 CPU) with the learning rate warming to 1e-5 and decaying to zero, as a
#: warmup-stable-decay schedule ends. Mid-schedule the run's rate is still high, and its weights
#: carry that noise; the branch takes it out without touching the run. Measured from step 4450
#: (December 7, all 732 validation questions): 76.38 -> 76.93.
COOLDOWN = {"mix": "prefix", "limit": 4000, "epochs": 1.0, "lr": 1e-5, "warmup": 0.1, "negatives": 0.1, "seed": 7,
            "batch_size": BATCH_SIZE}
COOLDOWNS = "cooldowns"


def train_args(runs: Path, data: Path, threads: int = 2) -> list[str]:
    """The run's arguments: identical at every start, so that a resume continues the same schedule."""
    out = runs / RUN
    recipe = [x for k, v in RECIPE.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    start = run_start_step(runs)
    return ["--data", str(data), "--init", "qa/models/reader", "--out", str(out), "--export", str(out / "export"),
            *recipe, "--save-every", "25", "--eval-every", "300", "--threads", str(threads),
            *(["--start-step", str(start)] if start else [])]


def running_pid(runs: Path) -> int | None:
    """The pid in ``RUNS/train.pid`` if that process is alive and is a reader training."""
    try:
        pid = int((runs / "train.pid").read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        return None
    return pid if "train_reader" in cmdline else None


def snapshot_code(target: Path) -> None:
    """The committed tree (HEAD) into ``target``, replacing an older snapshot."""
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True)
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)


def run_origin(runs: Path) -> tuple[str, int]:
    """The curve's name for the run in ``runs`` and the windows its starting weights had seen since round 1."""
    f = runs / RUN / ORIGIN_FILE
    if f.exists():
        d = json.loads(f.read_text())
        return d["curve_run"], int(d["origin_windows"])
    return CURVE_RUN, ORIGIN_WINDOWS


def run_start_step(runs: Path) -> int:
    """The schedule step a fresh run began at (``record_origin``); 0 for a run that began at step 0."""
    f = runs / RUN / ORIGIN_FILE
    return int(json.loads(f.read_text()).get("start_step", 0)) if f.exists() else 0


def shipped_step(shipped_dir: Path) -> int:
    """The step of this recipe's schedule the shipped weights were trained to, or 0 when they come
    from another recipe (then a fresh run starts its schedule at the beginning)."""
    try:
        record = json.loads((shipped_dir / "training.json").read_text())
    except (OSError, ValueError):
        return 0
    if "cooldown" in record:  # a cooldown branch: the run goes on from the export it branched off
        record = record.get("init_training") or {}
    same = all(record.get(k) == v for k, v in RECIPE.items())
    return int(record.get("step") or 0) if same else 0


def record_origin(runs: Path, curve_path: Path = reader_curve.CURVE_JSON,
                  shipped_dir: Path = REPO / "qa" / "models" / "reader") -> tuple[str, int]:
    """At a fresh start: the run begins at the shipped reader, so its points go on the curve after it.

    Without this, a run restarted from newer shipped weights (the machine did not come back) would
    plot its points at the first run's windows and, under the first run's labels, replace them.
    When the shipped weights are this recipe's own at step S, the run goes on from S (``--start-step``):
    a fresh schedule on top of trained weights climbs back to the peak learning rate and re-reads the
    batches they have seen — the chaining that lost F1 before (73.6 -> 73.0) and that put run r3-2
    back to 73.6 on its 400-question sample at step 600, from 76.8 at step 300."""
    curve = reader_curve.load_curve(curve_path)
    shipped = reader_curve.shipped_point(curve)
    taken = {p.get("run") for p in curve["points"]} | {p["label"].split(" step ")[0] for p in curve["points"]}
    name = CURVE_RUN if CURVE_RUN not in taken else next(f"{CURVE_RUN}-{k}" for k in range(2, 10_000)
                                                          if f"{CURVE_RUN}-{k}" not in taken)
    start = shipped_step(shipped_dir)
    # the run counts windows from its schedule's step 0; the shipped weights have seen ``start`` steps of them
    origin = (name, (int(shipped["windows"]) if shipped else 0) - start * BATCH_SIZE)
    (runs / RUN).mkdir(parents=True, exist_ok=True)
    atomic_write_json(runs / RUN / ORIGIN_FILE, {"curve_run": origin[0], "origin_windows": origin[1],
                                                 "shipped": curve.get("shipped"), "start_step": start})
    return origin


def lower_priority(pid: int, nice: int = 19, proc: Path = Path("/proc")) -> bool:
    """Give the process's scheduler autogroup the lowest priority; False where there is none.

    ``nice -n 19`` alone is not enough on Linux with autogroups (the default on desktop and many
    server kernels): the run is started in its own session, hence its own autogroup, and the
    scheduler first shares the CPU between groups and applies nice only inside one. Measured on 2
    cores beside the run (December 6): ``ask()`` p50 1,068 ms with the group at nice 0, 79 ms at 19."""
    try:
        (proc / str(pid) / "autogroup").write_text(f"{nice}\n")
        return True
    except OSError:
        return False


def start(runs: Path, data: Path, threads: int = 2, python: str = sys.executable) -> int:
    # absolute: the run works in RUNS/code, where a relative --out would put its checkpoint inside the
    # snapshot that the next start replaces
    runs, data = Path(runs).resolve(), Path(data).resolve()
    pid = running_pid(runs)
    if pid is not None:
        return _already_going(pid)
    runs.mkdir(parents=True, exist_ok=True)
    # RUNS/train.lock, held from here by this start and then, inherited, by the run for as long as it lives:
    # a second start refuses even before the first has written train.pid or its run has exec'd
    lock = open(runs / "train.lock", "a")
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _already_going(running_pid(runs))
        return _spawn(runs, data, threads, python, lock.fileno())
    finally:
        lock.close()  # the run keeps its own copy of the lock


def _already_going(pid: int | None) -> int:
    if pid is None:
        print("another `start` of the reader run is under way (or its run is still starting); nothing started. "
              "See `make train-reader-status`.")
    else:
        print(f"the reader run is already going (pid {pid}); nothing started. "
              f"See `make train-reader-status`; stop it with `kill {pid}` (it resumes from its checkpoint).")
    return 0


def _spawn(runs: Path, data: Path, threads: int, python: str, lock_fd: int) -> int:
    code = runs / "code"
    snapshot_code(code)
    ckpt = runs / RUN / "checkpoint.pt"
    if not ckpt.exists():
        record_origin(runs)
    log_file = open(runs / f"{RUN}.nohup", "ab")
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(code))
    cmd = ["nice", "-n", "19", python, "-m", "qa.training.train_reader", *train_args(runs, data, threads)]
    proc = subprocess.Popen(cmd, cwd=code, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, pass_fds=(lock_fd,))
    log_file.close()
    lower_priority(proc.pid)
    tmp = runs / "train.pid.tmp"
    tmp.write_text(f"{proc.pid}\n")
    os.replace(tmp, runs / "train.pid")
    what = f"resuming from {ckpt}" if ckpt.exists() else "starting from the shipped reader"
    print(f"reader run {what}: pid {proc.pid}, log {runs / RUN / 'train.log'}\n  {' '.join(cmd)}")
    return 0


_STEP = re.compile(r"^(\S+ \S+) step (\d+)/(\d+) epoch ([\d.]+) loss ([\d.]+) lr (\S+) ([\d.]+) windows/s eta (\d+) min")


def status(runs: Path) -> dict:
    """Where the run is, read from its files (no torch, no checkpoint loading)."""
    run = runs / RUN
    log_lines = (run / "train.log").read_text().splitlines() if (run / "train.log").exists() else []
    last = next((m for ln in reversed(log_lines) if (m := _STEP.match(ln))), None)
    hardware = next((ln.split("hardware: ", 1)[1] for ln in reversed(log_lines) if "hardware: " in ln), None)
    val = []
    if (run / "val.jsonl").exists():
        val = reader_curve.read_jsonl(run / "val.jsonl")
    ckpt = run / "checkpoint.pt"
    return {
        "run": str(run),
        "pid": running_pid(runs),
        "alive": running_pid(runs) is not None,
        "hardware": hardware,
        "last_log": last.group(1) if last else None,
        "step": int(last.group(2)) if last else None,
        "total_steps": int(last.group(3)) if last else None,
        "epoch": float(last.group(4)) if last else None,
        "loss": float(last.group(5)) if last else None,
        "windows_per_s": float(last.group(7)) if last else None,
        "eta_min": int(last.group(8)) if last else None,
        "checkpoint_age_min": round((time.time() - ckpt.stat().st_mtime) / 60, 1) if ckpt.exists() else None,
        "validation": val[-5:],
        "resumes": sum("resumed at step" in ln for ln in log_lines),
    }


def print_status(s: dict) -> None:
    print(f"run       {s['run']}  ({'ALIVE, pid ' + str(s['pid']) if s['alive'] else 'not running: make train-reader-bg'})")
    print(f"hardware  {s['hardware'] or '(not logged yet)'}")
    if s["step"] is not None:
        print(f"step      {s['step']}/{s['total_steps']} (epoch {s['epoch']:.2f}, {s['step'] * BATCH_SIZE:,} windows "
              f"of this run), loss {s['loss']:.3f}, {s['windows_per_s']} windows/s, eta {s['eta_min']} min "
              f"(at {s['last_log']})")
    else:
        print("step      (no step logged yet: preparing data or not started)")
    print(f"checkpoint {'none' if s['checkpoint_age_min'] is None else str(s['checkpoint_age_min']) + ' min old'}; "
          f"resumes so far: {s['resumes']}")
    if s["validation"]:
        print("validation (periodic sample)  step   windows   F1")
        for v in s["validation"]:
            print(f"                              {v['step']:>5} {v['step'] * BATCH_SIZE:>9,} {v['f1']:6.2f}"
                  f" ({v.get('questions', 400)} q)")


def export(runs: Path, data: Path | None, curve_path: Path = reader_curve.CURVE_JSON) -> int:
    """Export the latest checkpoint (the run keeps going), measure it on all validation questions, add it to the curve."""
    from qa.training import train_reader

    run = runs / RUN
    if not (run / "checkpoint.pt").exists():
        print(f"no checkpoint in {run} yet: nothing to export", file=sys.stderr)
        return 1
    tmp = run / "exports" / "latest.tmp"
    rc = train_reader.main(["--export-checkpoint", "--out", str(run), "--export", str(tmp),
                            "--init", str(REPO / "qa" / "models" / "reader")])
    if rc:  # it said why (an unreadable checkpoint, another model's); the run and its checkpoint are untouched
        return rc
    record = json.loads((tmp / "training.json").read_text())
    step = int(record["step"])
    target = run / "exports" / f"step-{step}"
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    res = reader_curve.validate(target, data)
    print(json.dumps(res))
    curve = reader_curve.load_curve(curve_path)
    name, origin = run_origin(runs)
    windows = origin + int(record.get("windows", step * BATCH_SIZE))
    reader_curve.add_point(curve, reader_curve.CurvePoint(f"{name} step {step}", windows, res["f1"],
                                                          res["questions"], run=name,
                                                          note="`make train-reader-export`"))
    if (run / "val.jsonl").exists():
        reader_curve.add_run_log(curve, run / "val.jsonl", name, origin, BATCH_SIZE)
    reader_curve.save_curve(curve, curve_path)
    reader_curve.render(curve_path)
    print(f"step {step} ({windows:,} windows since round 1): validation F1 {res['f1']:.2f} on {res['questions']} q")
    print(reader_curve.ship_verdict(res["f1"], curve))
    print(f"export: {target}")
    return 0


#: What an export contributes to the shipped folder; the model card (README.md) stays, calibration.json is refit.
SHIP_FILES = ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")


def _export_step(path: Path) -> int:
    return int(path.name.removeprefix("step-"))


def _pick(folder: Path, step: int | None) -> Path | None:
    """The ``step-N`` folder of ``step`` in ``folder``, or the latest one."""
    found = sorted((d for d in folder.glob("step-*") if d.name.removeprefix("step-").isdigit()), key=_export_step)
    if step is not None:
        found = [d for d in found if _export_step(d) == step]
    return found[-1] if found else None


def cooldown(runs: Path, data: Path | None, step: int | None = None, threads: int = 2,
             curve_path: Path = reader_curve.CURVE_JSON, train=None, validate=reader_curve.validate) -> int:
    """Branch a short cooldown (``COOLDOWN``) off an export, measure it like the exports, add it to the curve.

    The run keeps its own schedule; the branch is what the export's weights give once the learning
    rate has come down, so a ship can take the better of the two without waiting for the schedule's
    end. It runs at the caller's priority: the background run's group is the lowest, so it yields."""
    if train is None:
        from qa.training.train_reader import main as train
    run = runs / RUN
    source = _pick(run / "exports", step)
    if source is None:
        print(f"no export {'of step ' + str(step) + ' ' if step is not None else ''}in {run / 'exports'}: "
              "run `make train-reader-export` first", file=sys.stderr)
        return 1
    n = _export_step(source)
    name, origin = run_origin(runs)
    label = f"{name} step {n}"
    target, work = run / COOLDOWNS / f"step-{n}", run / COOLDOWNS / f"step-{n}.run"
    shutil.rmtree(work, ignore_errors=True)
    recipe = [x for k, v in COOLDOWN.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    rc = train([*(["--data", str(data)] if data else []), "--init", str(source), "--out", str(work),
                "--export", str(target), *recipe, "--save-every", "0", "--eval-every", "0",
                "--eval-questions", "64", "--threads", str(threads)])
    if rc:
        return rc
    record = json.loads((target / "training.json").read_text())
    record["cooldown"] = {"of": label, "schedule_step": n, "recipe": COOLDOWN}
    atomic_write_json(target / "training.json", record)
    shutil.rmtree(work, ignore_errors=True)  # its checkpoint: the export holds the weights
    res = validate(target, data)
    curve = reader_curve.load_curve(curve_path)
    base = next((p for p in curve["points"] if p["label"] == label and p["kind"] == "export"), None)
    windows = origin + n * BATCH_SIZE + int(record["windows"])
    reader_curve.add_point(curve, reader_curve.CurvePoint(
        label + reader_curve.COOLDOWN_SUFFIX, windows, res["f1"], res["questions"], kind="cooldown", run=name,
        note=f"`make train-reader-cooldown`: {record['windows']:,} windows at lr {COOLDOWN['lr']:g} -> 0"))
    reader_curve.save_curve(curve, curve_path)
    reader_curve.render(curve_path)
    gain = f" ({res['f1'] - base['f1']:+.2f} over the export)" if base else ""
    print(f"{label}{reader_curve.COOLDOWN_SUFFIX}: validation F1 {res['f1']:.2f} on {res['questions']} q{gain}")
    print(reader_curve.ship_verdict(res["f1"], curve))
    print(f"cooldown: {target}")
    return 0


def portable_record(record: dict) -> dict:
    """An export's ``training.json`` as it ships: no machine-specific paths, counts filled in.

    An export taken from a checkpoint (``--export-checkpoint``) does not read the data, so it
    records -1 examples; the mix is that of the weights it started from, whose record it keeps."""
    record = dict(record)
    if record.get("data") and Path(record["data"]).is_absolute():
        record["data"] = os.path.relpath(record["data"], REPO)
    record["out"], record["export"] = f"RUNS/{RUN}", f"RUNS/{RUN}/export"
    if "cooldown" in record:
        step = record["cooldown"]["schedule_step"]
        record["init"], record["export"] = f"RUNS/{RUN}/exports/step-{step}", f"RUNS/{RUN}/{COOLDOWNS}/step-{step}"
    first = record.get("init_training") or {}
    for key in ("train_examples", "train_unanswerable"):
        if record.get(key, -1) == -1 and first.get(key) is not None:
            record[key] = first[key]
    return record


def _calibrate(model_dir: Path, predictions: Path) -> int:
    from qa.training import calibrate_reader

    return calibrate_reader.main(["--model", str(model_dir), "--predictions", str(predictions),
                                  "--plot", str(REPO / "docs" / "calibration-sizes.png")])


def ship(runs: Path, step: int | None = None, target: Path = REPO / "qa" / "models" / "reader",
         curve_path: Path = reader_curve.CURVE_JSON, calibrate=_calibrate, margin: float | None = None,
         cooled: bool = False) -> int:
    """Replace the shipped reader by a validated export of the run, then recalibrate it.

    The ship rule is checked against the curve (the export must have been measured on all
    validation questions by ``export`` and beat the shipped reader by ``margin``), so the
    repository takes 45 MB of new weights only for a real gain. The folder is swapped whole
    (copy, then rename), so a crash leaves the old or the new reader, never a mix; the curve
    then names the new shipped point, which is what the next export is judged against.
    ``cooled``: ship the cooldown branch of that export (``cooldown``) instead."""
    folder, kind = (runs / RUN / COOLDOWNS, "cooldown") if cooled else (runs / RUN / "exports", "export")
    make = "make train-reader-cooldown" if cooled else "make train-reader-export"
    source = _pick(folder, step)
    if source is None:
        print(f"no {kind} {'of step ' + str(step) + ' ' if step is not None else ''}in {folder}: "
              f"run `{make}` first", file=sys.stderr)
        return 1
    label = f"{run_origin(runs)[0]} step {_export_step(source)}" + (reader_curve.COOLDOWN_SUFFIX if cooled else "")
    curve = reader_curve.load_curve(curve_path)
    point = next((p for p in curve["points"] if p["label"] == label and p["kind"] == kind), None)
    if point is None:
        print(f"{label} is not on the curve: measure it with `{make}` first", file=sys.stderr)
        return 1
    verdict = reader_curve.ship_verdict(point["f1"], curve, margin)
    if not verdict.startswith("SHIP"):
        print(verdict, file=sys.stderr)
        return 1
    tmp = target.with_name(target.name + ".ship.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(target, tmp)
    for name in SHIP_FILES:
        shutil.copy2(source / name, tmp / name)
    record = portable_record(json.loads((source / "training.json").read_text()))
    (tmp / "training.json").write_text(json.dumps(record, indent=2) + "\n")
    old = target.with_name(target.name + ".ship.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old)
    curve["shipped"] = label
    reader_curve.save_curve(curve, curve_path)
    reader_curve.render(curve_path)
    print(f"shipped {label} ({point['f1']:.2f} on {point['questions']} validation questions) into {target}; "
          "recalibrating")
    rc = calibrate(target, runs / RUN / f"calib-preds-{'cooldown-' if cooled else ''}step-{_export_step(source)}.json")
    if rc == 0:
        print("done: update the model card (qa/models/reader/README.md) and the README's reader figures")
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=("start", "status", "export", "cooldown", "ship"))
    p.add_argument("--runs", type=Path, default=None, help="runs folder (default ~/.cache/qa/reader-runs)")
    p.add_argument("--data", type=Path, default=None, help="SQuAD folder (default ../shared/data/squad, QA_DATA)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", action="store_true", help="status as JSON")
    p.add_argument("--step", type=int, default=None, help="cooldown, ship: this export's step (default: the latest)")
    p.add_argument("--cooled", action="store_true", help="ship: the export's cooldown branch")
    args = p.parse_args(argv)
    runs = Path(args.runs or ReaderRunConfig().runs_dir).expanduser()
    data = Path(args.data or squad.SQUAD_DIR).resolve()
    try:
        if args.action == "start":
            if not (data / "dev-v1.1.json").exists():
                print(f"no SQuAD data in {data}: give --data DIR or set QA_DATA", file=sys.stderr)
                return 2
            return start(runs, data, args.threads)
        if args.action == "status":
            s = status(runs)
            print(json.dumps(s, indent=1)) if args.json else print_status(s)
            return 0
        if args.action == "ship":
            return ship(runs, args.step, cooled=args.cooled)
        if args.action == "cooldown":
            return cooldown(runs, args.data, args.step, args.threads)
        return export(runs, args.data)
    except (OSError, subprocess.CalledProcessError) as e:  # a full disk, a read-only or misplaced runs folder
        print(f"error: {e} (runs folder {runs}); the run's checkpoint is untouched", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
