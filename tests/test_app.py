"""The web app: answer formatting (no models), the page's wiring over a stand-in
QA (no models, a real server and a real gradio_client), and the real pipeline
behind a real server (slow)."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

import pytest

from _app_server import SEEDS, ROOT, real_server, serve
import app  # noqa: E402  (importable once _app_server has set the path)
from qa.config import Settings
from qa.errors import QuestionError
from qa.formatting import NO_ANSWER, format_answer, format_error, highlight
from qa.ingest import load_paths
from qa.types import Answer, Citation, Document

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

SEED = load_paths([SEEDS])[0]


def cite_around(doc: Document, answer: str, pad: int = 120, score: float = 0.9, mark: bool = True) -> Citation:
    """A citation of the passage around ``answer`` in ``doc`` (offsets into doc.text)."""
    a0 = doc.text.index(answer)
    a1 = a0 + len(answer)
    start, end = max(0, a0 - pad), min(len(doc.text), a1 + pad)
    return Citation(doc.id, doc.title, start, end, doc.text[start:end], score,
                    a0 if mark else -1, a1 if mark else -1)


def marked(reply: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r"<mark>(.*?)</mark>", reply, flags=re.S)]


# --- formatting --------------------------------------------------------------


def test_mark_is_placed_at_the_answer_offsets():
    c = Citation("d", "T", start=10, end=40, text="0123456789The 58th Army fought.", score=0.8,
                 answer_start=24, answer_end=33)
    out = highlight(c)
    assert marked(out) == ["58th Army"]
    assert out.startswith("0123456789The <mark>58th Army</mark> fought.")


def test_mark_on_the_real_seed_passage():
    c = cite_around(SEED, "58th Combined Arms Army")
    a = Answer("Which army did General Popov command?", "58th Combined Arms Army", 0.91, [c])
    reply = format_answer(a, {SEED.id: SEED})
    assert marked(reply) == ["58th Combined Arms Army"]
    # short answer first, then the source: title and date
    assert reply.index("qa-answer") < reply.index("Russian General Sacked") < reply.index("<mark>")
    assert "2023-07-13" in reply
    assert "91%" in reply


def test_document_text_is_escaped():
    text = 'x <script>alert("hi")</script> & <b>bold</b> costs $5 and $$x$$'
    i = text.index("<b>")
    c = Citation("d<1>", "A & B <i>", 0, len(text), text, 0.5, i, i + len("<b>bold</b>"))
    reply = format_answer(Answer("q", "<b>bold</b>", 0.5, [c]), {})
    assert "<script>" not in reply and "<b>" not in reply and "<i>" not in reply
    assert "&lt;script&gt;" in reply and "A &amp; B &lt;i&gt;" in reply
    assert marked(reply) == ["<b>bold</b>"]
    assert "$" not in reply  # no LaTeX in the chat


def test_reply_has_no_blank_lines_for_markdown():
    c = Citation("d", "T", 0, 25, "line one\n\nline two\r\nend", 0.5, 0, 4)
    reply = format_answer(Answer("q", "line", 0.5, [c, c]))
    assert "\n" not in reply
    assert "<mark>line</mark> one<br><br>line two<br>end" in reply


def test_other_passages_are_in_a_collapsible_sources_section_with_scores():
    c1 = cite_around(SEED, "58th Combined Arms Army", score=0.9)
    c2 = cite_around(SEED, "Andrey Gurulev", score=0.12, mark=False)
    c3 = cite_around(SEED, "Storm Shadow", score=0.03, mark=False)
    reply = format_answer(Answer("q", "58th Combined Arms Army", 0.9, [c1, c2, c3]), {SEED.id: SEED})
    head, sources = reply.split("<details", 1)
    assert "<mark>" in head and "<mark>" not in sources
    assert "<summary>Other sources (2)</summary>" in sources
    assert "score 0.12" in sources and "score 0.03" in sources
    assert "</details>" in sources


def test_no_answer_reply_says_so_and_shows_the_closest_passages():
    c1 = cite_around(SEED, "Andrey Gurulev", score=0.2, mark=False)
    c2 = cite_around(SEED, "Storm Shadow", score=0.1, mark=False)
    a = Answer("What is the weather in Paris?", "", 0.2, [c1, c2],
               no_answer_reason="the closest candidate, 'Berdyansk', scored 0.20, below the 0.50 threshold")
    reply = format_answer(a, {SEED.id: SEED})
    assert html.unescape(NO_ANSWER) in html.unescape(reply)
    assert "The closest candidate, &#x27;Berdyansk&#x27;, scored 0.20, below the 0.50 threshold." in reply
    closest, others = reply.split("<details", 1)
    assert "Closest passage" in closest and "Andrey Gurulev" in closest and "score 0.20" in closest
    assert "Other passages (1)" in others and "Storm Shadow" in others
    assert "<mark>" not in reply


def test_a_low_confidence_guess_is_shown_marked_with_its_highlighted_passage():
    guess = cite_around(SEED, "Sergei Shoigu", score=0.2)
    other = cite_around(SEED, "Storm Shadow", score=0.1, mark=False)
    a = Answer("Whom did he accuse of treason?", "", 0.2, [other], "the closest candidate scored 0.20",
               best_candidate="Sergei Shoigu", best_candidate_citation=guess, threshold=0.4)
    assert a.low_confidence and not a.found
    reply = format_answer(a, {SEED.id: SEED})
    head, others = reply.split("<details", 1)
    # First the plain statement, then the guess, clearly marked, never as the answer.
    assert head.index(html.escape(NO_ANSWER, quote=True)) < head.index("Low confidence")
    assert "Possible answer: <span class=\"qa-guess\">Sergei Shoigu</span>" in head
    assert "confidence 20%, below the 40% threshold" in head
    assert "Where the answer may be (low confidence)" in head
    assert marked(head) == ["Sergei Shoigu"]
    assert 'class="qa-answer"' not in head.replace('class="qa-answer qa-none"', "")
    assert "Storm Shadow" in others and "<mark>" not in others
    # Without a candidate it is the plain "don't say" reply.
    plain = format_answer(Answer("q", "", 0.0, [other], "nothing"), {SEED.id: SEED})
    assert "Low confidence" not in plain and "<mark>" not in plain


def test_cli_prints_the_low_confidence_guess_and_json_carries_it(tiny_docs, tmp_path, fake_models, capsys):
    import json

    from qa.cli import main

    q = fake_models(index_dir=tmp_path / "i", corpus_dir=None)
    q.add_documents(tiny_docs)
    assert main(["ask", "Who is the harbour master?", "--index", str(tmp_path / "i"), "--min-score", "1.0"],
                qa_factory=fake_models) == 0
    out = capsys.readouterr().out
    assert out.startswith("Not in the documents (")
    assert "Low-confidence guess (not an answer): Harbour" in out and "threshold 1.00" in out
    assert ">>>Harbour<<<" in out
    assert main(["ask", "Who is the harbour master?", "--index", str(tmp_path / "i"), "--min-score", "1.0",
                 "--json"], qa_factory=fake_models) == 0
    a = json.loads(capsys.readouterr().out)
    assert a["answer"] == "" and a["best_candidate"] == "Harbour" and a["threshold"] == 1.0
    c = a["best_candidate_citation"]
    assert tiny_docs[1].text[c["answer_start"]:c["answer_end"]] == "Harbour"


def test_bad_offsets_and_missing_dates_do_not_break_the_reply():
    c = Citation("d", "", 100, 110, "short text", 0.5, 50, 500)  # answer outside the passage
    reply = format_answer(Answer("q", "x", 0.5, [c]), {"other": SEED})
    assert "<mark>" not in reply and "short text" in reply
    assert 'class="qa-title">d<' in reply  # no title: the id stands in
    assert "qa-date" not in reply
    assert "&lt;" in format_error("bad <input>")


# --- the page's wiring, over a stand-in QA -------------------------------------


class FakeQA:
    """Just enough of ``qa.QA`` for the app: canned answers from the seed text."""

    def __init__(self, tmp_path):
        self.settings = Settings(index_dir=tmp_path / "index", corpus_dir=None, max_file_bytes=1000)
        self.reader = SimpleNamespace(threshold=0.42, loaded=True)
        self.docs = {SEED.id: SEED}
        self.calls: list[dict] = []

    @property
    def store(self):
        return SimpleNamespace(documents=dict(self.docs))

    def documents(self):
        return [(d, 3) for d in self.docs.values()]

    def add_paths(self, paths, progress=False):
        for d in load_paths(list(paths), self.settings.max_file_bytes):
            self.docs[d.id] = d

    def add_new_documents(self, docs, progress=False):
        from qa.index_manager import AddResult, free_id

        added, renamed = [], {}
        for d in docs:
            new = free_id(d.id, self.docs)
            if new != d.id:
                renamed[d.id] = new
            self.docs[new] = Document(new, d.text, d.title, d.meta)
            added.append(new)
        return AddResult(self.store, added, renamed, [])

    def ask(self, question, history=None, top_k=None, min_score=None):
        self.calls.append(dict(question=question, history=list(history or []), top_k=top_k, min_score=min_score))
        if not question.strip():
            raise QuestionError("the question is empty: type a question about your documents")
        for doc in self.docs.values():
            for word, span in (("treason", "Sergei Shoigu"), ("army", "58th Combined Arms Army"),
                               ("zorblat", "Quillby")):
                if word in question.lower() and span in doc.text:
                    if word == "treason" and not history:
                        continue
                    return Answer(question, span, 0.9, [cite_around(doc, span)])
        return Answer(question, "", 0.1, [cite_around(SEED, "Storm Shadow", mark=False)], "nothing fits")


@pytest.fixture
def fake_app(tmp_path):
    fake = FakeQA(tmp_path)
    served = serve(fake)
    yield served, Client(served.url, verbose=False)
    served.close()


def chat_text(messages) -> list[tuple[str, str]]:
    """(role, text) for each chat message as the API returns it."""
    out = []
    for m in messages:
        content = m["content"]
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        out.append((m["role"], content))
    return out


def test_chat_api_keeps_the_conversation_for_follow_ups(fake_app):
    served, client = fake_app
    fake = served.qa
    r1 = client.predict("Who commanded the 58th Combined Arms Army?", api_name="/ask")
    r2 = client.predict("Whom did he accuse of treason?", api_name="/ask")
    assert fake.calls[0]["history"] == []
    assert fake.calls[1]["history"] == [("Who commanded the 58th Combined Arms Army?", "58th Combined Arms Army")]
    assert fake.calls[1]["min_score"] is None  # "use the calibrated threshold" by default
    msgs = chat_text(r2)
    assert [role for role, _ in msgs] == ["user", "assistant", "user", "assistant"]
    assert marked(msgs[3][1]) == ["Sergei Shoigu"]
    assert chat_text(r1)[1] == msgs[1]
    # a clear starts a new conversation
    client.predict(api_name="/clear")
    client.predict("Which army?", 3, False, 0.25, api_name="/ask")
    assert fake.calls[2]["history"] == []
    assert fake.calls[2]["top_k"] == 3 and fake.calls[2]["min_score"] == pytest.approx(0.25)


def test_chat_api_shows_problems_in_the_chat(fake_app):
    served, client = fake_app
    r = client.predict("What is the weather?", api_name="/ask")
    assert "The documents don&#x27;t say." in chat_text(r)[-1][1]
    r = client.predict("   ", api_name="/ask")  # nothing asked: nothing added
    assert len(r) == 2


def test_answer_api_returns_the_answer_as_a_dict(fake_app):
    served, client = fake_app
    d = client.predict("Whom did he accuse of treason?", [["Who commanded the 58th?", "Popov"]],
                       api_name="/answer")
    assert d["answer"] == "Sergei Shoigu"
    c = d["citations"][0]
    assert c["text"][c["answer_start"] - c["start"]: c["answer_end"] - c["start"]] == "Sergei Shoigu"
    assert served.qa.calls[-1]["history"] == [("Who commanded the 58th?", "Popov")]


def test_upload_indexes_good_files_and_explains_bad_ones(fake_app, tmp_path):
    served, client = fake_app
    good = tmp_path / "festival.txt"
    good.write_text("The Zorblat festival is held every spring in the town of Quillby.\n", encoding="utf-8")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    empty = tmp_path / "empty.md"
    empty.write_text("  \n", encoding="utf-8")
    table, status = client.predict([handle_file(str(p)) for p in (good, bad, empty)],
                                   api_name="/add_documents")[:2]
    ids = [row[2] for row in table["data"]]
    assert "festival.txt" in ids and SEED.id in ids
    assert not {"latin1.txt", "empty.md"} & set(ids)
    assert "Indexed **festival.txt**" in status
    assert "**latin1.txt**: not valid UTF-8" in status
    assert "**empty.md**: the file is empty" in status
    assert "/tmp" not in status and str(tmp_path) not in status  # no server paths in messages
    # searchable at once
    assert marked(chat_text(client.predict("Where is the Zorblat festival?", api_name="/ask"))[-1][1]) == ["Quillby"]


def test_upload_over_the_size_limit_is_refused(fake_app, tmp_path):
    served, client = fake_app
    big = tmp_path / "big.txt"
    big.write_text("word " * 400, encoding="utf-8")  # over the stand-in's 1000-byte limit
    with pytest.raises(Exception, match="maximum file size"):
        client.predict([handle_file(str(big))], api_name="/add_documents")
    assert list(served.qa.docs) == [SEED.id]


def test_upload_of_a_wrong_file_type_is_refused(fake_app, tmp_path):
    served, client = fake_app
    pdf = tmp_path / "paper.pdf"
    pdf.write_bytes(b"%PDF-1.4 not really")
    try:
        status = client.predict([handle_file(str(pdf))], api_name="/add_documents")[1]
    except Exception as e:  # gradio may refuse the type before the app sees it
        status = str(e)
    assert "paper.pdf" in status or ".pdf" in status or "file type" in status.lower()
    assert list(served.qa.docs) == [SEED.id]


def test_a_long_chat_keeps_answering(tmp_path):
    """The chat sent its whole conversation with every question, so the 51st question (or the
    ~21st of long ones) was refused with "the history has 51 turns; the limit is 50 ... start a
    new conversation", though only the last turns are read. Follow-ups still resolve "he"."""
    from conftest import SEED_FILE, make_fake_qa

    qa = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=None)
    qa.add_paths([SEED_FILE])
    ask = next(bf.fn for bf in app.build_app(qa).fns.values() if getattr(bf.fn, "__name__", "") == "ask_api")
    pairs, messages = [], []
    for i in range(qa.settings.limits.max_history_turns + 5):
        long_question = f"Which army did General Popov command? ({i}) " + "please " * 120
        messages, pairs, _ = ask(long_question, 5, True, 0.5, pairs, messages)
        assert "qa-error" not in messages[-1]["content"], (i, messages[-1]["content"][:200])
    seen = []
    qa.ask = lambda question, history=None, **kw: seen.append(history) or Answer(question, "", 0.0, [])
    ask("Whom did he accuse of treason?", 5, True, 0.5, [("Who commanded the 58th Army?", "Popov")], [])
    assert seen == [[("Who commanded the 58th Army?", "Popov")]]


