"""Command line: ``qa index``, ``qa ask``, ``qa docs``, ``qa remove``, ``qa eval``.

Every failure on bad input is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from qa.errors import QAError

EXIT_USAGE = 2
EXIT_ERROR = 1


def _qa(args: argparse.Namespace, corpus: bool = False):
    from qa.config import Settings
    from qa.pipeline import QA

    s = Settings()
    index_dir = Path(args.index) if args.index else s.index_dir
    # The default index is kept in step with seeds/; a named one only changes when told.
    corpus_dir = s.corpus_dir if (corpus and not args.index) else None
    return QA(index_dir=index_dir, corpus_dir=corpus_dir)


def cmd_index(args: argparse.Namespace) -> int:
    qa = _qa(args)
    store = qa.rebuild(args.paths, progress=True) if args.rebuild else qa.add_paths(args.paths, progress=True)
    print(f"{len(store.documents)} documents, {len(store)} chunks in {qa.settings.index_dir}")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    qa = _qa(args, corpus=True)
    a = qa.ask(args.question, top_k=args.top_k, min_score=args.min_score)
    if args.json:
        print(json.dumps(asdict(a), ensure_ascii=False, indent=2))
        return 0
    if a.answer:
        print(f"Answer: {a.answer}   (confidence {a.score:.2f})")
    else:
        print(f"Not in the documents ({a.no_answer_reason}).")
    for n, c in enumerate(a.citations[: 1 if a.answer else 3], start=1):
        text = c.text
        if c.answer_start >= 0:
            i, j = c.answer_start - c.start, c.answer_end - c.start
            text = f"{text[:i]}>>>{text[i:j]}<<<{text[j:]}"
        print(f"\n[{n}] {c.title} ({c.doc_id}, characters {c.start}-{c.end}, score {c.score:.2f})")
        print("    " + text.replace("\n", "\n    "))
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    qa = _qa(args, corpus=True)
    for doc, n in qa.documents():
        date = doc.meta.get("date", "")
        print(f"{doc.id}\t{n} chunks\t{date}\t{doc.title}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    qa = _qa(args)
    try:
        store = qa.remove_documents(args.doc_ids)
    except KeyError as e:
        _error(str(e.args[0]) if e.args else str(e))
        return EXIT_ERROR
    print(f"{len(store.documents)} documents, {len(store)} chunks left")
    return 0


def _error(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _probability(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, not {x}")
    return x


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Cited, extractive question answering over your documents.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    def with_index(sp: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sp.add_argument("--index", help="index folder (default: index/, kept in step with seeds/)")
        return sp

    s = with_index(sub.add_parser("index", help="build or update an index from files or folders"))
    s.add_argument("paths", nargs="+", help=".txt or .md files, or folders of them")
    s.add_argument("--rebuild", action="store_true", help="replace the index with exactly these files")
    s.set_defaults(func=cmd_index)

    s = with_index(sub.add_parser("ask", help="answer a question with its citation"))
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the Answer as JSON")
    s.add_argument("--top-k", type=_positive_int, help="passages to read")
    s.add_argument("--min-score", type=_probability, help="confidence (0-1) below which to answer nothing")
    s.set_defaults(func=cmd_ask)

    s = with_index(sub.add_parser("docs", help="list indexed documents"))
    s.set_defaults(func=cmd_docs)

    s = with_index(sub.add_parser("remove", help="remove documents from the index by id"))
    s.add_argument("doc_ids", nargs="+")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("eval", help="evaluate on gold questions (see python -m qa.evaluate -h)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=None)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "eval":
        # Handed over whole: argparse's REMAINDER drops leading options like --squad.
        from qa import evaluate

        return evaluate.main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except QAError as e:
        _error(str(e))
        return EXIT_ERROR
    except OSError as e:  # e.g. an index folder that cannot be written
        _error(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
