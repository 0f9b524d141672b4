"""Issue 18: no one gets in uninvited, no request holds the server, every web error says what it is.

The served app runs with the fake models (fast); ``qa.serving`` holds the logic.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

import pytest

import app
from _app_server import free_port
from conftest import SEED_FILE, make_fake_qa
from fakes import ask_all_at_once
from qa.batching import MicroBatcher
from qa.errors import RequestTimeoutError, ServingConfigError
from qa.serving import (ask_within, check_launch, is_loopback, load_credentials, parse_credentials)
from qa.uploads import upload_folder

Q = "Which army did Popov command?"


def fake_qa(index_dir, **kw):
    return make_fake_qa(index_dir=index_dir, corpus_dir=None, **kw)


# --- who may connect -------------------------------------------------------------------------

@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("127.3.4.5", True), ("::1", True),
                                            ("[::1]", True), ("localhost", True), ("0.0.0.0", False),
                                            ("::", False), ("192.168.1.10", False), ("example.org", False),
                                            ("", False)])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


def test_a_non_loopback_address_needs_credentials_or_insecure():
    creds = parse_credentials("ann:pw", "test")
    for host in ("0.0.0.0", "192.168.1.10", "::"):
        with pytest.raises(ServingConfigError, match="--auth-file"):
            check_launch(host, None)
        check_launch(host, creds)
        check_launch(host, None, insecure=True)
    check_launch("127.0.0.1", None)


def test_app_refuses_to_start_exposed_without_credentials(monkeypatch, capsys):
    monkeypatch.delenv("QA_AUTH", raising=False)
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    loaded = []
    monkeypatch.setattr("qa.default_qa", lambda: loaded.append(1))  # would load the models
    assert app.main(["--host", "0.0.0.0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: refusing to serve on 0.0.0.0 without credentials") and err.count("\n") == 1
    assert loaded == []


def test_gradios_share_setting_never_opens_a_public_link(tmp_path, monkeypatch):
    """GRADIO_SHARE=true in the environment (or a hosted notebook) made gradio open a public
    *.gradio.live tunnel to the app, credentials or not, though ``check_launch`` had only been
    asked about 127.0.0.1: anyone on the internet could read and change the index."""
    import gradio.networking

    tunnels = []
    monkeypatch.setenv("GRADIO_SHARE", "true")
    monkeypatch.setattr(gradio.networking, "setup_tunnel", lambda *a, **k: tunnels.append(k) or "https://x.gradio.live")
    demo = app.build_app(fake_qa(tmp_path / "index"))
    try:
        app.launch(demo, "127.0.0.1", free_port(), prevent_thread_lock=True, quiet=True)
        assert tunnels == [] and not demo.share
    finally:
        demo.close()


def test_credentials_file_and_environment(tmp_path, monkeypatch):
    f = tmp_path / "users"
    f.write_text("# who may come in\nann:secret:editor\nbob:pa:ss\ncat:pw:reader\n", encoding="utf-8")
    f.chmod(0o600)
    c = load_credentials(f, env={})
    assert c.role("ann") == "editor" and c.role("bob") == "reader" and c.role("cat") == "reader"
    assert c.check("ann", "secret") and not c.check("ann", "wrong") and not c.check("nobody", "secret")
    assert c.check("bob", "pa:ss")  # a password may hold colons
    assert load_credentials(None, env={"QA_AUTH_FILE": str(f)}).role("ann") == "editor"
    assert load_credentials(None, env={"QA_AUTH": "dan:x:editor, eve:y"}).role("eve") == "reader"
    assert load_credentials(None, env={}) is None
    for bad in ("", "# only a comment", "nopassword", ":pw", "ann:", "ann:pw\nann:other"):
        with pytest.raises(ServingConfigError) as e:
            parse_credentials(bad, "users")
        assert "pw" not in str(e.value).replace("password", "") or bad == ":pw"
    with pytest.raises(ServingConfigError, match="cannot be read"):
        load_credentials(tmp_path / "missing", env={})


@pytest.fixture
def served_with_users(tmp_path):
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    qa = fake_qa(idx)
    demo = app.build_app(qa, credentials=creds)
    port = free_port()
    app.launch(demo, "127.0.0.1", port, max_file_bytes=qa.settings.max_file_bytes, prevent_thread_lock=True,
               quiet=True, auth=creds.check)
    yield qa, f"http://127.0.0.1:{port}/"
    demo.close()


def test_served_with_credentials_only_users_get_in_and_only_editors_write(served_with_users, tmp_path):
    from gradio_client import Client, handle_file

    qa, url = served_with_users
    # no login: the API refuses before anything runs
    with pytest.raises(Exception):
        Client(url, verbose=False).predict(Q, api_name="/answer")
    with pytest.raises(Exception):
        Client(url, verbose=False, auth=("reader1", "wrong")).predict(Q, api_name="/answer")
    up = tmp_path / "new.txt"
    up.write_text("The Zorblat festival is held every spring in Quillby.\n", encoding="utf-8")
    reader = Client(url, verbose=False, auth=("reader1", "rpw"))
    assert reader.predict(Q, api_name="/answer")["citations"]
    with pytest.raises(Exception, match="403"):  # its upload is refused (test_only_editors_upload_files)
        reader.predict([handle_file(str(up))], api_name="/add_documents")
    assert "new.txt" not in qa.store.documents
    editor = Client(url, verbose=False, auth=("editor1", "epw"))
    status = editor.predict([handle_file(str(up))], api_name="/add_documents")[1]
    assert "new.txt" in status and "new.txt" in qa.store.documents



def test_a_request_body_over_the_limit_is_refused_before_it_is_read(served_with_users):
    """A JSON body was read whole into memory and parsed before any limit or even the login
    check: one anonymous 200 MB POST to /gradio_api/queue/join cost the server ~500 MB (and 401
    came after). Now a 413 with a message, whether the body says its length or is chunked."""
    import httpx

    from qa.config import LimitsConfig

    qa, url = served_with_users
    limit = LimitsConfig().max_request_bytes
    body = json.dumps({"data": ["x" * limit, None, None, None], "fn_index": 0, "session_hash": "big"}).encode()
    for content in (body, iter([body[i:i + 65536] for i in range(0, len(body), 65536)])):  # length / chunked
        r = httpx.post(url + "gradio_api/queue/join", content=content, timeout=60,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413, (r.status_code, r.text[:200])
        assert "limits.max_request_bytes" in r.json()["error"]
    # a logged-in reader too (gradio_client shows the status, not the body); ordinary calls are untouched
    from gradio_client import Client

    reader = Client(url, verbose=False, auth=("reader1", "rpw"))
    with pytest.raises(Exception, match="413"):
        reader.predict("x" * limit, None, None, None, api_name="/answer")
    assert reader.predict(Q, api_name="/answer")["citations"]


def _page_handler(demo, name: str):
    """The handler of the page event ``name`` (the Documents tab's removal, the
    tune tab's store: page-only events, not API endpoints)."""
    fns = [bf.fn for bf in demo.fns.values() if getattr(bf.fn, "__name__", "") == name]
    assert len(fns) == 1, name
    return fns[0]


def _call_as(fn, username: str | None, *inputs):
    """Call ``fn`` the way gradio does for a logged-in user (``special_args``
    adds the ``gr.Request`` to the arguments)."""
    import gradio as gr
    from gradio.helpers import special_args

    args, *_ = special_args(fn, list(inputs), request=gr.Request(username=username))
    assert any(isinstance(a, gr.Request) for a in args)  # the wrapped handler still asks for the request
    return fn(*args)


def test_only_editors_add_documents_in_the_page(tmp_path):
    """(A reader's upload is refused before it reaches /add_documents; the handler refuses
    too, whatever files it is given.)"""
    import gradio as gr

    qa = fake_qa(tmp_path / "index")
    up = tmp_path / "uploaded" / "new.txt"
    up.parent.mkdir()
    up.write_text("The Zorblat festival is held every spring in Quillby.\n", encoding="utf-8")
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    add = _page_handler(app.build_app(qa, credentials=creds), "add_files")
    with pytest.raises(gr.Error, match="may ask questions but not add or remove documents"):
        _call_as(add, "reader1", [str(up)])
    assert _call_as(add, "editor1", [str(up)])[1].startswith("Indexed **new.txt**")


def test_only_editors_remove_documents_in_the_page(tmp_path):
    import gradio as gr

    idx = tmp_path / "index"
    qa = fake_qa(idx)
    qa.add_paths([SEED_FILE])
    doc_id = next(iter(qa.store.documents))
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    remove = _page_handler(app.build_app(qa, credentials=creds), "do_remove")
    for who in ("reader1", None):  # a reader, and a request without a user
        with pytest.raises(gr.Error, match="may ask questions but not add or remove documents"):
            _call_as(remove, who, doc_id)
        assert doc_id in qa.store.documents
    out = _call_as(remove, "editor1", doc_id)
    assert out[1].startswith("Removed") and doc_id not in qa.store.documents
    # without credentials (loopback, the default) everyone may
    qa.add_paths([SEED_FILE])
    out = _call_as(_page_handler(app.build_app(qa), "do_remove"), None, doc_id)
    assert out[1].startswith("Removed") and doc_id not in qa.store.documents


def test_only_editors_store_a_threshold_in_the_page(tmp_path):
    import gradio as gr
    from qa.store.threshold import THRESHOLD_FILE

    idx = tmp_path / "index"
    qa = fake_qa(idx)
    qa.add_paths([SEED_FILE])
    before = qa.threshold
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    store = _page_handler(app.build_app(qa, credentials=creds), "store")
    with pytest.raises(gr.Error, match="may ask questions but not store a threshold .ask for the editor role"):
        _call_as(store, "reader1", {"threshold": 0.97})
    assert not (idx / THRESHOLD_FILE).exists() and qa.threshold == before
    message, _ = _call_as(store, "editor1", {"threshold": 0.97})
    assert "Stored threshold **0.97**" in message and qa.threshold == pytest.approx(0.97)


# --- every error says what it is, in one log line ---------------------------------------------

@pytest.fixture
def served(tmp_path):
    from _app_server import serve

    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    s = serve(fake_qa(idx))
    yield s
    s.close()


def post(url: str, path: str, body: bytes, ctype: str = "application/json") -> tuple[int, str]:
    req = urllib.request.Request(url + path, body, {"Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def call(url: str, name: str, data) -> str:
    status, body = post(url, f"gradio_api/call/{name}", json.dumps({"data": data}).encode())
    assert status == 200, body
    event_id = json.loads(body)["event_id"]
    return urllib.request.urlopen(f"{url}gradio_api/call/{name}/{event_id}", timeout=60).read().decode()


def error_of(stream: str):
    for line in stream.splitlines():
        if line.startswith("data: "):
            return json.loads(line[6:])
    return None


@pytest.mark.parametrize("name, data, match", [
    ("answer", [], "takes 4 values, 0 were sent"),
    ("answer", [Q], "takes 4 values, 1 were sent"),
    ("answer", [Q, None, 10**9, None], "limits.max_top_k"),
    ("answer", [Q, [["Who?", "x" * 30000]], None, None], "limits.max_history_chars"),
    ("add_documents", [[{"path": "/etc/passwd"}]], "malformed request to /add_documents"),
    ("add_documents", [42], "valid list"),
    ("ask", [Q, "x", True, 0.5, [], []], "Expected a `float`"),
    ("ask", [Q, 10**9, True, 0.5, [], []], "greater than maximum"),
])
def test_every_web_error_carries_its_message_and_logs_one_line(served, capfd, caplog, name, data, match):
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="qa.app"):
        stream = call(served.url, name, data)
    assert "event: error" in stream, stream
    payload = error_of(stream)
    assert payload and payload.get("error") and match in payload["error"], stream
    time.sleep(0.2)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err[-2000:]
    assert any(match.split()[0] in r.getMessage() or "refused" in r.getMessage() or "malformed" in r.getMessage()
               for r in caplog.records)



def test_web_errors_show_no_server_paths(tmp_path, monkeypatch, caplog):
    """/answer over an app with no index yet said 'no index in /srv/.../index: build one with
    `qa index PATH... --index /srv/.../index`' to any web client (the chat said "add some with
    the panel"); an unexpected error (a bug) showed its OSError with the server path. The log
    keeps the whole message; the client gets the last part of each path."""
    from gradio_client import Client

    from _app_server import serve
    from qa.serving import web_errors, without_server_paths

    idx = tmp_path / "secret-place" / "index"
    s = serve(fake_qa(idx))
    try:
        with pytest.raises(Exception) as e:
            Client(s.url, verbose=False).predict(Q, None, None, None, api_name="/answer")
    finally:
        s.close()
    assert "No documents are indexed yet" in str(e.value) and str(tmp_path) not in str(e.value)

    @web_errors("/x")
    def broken():
        open(tmp_path / "secret-place" / "nothing" / "here.txt")

    import gradio as gr

    with caplog.at_level(logging.INFO, logger="qa.app"), pytest.raises(gr.Error) as e:
        broken()
    assert "here.txt" in str(e.value) and str(tmp_path) not in str(e.value)
    assert str(tmp_path) in caplog.text  # the operator still sees where
    assert without_server_paths("no index in /srv/qa/my index: see '/etc/x.conf' (limits.max_top_k, "
                                "/answer, and/or 1/2, https://example.org/a/b)") == \
        "no index in my index: see 'x.conf' (limits.max_top_k, /answer, and/or 1/2, https://example.org/a/b)"


@pytest.mark.parametrize("path, body, ctype", [
    ("gradio_api/call/answer", b"not json", "application/json"),
    ("gradio_api/call/answer", b"\xff\xfe", "application/json"),
    ("gradio_api/queue/join", b"{", "application/json"),
    ("gradio_api/upload", b"garbage", "multipart/form-data; boundary=XyZ"),
    ("gradio_api/call/nope", b"{\"data\": []}", "application/json"),
    ("gradio_api/queue/join", b"{\"data\": [], \"fn_index\": 999, \"session_hash\": \"x\"}", "application/json"),
    ("gradio_api/upload", b"--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"\"\r\n\r\nhi\r\n--XyZ--\r\n",
     "multipart/form-data; boundary=XyZ"),
])
def test_malformed_http_requests_are_never_a_500(served, capfd, path, body, ctype):
    capfd.readouterr()
    status, text = post(served.url, path, body, ctype)
    assert status < 500, (status, text)
    assert text.strip()
    time.sleep(0.2)
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err, err[-2000:]


# --- bounded work per request ---------------------------------------------------------------

class SlowQA:
    """ask_batch that takes a while: the time budget must not wait for it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.asked: list[str] = []

    def ask_batch(self, questions, histories=None, top_k=None, min_score=None):
        time.sleep(self.seconds)
        self.asked.extend(questions)
        return [f"answer to {q}" for q in questions]

    def ask(self, question, history=None, top_k=None, min_score=None):
        return self.ask_batch([question])[0]


def test_a_question_past_its_time_budget_is_told_and_dropped():
    qa = SlowQA(0.6)
    batcher = MicroBatcher(qa, window_s=0.0)
    first = threading.Thread(target=lambda: batcher.ask("first"))
    first.start()
    time.sleep(0.1)  # "first" is being answered; "late" waits behind it
    t0 = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="limits.web_time_budget_s"):
        ask_within(batcher, 0.2, "late")
    assert time.monotonic() - t0 < 0.5
    first.join()
    assert batcher.ask("after", timeout=5) == "answer to after"
    assert "late" not in qa.asked  # dropped, never answered
    batcher.close()


# --- uploads leave nothing behind ----------------------------------------------------------

def test_uploads_leave_no_empty_temporary_files(tmp_path, monkeypatch):
    from gradio_client import Client, handle_file

    from _app_server import serve

    # an upload folder of its own: the machine's /tmp/gradio is shared with other gradio processes
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    served = serve(fake_qa(idx))
    root = upload_folder()
    assert root == tmp_path / "gradio"
    before = {p for p in root.iterdir() if p.is_file()} if root.exists() else set()
    client = Client(served.url, verbose=False)
    for i in range(3):
        f = tmp_path / f"note{i}.txt"
        f.write_text(f"Note {i} is about the river Vandel{i}.\n", encoding="utf-8")
        assert f"note{i}.txt" in client.predict([handle_file(str(f))], api_name="/add_documents")[1]
    served.close()
    after = {p for p in root.rglob("*") if p.is_file()}
    assert not after - before, sorted(p.name for p in after - before)  # nor the uploaded copies


# --- Markdown markup is not text ---------------------------------------------------------------

def test_markdown_inline_html_is_not_indexed_as_words(tmp_path):
    from qa.ingest import load_file

    raw = ('# Ferries\n\nThe ferry <img src="boat.png" alt="a boat"> leaves <b>Gullholm</b> at noon.'
           '<!-- a hidden\nnote --> It is `<free>` on <span class="x">Sundays</span>.\n\n'
           '```html\n<div>code stays</div>\n```\n')
    f = tmp_path / "ferry.md"
    f.write_text(raw, encoding="utf-8")
    doc = load_file(f)
    assert len(doc.text) == len(raw)  # offsets still point into the file
    for markup in ("<img", "src=", "<b>", "</b>", "<!--", "hidden", "<span"):
        assert markup not in doc.text.replace("<div>code stays</div>", "")
    assert "`<free>`" in doc.text and "<div>code stays</div>" in doc.text
    i = doc.text.index("Gullholm")
    assert raw[i:i + 8] == "Gullholm"
    qa = fake_qa(tmp_path / "index")
    qa.add_paths([f])
    assert not any("<img" in c.text for c in qa.store.chunks)


# --- many clients: identical questions read once, answers kept per snapshot ------------------

class CountingQA:
    """A fake-model QA that counts the questions it reads."""

    def __init__(self, qa) -> None:
        self._qa = qa
        self.read: list[str] = []

    def ask_batch(self, questions, histories=None, top_k=None, min_score=None):
        self.read.extend(questions)
        return self._qa.ask_batch(questions, histories, top_k=top_k, min_score=min_score)

    def ask(self, question, history=None, top_k=None, min_score=None):
        self.read.append(question)
        return self._qa.ask(question, history=history, top_k=top_k, min_score=min_score)

    def __getattr__(self, name):
        return getattr(self._qa, name)


def test_identical_questions_in_a_batch_are_read_once(tmp_path):
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    qa = CountingQA(fake_qa(idx))
    batcher = MicroBatcher(qa, window_s=0.2, cache_size=0)
    qs = [Q, Q, Q, "Who was accused of treason?", Q, "Who was accused of treason?"]
    out = ask_all_at_once(batcher, qs)
    assert sorted(qa.read) == sorted({*qs})  # two distinct questions, each read once
    alone = fake_qa(idx)
    assert [a.answer for a in out] == [alone.ask(q).answer for q in qs]
    batcher.close()


def test_answers_are_kept_per_snapshot_and_threshold(tmp_path):
    from qa.types import Document

    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])
    qa = CountingQA(fake_qa(idx))
    batcher = MicroBatcher(qa)
    first = batcher.ask(Q)
    assert batcher.ask(Q) is first and batcher.ask(f"  {Q} ") is first
    assert qa.read == [Q] and batcher.cache_hits == 2
    batcher.ask(Q, top_k=3)  # another request: read
    assert len(qa.read) == 2
    # a publish (from anywhere) changes the snapshot: the question is read again
    fake_qa(idx).add_documents([Document("n.txt", "Popov commanded the 58th army in the south.")])
    again = batcher.ask(Q)
    assert len(qa.read) == 3 and again is not first
    # so does a new stored threshold
    from qa.store.threshold import save_threshold

    save_threshold(idx, {"threshold": 0.99})
    batcher.ask(Q)
    assert len(qa.read) == 4
    batcher.close()


def test_help_texts_name_every_supported_type(capsys):
    from qa.cli import main as cli_main
    from qa.ingest import SUPPORTED_SUFFIXES

    with pytest.raises(SystemExit):
        cli_main(["index", "-h"])
    help_text = " ".join(capsys.readouterr().out.split())
    for suffix in SUPPORTED_SUFFIXES:
        assert suffix in help_text, suffix
    assert "--rebuild" in help_text and "texts it stores" in help_text


def test_a_question_already_being_read_is_not_read_again(tmp_path):
    """Gradio hands a burst of requests over in parts: the part that arrives while the
    same question is being read waits for that read instead of queueing another."""
    idx = tmp_path / "index"
    fake_qa(idx).add_paths([SEED_FILE])

    class Slow(CountingQA):
        def ask_batch(self, questions, histories=None, top_k=None, min_score=None):
            time.sleep(0.5)
            return super().ask_batch(questions, histories, top_k=top_k, min_score=min_score)

        def ask(self, question, history=None, top_k=None, min_score=None):
            time.sleep(0.5)
            return super().ask(question, history=history, top_k=top_k, min_score=min_score)

    qa = Slow(fake_qa(idx))
    batcher = MicroBatcher(qa, window_s=0.0, cache_size=0)
    out = {}
    first = threading.Thread(target=lambda: out.setdefault("first", batcher.ask(Q)))
    first.start()
    time.sleep(0.2)  # the first is being read now
    second = batcher.ask(Q)
    first.join()
    assert qa.read == [Q] and batcher.merged == 1
    assert second is out["first"]
    # with the read over, the same question is read again (no cache here)
    batcher.ask(Q)
    assert qa.read == [Q, Q]
    # an asker that gave up before its question was read does not take the others down with it
    blocker = threading.Thread(target=lambda: batcher.ask("Who was accused of treason?"))
    blocker.start()
    time.sleep(0.1)
    with pytest.raises(TimeoutError):
        batcher.ask("What struck the command post?", timeout=0.1)  # queued behind the blocker, gives up
    assert batcher.ask("What struck the command post?", timeout=5).question == "What struck the command post?"
    blocker.join()
    batcher.close()


def test_serving_defines_no_gradio_component_class():
    """gradio writes a .pyi stub next to the module of every Component subclass: one in
    qa/ would land in the installed package (and fail to be written where it is read-only)."""
    import gradio as gr

    import qa.serving

    assert not [v for v in vars(qa.serving).values() if isinstance(v, type) and issubclass(v, gr.components.Component)]
    assert not list((__import__("pathlib").Path(qa.serving.__file__).parent).glob("*.pyi"))


# --- failed logins ----------------------------------------------------------------------------

def login(url: str, username: str, password: str, multipart: bool = False):
    """POST /login as gradio_client does (a urlencoded form) or as the page does (multipart FormData)."""
    import httpx

    if multipart:
        return httpx.post(url + "login", files={"username": (None, username), "password": (None, password)},
                          timeout=30)
    return httpx.post(url + "login", data={"username": username, "password": password}, timeout=30)


def test_failed_logins_are_limited_per_client_with_a_cooldown(served_with_users):
    """A client could try passwords at /login without end (each try an instant 400). Now
    after limits.max_failed_logins_per_user failures for one name, or ..._per_client from
    one address, within limits.login_window_s, logins are answered 429 with a message and
    Retry-After for limits.login_cooldown_s, the right password included."""
    from qa.config import LimitsConfig

    lim = LimitsConfig()
    qa, url = served_with_users
    for n in range(lim.max_failed_logins_per_user):
        assert login(url, "reader1", "guess", multipart=n % 2 == 0).status_code == 400
    r = login(url, "reader1", "rpw")
    assert r.status_code == 429, r.text
    assert "too many failed logins" in r.json()["detail"] and "limits.max_failed_logins_per_user" in r.json()["detail"]
    assert 0 < int(r.headers["retry-after"]) <= lim.login_cooldown_s
    assert login(url, "editor1", "epw").status_code == 200  # another name from here: not yet the client's limit
    for n in range(lim.max_failed_logins_per_client - lim.max_failed_logins_per_user):
        assert login(url, f"nobody{n}", "guess").status_code == 400
    r = login(url, "editor1", "epw")
    assert r.status_code == 429 and "limits.max_failed_logins_per_client" in r.json()["detail"], r.text
    # the page says so before anyone tries
    import httpx

    shown = httpx.get(url + "config", timeout=30).json()["detail"]["auth_message"]  # (before login: a 401)
    assert f"{lim.max_failed_logins_per_user} failed logins" in shown


def test_failed_logins_lock_a_name_from_every_address_until_the_cooldown_ends():
    from qa.config import LimitsConfig
    from qa.serving import FailedLogins

    now = [1000.0]
    lim = LimitsConfig(max_failed_logins_per_user=3, max_failed_logins_per_client=10, login_window_s=60,
                       login_cooldown_s=30)
    f = FailedLogins(lim, clock=lambda: now[0])
    for n in range(3):
        assert f.refusal(f"10.0.0.{n}", "ann") is None
        f.failed(f"10.0.0.{n}", "ann")  # one try each from three addresses
    text, left = f.refusal("10.0.0.99", "ann")
    assert "for this user name" in text and "limits.max_failed_logins_per_user" in text and left == 30
    assert f.refusal("10.0.0.99", "bob") is None
    now[0] += 31
    assert f.refusal("10.0.0.99", "ann") is None
    # failures older than the window do not count; a success forgets the name's
    f.failed("10.0.0.1", "ann")
    now[0] += 61
    f.failed("10.0.0.1", "ann")
    f.failed("10.0.0.1", "ann")
    assert f.refusal("10.0.0.1", "ann") is None
    f.succeeded("ann")
    f.failed("10.0.0.1", "ann")
    f.failed("10.0.0.1", "ann")
    assert f.refusal("10.0.0.1", "ann") is None
    # nothing is kept once it no longer matters (a stream of new names costs no memory for long)
    for n in range(100):
        f.failed("10.0.0.2", f"user{n}")
    now[0] += 10_000
    f.refusal("10.0.0.3", "x")
    assert len(f._keys) == 0


# --- what a reader can reach ------------------------------------------------------------------

def test_a_reader_cannot_run_the_evaluation_in_the_page(tmp_path):
    """The Check and tune tab's evaluation (up to 2,000 gold questions, no time limit) ran for
    any logged-in user, through the page or its queue: readers may only ask."""
    import gradio as gr

    idx = tmp_path / "index"
    qa = fake_qa(idx)
    qa.add_paths([SEED_FILE])
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"id": "q1", "question": Q, "answers": ["58th"]}) + "\n", encoding="utf-8")
    asked = []
    qa.ask_batch = lambda questions, **kw: asked.append(questions)  # nothing may be asked
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    run = _page_handler(app.build_app(qa, credentials=creds), "run")
    for who in ("reader1", None):
        with pytest.raises(gr.Error, match="may ask questions but not run an evaluation"):
            _call_as(run, who, str(gold), "best F1", 0.9)
    assert asked == []


def _logged_in(url: str, username: str, password: str):
    import httpx

    client = httpx.Client(base_url=url, timeout=30)
    assert client.post("login", data={"username": username, "password": password}).status_code == 200
    return client


def test_only_editors_upload_files(served_with_users, tmp_path):
    """Any logged-in reader could POST files to /gradio_api/upload, which gradio keeps in its
    temporary folder for an hour (up to the per-file limit each, any number of them), though a
    reader can do nothing with an upload; now the upload is refused before it is read (403)."""
    qa, url = served_with_users
    before = {p for p in upload_folder().rglob("*") if p.is_file()} if upload_folder().is_dir() else set()
    files = {"files": ("notes.txt", b"The Zorblat festival is held every spring.\n", "text/plain")}
    reader = _logged_in(url, "reader1", "rpw")
    r = reader.post("gradio_api/upload", files=files)
    reader.close()
    assert r.status_code == 403, (r.status_code, r.text)
    assert "may ask questions but not upload files" in r.json()["detail"]
    after = {p for p in upload_folder().rglob("*") if p.is_file()} if upload_folder().is_dir() else set()
    assert {p.name for p in after - before} == set()
    editor = _logged_in(url, "editor1", "epw")
    r = editor.post("gradio_api/upload", files=files)
    editor.close()
    assert r.status_code == 200 and r.json()[0].endswith("notes.txt"), r.text
    from qa.uploads import delete_uploads

    delete_uploads(r.json(), upload_folder())


def test_a_readers_page_offers_no_uploads(tmp_path):
    from qa.ui import READER_NOTE

    qa = fake_qa(tmp_path / "index")
    qa.add_paths([SEED_FILE])
    creds = parse_credentials("reader1:rpw:reader\neditor1:epw:editor", "test")
    on_load = _page_handler(app.build_app(qa, credentials=creds), "on_load")
    out = _call_as(on_load, "reader1")
    assert out[3] == READER_NOTE and all(u == {"__type__": "update", "interactive": False} for u in out[5:])
    out = _call_as(on_load, "editor1")
    assert out[3] == "" and all(not isinstance(u, dict) or "interactive" not in u for u in out[5:])


def test_a_port_in_use_or_out_of_range_is_one_line_before_any_model_loads(monkeypatch, capsys):
    """`python app.py --port P` with P taken loaded the index and both models, then died in
    gradio's launch with a traceback ending "OSError: Cannot find empty port in range: P-P. You can
    ... set GRADIO_SERVER_PORT ... or pass `server_port` to `launch()`"; --port 70000 with
    "OverflowError: bind(): port must be 0-65535", and QA_PORT=abc a ValueError before the usage."""
    import socket

    monkeypatch.delenv("QA_AUTH", raising=False)
    monkeypatch.delenv("QA_AUTH_FILE", raising=False)
    loaded = []
    monkeypatch.setattr("qa.default_qa", lambda: loaded.append(1))  # would load the models
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert app.main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: port {port} on 127.0.0.1 is in use") and "--port" in err and err.count("\n") == 1
    for argv, env in ((["--port", "70000"], None), (["--port", "http"], None), ([], "abc")):
        if env:
            monkeypatch.setenv("QA_PORT", env)
        with pytest.raises(SystemExit) as e:
            app.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        # a bad QA_PORT is named as QA_PORT: "argument --port" sent the user to a flag never given
        assert ("QA_PORT='abc'" in err and "argument --port" not in err) if env else "argument --port" in err, err
    assert loaded == []


def test_a_concurrency_below_one_is_a_usage_error(monkeypatch, capsys):
    """`python app.py --concurrency 0` (or -1) started a server that never answered a question:
    every /answer and chat turn waited in gradio's queue for a worker that could not exist."""
    loaded = []
    monkeypatch.setattr("qa.default_qa", lambda: loaded.append(1))
    for value in ("0", "-1", "many"):
        with pytest.raises(SystemExit) as e:
            app.main(["--concurrency", value])
        assert e.value.code == 2 and "argument --concurrency" in capsys.readouterr().err
    assert loaded == []
