"""The Chat tab: ask, see the answer marked in its passage and on its page.

All question answering happens in ``qa.QA``; this module keeps the
conversation, formats replies (``qa.formatting``) and adds the cited PDF page
(``qa.pages``) under the first source.
"""

from __future__ import annotations

import base64
import html
import logging
from dataclasses import dataclass
from typing import Any, Callable

import gradio as gr

from qa.batching import MicroBatcher
from qa.errors import EmptyCorpusError, IndexMissingError, QAError
from qa.formatting import answer_to_dict, format_answer, format_error
from qa.pages import render_citation_page
from qa.serving import ask_within, web_errors, without_server_paths
from qa.types import Citation

log = logging.getLogger("qa.app")

EXAMPLES = [
    "Who commanded the 58th Combined Arms Army?",
    "Whom did General Popov accuse of treason?",
    "Who made the recording of Popov's voice memo public?",
    "What weapon struck the 58th Army reserve command post?",
    "Who led a short-lived mutiny three weeks earlier?",
]
NO_INDEX = "No documents are indexed yet: add some with the panel on the right."
THINKING = '<div class="qa-reply qa-thinking">Searching the documents…</div>'


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def page_html_for(qa_instance) -> Callable[[Citation], str]:
    """The page image of a PDF citation for the chat: the strip around the
    highlighted answer, the whole page when clicked (a ``<details>``: no script)."""
    settings = qa_instance.settings

    def page_html(c: Citation) -> str:
        try:
            doc = qa_instance.store.documents.get(c.doc_id)
        except QAError:
            return ""
        try:
            page = render_citation_page(doc, c.answer_start, c.answer_end, settings.index_dir, settings.pages)
        except Exception:  # noqa: BLE001 - a page that cannot be drawn must not cost the answer
            log.exception("rendering the page of %r failed", c.doc_id)
            return ""
        if page is None:
            return ""
        band = page.band(settings.pages.band)
        title = html.escape(c.title or c.doc_id, quote=True)
        alt = f"page {page.page} of {title}, the answer highlighted"
        return ('<div class="qa-page">'
                f'<div class="qa-page-label">On page {page.page} (click for the whole page)</div>'
                '<details class="qa-page-full"><summary>'
                f'<img class="qa-page-band" src="{_data_uri(band.png)}" alt="{alt}" width="{band.width}" '
                f'height="{band.height}"></summary>'
                f'<img class="qa-page-img" src="{_data_uri(page.png)}" alt="{alt}" width="{page.width}" '
                f'height="{page.height}"></details></div>')

    return page_html


@dataclass
class ChatTab:
    """The components other tabs update (the settings' threshold slider)."""

    min_score: Any
    use_default: Any
    chatbot: Any


def clamp01(x: float) -> float:
    return min(1.0, max(0.0, float(x)))


def current_threshold(qa_instance) -> float:
    """The threshold ask() uses by default: the index's own (``qa calibrate``) or the reader's."""
    t = getattr(qa_instance, "threshold", None)
    return qa_instance.reader.threshold if t is None else t


def recent_turns(pairs: list, settings) -> list[tuple[str, str]]:
    """The turns a chat question is asked with: the last ones the answerer reads
    (``Settings.history_turns`` folded into retrieval; at least the previous turn,
    which resolves "he"), within ``limits.max_history_turns`` and
    ``limits.max_history_chars``. Sending the whole conversation made the chat
    refuse every question after the 50th (or after ~20 long ones) with "start a
    new conversation", though only the last turns are ever read."""
    lim = settings.limits
    keep = max(1, min(settings.history_turns, lim.max_history_turns))
    turns = [tuple(p) if isinstance(p, (list, tuple)) else p for p in list(pairs or [])[-keep:]]
    # (a malformed turn sent by an API client is left for ask() to name)
    while turns and sum(len(x) for t in turns if isinstance(t, tuple) for x in t
                        if isinstance(x, str)) > lim.max_history_chars:
        turns.pop(0)
    return turns


