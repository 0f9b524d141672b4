"""A process that uses ``qa`` with the fake models (no model load), for the
reliability tests and ``bench/reliability.py``:

    python tests/_fake_qa.py add INDEX_DIR FILE...   print "indexing", add the files, and once
                                                     the add has returned print each file name
    python tests/_fake_qa.py cli ARG...              ``qa ARG...`` (qa.cli.main)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes import make_fake_qa  # noqa: E402


def main(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "add":
        index_dir, *files = rest
        qa = make_fake_qa(index_dir=index_dir, corpus_dir=None)
        print("indexing", flush=True)  # imports done: a kill from now on hits the update
        qa.add_paths(files)
        for f in files:
            print(Path(f).name, flush=True)
        return 0
    if mode == "cli":
        from qa.cli import main as cli_main

        return cli_main(rest, qa_factory=make_fake_qa)
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
