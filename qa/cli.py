"""Command line: ``qa index``, ``qa ask``, ``qa calibrate``, ``qa docs``, ``qa info``, ``qa show``,
``qa remove``, ``qa eval``.

Every failure on bad input is one line on stderr and a non-zero exit status.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

from qa.argtypes import positive_int, probability
from qa.config import VECTOR_BACKEND_CHOICES, LimitsConfig, RetrievalConfig
from qa.errors import QAError
from qa.formatting import fractions, guess_first, location
from qa.ingest.registry import SUPPORTED_SUFFIXES

EXIT_USAGE = 2
EXIT_ERROR = 1


TOP_K_HELP = (f"passages to read (default {RetrievalConfig().top_k}; "
              f"at most {LimitsConfig().max_top_k}, limits.max_top_k)")


def _qa(args: argparse.Namespace, corpus: bool = False):
    from qa.config import Settings

    s = Settings()
    index_dir = Path(args.index) if args.index else s.index_dir
    # The default index is kept in step with seeds/; a named one only changes when told.
    corpus_dir = s.corpus_dir if (corpus and not args.index) else None
    if getattr(args, "backend", None) or getattr(args, "milvus_uri", None):
        from dataclasses import replace

        s = replace(s, store=replace(s.store, vector_backend=args.backend or s.store.vector_backend,
                                     milvus_uri=args.milvus_uri or s.store.milvus_uri))
    return args.qa_factory(index_dir=index_dir, corpus_dir=corpus_dir, settings=s)


def cmd_index(args: argparse.Namespace) -> int:
    """Add, update and remove to match the files; a file that cannot be read is
    one ``error:`` line (exit 1) and never stops the others."""
    qa = _qa(args)
    if args.rebuild:
        store = qa.rebuild(args.paths or None, progress=True)
        print(f"{len(store.documents)} documents, {len(store)} chunks in {qa.settings.index_dir}")
        return 0
    report = qa.sync_paths(args.paths, progress=True)
    for problem in report.problems:
        _error(problem.reason)
    kept = report.store.manifest.vector_index.get("name")
    if args.backend not in (None, "auto", kept):  # it was silently ignored: say so, and how
        print(f"note: this index keeps its vector backend {kept}; --backend chooses one for a new index, "
              f"or with --rebuild", file=sys.stderr)
    print(report.summary())
    print(f"{len(report.store.documents)} documents, {len(report.store)} chunks in {qa.settings.index_dir}")
    return EXIT_ERROR if report.problems else 0


def cmd_ask(args: argparse.Namespace) -> int:
    qa = _qa(args, corpus=True)
    a = qa.ask(args.question, top_k=args.top_k, min_score=args.min_score)
    if args.json:
        _print_json(asdict(a))
        return 0
    if a.answer:
        print(f"Answer: {headline(a.answer)}   (confidence {a.score:.2f})")
    else:
        print(f"Not in the documents ({a.no_answer_reason}).")
    cites = a.citations[: 1 if a.answer else 3]
    if a.low_confidence and a.best_candidate_citation is not None:
        # Below the threshold: still show where the answer probably is, marked as a guess.
        score, threshold = fractions(a.score, a.threshold)
        print(f"Low-confidence guess (not an answer): {headline(a.best_candidate)}   (confidence {score}, "
              f"threshold {threshold})")
        cites = guess_first(a.best_candidate_citation, a.citations)[:3]
    for n, c in enumerate(cites, start=1):
        text = c.text
        if c.answer_start >= 0:
            i, j = c.answer_start - c.start, c.answer_end - c.start
            text = f"{text[:i]}>>>{text[i:j]}<<<{text[j:]}"
        where = location(c)
        print(f"\n[{n}] {c.title} ({c.doc_id}{', ' + where if where else ''}, characters {c.start}-{c.end}, "
              f"score {c.score:.2f})")
        print("    " + text.replace("\n", "\n    "))
    return 0


def cmd_calibrate(args: argparse.Namespace) -> int:
    qa = _qa(args, corpus=True)
    report = qa.calibrate(args.gold, precision=args.precision, max_withheld=args.max_withheld, top_k=args.top_k,
                          store=not args.dry_run, progress=True)
    if args.json:
        print(json.dumps({**report.record, "curve": report.curve, "stored": str(report.stored or "")}, indent=2))
    else:
        print(report.format())
    return 0


def cmd_docs(args: argparse.Namespace) -> int:
    qa = _qa(args, corpus=True)
    for doc, n in qa.documents():
        date = doc.meta.get("date", "")
        print(f"{one_field(doc.id)}\t{n} chunks\t{one_field(date)}\t{one_field(doc.title)}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """What runs here: the index, the models and their engines, the CPU, the threshold."""
    info = _qa(args, corpus=True).info()
    if args.json:
        print(json.dumps(info, indent=2, default=str))
        return 0
    ix, cpu, t = info["index"], info["cpu"], info["threshold"]
    print(f"index      {ix['dir']}: {ix['documents']} documents, {ix['chunks']} chunks "
          f"({ix['vector_index'].get('name', '?')} + {ix['lexical_index']})")
    for role in ("embedder", "reader"):
        m = info[role]
        name = m.get("name") or m.get("path") or "?"
        engine = (m.get("engine") or {}).get("engine", "?")
        line = f"{role:<10} {name} (sha256 {str(m.get('sha256') or '?')[:12]}) on {engine}"
        if m.get("auto_measured_cpu_s"):
            line += " (auto measured CPU s: " + ", ".join(f"{k} {v:.3f}" for k, v in m["auto_measured_cpu_s"].items()) + ")"
        print(line)
    print(f"engine     {info['engine_setting']} (QA_ENGINE overrides)")
    print(f"cpu        {cpu['model']}, {cpu['cores']} logical cores, flags {', '.join(cpu['flags']) or 'none of note'}; "
          f"native bf16 {'yes' if cpu['native_bf16'] else 'no'}")
    print(f"threshold  {t['value']:.3f}, from {t['from']}")
    return 0


def headline(answer: str) -> str:
    """An answer on its one line: a span may cross a line break (a PDF's lines, a
    wrapped paragraph), which split the answer line in two; the passages printed
    below keep the exact text."""
    return " ".join(answer.split())


def one_field(value) -> str:
    """A value fit for one tab-separated field of one line: control characters
    (a newline or tab in a file name) escaped, undecodable bytes shown as \\x.."""
    out = []
    for ch in str(value):
        if ord(ch) < 32 or ord(ch) == 127 or 0xD800 <= ord(ch) <= 0xDFFF:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch) or f"\\x{ord(ch) & 0xFF:02x}")
        else:
            out.append(ch)
    return "".join(out)


def cmd_show(args: argparse.Namespace) -> int:
    """The stored text of one document: what every offset of its citations points into
    (for a PDF, HTML or Word file, the extracted text), with its pages or sections."""
    from qa.errors import DocumentNotIndexedError

    qa = _qa(args, corpus=True)
    doc = qa.store.documents.get(args.doc_id)
    if doc is None:
        raise DocumentNotIndexedError(f"not in the index: {args.doc_id} (list them with `qa docs`)")
    if args.png:
        return _show_png(qa, doc, args)
    if args.page is not None or args.highlight is not None:
        _error("--page and --highlight draw a page: give --png FILE too")
        return EXIT_USAGE
    if args.locators:
        for loc in doc.locators:
            where = " ".join(x for x in (f"p. {loc.page}" if loc.page else "",
                                         f"§ {loc.section}" if loc.section else "") if x)
            print(f"{loc.start}-{loc.end}\t{where}")
        return 0
    sys.stdout.write(doc.text if doc.text.endswith("\n") else doc.text + "\n")
    return 0


def _show_png(qa: Any, doc: Any, args: argparse.Namespace) -> int:
    """``qa show DOC --png FILE [--page N] [--highlight S:E]``: the PDF page as PNG,
    the document range S:E (offsets into the stored text, as citations give
    them) highlighted; the page defaults to the one the highlight starts on.
    ``--png -`` writes the PNG alone to stdout (a pipe or a file; a terminal is
    refused, as the bytes would garble it)."""
    from qa.pages import render_document_page

    highlight = None
    if args.highlight is not None:
        try:
            a, b = (int(x) for x in args.highlight.split(":"))
        except ValueError:
            _error(f"--highlight takes START:END character offsets, not {args.highlight!r}")
            return EXIT_USAGE
        highlight = (a, b)
    if args.png == "-":  # stdout, as '-' is everywhere on a command line (`> page.png`, `| display`)
        if sys.stdout.isatty():
            _error("--png -: standard output is a terminal, which cannot show a PNG: redirect it "
                   "(--png - > page.png) or name a file (--png page.png)")
            return EXIT_USAGE
        page = render_document_page(doc, args.page, highlight, qa.settings.index_dir, qa.settings.pages)
        sys.stdout.flush()
        sys.stdout.buffer.write(page.png)  # the image alone: nothing else on stdout or stderr
        sys.stdout.buffer.flush()
        return 0
    target = Path(args.png)
    problem = ("is a folder: name the PNG file to write" if target.is_dir()
               else None if target.parent.is_dir() else f"no such folder: {target.parent}")
    if problem:  # said before drawing, about the path given
        _error(f"--png {args.png}: {problem}")
        return EXIT_ERROR
    page = render_document_page(doc, args.page, highlight, qa.settings.index_dir, qa.settings.pages)
    from qa._files import atomic_write_bytes

    try:
        out = atomic_write_bytes(target, page.png)
    except OSError as e:  # its filename is the hidden temp file beside the target: name the target
        _error(f"--png {args.png}: {e.strerror or e}")
        return EXIT_ERROR
    boxes = "; ".join(f"{l},{t},{r},{b}" for l, t, r, b in page.boxes) or "none"
    print(f"page {page.page} of {doc.id}: {page.width}x{page.height} px -> {out} (highlight boxes: {boxes})")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    qa = _qa(args)
    try:
        coming_back = _followed_files(qa, args)
        store = qa.remove_documents(args.doc_ids)
    except KeyError as e:
        _error(str(e.args[0]) if e.args else str(e))
        return EXIT_ERROR
    print(f"{len(store.documents)} documents, {len(store)} chunks left")
    for doc_id, (folder, path) in coming_back.items():
        if doc_id not in store.documents:
            print(f"note: {doc_id} comes back at the next `qa ask` or app start: the default index follows "
                  f"{folder}, which still holds {path}; delete or move that file to remove it for good",
                  file=sys.stderr)
    return 0


def _followed_files(qa: Any, args: argparse.Namespace) -> dict[str, tuple[Path, Path]]:
    """The documents to remove whose file is still in the folder the default index
    follows (seeds/ or QA_CORPUS_DIR), by id. ``qa remove`` does not sync, but the
    next ``qa ask`` and the app do, and add them back: removal alone was undone
    without a word. Empty for any other index (it follows no folder)."""
    from qa.config import Settings

    s = Settings()
    index_dir = Path(args.index) if args.index else s.index_dir
    if s.corpus_dir is None or index_dir.resolve() != s.index_dir.resolve():
        return {}
    folder = s.corpus_dir.resolve()
    wanted = set(args.doc_ids)
    out = {}
    for doc, _ in qa.documents():
        source = doc.meta.get("source")
        if doc.id in wanted and source and Path(source).is_file() and Path(source).is_relative_to(folder):
            out[doc.id] = (s.corpus_dir, Path(source))
    return out


def quiet_model_loading(level: int = logging.WARNING) -> None:
    """No weight-loading progress bars or hub chatter on a command line meant to
    print one answer (an application's choice, so it is made here, not in the library).
    bm25s sets its own logger to DEBUG when imported (later, lazily), which printed
    "Building index from tokens" on stderr at every write: a filter, which its
    import does not reset, holds it to the command line's ``level``."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("bm25s").addFilter(lambda record: record.levelno >= level)


def utf8_text(arg: str) -> str:
    """A command-line text (a question, a document id) as the UTF-8 it was typed in.
    Where the locale is not UTF-8 (LC_ALL=C without Python's UTF-8 mode) Python hands
    non-ASCII bytes over as surrogate escapes: the question was then refused as "not
    valid text" and an id such as ``café.txt`` matched nothing. Bytes that are not
    UTF-8 either are left as they came."""
    if not any(0xDC80 <= ord(ch) <= 0xDCFF for ch in arg):
        return arg
    import os

    try:
        return os.fsencode(arg).decode("utf-8")
    except (UnicodeError, ValueError):
        return arg


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _print_json(data: Any) -> None:
    """``data`` as JSON on stdout, non-ASCII text as itself where stdout can encode it and
    as \\u escapes where it cannot: the ``backslashreplace`` that keeps plain output
    printable wrote \\xeb there, which is not JSON (``qa ask --json | jq`` in a non-UTF-8 locale)."""
    text = json.dumps(data, ensure_ascii=False, indent=2)
    try:
        text.encode(sys.stdout.encoding or "utf-8")
    except (UnicodeEncodeError, LookupError):
        text = json.dumps(data, ensure_ascii=True, indent=2)
    print(text)


def _error(message: str) -> None:
    """One line on stderr, whatever the message holds."""
    print("error: " + " ".join(str(message).split()), file=sys.stderr)




def index_help(sync: bool = True) -> str:
    """The ``--index`` help with the default as the settings have it now (``QA_INDEX_DIR``,
    else the checkout's index/, else ./index) and, where the command follows it
    (``sync``: reading commands, and the app), the corpus folder the default index is
    kept in step with (``QA_CORPUS_DIR``, else the checkout's seeds/, else none). A fixed
    "index/, kept in step with seeds/" was wrong under either variable, outside a
    checkout, and for ``qa index``/``qa remove``, which never sync."""
    from qa.config import Settings

    s = Settings()
    follows = f", kept in step with {s.corpus_dir}" if sync and s.corpus_dir is not None else ""
    env = "QA_INDEX_DIR, QA_CORPUS_DIR" if sync else "QA_INDEX_DIR"
    return f"index folder (default: {s.index_dir}{follows}; env {env})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qa", description="Cited, extractive question answering over your documents.")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    sub = p.add_subparsers(dest="command", required=True)

    def with_index(sp: argparse.ArgumentParser, sync: bool = True) -> argparse.ArgumentParser:
        sp.add_argument("--index", help=index_help(sync).replace("%", "%%"))
        return sp

    s = with_index(sub.add_parser("index", help="build or update an index from files or folders"), sync=False)
    s.add_argument("paths", nargs="*", help=f"files ({', '.join(SUPPORTED_SUFFIXES)}) or folders of them")
    s.add_argument("--rebuild", action="store_true",
                   help="replace the index with exactly these files; with no paths, rebuild it from the texts "
                        "it stores (when the original files are gone, or its vectors are damaged)")
    s.add_argument("--backend", choices=VECTOR_BACKEND_CHOICES,
                   help="vector index for a new index (default auto: exact FAISS, HNSW past the store's ann_threshold "
                        "chunks, 50,000 by default)")
    s.add_argument("--milvus-uri", help="with --backend milvus: a Milvus Lite file or http://host:19530")
    s.set_defaults(func=cmd_index)

    s = with_index(sub.add_parser("ask", help="answer a question with its citation"))
    s.add_argument("question")
    s.add_argument("--json", action="store_true", help="print the Answer as JSON")
    s.add_argument("--top-k", type=positive_int, help=TOP_K_HELP)
    s.add_argument("--min-score", type=probability, help="confidence (0-1) below which to answer nothing")
    s.set_defaults(func=cmd_ask)

    s = with_index(sub.add_parser("calibrate", help="choose the confidence threshold from your own gold questions",
                                  description="Ask every gold question (JSONL: {id, question, answers[, doc_id]}; "
                                              "answers [] = not in the documents), print precision, withheld rate "
                                              "and F1 along the threshold, and store the chosen threshold with the "
                                              "index (used by ask, the CLI and the app)."))
    s.add_argument("gold", help="gold JSONL file")
    crit = s.add_mutually_exclusive_group()
    crit.add_argument("--precision", type=probability, help="lowest threshold whose answers are at least this precise (0-1)")
    crit.add_argument("--max-withheld", type=probability,
                      help="highest threshold that hides at most this share (0-1) of the right answers")
    s.add_argument("--top-k", type=positive_int, help=TOP_K_HELP)
    s.add_argument("--dry-run", action="store_true", help="print the figures, store nothing")
    s.add_argument("--json", action="store_true", help="print the result as JSON")
    s.set_defaults(func=cmd_calibrate)

    s = with_index(sub.add_parser("docs", help="list indexed documents"))
    s.set_defaults(func=cmd_docs)

    s = with_index(sub.add_parser("info", help="what runs here: index, models and their engines, CPU, threshold"))
    s.add_argument("--json", action="store_true", help="print it as JSON")
    s.set_defaults(func=cmd_info)

    s = with_index(sub.add_parser("show", help="print a document's stored (extracted) text, or draw a PDF page"))
    s.add_argument("doc_id")
    s.add_argument("--locators", action="store_true", help="print its character ranges with their pages/sections")
    s.add_argument("--png", metavar="FILE",
                   help="PDF only: write a page as a PNG image instead of printing the text (- for stdout)")
    s.add_argument("--page", type=positive_int, help="with --png: the page (1-based; default: the highlight's)")
    s.add_argument("--highlight", metavar="START:END",
                   help="with --png: highlight this range of the stored text (offsets as in `qa ask --json`)")
    s.set_defaults(func=cmd_show)

    s = with_index(sub.add_parser("remove", help="remove documents from the index by id"), sync=False)
    s.add_argument("doc_ids", nargs="+")
    s.set_defaults(func=cmd_remove)

    s = sub.add_parser("eval", help="evaluate on gold questions (see python -m qa.evaluate -h)", add_help=False)
    s.add_argument("rest", nargs=argparse.REMAINDER)
    s.set_defaults(func=None)
    return p


