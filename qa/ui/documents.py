"""Adding documents (the panel beside the chat) and the Documents tab: what the
index holds (title, type, pages or sections, chunks, when added), the text of
one as extracted (what ``qa show`` prints), its PDF pages, and removal with a
confirmation step."""

from __future__ import annotations

import datetime as _dt
import io
import logging
from typing import Any

import gradio as gr

from qa.errors import IndexMissingError, QAError
from qa.ingest import SUPPORTED_SUFFIXES
from qa.errors import PageRenderError
from qa.pages import prune_originals, render_document_page
from qa.types import Document
from qa.serving import require_editor, web_errors, without_server_paths, without_temp_file_leak
from qa.uploads import index_uploads, upload_folder

log = logging.getLogger("qa.app")

SIDE_HEADERS = ["Title", "Date", "ID", "Chunks"]
HEADERS = ["Title", "Type", "Pages / sections", "Chunks", "Added", "ID"]
NO_INDEX = "No documents are indexed yet: add some with the panel beside the chat."


def doc_type(doc: Document) -> str:
    fmt = str(doc.meta.get("format", "") or "")
    if fmt:
        return {"pdf": "PDF", "html": "HTML", "word": "Word"}.get(fmt.lower(), fmt)
    return "Markdown" if doc.id.lower().endswith((".md", ".markdown")) else "text"


def doc_extent(doc: Document) -> str:
    """"4 pages", "7 sections" or "" (plain text has neither)."""
    pages = doc.meta.get("pages")
    if pages:
        return f"{pages} page{'s' * (str(pages) != '1')}"
    sections = {loc.section for loc in doc.locators if loc.section}
    return f"{len(sections)} section{'s' * (len(sections) != 1)}" if sections else ""


def doc_added(doc: Document) -> str:
    raw = doc.meta.get("added")
    if not raw:
        return ""
    try:
        return _dt.datetime.fromisoformat(str(raw)).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return str(raw)


def side_table(qa_instance) -> list[list[Any]]:
    rows = [[d.title, d.meta.get("date", ""), d.id, n] for d, n in qa_instance.documents()]
    return sorted(rows, key=lambda r: (str(r[0]).lower(), r[2]))


def documents_table(qa_instance) -> list[list[Any]]:
    rows = [[d.title, doc_type(d), doc_extent(d), n, doc_added(d), d.id] for d, n in qa_instance.documents()]
    return sorted(rows, key=lambda r: (str(r[0]).lower(), r[5]))


def describe(doc: Document, chunks: int) -> str:
    """One line about a document, for the tab (Markdown; every value escaped)."""
    from qa.formatting import md_escape

    parts = [f"**{md_escape(doc.title or doc.id)}**", md_escape(doc_type(doc))]
    for x in (doc_extent(doc), f"{chunks} chunks", f"{len(doc.text):,} characters",
              f"added {doc_added(doc)}" if doc_added(doc) else "", f"id {md_escape(doc.id)}"):
        if x:
            parts.append(x)
    return " · ".join(parts)


def build_upload_panel(qa_instance) -> tuple[Any, Any, Any, Any]:
    """The "Add documents" panel and the small documents table beside the chat:
    (uploads, add button, status, table)."""
    settings = qa_instance.settings
    with gr.Accordion("Add documents", open=True):
        uploads = without_temp_file_leak(gr.File(
            label=(f"Upload {', '.join(SUPPORTED_SUFFIXES)} (up to {settings.limits.max_files_per_upload} files, "
                   f"{settings.max_file_bytes // 1024**2} MB each, {settings.limits.max_upload_bytes // 1024**2} MB "
                   "in all)"),
            file_count="multiple", file_types=list(SUPPORTED_SUFFIXES), height=120, elem_id="qa-upload"))
        add_btn = gr.Button("Add to index", variant="secondary", elem_id="qa-add")
        status = gr.Markdown(elem_id="qa-status")
    docs = gr.Dataframe(headers=SIDE_HEADERS, datatype=["str", "str", "str", "number"],
                        label="Indexed documents", interactive=False, wrap=True, elem_id="qa-docs",
                        column_widths=["40%", "23%", "25%", "12%"], max_height=260)
    return uploads, add_btn, status, docs


