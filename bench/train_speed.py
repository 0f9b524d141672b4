"""Training-step speed of the reader per numeric path, side by side in one process.

Which path is fastest on THIS CPU: plain fp32, or bf16 autocast (native only with
AMX/AVX512-BF16; emulated otherwise), at 1 or 2 threads. Rounds are interleaved so
that a shared machine's load hits every variant alike; both wall time and process
CPU time per window are printed (CPU time is the fairer figure under load).

    python bench/train_speed.py [--rounds 3] [--steps 2] [--batch 8] [--tokens 192]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--tokens", type=int, default=192)
    args = p.parse_args()

    import torch
    from transformers import AutoModelForQuestionAnswering

    from qa.config import SHIPPED_READER
    from qa.engine import cpu_has_bf16, cpu_info
    from qa.training.train_reader import hardware_line

    model = AutoModelForQuestionAnswering.from_pretrained(SHIPPED_READER, dtype=torch.float32)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 20000, (args.batch, args.tokens), generator=g)
    tt = torch.zeros_like(ids)
    mask = torch.ones_like(ids)
    st = torch.randint(0, args.tokens, (args.batch,), generator=g)
    en = torch.randint(0, args.tokens, (args.batch,), generator=g)
    variants = [("fp32", 1), ("fp32", 2), ("bf16 autocast", 1), ("bf16 autocast", 2)]
    totals = {v: [0.0, 0.0, 0] for v in variants}

    def step(bf16: bool) -> None:
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else torch.autocast("cpu", enabled=False)
        with ctx:
            out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask)
        loss = (torch.nn.functional.cross_entropy(out.start_logits.float(), st)
                + torch.nn.functional.cross_entropy(out.end_logits.float(), en)) / 2
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    print(hardware_line("cpu"), "| flags:", ", ".join(cpu_info()["flags"]) or "none of note", "| native bf16:",
          cpu_has_bf16(), "| load:", open("/proc/loadavg").read().split()[:3])
    for v in variants:  # warm-up, untimed
        torch.set_num_threads(v[1])
        step(v[0] != "fp32")
    for r in range(args.rounds):
        for v in variants:
            torch.set_num_threads(v[1])
            w0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                step(v[0] != "fp32")
            t = totals[v]
            t[0] += time.perf_counter() - w0
            t[1] += time.process_time() - c0
            t[2] += args.steps * args.batch
    base = totals[("fp32", 2)]
    print(f"{'path':<15}{'threads':>8}{'windows/s wall':>16}{'CPU s/window':>14}{'wall vs fp32x2':>16}")
    for v, (wall, cpu, n) in totals.items():
        print(f"{v[0]:<15}{v[1]:>8}{n / wall:>16.2f}{cpu / n:>14.3f}{(n / wall) / (base[2] / base[0]):>15.2f}x")
    print("load after:", open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