def test_a_chat_over_an_index_emptied_by_removals_points_to_the_upload_panel(tmp_path):
    """Once every document was removed, the chat told a web user to run `qa index PATH...`."""
    from conftest import SEED_FILE, make_fake_qa
    from qa.ui.chat import NO_INDEX

    qa = make_fake_qa(index_dir=tmp_path / "index", corpus_dir=None)
    qa.add_paths([SEED_FILE])
    qa.remove_documents([SEED_FILE.name])
    ask = next(bf.fn for bf in app.build_app(qa).fns.values() if getattr(bf.fn, "__name__", "") == "ask_api")
    messages, pairs, _ = ask("Which army did General Popov command?", 5, True, 0.5, [], [])
    assert messages[-1]["content"] == format_error(NO_INDEX) and "qa index" not in messages[-1]["content"]
    assert pairs == []


def test_cli_flags_and_environment(monkeypatch):
    import app

    args = app.parse_args([])
    assert (args.host, args.port, args.index) == ("127.0.0.1", 7860, None)
    monkeypatch.setenv("QA_HOST", "0.0.0.0")
    monkeypatch.setenv("QA_PORT", "8123")
    args = app.parse_args([])
    assert (args.host, args.port) == ("0.0.0.0", 8123)
    args = app.parse_args(["--host", "::1", "--port", "9000", "--index", "/x"])
    assert (args.host, args.port, args.index) == ("::1", 9000, "/x")