def build_documents_tab(qa_instance) -> tuple[Any, Any]:
    """The Documents tab (inside an open ``gr.Tab``): (table, chooser); its events
    are wired by ``wire_documents``."""
    gr.Markdown("What the index holds. Choose a document to see its text as extracted "
                "(what answers are lifted from and what `qa show` prints) or to remove it.")
    table = gr.Dataframe(headers=HEADERS, datatype=["str", "str", "str", "number", "str", "str"],
                         interactive=False, wrap=True, elem_id="qa-doc-table", max_height=320,
                         column_widths=["34%", "8%", "12%", "8%", "16%", "22%"], label="Indexed documents")
    pick = gr.Dropdown(choices=[], value=None, label="Document", elem_id="qa-doc-pick", allow_custom_value=False)
    return table, pick


def wire_documents(qa_instance, uploads, add_btn, status, side_docs, table, pick, credentials=None) -> None:
    """The Documents tab's text, page view and removal, and the upload panel's events.
    ``credentials`` (``qa.serving.Credentials``): only editors may add or remove
    documents (None: everyone may)."""
    index_dir = qa_instance.settings.index_dir

    def choices() -> list[tuple[str, str]]:
        return [(f"{r[0]} ({r[5]})", r[5]) for r in documents_table(qa_instance)]

    def refresh(selected: str | None = None):
        try:
            side, full, ch = side_table(qa_instance), documents_table(qa_instance), choices()
        except IndexMissingError:
            side, full, ch = [], [], []
        keep = selected if selected in {c[1] for c in ch} else None
        return side, full, gr.update(choices=ch, value=keep)

    info = gr.Markdown(elem_id="qa-doc-info")
    with gr.Row(visible=False) as page_row:
        page_no = gr.Number(value=1, precision=0, minimum=1, label="Page (Enter to show)", elem_id="qa-doc-page", scale=0,
                            min_width=120)
        page_img = gr.Image(type="pil", label="Page", show_label=False, interactive=False,
                            elem_id="qa-doc-page-img", height=440, scale=4)
    text = gr.Textbox(label="Extracted text", lines=12, max_lines=24, interactive=False, elem_id="qa-doc-text",
                      buttons=["copy"])
    remove_btn = gr.Button("Remove this document…", variant="stop", elem_id="qa-doc-remove", interactive=False)
    with gr.Row(visible=False, elem_id="qa-doc-confirm") as confirm_row:
        confirm_msg = gr.Markdown()
        yes = gr.Button("Yes, remove it", variant="stop", elem_id="qa-doc-remove-yes", scale=0, min_width=150)
        no = gr.Button("Cancel", elem_id="qa-doc-remove-no", scale=0, min_width=100)
    removed = gr.Markdown(elem_id="qa-doc-status")

    def show(doc_id: str | None):
        hidden = (gr.update(value=""), gr.update(visible=False), gr.update(value=None), gr.update(value=None),
                  "", gr.update(interactive=False), gr.update(visible=False))
        if not doc_id:
            return hidden
        try:
            store = qa_instance.store
        except QAError as e:
            return (gr.update(value=f"⚠ {without_server_paths(e)}"),) + hidden[1:]
        doc = store.documents.get(doc_id)
        if doc is None:
            return (gr.update(value="That document is no longer indexed."),) + hidden[1:]
        n = sum(1 for c in store.chunks if c.doc_id == doc_id)
        is_pdf = doc_type(doc) == "PDF"
        img = _page_image(qa_instance, doc, 1) if is_pdf else None
        return (describe(doc, n), gr.update(visible=is_pdf), gr.update(value=1), img, doc.text,
                gr.update(interactive=True), gr.update(visible=False))

    def show_page(doc_id: str | None, page: float | None):
        if not doc_id or page is None:
            return None
        doc = qa_instance.store.documents.get(doc_id)
        return _page_image(qa_instance, doc, int(page)) if doc is not None else None

    def ask_confirm(doc_id: str | None):
        if not doc_id:
            return gr.update(visible=False), ""
        from qa.formatting import md_escape

        return gr.update(visible=True), (f"Remove **{md_escape(doc_id)}** from the index? Its answers go with it; "
                                         "the file itself is not touched.")

    @web_errors("removing a document")
    def do_remove(doc_id: str | None, request: gr.Request):
        require_editor(request, credentials)
        if not doc_id:
            return (gr.update(visible=False), "Choose a document first.") + refresh()
        from qa.formatting import md_escape

        try:
            store = qa_instance.remove_documents([doc_id])
        except (KeyError, QAError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            return (gr.update(visible=False), f"⚠ Not removed: {md_escape(without_server_paths(msg))}") + refresh(doc_id)
        try:
            prune_originals(index_dir, store.documents.values())
        except OSError as e:
            log.warning("could not prune kept PDFs: %s", e)
        return ((gr.update(visible=False),
                 f"Removed **{md_escape(doc_id)}**: {len(store.documents)} documents, {len(store)} chunks left.")
                + refresh(None))

    @web_errors("/add_documents")
    def add_files(files, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        """Index an upload as one update (runs in the "index" queue, beside the
        chat: questions keep being answered from the published index meanwhile)."""
        require_editor(request, credentials)
        paths = [f if isinstance(f, str) else getattr(f, "name", str(f)) for f in (files or [])]
        if not paths:
            return (gr.skip(), "Choose one or more files first.", gr.skip(), gr.skip(), gr.skip())
        progress(0.0, desc=f"Reading {len(paths)} file(s)")
        try:
            report = index_uploads(qa_instance, paths, progress=True, delete_under=upload_folder())
            message = without_server_paths(report.markdown())  # (names are file names: no "/" in them)
        except QAError as e:  # over a limit: nothing indexed
            message = f"⚠ {without_server_paths(e)}"
        except Exception as e:  # keep the page alive; the log has the traceback
            log.exception("indexing an upload failed")
            message = f"⚠ Not indexed: something went wrong ({type(e).__name__}: {without_server_paths(e)})"
        progress(1.0, desc="Done")
        side, full, ch = refresh()
        return side, message, None, full, ch

    pick_outputs = [info, page_row, page_no, page_img, text, remove_btn, confirm_row]
    pick.change(show, pick, pick_outputs, api_visibility="private")

    def pick_row(evt: gr.SelectData, rows):
        try:
            row = evt.index[0]
            return rows.iloc[row, 5] if hasattr(rows, "iloc") else rows[row][5]
        except (IndexError, KeyError, TypeError):
            return gr.skip()

    table.select(pick_row, table, pick, api_visibility="private")
    page_no.submit(show_page, [pick, page_no], page_img, api_visibility="private")
    remove_btn.click(ask_confirm, pick, [confirm_row, confirm_msg], queue=False, api_visibility="private")
    no.click(lambda: gr.update(visible=False), None, confirm_row, queue=False, api_visibility="private")
    yes.click(do_remove, pick, [confirm_row, removed, side_docs, table, pick], concurrency_id="index",
              concurrency_limit=1, api_visibility="private")
    add_btn.click(add_files, [uploads], [side_docs, status, uploads, table, pick], concurrency_id="index",
                  concurrency_limit=1, api_name="add_documents",
                  api_description=f"Index uploaded files ({', '.join(SUPPORTED_SUFFIXES)}); returns the "
                                  "documents tables and a status message.")


def _page_image(qa_instance, doc: Document, page: int):
    from PIL import Image

    try:
        out = render_document_page(doc, page, None, qa_instance.settings.index_dir, qa_instance.settings.pages)
    except PageRenderError as e:
        gr.Warning(without_server_paths(e))  # (it names the PDF's file: a path on the server)
        return None
    return Image.open(io.BytesIO(out.png))


def load_tables(qa_instance):
    """(side table, tab table, chooser update, status) for the page load."""
    try:
        side, full = side_table(qa_instance), documents_table(qa_instance)
    except IndexMissingError:
        return [], [], gr.update(choices=[]), NO_INDEX
    except QAError as e:
        return gr.skip(), gr.skip(), gr.skip(), f"⚠ {without_server_paths(e)}"
    return side, full, gr.update(choices=[(f"{r[0]} ({r[5]})", r[5]) for r in full]), ""
