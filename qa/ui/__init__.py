"""The web app's page: three tabs over one ``qa.QA``.

    Chat             ask; the answer marked in an excerpt of its passage (the
                     whole passage one click away), the PDF page with the answer
                     highlighted, timings (``qa.ui.chat``); add documents beside it
    Documents        what the index holds, the text of one, its pages, removal
                     with a confirmation (``qa.ui.documents``)
    Check and tune   a gold JSONL evaluated with progress: EM/F1, misses by cause,
                     the precision/withheld curve; store the threshold (``qa.ui.tune``)

``build_app`` makes the page for any ``QA`` instance; ``launch`` serves it
with the app's styles and upload limit. Every piece of text that comes from a
document (passages, titles, file names) is escaped wherever it is shown.
"""

from __future__ import annotations

import gradio as gr
from starlette.middleware import Middleware

from qa.batching import MicroBatcher
from qa.formatting import CSS
from qa.config import LimitsConfig
from qa.serving import EditorsOnlyUploads, LoginThrottle, RequestSizeLimit, exception_handlers, harden, login_message
from qa.ui.chat import build_chat, clamp01, current_threshold
from qa.ui.documents import build_documents_tab, build_upload_panel, load_tables, wire_documents
from qa.ui.tune import build_tune_tab

HEADER = """
<div class="qa-header">
<h1>Ask your documents</h1>
<p>Answers are lifted word for word from the indexed documents, with the passage and the page they come from.
Follow-up questions (“Whom did he accuse?”) use the conversation so far.</p>
</div>
"""

#: What a reader's page says where editors add documents.
READER_NOTE = "Your account may ask questions; adding documents and running evaluations need the editor role."

APP_CSS = CSS + """
.qa-header h1 { margin: 0 0 4px 0; font-size: 1.6em; }
.qa-header p { margin: 0; opacity: 0.75; }
#qa-chat { flex-grow: 1; }
#qa-status p { margin: 0; }
#qa-question textarea { font-size: 1.05em; }
#qa-doc-text textarea { font-family: ui-monospace, monospace; font-size: 0.85em; }
footer { display: none !important; }
"""


def build_app(qa_instance, concurrency_limit: int = 32, credentials=None) -> gr.Blocks:
    """The page for ``qa_instance`` (models load on the first question unless
    the caller warmed them up). Up to ``concurrency_limit`` questions are taken at
    once and answered together in batches (``qa.batching``); more wait in the
    queue. Uploads and removals run one at a time in their own queue, beside
    the questions; evaluations in a third. ``credentials``
    (``qa.serving.Credentials``): only editors may add or remove documents or
    store a threshold (None: everyone may). Who may connect, what a request may
    cost and what an error says are decided in ``qa.serving``."""
    asker = MicroBatcher(qa_instance)
    # Uploads are read once into the index; gradio's copies are deleted after an hour.
    with gr.Blocks(title="Ask your documents", analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.HTML(HEADER)
        with gr.Tabs(elem_id="qa-tabs"):
            with gr.Tab("Chat", id="chat", elem_id="qa-tab-chat"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3, min_width=420):
                        chat = build_chat(qa_instance, asker, concurrency_limit)
                    with gr.Column(scale=2, min_width=300):
                        uploads, add_btn, status, side_docs = build_upload_panel(qa_instance)
            with gr.Tab("Documents", id="documents", elem_id="qa-tab-documents"):
                table, pick = build_documents_tab(qa_instance)
                wire_documents(qa_instance, uploads, add_btn, status, side_docs, table, pick, credentials)
            with gr.Tab("Check and tune", id="tune", elem_id="qa-tab-tune"):
                gold_file, run_btn = build_tune_tab(qa_instance, chat.min_score, credentials)

        def on_load(request: gr.Request | None = None):
            side, full, choices, message = load_tables(qa_instance)
            # The calibrated threshold is known once the reader is loaded (main warms it up).
            threshold = clamp01(current_threshold(qa_instance)) if qa_instance.reader.loaded else gr.skip()
            # A reader's page offers no uploads (the server refuses them: qa.serving.EditorsOnlyUploads).
            reader = credentials is not None and credentials.role(getattr(request, "username", None)) != "editor"
            off = gr.update(interactive=False) if reader else gr.skip()
            if reader and not message:
                message = READER_NOTE
            return side, full, choices, message, threshold, off, off, off, off

        demo.load(on_load, None, [side_docs, table, pick, status, chat.min_score, uploads, add_btn, gold_file, run_btn],
                  api_visibility="private")
    demo.queue(max_size=64, default_concurrency_limit=concurrency_limit)
    demo.batcher = asker  # its .batches: the sizes of the batches answered (benchmarks read them)
    demo.credentials = credentials  # launch() lets only their editors upload
    return harden(demo)


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, max_file_bytes: int | None = None,
           max_request_bytes: int | None = None, limits: LimitsConfig | None = None, **kwargs):
    """Serve ``demo`` with the app's styles and upload limit (extra kwargs go to ``launch``);
    requests for endpoints that do not exist get a 404/422 with a message
    (``qa.serving.exception_handlers``), not an HTTP 500, and a request body over
    ``max_request_bytes`` (uploads aside; default ``limits.max_request_bytes``) a 413 before it
    is read (``qa.serving.RequestSizeLimit``), and failed logins are limited per user name and
    client (``qa.serving.LoginThrottle``, ``limits``: the app's ``LimitsConfig``), which the
    login page states. With ``build_app``'s credentials only editors may upload
    (``qa.serving.EditorsOnlyUploads``).

    It is served on ``host`` only: no public share link (gradio opens one when
    ``GRADIO_SHARE=true`` is set or it thinks it runs in a hosted notebook, which
    would put an app that ``qa.serving.check_launch`` let through for 127.0.0.1
    on the internet, credentials or not) and no MCP server (``GRADIO_MCP_SERVER``)."""
    kwargs.setdefault("share", False)
    kwargs.setdefault("mcp_server", False)
    kwargs.setdefault("theme", gr.themes.Soft(
        primary_hue="orange", neutral_hue="slate",
        font=[gr.themes.LocalFont("IBM Plex Sans", weights=(400, 600)), "ui-sans-serif", "system-ui", "sans-serif"]))
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs.setdefault("exception_handlers", exception_handlers())
    limits = limits or LimitsConfig()
    if kwargs.get("auth") is not None:
        kwargs.setdefault("auth_message", login_message(limits))
    middleware = [  # the first is the outermost: the size limit before the login form is read
        Middleware(RequestSizeLimit, max_bytes=max_request_bytes or limits.max_request_bytes),
        Middleware(LoginThrottle, limits=limits)]
    credentials = getattr(demo, "credentials", None)
    if credentials is not None:
        middleware.append(Middleware(EditorsOnlyUploads, credentials=credentials))
    app_kwargs.setdefault("middleware", middleware)
    kwargs["app_kwargs"] = app_kwargs
    return demo.launch(server_name=host, server_port=port, css=APP_CSS,
                       max_file_size=max_file_bytes, footer_links=["api"], **kwargs)


__all__ = ["APP_CSS", "build_app", "launch"]