def build_chat(qa_instance, asker: MicroBatcher, concurrency_limit: int) -> ChatTab:
    """The chat column and its events (inside an open ``gr.Blocks``/``gr.Tab``)."""
    settings = qa_instance.settings
    max_k = min(settings.retrieval.candidates, settings.limits.max_top_k)
    budget = settings.limits.web_time_budget_s
    page_html = page_html_for(qa_instance)

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
            a = ask_within(asker, budget, question, history=recent_turns(pairs, settings), top_k=int(top_k),
                           min_score=None if use_default else float(min_score))
        except (IndexMissingError, EmptyCorpusError):  # none yet, or every one removed: not a CLI matter
            messages.append({"role": "assistant", "content": format_error(NO_INDEX)})
            return messages, pairs
        except QAError as e:
            messages.append({"role": "assistant", "content": format_error(without_server_paths(e))})
            return messages, pairs
        except Exception as e:  # keep the chat alive; the log has the traceback
            log.exception("answering %r failed", question)
            messages.append({"role": "assistant", "content": format_error(f"Something went wrong: {without_server_paths(e)}")})
            return messages, pairs
        messages.append({"role": "assistant",
                         "content": format_answer(a, qa_instance.store.documents, page_html=page_html)})
        pairs.append((question, a.answer))
        return messages, recent_turns(pairs, settings)  # the session keeps only what a question is asked with

    # --- UI events (two steps so the question shows at once) -----------------

    def post_question(text: str, messages: list, pending: str):
        """Show the question at once. While one is being answered another is not
        taken (Enter does nothing, the button is off, the box keeps its text): both
        would share the one pending slot and the conversation of before, and the
        first question vanished from the chat unanswered."""
        text = (text or "").strip()
        if not text or pending:
            return gr.skip(), gr.skip(), gr.skip(), gr.skip()
        shown = list(messages or []) + [{"role": "user", "content": text},
                                        {"role": "assistant", "content": THINKING}]
        return "", gr.update(interactive=False), shown, text

    def answer_pending(pending: str, pairs: list, messages: list, top_k, use_default, min_score):
        if not pending:
            return messages, pairs, messages, ""
        new_messages, new_pairs = run_turn(pending, pairs, messages, top_k, use_default, min_score)
        return new_messages, new_pairs, new_messages, ""

    # --- API: the whole turn in one call --------------------------------------

    def ask_api(question: str, top_k, use_default, min_score, pairs: list, messages: list):
        new_messages, new_pairs = run_turn(question, pairs, messages, top_k, use_default, min_score)
        return new_messages, new_pairs, new_messages

    @web_errors("/answer")
    def answer(question: str, history: list[list[str]] | None = None, top_k: int | None = None,
               min_score: float | None = None) -> dict:
        """Answer one question; ``history`` is [[question, answer], ...]; returns the
        Answer as a dict (with ``timings``: retrieve_ms, read_ms)."""
        if isinstance(history, list):  # JSON turns are lists; ask() checks their shape
            history = [tuple(t) if isinstance(t, list) else t for t in history]
        try:
            a = ask_within(asker, budget, question, history=history or None, top_k=top_k, min_score=min_score)
        except (IndexMissingError, EmptyCorpusError):  # as the chat says it: the CLI's fix is no web client's
            raise QAError(NO_INDEX) from None
        return answer_to_dict(a)

    def clear():
        return [], [], [], ""

    pairs = gr.State([])  # [(question, short answer)], the history passed to ask
    messages = gr.State([])  # the chat as shown, for API callers' sessions
    pending = gr.State("")
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
    with gr.Accordion("Settings", open=False):
        top_k = gr.Slider(1, max_k, value=settings.retrieval.top_k, step=1, label="Passages to read (top-k)")
        use_default = gr.Checkbox(True, label="Use the calibrated confidence threshold (this index's, "
                                              "from `qa calibrate` or the Check and tune tab, else the model's)")
        min_score = gr.Slider(0.0, 1.0, value=clamp01(current_threshold(qa_instance)), step=0.01,
                              label="Minimum confidence (below it: \"the documents don't say\")",
                              interactive=False, elem_id="qa-min-score")

    use_default.change(lambda d: gr.update(interactive=not d), use_default, min_score,
                       queue=False, api_visibility="private")

    ask_inputs = [pending, pairs, messages, top_k, use_default, min_score]
    ask_outputs = [chatbot, pairs, messages, pending]
    for trigger in (box.submit, send.click):
        trigger(post_question, [box, messages, pending], [box, send, chatbot, pending], queue=False,
                api_visibility="private").then(
            answer_pending, ask_inputs, ask_outputs, concurrency_id="ask",
            concurrency_limit=concurrency_limit, api_visibility="private").then(
            lambda: gr.update(interactive=True), None, send, queue=False, api_visibility="private")

    api_button = gr.Button(visible=False)
    api_button.click(ask_api, [box, top_k, use_default, min_score, pairs, messages],
                     [chatbot, pairs, messages], api_name="ask", concurrency_id="ask",
                     concurrency_limit=concurrency_limit,
                     api_description="Ask in this client's conversation; returns the chat messages (HTML).")
    gr.api(answer, api_name="answer", concurrency_id="ask", concurrency_limit=concurrency_limit)

    clear_btn.click(clear, None, [chatbot, pairs, messages, pending], queue=False, api_name="clear")
    chatbot.clear(clear, None, [chatbot, pairs, messages, pending], queue=False, api_visibility="private")
    return ChatTab(min_score=min_score, use_default=use_default, chatbot=chatbot)
