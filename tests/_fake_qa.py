"""A process that uses ``qa`` with the fake models (no model load), for the
reliability tests and ``bench/reliability.py``:

    python tests/_fake_qa.py add INDEX_DIR FILE...   print "indexing", add the files, and once
                                                     the add has returned print each file name
    python tests/_fake_qa.py add-pause STAGE INDEX_DIR FILE...
                                                     the same, but print "at STAGE" and wait at that
                                                     step of the publish (for kill -9 timed into it):
                                                     rename (snapshot folder complete, not yet renamed),
                                                     pointer (renamed, CURRENT not yet replaced),
                                                     published (CURRENT replaced, nothing cleaned up),
                                                     cleanup (inside the removal of old snapshots)
    python tests/_fake_qa.py cli ARG...              ``qa ARG...`` (qa.cli.main)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fakes import make_fake_qa  # noqa: E402


PUBLISH_STAGES = ("rename", "pointer", "published", "cleanup")


def _pause_at(stage: str) -> None:
    """Make this process stop (for a kill) at one step of ``IndexStore.save_locked``."""
    import qa.store.snapshot as snapshot

    def wait():
        print(f"at {stage}", flush=True)
        time.sleep(60)

    real_replace = os.replace

    def replace(src, dst, *a, **kw):
        is_pointer = Path(dst).name == "CURRENT"
        if (stage == "rename" and Path(dst).name.startswith("snap-")) or (stage == "pointer" and is_pointer):
            wait()
        real_replace(src, dst, *a, **kw)
        if stage == "published" and is_pointer:
            wait()

    real_garbage = snapshot.remove_garbage

    def remove_garbage(index_dir, keep):
        if stage == "cleanup":  # an old snapshot half removed, then stop
            import shutil

            for old in Path(index_dir).glob("snap-*"):
                if old.name != keep:
                    shutil.rmtree(old / "vectors", ignore_errors=True)
                    break
            wait()
        return real_garbage(index_dir, keep)

    snapshot.os.replace = replace  # the os module is shared: only this short-lived process runs it
    snapshot.remove_garbage = remove_garbage


def main(argv: list[str]) -> int:
    mode, *rest = argv
    if mode == "add-pause":
        stage, *rest = rest
        if stage not in PUBLISH_STAGES:
            raise SystemExit(f"unknown stage {stage!r}; one of {', '.join(PUBLISH_STAGES)}")
        _pause_at(stage)
        mode = "add"
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
