"""The web chat: ask questions about your documents and see where each answer comes from.

    python app.py [--host 127.0.0.1] [--port 7860] [--index DIR]

All question answering happens in ``qa.QA``; this file only lays out the page,
keeps the conversation and formats answers (``qa.formatting``). ``build_app``
makes the page for any ``QA`` instance; ``launch`` serves it with the app's
styles and upload limits. API callers (``gradio_client``) get two endpoints:
``/ask`` (the chat: keeps the conversation per client session, returns the chat
messages) and ``/answer`` (one question, optional history, returns the Answer
as a dict).
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

import gradio as gr

from qa.batching import MicroBatcher
from qa.errors import IndexMissingError, QAError
from qa.formatting import CSS, answer_to_dict, format_answer, format_error
from qa.ingest import SUPPORTED_SUFFIXES
from qa.uploads import MAX_FILES_PER_UPLOAD, MAX_UPLOAD_BYTES, index_uploads, upload_folder

log = logging.getLogger("qa.app")

EXAMPLES = [
    "Who commanded the 58th Combined Arms Army?",
    "Whom did General Popov accuse of treason?",
    "Who made the recording of Popov's voice memo public?",
    "What weapon struck the 58th Army reserve command post?",
    "Who led a short-lived mutiny three weeks earlier?",
]

HEADER = """
<div class="qa-header">
<h1>Ask your documents</h1>
<p>Answers are lifted word for word from the indexed documents, with the passage they come from.
Follow-up questions (“Whom did he accuse?”) use the conversation so far.</p>
</div>
"""

APP_CSS = CSS + """
.qa-header h1 { margin: 0 0 4px 0; font-size: 1.6em; }
.qa-header p { margin: 0; opacity: 0.75; }
#qa-chat { flex-grow: 1; }
#qa-status p { margin: 0; }
#qa-question textarea { font-size: 1.05em; }
footer { display: none !important; }
"""

NO_INDEX = "No documents are indexed yet: add some with the panel on the right."
THINKING = '<div class="qa-reply qa-thinking">Searching the documents…</div>'
DOC_HEADERS = ["Title", "Date", "ID", "Chunks"]


def _documents_table(qa_instance) -> list[list[Any]]:
    rows = [[d.title, d.meta.get("date", ""), d.id, n] for d, n in qa_instance.documents()]
    return sorted(rows, key=lambda r: (str(r[0]).lower(), r[2]))


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def _threshold(qa_instance) -> float:
    """The threshold ask() uses by default: the index's own (``qa calibrate``) or the reader's."""
    t = getattr(qa_instance, "threshold", None)
    return qa_instance.reader.threshold if t is None else t


def build_app(qa_instance, concurrency_limit: int = 32) -> gr.Blocks:
    """The chat page for ``qa_instance`` (models load on the first question unless
    the caller warmed them up). Up to ``concurrency_limit`` questions are taken at
    once and answered together in batches (``qa.batching``); more wait in the queue.
    Uploads run in their own queue, beside the questions."""
    settings = qa_instance.settings
    # Questions that arrive together are answered in one batched pass (qa.batching).
    asker = MicroBatcher(qa_instance)
    max_k = settings.retrieval.candidates

    def run_turn(question: str, pairs: list, messages: list, top_k: float, use_default: bool,
                 min_score: float) -> tuple[list, list]:
        """Answer one question in the conversation: (new messages, new pairs)."""
        question = (question or "").strip()
        pairs = list(pairs or [])
        messages = list(messages or [])
        if not question:
            return messages, pairs
        messages.append({"role": "user", "content": question})
        try:
            a = asker.ask(question, history=[tuple(p) for p in pairs], top_k=int(top_k),
                                min_score=None if use_default else float(min_score))
        except IndexMissingError:
            messages.append({"role": "assistant", "content": format_error(NO_INDEX)})
            return messages, pairs
        except QAError as e:
            messages.append({"role": "assistant", "content": format_error(str(e))})
            return messages, pairs
        except Exception as e:  # keep the chat alive; the log has the traceback
            log.exception("answering %r failed", question)
            messages.append({"role": "assistant", "content": format_error(f"Something went wrong: {e}")})
            return messages, pairs
        messages.append({"role": "assistant", "content": format_answer(a, qa_instance.store.documents)})
        pairs.append((question, a.answer))
        return messages, pairs

    # --- UI events (two steps so the question shows at once) -----------------

    def post_question(text: str, messages: list):
        text = (text or "").strip()
        if not text:
            return gr.skip(), messages, ""
        shown = list(messages or []) + [{"role": "user", "content": text},
                                        {"role": "assistant", "content": THINKING}]
        return "", shown, text

    def answer_pending(pending: str, pairs: list, messages: list, top_k, use_default, min_score):
        if not pending:
            return messages, pairs, messages, ""
        new_messages, new_pairs = run_turn(pending, pairs, messages, top_k, use_default, min_score)
        return new_messages, new_pairs, new_messages, ""

    # --- API: the whole turn in one call --------------------------------------

    def ask_api(question: str, top_k, use_default, min_score, pairs: list, messages: list):
        new_messages, new_pairs = run_turn(question, pairs, messages, top_k, use_default, min_score)
        return new_messages, new_pairs, new_messages

    def answer(question: str, history: list[list[str]] | None = None, top_k: int | None = None,
               min_score: float | None = None) -> dict:
        """Answer one question; ``history`` is [[question, answer], ...]; returns the Answer as a dict."""
        try:
            if isinstance(history, list):  # JSON turns are lists; ask() checks their shape
                history = [tuple(t) if isinstance(t, list) else t for t in history]
            a = asker.ask(question, history=history or None, top_k=top_k, min_score=min_score)
        except QAError as e:
            raise gr.Error(str(e)) from e
        except Exception as e:  # never a bare {"error": null}: say what happened
            log.exception("answering %r over the API failed", question)
            raise gr.Error(f"Something went wrong: {type(e).__name__}: {e}") from e
        return answer_to_dict(a)

    def clear():
        return [], [], [], ""

    def add_files(files, progress=gr.Progress(track_tqdm=True)):
        """Index an upload as one update (runs in the "index" queue, beside the
        chat: questions keep being answered from the published index meanwhile)."""
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        if not paths:
            return gr.skip(), "Choose one or more files first.", gr.skip()
        progress(0.0, desc=f"Reading {len(paths)} file(s)")
        try:
            report = index_uploads(qa_instance, paths, progress=True, delete_under=upload_folder())
            status = report.markdown()
        except QAError as e:  # over a limit: nothing indexed
            status = f"⚠ {e}"
        except Exception as e:  # keep the page alive; the log has the traceback
            log.exception("indexing an upload failed")
            status = f"⚠ Not indexed: something went wrong ({type(e).__name__}: {e})"
        progress(1.0, desc="Done")
        try:
            table = _documents_table(qa_instance)
        except IndexMissingError:
            table = []
        except QAError:
            table = gr.skip()
        return table, status, None

    def on_load():
        try:
            rows = _documents_table(qa_instance)
        except IndexMissingError:
            return [], NO_INDEX, gr.skip()
        except QAError as e:
            return gr.skip(), f"⚠ {e}", gr.skip()
        # The calibrated threshold is known once the reader is loaded (main warms it up).
        threshold = _clamp01(_threshold(qa_instance)) if qa_instance.reader.loaded else gr.skip()
        return rows, "", threshold

    # Uploads are read once into the index; gradio's copies are deleted after an hour.
    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        pairs = gr.State([])  # [(question, short answer)], the history passed to ask
        messages = gr.State([])  # the chat as shown, for API callers' sessions
        pending = gr.State("")
        gr.HTML(HEADER)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=420):
                chatbot = gr.Chatbot(
                    elem_id="qa-chat", label="Chat", show_label=False, height=620,
                    latex_delimiters=[], layout="bubble", buttons=["copy"],
                    feedback_options=None, autoscroll=True,
                    placeholder="Ask a question about your documents, or pick an example below.",
                )
                with gr.Row():
                    box = gr.Textbox(elem_id="qa-question", placeholder="Ask a question…", show_label=False,
                                     scale=6, autofocus=True, max_lines=4, submit_btn=False, container=False)
                    send = gr.Button("Ask", variant="primary", scale=0, min_width=90, elem_id="qa-send")
                    clear_btn = gr.Button("Clear", variant="secondary", scale=0, min_width=90, elem_id="qa-clear")
                gr.Examples(EXAMPLES, inputs=[box], label="Examples")
            with gr.Column(scale=2, min_width=300):
                with gr.Accordion("Add documents", open=True):
                    uploads = gr.File(
                        label=(f"Upload {', '.join(SUPPORTED_SUFFIXES)} (up to {MAX_FILES_PER_UPLOAD} files, "
                               f"{settings.max_file_bytes // 1024**2} MB each, {MAX_UPLOAD_BYTES // 1024**2} MB in all)"),
                        file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), height=120)
                    add_btn = gr.Button("Add to index", variant="secondary", elem_id="qa-add")
                    status = gr.Markdown(elem_id="qa-status")
                docs = gr.Dataframe(headers=DOC_HEADERS, datatype=["str", "str", "str", "number"],
                                    label="Indexed documents", interactive=False, wrap=True, elem_id="qa-docs",
                                    column_widths=["40%", "23%", "25%", "12%"], max_height=260)
                with gr.Accordion("Settings", open=False):
                    top_k = gr.Slider(1, max_k, value=settings.retrieval.top_k, step=1,
                                      label="Passages to read (top-k)")
                    use_default = gr.Checkbox(True, label="Use the calibrated confidence threshold (this index's, "
                                                          "from `qa calibrate`, else the model's)")
                    min_score = gr.Slider(0.0, 1.0, value=_clamp01(_threshold(qa_instance)), step=0.01,
                                          label="Minimum confidence (below it: \"the documents don't say\")",
                                          interactive=False)

        use_default.change(lambda d: gr.update(interactive=not d), use_default, min_score,
                           queue=False, api_visibility="private")

        ask_inputs = [pending, pairs, messages, top_k, use_default, min_score]
        ask_outputs = [chatbot, pairs, messages, pending]
        for trigger in (box.submit, send.click):
            trigger(post_question, [box, messages], [box, chatbot, pending], queue=False,
                    api_visibility="private").then(
                answer_pending, ask_inputs, ask_outputs, concurrency_id="ask",
                concurrency_limit=concurrency_limit, api_visibility="private")

        api_button = gr.Button(visible=False)
        api_button.click(ask_api, [box, top_k, use_default, min_score, pairs, messages],
                         [chatbot, pairs, messages], api_name="ask", concurrency_id="ask",
                         concurrency_limit=concurrency_limit,
                         api_description="Ask in this client's conversation; returns the chat messages (HTML).")
        gr.api(answer, api_name="answer", concurrency_id="ask", concurrency_limit=concurrency_limit)

        clear_btn.click(clear, None, [chatbot, pairs, messages, pending], queue=False, api_name="clear")
        chatbot.clear(clear, None, [chatbot, pairs, messages, pending], queue=False, api_visibility="private")

        add_btn.click(add_files, [uploads], [docs, status, uploads], concurrency_id="index",
                      concurrency_limit=1, api_name="add_documents",
                      api_description="Index uploaded .txt/.md files; returns the documents table and a status message.")
        demo.load(on_load, None, [docs, status, min_score], api_visibility="private")
    demo.queue(max_size=64, default_concurrency_limit=concurrency_limit)
    demo.batcher = asker  # its .batches: the sizes of the batches answered (benchmarks read them)
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, max_file_bytes: int | None = None,
           **kwargs):
    """Serve ``demo`` with the app's styles and upload limit (extra kwargs go to ``launch``)."""
    kwargs.setdefault("theme", gr.themes.Soft(
        primary_hue="orange", neutral_hue="slate",
        font=[gr.themes.LocalFont("IBM Plex Sans", weights=(400, 600)), "ui-sans-serif", "system-ui", "sans-serif"]))
    return demo.launch(server_name=host, server_port=port, css=APP_CSS,
                       max_file_size=max_file_bytes, footer_links=["api"], **kwargs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Web chat over your documents.")
    p.add_argument("--host", default=os.environ.get("QA_HOST", "127.0.0.1"),
                   help="interface to listen on (default 127.0.0.1, env QA_HOST)")
    p.add_argument("--port", type=int, default=int(os.environ.get("QA_PORT", "7860")),
                   help="port (default 7860, env QA_PORT)")
    p.add_argument("--index", help="index folder (default: index/, built from seeds/ when missing)")
    p.add_argument("--concurrency", type=int, default=32,
                   help="questions taken at once, answered together in batches (default 32)")
    p.add_argument("-v", "--verbose", action="store_true", help="log what happens")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
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
    demo = build_app(qa_instance, concurrency_limit=args.concurrency)
    launch(demo, args.host, args.port, max_file_bytes=qa_instance.settings.max_file_bytes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
