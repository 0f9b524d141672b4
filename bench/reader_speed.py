"""Reader throughput on CPU: fp32 vs bf16 autocast vs dynamic int8, side by side.

Machines differ 2-4x between sessions, so only numbers from one run compare.
With --f1, each variant also reads the held-out SQuAD v1.1 articles (gold
paragraph given) so a speed-up can be checked against accuracy.

    python bench/reader_speed.py --model qa/models/reader --windows 256 --f1
"""

from __future__ import annotations

import argparse
import copy
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from qa.evaluation import squad
from qa.config import EngineConfig, ReaderConfig
from qa.engine import cpu_info
from qa.reader import SpanReader


def variants(reader: SpanReader) -> dict[str, tuple[torch.nn.Module, bool]]:
    base = reader._model.module.qa_model  # the PyTorch engine's BertForQuestionAnswering
    int8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(base), {torch.nn.Linear}, dtype=torch.qint8)
    return {"fp32": (base, False), "bf16-autocast": (base, True), "int8-dynamic": (int8, False)}


def throughput(model: torch.nn.Module, bf16: bool, n: int, length: int, batch: int) -> float:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (batch, length), generator=g)
    tt = torch.zeros_like(ids)
    tt[:, length // 4 :] = 1
    am = torch.ones_like(ids)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
    with torch.inference_mode(), ctx:
        model(input_ids=ids, token_type_ids=tt, attention_mask=am)  # warm-up
        t = time.perf_counter()
        done = 0
        while done < n:
            model(input_ids=ids, token_type_ids=tt, attention_mask=am)
            done += batch
    return done / (time.perf_counter() - t)


def heldout_f1(reader: SpanReader, examples: list[squad.SquadExample]) -> tuple[float, float, float]:
    t = time.perf_counter()
    spans = reader.best_spans([e.question for e in examples], [e.context for e in examples])
    scores = [squad.best_scores(e.context[sp.start : sp.end] if sp else "", e.answers) for e, sp in zip(examples, spans)]
    return 100 * np.mean([s[0] for s in scores]), 100 * np.mean([s[1] for s in scores]), time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=ReaderConfig().path)
    p.add_argument("--windows", type=int, default=256, help="windows per variant for throughput")
    p.add_argument("--length", type=int, default=256)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--f1", action="store_true", help="also score the held-out v1.1 articles per variant")
    args = p.parse_args()

    reader = SpanReader(replace(ReaderConfig(), path=args.model, engine=EngineConfig(kind="torch")))
    reader.warm_up()
    cpu = cpu_info()
    print(f"# {cpu['model']} ({cpu['cores']} cores; flags: {', '.join(cpu['flags']) or 'none of note'}), "
          f"torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}, {args.length} tokens, batch {args.batch}")
    exs = []
    if args.f1:
        exs = squad.select(squad.load_squad(squad.squad_dir() / "dev-v1.1.json"), include=squad.HELD_OUT_ARTICLES)
    print(f"{'variant':15s} {'windows/s':>10s} {'ms/window':>10s} {'speed-up':>9s}" + ("   EM     F1    s" if exs else ""))
    base_rate = None
    for name, (model, bf16) in variants(reader).items():
        rate = throughput(model, bf16, args.windows, args.length, args.batch)
        base_rate = base_rate or rate
        line = f"{name:15s} {rate:10.1f} {1000 / rate:10.2f} {rate / base_rate:8.2f}x"
        if exs:
            r = SpanReader.from_model(model, reader._tokenizer, replace(reader.config, bf16=bf16), reader.calibration)
            em, f1, secs = heldout_f1(r, exs)
            line += f" {em:5.1f} {f1:6.1f} {secs:4.0f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