def test_app_py_holds_no_qa_logic():
    src = (ROOT / "app.py").read_text()
    for name in ("Retriever", "SpanReader", "Embedder", "faiss", "bm25", "transformers"):
        assert name not in src


# --- the real pipeline behind a real server --------------------------------------


@pytest.fixture(scope="module")
def real_client(tmp_path_factory):
    return Client(real_server(tmp_path_factory).url, verbose=False)


@pytest.mark.slow
def test_real_answer_and_citation_over_the_api(real_client):
    d = real_client.predict("Which army did General Popov command?", api_name="/answer")
    assert d["citations"], "the closest passages are always listed"
    c = d["citations"][0]
    seed_text = SEED.text
    assert c["doc_id"] == SEED.id and c["title"] == SEED.title
    assert seed_text[c["start"]:c["end"]] == c["text"]
    assert "58th Combined Arms Army" in d["answer"]
    assert seed_text[c["answer_start"]:c["answer_end"]] == d["answer"]
    assert c["text"][c["answer_start"] - c["start"]: c["answer_end"] - c["start"]] == d["answer"]


@pytest.mark.slow
def test_real_chat_reply_marks_the_answer(real_client):
    real_client.predict(api_name="/clear")
    msgs = chat_text(real_client.predict("Which army did General Popov command?", api_name="/ask"))
    reply = msgs[-1][1]
    assert "Russian General Sacked" in reply and "2023-07-13" in reply
    assert any("58th Combined Arms Army" in m for m in marked(reply))


