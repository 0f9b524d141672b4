"""Would averaging the long run's exports beat any one of them? (weight averaging)

    python bench/average_readers.py OUT EXPORT [EXPORT ...]

Averages the weights of reader exports (same architecture: exports and cooldown
branches of one run, ``RUNS/full/exports/step-N``, ``RUNS/full/cooldowns/step-N``)
uniformly into OUT, then measures OUT on all 732 validation questions exactly as
the learning curve does (``reader_curve.validate``) and prints the ship verdict
against the shipped reader. Averages of checkpoints along one run often land in
a flatter, better spot than any checkpoint (a cheap stand-in for more epochs);
this checks whether that holds for this run before anyone spends a session on it.
Nothing is added to the curve and nothing ships: OUT is an ordinary export folder
that `make train-reader-ship` would not know; copy it by hand if it ever wins.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: What an export folder holds besides its weights (copied from the first one).
EXPORT_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json")


def average(exports: list[Path], out: Path) -> Path:
    """Uniform average of the exports' ``model.safetensors`` (in fp32, stored in
    each tensor's own dtype) into ``out``, with the first export's config and tokenizer."""
    from safetensors.torch import load_file, save_file

    total: dict | None = None
    dtypes: dict = {}
    for e in exports:
        state = load_file(str(e / "model.safetensors"))
        if total is None:
            total = {k: v.float().clone() for k, v in state.items()}
            dtypes = {k: v.dtype for k, v in state.items()}
            continue
        if state.keys() != total.keys():
            raise SystemExit(f"{e}: other tensors than {exports[0]} (not the same architecture)")
        for k, v in state.items():
            total[k] += v.float()
    assert total is not None
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: (v / len(exports)).to(dtypes[k]).contiguous() for k, v in total.items()},
              str(out / "model.safetensors"))
    for name in EXPORT_FILES:
        shutil.copy(exports[0] / name, out / name)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", type=Path, help="folder for the averaged export")
    p.add_argument("exports", type=Path, nargs="+", help="export folders to average (two or more)")
    p.add_argument("--data", type=Path, default=None, help="SQuAD data folder (default: ../shared/data/squad)")
    args = p.parse_args(argv)
    if len(args.exports) < 2:
        p.error("give two or more exports")
    for e in args.exports:
        if not (e / "model.safetensors").is_file():
            p.error(f"{e}: no model.safetensors (not an export folder)")

    from qa.training import reader_curve

    average(args.exports, args.out)
    result = reader_curve.validate(args.out, args.data)
    print(f"average of {len(args.exports)}: {', '.join(str(e) for e in args.exports)}")
    print(f"validation F1 {result['f1']:.2f} (EM {result['em']:.2f}) on {result['questions']} questions")
    print(reader_curve.ship_verdict(result["f1"], reader_curve.load_curve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
