"""Evaluate the pipeline on gold questions: answers, abstentions, retrieval, citations, latency.

    python -m qa.evaluate tests/gold/seeds.jsonl                      # the seed gold set
    python -m qa.evaluate GOLD.jsonl --index DIR --json out.json --plot out.png
    python -m qa.evaluate --squad ../shared/data/squad/dev-v1.1.json --mode reader --held-out
    python -m qa.evaluate --squad ../shared/data/squad/dev-v1.1.json --mode open \\
        --index /work/eval_cache/squad-dev-index --retrieval dense,bm25,hybrid --retrieval-only

Gold JSONL holds one question a line: ``{"id", "question", "answers": [...]}``
plus an optional ``"doc_id"`` (the document that holds the answer, for retrieval
scoring). Empty ``answers`` means the documents do not say, and the right
response is ``""``.

Scoring is the official SQuAD one (``qa.evaluation.squad``): normalised exact match and
token F1, best over the gold answers; an unanswerable question scores 1 only for
an empty prediction. Every question is answered once with the threshold at 0
(so the best candidate and its calibrated probability are known), and the
answer at any threshold ``t`` is that candidate when its probability is at least
``t`` and ``""`` otherwise: the figures at the operating threshold and the whole
F1/abstention trade-off curve come from the same run.

Retrieval ranks are over documents: chunks of the same document count once, at
the rank of its best chunk, so recall@k asks "is the gold document among the
first k distinct documents retrieved". MRR is over the retrieved list (depth
``--depth`` chunks); a gold document not retrieved scores 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from qa._files import atomic_write_json, weights_fingerprint
from qa.argtypes import positive_int, probability
from qa.evaluation.gold import GoldFormatError, GoldQuestion, load_gold, squad_gold
from qa.evaluation.report import format_table, plot
from qa.evaluation.runs import Run, run_pipeline, run_reader, run_retrieval, summarise
from qa.evaluation.squad import HELD_OUT_ARTICLES


def _index_help() -> str:
    """The default as the settings have it now (QA_INDEX_DIR, else the checkout's index/,
    else ./index), and the folder it is kept in step with: a fixed "index/" was wrong."""
    from qa.config import Settings

    s = Settings()
    follows = f", kept in step with {s.corpus_dir}" if s.corpus_dir is not None else ""
    return (f"index folder (default for GOLD: {s.index_dir}{follows}; for --squad open a temporary one; "
            "an existing one is reused)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa eval", description="Evaluate qa on gold questions (official SQuAD scoring).")
    p.add_argument("gold", nargs="?", help="gold JSONL: {id, question, answers[, doc_id]} per line")
    p.add_argument("--squad", help="a SQuAD-format JSON file instead of GOLD")
    p.add_argument("--mode", choices=("open", "reader"), default="open",
                   help="SQuAD: 'reader' gives the gold paragraph to the reader; 'open' indexes every "
                        "paragraph and asks without it (default)")
    p.add_argument("--index", help=_index_help().replace("%", "%%"))
    p.add_argument("--limit", type=positive_int, help="first N questions only")
    p.add_argument("--articles", help="SQuAD: comma-separated article titles")
    p.add_argument("--held-out", action="store_true", help="SQuAD: the fixed held-out articles only")
    p.add_argument("--train-articles", action="store_true", help="SQuAD: every article except the held-out ones")
    p.add_argument("--retrieval", default=None,
                   help="hybrid, dense, bm25 or rrf (default: the configured mode); a comma list evaluates each")
    p.add_argument("--retrieval-only", action="store_true", help="skip the reader: retrieval figures only")
    p.add_argument("--top-k", type=positive_int, help="passages read per question (default: configured)")
    p.add_argument("--depth", type=positive_int, default=50, help="chunks retrieved for recall@k/MRR (default 50)")
    p.add_argument("--min-score", type=probability, help="operating threshold (default: the model's calibrated one)")
    p.add_argument("--batch-size", type=positive_int,
                   help="questions per call (default 1 for GOLD, so latency is that of single ask() calls; "
                        "32 for SQuAD, reported as batch time / n)")
    p.add_argument("--predictions", help="SQuAD reader mode: cache of the reader's raw candidates (written after "
                                         "reading, re-used while the weights are the same), so a new calibration is "
                                         "re-measured without the model")
    p.add_argument("--json", help="write every figure to this JSON file")
    p.add_argument("--plot", help="write recall@k and the F1/threshold curves to this PNG")
    return p


def _select_squad(gold: list[GoldQuestion], args: argparse.Namespace) -> list[GoldQuestion]:
    if args.held_out and args.train_articles:
        raise SystemExit("error: --held-out and --train-articles exclude each other")
    if args.articles:
        wanted = {a.strip() for a in args.articles.split(",") if a.strip()}
        unknown = wanted - {g.title for g in gold}
        if unknown:
            raise SystemExit(f"error: no such article(s) in the file: {', '.join(sorted(unknown))}")
        gold = [g for g in gold if g.title in wanted]
    if args.held_out:
        gold = [g for g in gold if g.title in HELD_OUT_ARTICLES]
    if args.train_articles:
        gold = [g for g in gold if g.title not in HELD_OUT_ARTICLES]
    return gold


def gold_warnings(gold: list[GoldQuestion], documents: Any) -> list[str]:
    """What in a gold file cannot be scored as meant against this index: a
    ``doc_id`` the index does not hold (a typo, or another index: every such
    question counts as "gold not retrieved"), and an answer that is not in its
    ``doc_id``'s text (it can never be answered right). Said, not refused: the
    figures are still computed, so the user knows why they are low."""
    if not documents:
        return []
    def flat(text: str) -> str:  # case and line breaks aside; punctuation kept ("Washington-based")
        return " ".join(text.split()).casefold()

    unknown = [g for g in gold if g.doc_id is not None and g.doc_id not in documents]
    absent = [g for g in gold if g.answerable and g.doc_id in documents
              and not any(flat(a) in flat(documents[g.doc_id].text) for a in g.answers)]

    def listed(qs: list[GoldQuestion], show: Any) -> str:
        return ", ".join(show(g) for g in qs[:5]) + (f" and {len(qs) - 5} more" if len(qs) > 5 else "")

    out = []
    if unknown:
        out.append(f"{len(unknown)} gold question(s) name a doc_id this index does not hold "
                   f"({listed(unknown, lambda g: f'{g.id}: {g.doc_id!r}')}); they count as not retrieved")
    if absent:
        out.append(f"the answer of {len(absent)} gold question(s) is not in the text of its doc_id "
                   f"({listed(absent, lambda g: f'{g.id}: {g.answers[0]!r}')}); they cannot be answered right")
    return out


def _open_index(docs: list[Any], index_dir: Path) -> tuple[Any, float | None]:
    """A QA over every paragraph; (qa, build seconds or None when reused)."""
    from qa.pipeline import QA

    qa = QA(index_dir=index_dir, corpus_dir=None)
    t0 = time.perf_counter()
    if not qa.index_exactly(docs, progress=True):
        return qa, None
    return qa, time.perf_counter() - t0



def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if bool(args.gold) == bool(args.squad):
        print("error: give either a gold JSONL file or --squad FILE", file=sys.stderr)
        return 2
    from qa.errors import QAError

    try:
        return _main(args)
    except (GoldFormatError, QAError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


def _main(args: argparse.Namespace) -> int:
    modes = [m.strip() for m in args.retrieval.split(",")] if args.retrieval else [None]
    from qa.config import RETRIEVAL_MODES

    for m in modes:
        if m is not None and m not in RETRIEVAL_MODES:
            print(f"error: unknown retrieval mode {m!r} ({', '.join(RETRIEVAL_MODES)})", file=sys.stderr)
            return 2
    for option, value in (("--json", args.json), ("--plot", args.plot), ("--predictions", args.predictions)):
        if value and Path(value).is_dir():  # found before the run, not after it
            print(f"error: {option} {value} is a folder; give a file name", file=sys.stderr)
            return 2
    tmp: tempfile.TemporaryDirectory | None = None
    build_s = None
    if args.squad:
        gold, docs = squad_gold(args.squad)
        gold = _select_squad(gold, args)
    else:
        gold, docs = load_gold(args.gold), []
    if args.limit:
        gold = gold[: args.limit]
    if not gold:
        print("error: no questions selected", file=sys.stderr)
        return 2
    # --retrieval-only with nothing to rank would print an empty table (or, in
    # reader mode, fail deep in the summary): say why instead.
    if args.retrieval_only and args.squad and args.mode == "reader":
        print("error: --retrieval-only has nothing to measure in --mode reader (the gold paragraph is given, "
              "nothing is retrieved); use --mode open", file=sys.stderr)
        return 2
    if args.retrieval_only and not any(g.doc_id is not None and g.answerable for g in gold):
        print("error: --retrieval-only ranks the document that holds each answer, and no answerable gold "
              "question names one: add \"doc_id\" to the gold lines", file=sys.stderr)
        return 2
    batch = args.batch_size or (32 if args.squad else 1)
    runs: list[Run] = []
    qa = reader = None
    if args.squad and args.mode == "reader":
        from qa.config import ReaderConfig
        from qa.reader import SpanReader

        reader = SpanReader(ReaderConfig(min_score=args.min_score))
        run = Run("reader", gold)
        cache = _load_predictions(args.predictions, reader)
        if cache is not None and all(g.id in cache for g in gold):
            reader.calibration = _calibration_only(reader)  # no need to load the weights
            run_reader(reader, run, batch, cache)
        else:
            run_reader(reader, run, batch, cache)
        if cache is not None:
            _save_predictions(args.predictions, reader, cache)
        runs.append(run)
    else:
        if args.squad:
            if args.index:
                index_dir = Path(args.index)
            else:
                tmp = tempfile.TemporaryDirectory(prefix="qa-eval-")
                index_dir = Path(tmp.name)
            qa, build_s = _open_index(docs, index_dir)
        elif args.index:
            from qa.pipeline import QA

            qa = QA(index_dir=args.index, corpus_dir=None)
        else:
            from qa import default_qa

            qa = default_qa()
        if not args.squad:
            for warning in gold_warnings(gold, getattr(getattr(qa, "store", None), "documents", None)):
                print(f"warning: {warning}", file=sys.stderr)
        for m in modes:
            label = m or qa.settings.retrieval.mode
            run = Run(label, gold, index_build_s=build_s)
            if any(g.doc_id for g in gold):
                run_retrieval(qa, run, m, args.depth, max(batch, 32))
            if not args.retrieval_only:
                run_pipeline(qa, run, m, args.top_k, batch)
            runs.append(run)
        reader = qa.reader
    threshold = None
    if not args.retrieval_only:
        if args.min_score is not None:
            threshold = args.min_score
        elif qa is not None and isinstance(getattr(qa, "threshold", None), (int, float)):
            threshold = qa.threshold  # the index's own operating point (`qa calibrate`) when it has one
        else:
            threshold = reader.threshold if getattr(reader, "loaded", True) else reader.calibration.threshold
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        results[run.label] = summarise(run, threshold)
        titles = {g.title for g in gold}
        if args.squad and titles & HELD_OUT_ARTICLES and titles - HELD_OUT_ARTICLES:
            held = [i for i, g in enumerate(gold) if g.title in HELD_OUT_ARTICLES]
            rest = [i for i, g in enumerate(gold) if g.title not in HELD_OUT_ARTICLES]
            results[f"{run.label} [held-out]"] = summarise(run, threshold, held)
            results[f"{run.label} [train articles]"] = summarise(run, threshold, rest)
    print(format_table(results))
    if args.json:
        meta = {"gold": args.gold or args.squad, "mode": "gold" if args.gold else args.mode,
                "n": len(gold), "index": str(qa.settings.index_dir) if qa and not tmp else None,
                "reader": str(reader.path) if reader is not None else None,
                "retrieval_config": _asdict_or_none(qa.settings.retrieval) if qa else None}
        try:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps({"meta": meta, "results": results}, indent=2))
        except OSError as e:  # the table is printed already; say which file failed, in one line
            print(f"error: --json {args.json} could not be written ({e.strerror or e})", file=sys.stderr)
            return 1
    if args.plot:
        try:
            plot(results, args.plot)
        except OSError as e:
            print(f"error: --plot {args.plot} could not be written ({e.strerror or e})", file=sys.stderr)
            return 1
    if tmp is not None:
        tmp.cleanup()
    return 0


def _load_predictions(path: str | None, reader: Any) -> dict[str, Any] | None:
    if not path:
        return None
    p = Path(path)
    if p.exists():
        # Not a cache this command wrote: refused rather than read again and
        # overwritten (it may be someone's file named by mistake).
        try:
            saved = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise SystemExit(f"error: --predictions {p} could not be read as a predictions cache ({e}); "
                             "delete it or give another file name") from None
        if not isinstance(saved, dict) or not isinstance(saved.get("spans"), dict):
            raise SystemExit(f"error: --predictions {p} is not a predictions cache written by qa eval; "
                             "delete it or give another file name")
        if saved.get("weights") == weights_fingerprint(reader.path) and saved.get("reader_config") == _reader_key(reader):
            return saved["spans"]
        print(f"{p} was made with other weights or reader settings: reading again", file=sys.stderr)
    return {}


def _save_predictions(path: str, reader: Any, cache: dict[str, Any]) -> None:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(p, {"weights": weights_fingerprint(reader.path), "reader_config": _reader_key(reader),
                          "spans": cache}, indent=None)


def _reader_key(reader: Any) -> dict[str, Any]:
    c = reader.config
    return {"max_length": c.max_length, "stride": c.stride, "max_answer_tokens": c.max_answer_tokens,
            "n_best": c.n_best}


def _calibration_only(reader: Any) -> Any:
    from qa.reader import Calibration

    return Calibration.load(reader.path)


def _asdict_or_none(x: Any) -> dict | None:
    from dataclasses import asdict, is_dataclass

    return asdict(x) if is_dataclass(x) else None


if __name__ == "__main__":
    raise SystemExit(main())