@pytest.mark.slow
def test_real_follow_up_question(real_client):
    real_client.predict(api_name="/clear")
    msgs = chat_text(real_client.predict("Who commanded the 58th Combined Arms Army?", api_name="/ask"))
    assert "Popov" in " ".join(marked(msgs[-1][1]))
    # Confidence slider at 0 (always show the best span): this checks that the
    # conversation resolves "he"; the threshold's effect is the seed gold floors' job.
    msgs = chat_text(real_client.predict("Whom did he accuse of treason?", 5, False, 0.0, api_name="/ask"))
    assert len(msgs) == 4
    assert "Shoigu" in " ".join(marked(msgs[-1][1]))


@pytest.mark.slow
def test_real_upload_is_searchable_at_once(real_client, tmp_path):
    doc = tmp_path / "zorblat_festival.md"
    doc.write_text("# The Zorblat festival\n\nThe Zorblat festival is held every spring in the town of "
                   "Quillby, where bakers compete for the golden spoon.\n", encoding="utf-8")
    table, status = real_client.predict([handle_file(str(doc))], api_name="/add_documents")[:2]
    assert "Indexed **zorblat_festival.md**" in status
    row = next(r for r in table["data"] if r[2] == "zorblat_festival.md")
    assert row[0] == "The Zorblat festival" and row[3] >= 1
    d = real_client.predict("Where is the Zorblat festival held?", None, None, 0.0, api_name="/answer")
    assert "zorblat_festival.md" in [c["doc_id"] for c in d["citations"]]


@pytest.mark.slow
def test_real_concurrent_sessions_get_their_own_answers(real_client, tmp_path_factory):
    """Several tabs at once: each gets its own answers and its own conversation."""
    from concurrent.futures import ThreadPoolExecutor

    url = real_server(tmp_path_factory).url
    expected = {
        "Which army did General Popov command?": "58th Combined Arms Army",
        "Who made the voice memo public?": "Gurulev",
        "Which missile struck the hotel in Berdyansk?": "Storm Shadow",
    }
    clients = {q: Client(url, verbose=False) for q in expected}  # one session each

    def converse(question: str):
        c = clients[question]
        c.predict(question, 5, False, 0.0, api_name="/ask")
        return chat_text(c.predict(question, 5, False, 0.0, api_name="/ask"))

    with ThreadPoolExecutor(len(expected)) as pool:
        results = dict(zip(expected, pool.map(converse, expected)))
    for question, msgs in results.items():
        assert [role for role, _ in msgs] == ["user", "assistant"] * 2
        assert [text for role, text in msgs if role == "user"] == [question, question]
        for _, reply in msgs[1::2]:
            assert expected[question] in " ".join(marked(reply)), (question, reply[:300])
