"""The web chat: ask questions about your documents and see where each answer comes from.

    python app.py [--host 127.0.0.1] [--port 7860] [--index DIR] [--auth-file FILE] [--insecure]

All question answering happens in ``qa.QA``; the page (chat, documents, check
and tune) is built by ``qa.ui``. This file only reads the command line, loads
the index and models, and serves. API callers (``gradio_client``) get
``/ask`` (the chat: keeps the conversation per client session, returns the
chat messages), ``/answer`` (one question, optional history, returns the
Answer as a dict, with ``timings``) and ``/add_documents``. Who may connect,
what a request may cost and what an error says are decided in ``qa.serving``
(a non-loopback address needs credentials; only editors change the index).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from qa.errors import QAError
from qa.serving import check_launch, check_port, load_credentials
from qa.ui import APP_CSS, build_app, launch  # noqa: F401  (tests and scripts use app.build_app / app.launch)

log = logging.getLogger("qa.app")


def port_number(text: str) -> int:
    """A TCP port for argparse: a bad one (or a bad QA_PORT) is a usage line, not a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1-65535, not {port}")
    return port


def build_parser() -> argparse.ArgumentParser:
    from qa.argtypes import positive_int
    from qa.cli import index_help

    p = argparse.ArgumentParser(description="Web chat over your documents.")
    p.add_argument("--host", default=os.environ.get("QA_HOST", "127.0.0.1"),
                   help="interface to listen on (default 127.0.0.1, env QA_HOST)")
    p.add_argument("--port", type=port_number, default=None, help="port (default 7860, env QA_PORT)")
    p.add_argument("--index", help=index_help().replace("%", "%%"))
    p.add_argument("--concurrency", type=positive_int, default=32,
                   help="questions taken at once, answered together in batches (default 32)")
    p.add_argument("--auth-file", default=None,
                   help="users allowed in, one user:password[:role] per line, role reader (asks; the default) "
                        "or editor (may also upload, add and remove documents, run an evaluation and store a threshold); env QA_AUTH_FILE, "
                        "or QA_AUTH=\"user:pw:role,...\". Required to serve on anything but 127.0.0.1")
    p.add_argument("--insecure", action="store_true",
                   help="serve a non-loopback address without credentials (anyone who reaches it may read "
                        "and change the index)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The flags, with QA_PORT read when --port is not given: checked here, so a bad
    QA_PORT is named as such (as a default of --port it read "argument --port: ...")."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.port is None:
        try:
            args.port = port_number(os.environ.get("QA_PORT", "7860"))
        except argparse.ArgumentTypeError as e:
            parser.error(f"QA_PORT={os.environ['QA_PORT']!r}: {e}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:  # before any model loads: an unsafe launch is refused at once
        credentials = load_credentials(args.auth_file)
        check_launch(args.host, credentials, args.insecure)
        check_port(args.host, args.port)
    except QAError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from qa.cli import quiet_model_loading

    quiet_model_loading()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import qa

    from qa.errors import IndexMissingError

    if args.index:
        from qa.api import QA

        # A named index is served as it is (like `qa ask --index`); seeds/ feeds only the default one.
        qa_instance = QA(index_dir=args.index, corpus_dir=None)
    else:
        qa_instance = qa.default_qa()
    try:
        qa_instance.warm_up()  # index and models now, not on the first question
    except IndexMissingError as e:
        print(f"note: {e}\n      (or add documents in the page to start one)")
        qa_instance.embedder.warm_up()
        qa_instance.reader.warm_up()
    except QAError as e:
        print(f"error: {e}")
        return 1
    demo = build_app(qa_instance, concurrency_limit=args.concurrency, credentials=credentials)
    launch(demo, args.host, args.port, max_file_bytes=qa_instance.settings.max_file_bytes,
           limits=qa_instance.settings.limits, auth=credentials.check if credentials else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
