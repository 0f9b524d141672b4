"""The web chat in headless Chromium: ask, see the marked answer, keep a screenshot.

Uses Debian's chromium (``make browser-deps``); Playwright never downloads a browser.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from _app_server import ROOT, real_server, serve

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
expect = None  # playwright.sync_api.expect, imported with the browser
QUESTION = "Which army did General Popov command?"


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install it with `make browser-deps` (Debian chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    global expect
    expect = sync_api.expect
    os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
    with sync_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # an empty user-data-dir
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 1000},
        )
        try:
            yield context.new_page()
        finally:
            context.close()


@pytest.mark.slow
@pytest.mark.browser
def test_ask_in_the_browser_shows_the_marked_answer(tmp_path_factory, browser_page):
    served = real_server(tmp_path_factory)
    page = browser_page
    page.goto(served.url, wait_until="domcontentloaded")
    box = page.locator("#qa-question textarea")
    box.wait_for(timeout=60_000)
    # the documents table fills on load
    expect(page.locator("#qa-docs")).to_contain_text("Russian General Sacked", timeout=60_000)
    box.fill(QUESTION)
    page.locator("#qa-send").click()
    reply = page.locator("#qa-chat .qa-reply:not(.qa-thinking)").last
    reply.wait_for(timeout=180_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(500)  # let the chat finish scrolling
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    assert QUESTION in page.locator("#qa-chat").inner_text()
    assert reply.locator(".qa-source-line").first.is_visible()
    mark = reply.locator("mark").first
    assert mark.count() == 1 and mark.is_visible(), reply.inner_text()[:300]
    assert "58th Combined Arms Army" in mark.inner_text()


def in_view(page, inner: str, outer: str) -> dict:
    """Bounding boxes: is the last ``inner`` inside its ``outer``'s visible area (and
    is that ``outer`` free of an inner scroll)?"""
    return page.evaluate("""([inner, outer]) => {
        const all = document.querySelectorAll(inner), i = all[all.length - 1], o = i && i.closest(outer);
        if (!i || !o) return null;
        const a = i.getBoundingClientRect(), b = o.getBoundingClientRect();
        return {inside: a.top >= b.top - 1 && a.bottom <= b.bottom + 1 && a.left >= b.left - 1 && a.right <= b.right + 1,
                scrolls: o.scrollHeight > o.clientHeight + 1, height: a.height};
    }""", [inner, outer])


def last_reply(page):
    return page.locator("#qa-chat .qa-reply:not(.qa-thinking)").last


def ask(page, question: str, n_before: int):
    page.locator("#qa-question textarea").fill(question)
    page.locator("#qa-send").click()
    replies = page.locator("#qa-chat .qa-reply:not(.qa-thinking)")
    expect(replies).to_have_count(n_before + 1, timeout=180_000)
    page.wait_for_timeout(800)  # let the chat finish scrolling
    return replies.last


def upload(page, paths: list[Path]) -> str:
    page.locator("#qa-upload input[type=file]").set_input_files([str(p) for p in paths])
    page.wait_for_timeout(1500)
    page.locator("#qa-add").click()
    expect(page.locator("#qa-status")).to_contain_text("ndexed", timeout=180_000)
    return page.locator("#qa-status").inner_text()


@pytest.mark.slow
@pytest.mark.browser
def test_the_answer_is_in_view_inside_its_source_box(tmp_path_factory, browser_page):
    served = real_server(tmp_path_factory)
    page = browser_page
    page.goto(served.url, wait_until="domcontentloaded")
    page.locator("#qa-question textarea").wait_for(timeout=60_000)
    n = page.locator("#qa-chat .qa-reply:not(.qa-thinking)").count()
    reply = ask(page, "Who made the recording of Popov's voice memo public?", n)
    assert reply.locator("mark").count() >= 1
    # the excerpt box does not scroll and holds the mark; the mark is inside the chat's visible area
    box = in_view(page, "#qa-chat .qa-reply blockquote.qa-excerpt mark", "blockquote")
    assert box is not None and box["inside"] and not box["scrolls"] and box["height"] > 0, box
    chat = in_view(page, "#qa-chat .qa-reply blockquote.qa-excerpt mark", "#qa-chat")
    assert chat["inside"], chat
    # the whole passage is one click away
    whole = reply.locator("details.qa-whole").first
    if whole.count():
        whole.locator("summary").click()
        expect(whole.locator("mark")).to_be_visible()
    assert re.search(r"retrieve \d[\d,]* ms · read \d[\d,]* ms", reply.locator(".qa-timings").inner_text())


def report_pdf_file(folder: Path) -> Path:
    from test_pages import report_pdf

    p = folder / "audit-report.pdf"
    p.write_bytes(report_pdf())
    return p


@pytest.mark.slow
@pytest.mark.browser
def test_a_pdf_answer_shows_its_page_with_the_highlight(tmp_path_factory, browser_page, tmp_path):
    import base64
    import io

    import numpy as np
    from PIL import Image

    from test_pages import NAME, highlight_mask

    served = real_server(tmp_path_factory)
    page = browser_page
    page.goto(served.url, wait_until="domcontentloaded")
    page.locator("#qa-question textarea").wait_for(timeout=60_000)
    try:
        assert "audit-report.pdf" in upload(page, [report_pdf_file(tmp_path)])
        n = page.locator("#qa-chat .qa-reply:not(.qa-thinking)").count()
        reply = ask(page, "Who is the chair of the audit committee?", n)
        assert NAME in reply.locator(".qa-answer").inner_text()
        band = reply.locator("img.qa-page-band")
        expect(band).to_be_visible()
        assert "On page 3" in reply.locator(".qa-page-label").inner_text()
        src = band.get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        img = np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).convert("RGB")).astype(int)
        assert highlight_mask(img).sum() > 200  # the answer's region is highlighted on the page
        assert band.evaluate("i => i.naturalWidth > 0 && i.getBoundingClientRect().width > 100")
        band.click()  # the whole page, larger
        full = reply.locator("img.qa-page-img")
        expect(full).to_be_visible()
        assert full.evaluate("i => i.naturalHeight") > band.evaluate("i => i.naturalHeight") * 3
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "chat-pdf.png"))
    finally:
        if "audit-report.pdf" in served.qa.store.documents:
            served.qa.remove_documents(["audit-report.pdf"])


EVIL_NAME = "<img src=x onerror=window.__pwned=1>.txt"
EVIL_TEXT = ("Title: <img src=x onerror=window.__pwned=2> Vault notes\n\n"
             "The <script>window.__pwned=3</script> vault of the Quillby bank opens with code 4711, "
             "says <a href=\"javascript:window.__pwned=4\">the manager</a>. "
             "[click](javascript:window.__pwned=5) <iframe src=\"javascript:window.__pwned=6\"></iframe>\n")


@pytest.mark.slow
@pytest.mark.browser
def test_hostile_text_runs_nothing_and_the_documents_tab_removes_it(tmp_path_factory, browser_page, tmp_path):
    served = real_server(tmp_path_factory)
    page = browser_page
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(served.url, wait_until="domcontentloaded")
    page.locator("#qa-question textarea").wait_for(timeout=60_000)
    evil = tmp_path / EVIL_NAME
    evil.write_text(EVIL_TEXT, encoding="utf-8")
    try:
        upload(page, [evil])
        doc_id = next(d.id for d in served.qa.store.documents.values() if "onerror" in d.id)
        n = page.locator("#qa-chat .qa-reply:not(.qa-thinking)").count()
        reply = ask(page, "Which code opens the vault of the Quillby bank?", n)
        text = reply.inner_text()
        assert "4711" in text and "<script>" in text and "onerror" in text  # shown as text
        assert reply.locator("script, img[src='x'], iframe, a[href^='javascript']").count() == 0
        # the Documents tab: the hostile name shown as text, its text, then removal with a confirmation
        page.get_by_role("tab", name="Documents").click()
        table = page.locator("#qa-doc-table")
        expect(table).to_contain_text("onerror", timeout=30_000)
        table.get_by_text(doc_id, exact=True).filter(visible=True).first.click()
        expect(page.locator("#qa-doc-text textarea")).to_have_value(served.qa.store.documents[doc_id].text,
                                                                   timeout=30_000)
        expect(page.locator("#qa-doc-info")).to_contain_text("onerror")
        # nowhere on the page (chat, tables, titles, status) did the markup become elements
        assert page.locator("img[src='x'], iframe, a[href^='javascript']").count() == 0
        page.locator("#qa-doc-remove").click()
        expect(page.locator("#qa-doc-confirm")).to_be_visible()
        assert doc_id in served.qa.store.documents  # nothing removed before the confirmation
        page.locator("#qa-doc-remove-yes").click()
        expect(page.locator("#qa-doc-status")).to_contain_text("Removed", timeout=60_000)
        assert doc_id not in served.qa.store.documents
        expect(table).not_to_contain_text("onerror")
        page.get_by_role("tab", name="Chat").click()
        expect(page.locator("#qa-docs")).not_to_contain_text("onerror")
        assert page.evaluate("window.__pwned") is None and not dialogs
    finally:
        gone = [d for d in served.qa.store.documents if "onerror" in d]
        if gone:
            served.qa.remove_documents(gone)


@pytest.mark.slow
@pytest.mark.browser
def test_an_evaluation_from_the_tab_stores_a_threshold_ask_uses(tmp_path_factory, browser_page, tmp_path):
    import json

    served = real_server(tmp_path_factory)
    qa_instance = served.qa
    from qa.store.threshold import THRESHOLD_FILE

    stored = qa_instance.settings.index_dir / THRESHOLD_FILE
    page = browser_page
    page.goto(served.url, wait_until="domcontentloaded")
    page.locator("#qa-question textarea").wait_for(timeout=60_000)
    gold = tmp_path / "my-questions.jsonl"
    rows = [{"id": "a", "question": "Which army did General Popov command?", "answers": ["58th Combined Arms Army"]},
            {"id": "b", "question": "Who made the voice memo public?", "answers": ["Andrey Gurulev", "Gurulev"]},
            {"id": "c", "question": "Which missile struck the hotel in Berdyansk?", "answers": ["Storm Shadow"]},
            {"id": "d", "question": "What is the capital of Australia?", "answers": []}]
    gold.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    try:
        page.get_by_role("tab", name="Check and tune").click()
        page.locator("#qa-gold input[type=file]").set_input_files(str(gold))
        page.wait_for_timeout(1500)
        page.locator("#qa-tune-run").click()
        summary = page.locator("#qa-tune-summary")
        expect(summary).to_contain_text("Suggested threshold", timeout=300_000)
        assert "4 questions" in summary.inner_text()
        expect(page.locator("#qa-tune-misses")).to_contain_text("answered right")
        expect(page.locator("#qa-tune-plot")).to_be_visible()
        page.locator("#qa-tune-store").click()
        expect(page.locator("#qa-tune-stored")).to_contain_text("Stored threshold", timeout=60_000)
        record = json.loads(stored.read_text())
        assert record["n"] == 4
        assert qa_instance.threshold == pytest.approx(record["threshold"])
        assert qa_instance.ask("Which army did General Popov command?").threshold == pytest.approx(record["threshold"])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "tune.png"), full_page=True)
    finally:
        stored.unlink(missing_ok=True)
        page.get_by_role("tab", name="Chat").click()


class _SlowReader:
    """The fake reader, 1.5 s per call: long enough to send a second question
    while the first is being answered (the real reader answers too fast to race)."""

    def __init__(self) -> None:
        from fakes import FakeReader

        self._reader = FakeReader()

    def __getattr__(self, name):
        return getattr(self._reader, name)

    def run(self, questions, passages):
        import time

        time.sleep(1.5)
        return self._reader.run(questions, passages)


@pytest.mark.slow
@pytest.mark.browser
def test_a_question_sent_while_one_is_answered_loses_neither(browser_page, tmp_path, write_docs):
    """Enter, then the Ask button while the first answer is still coming: both
    turns used to share one pending slot and the chat state of before, so one
    question was answered twice or a turn vanished from the conversation."""
    from conftest import TINY_DOCS
    from fakes import make_fake_qa

    qa_instance = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=write_docs(TINY_DOCS), reader=_SlowReader())
    served = serve(qa_instance)
    try:
        page = browser_page
        page.goto(served.url, wait_until="domcontentloaded")
        box = page.locator("#qa-question textarea")
        box.wait_for(timeout=60_000)
        first, second = "When was Alpha Station built?", "Who is Ingrid Solberg?"
        send, thinking = page.locator("#qa-send"), page.locator("#qa-chat .qa-thinking")
        box.fill(first)
        box.press("Enter")
        expect(thinking).to_have_count(1, timeout=10_000)
        expect(send).to_be_disabled()
        box.fill(second)  # typed while the first is answered, and sent: not taken yet, not lost
        box.press("Enter")
        expect(thinking).to_have_count(0, timeout=60_000)
        replies = page.locator("#qa-chat .qa-reply:not(.qa-thinking)")
        expect(replies).to_have_count(1)
        expect(box).to_have_value(second)
        expect(send).to_be_enabled()
        box.press("Enter")
        expect(replies).to_have_count(2, timeout=60_000)
        chat = page.locator("#qa-chat").inner_text()
        assert chat.count(first) == 1 and chat.count(second) == 1, chat
        assert chat.index(first) < chat.index("1962") < chat.index(second) < chat.index("Solberg", chat.index(second) + len(second)), chat
    finally:
        served.close()