def main(argv: list[str] | None = None, qa_factory: Callable[..., Any] | None = None) -> int:
    """Run one command; ``qa_factory`` builds the ``QA`` (default ``qa.QA``; tests pass fakes)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    lead = 0  # global options before the command (`qa -v eval ...`)
    while lead < len(argv) and argv[lead] in ("-v", "--verbose"):
        lead += 1
    if lead < len(argv) and argv[lead] == "eval":
        # Handed over whole: argparse's REMAINDER drops leading options like --squad.
        from qa.evaluation.cli import main as eval_main

        if lead:
            logging.basicConfig(level=logging.INFO, format="%(message)s")
        return eval_main(argv[lead + 1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("question", "doc_id", "doc_ids"):  # texts, not paths: paths must keep their bytes
        if hasattr(args, name):
            value = getattr(args, name)
            setattr(args, name, [utf8_text(v) for v in value] if isinstance(value, list) else utf8_text(value))
    if args.func is cmd_index and not args.paths and not args.rebuild:
        parser.error("qa index: give the files or folders to index (or --rebuild alone to rebuild the "
                     "index from the texts it stores)")
    if qa_factory is None:
        from qa.api import QA as qa_factory
    args.qa_factory = qa_factory
    level = logging.INFO if args.verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(message)s")
    quiet_model_loading(level)
    for stream in (sys.stdout, sys.stderr):  # names holding undecodable bytes print as \x..
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):
            pass
    try:
        return args.func(args)
    except QAError as e:
        _error(str(e))
        return EXIT_ERROR
    except BrokenPipeError:  # `qa docs | head -1`: the reader has gone, nothing to say
        _silence_stdout()
        return EXIT_ERROR
    except OSError as e:  # e.g. an index folder that cannot be written
        _error(f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}")
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # a bug, not bad input: still one line (the traceback with -v)
        if args.verbose:
            import traceback

            traceback.print_exc()
        _error(f"internal error ({type(e).__name__}: {e}); run with -v for the details and please report it")
        return EXIT_ERROR
