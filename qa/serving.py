"""Serving the web app safely: who may connect, what one request may cost, what an error says.

The page itself is laid out in ``qa.ui`` (``app.py`` serves it); everything that
decides whether a request is served lives here, so it is tested on its own:

- **Who.** Serving on anything but a loopback address needs credentials
  (``--auth-file FILE``, ``QA_AUTH_FILE``, or ``QA_AUTH="user:password[:role],..."``)
  or an explicit ``--insecure``: ``check_launch`` refuses to start otherwise.
  A user is a ``reader`` (asks questions) or an ``editor`` (may also upload,
  add and remove documents and run an evaluation); ``require_editor`` guards
  every handler that writes or evaluates, ``EditorsOnlyUploads`` gradio's upload
  route, and ``LoginThrottle`` limits failed logins.
- **How much.** The caps of ``qa.config.LimitsConfig`` are enforced by ``ask``
  itself; ``ask_within`` adds the per-request time budget (a question that
  cannot be answered in time is dropped from the queue and the client told).
- **What it says.** ``web_errors`` turns every failure of a handler into a
  message for the client (never ``{"error": null}``, never a server path:
  ``without_server_paths``): bad input is one log line, only a bug is logged with
  its traceback. ``harden`` does the same for requests
  gradio itself cannot decode (missing values, wrong types, foreign file paths),
  and ``RequestSizeLimit`` for a body too large to read (before it is read).
- **Leaks.** ``without_temp_file_leak`` takes from a ``gr.File`` the empty
  temporary file gradio 6 leaves behind for every uploaded file.
"""

from __future__ import annotations

import functools
import hmac
import ipaddress
import logging
import math
import os
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import gradio as gr

from qa.config import LimitsConfig
from qa.errors import QAError, RequestTimeoutError, ServingConfigError

log = logging.getLogger("qa.app")

ROLES = ("reader", "editor")
#: A user listed without a role may only ask (adding and removing documents needs "editor").
DEFAULT_ROLE = "reader"


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    host = (host or "").strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name (or 0.0.0.0-like wildcard spelled otherwise): assume reachable


@dataclass(frozen=True)
class Credentials:
    """Users allowed in, each with a role; ``source`` names where they came from (for messages)."""

    users: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (password, role)
    source: str = ""

    def check(self, username: str, password: str) -> bool:
        """gradio's ``auth`` callable: constant-time comparison of the password."""
        user = self.users.get(username)
        if user is None:
            hmac.compare_digest(password.encode(), password.encode())  # same work for unknown names
            return False
        return hmac.compare_digest(user[0].encode("utf-8"), str(password).encode("utf-8"))

    def role(self, username: str | None) -> str | None:
        user = self.users.get(username or "")
        return user[1] if user else None


def parse_credentials(text: str, source: str) -> Credentials:
    """``user:password[:role]`` entries, one per line or separated by commas;
    ``#`` starts a comment line. A malformed entry is a ``ServingConfigError``
    (the password is never repeated in the message)."""
    users: dict[str, tuple[str, str]] = {}
    entries = [e.strip() for line in text.splitlines() if not line.strip().startswith("#")
               for e in line.split(",")]
    for n, entry in enumerate((e for e in entries if e), start=1):
        parts = entry.split(":")
        if len(parts) == 3 and parts[2] in ROLES:
            name, password, role = parts
        elif len(parts) >= 2 and parts[-1] not in ROLES:
            name, password, role = parts[0], ":".join(parts[1:]), DEFAULT_ROLE
        elif len(parts) > 3:
            name, password, role = parts[0], ":".join(parts[1:-1]), parts[-1]
        else:
            raise ServingConfigError(f"{source}: entry {n} is not user:password[:role] "
                                     f"(role one of {', '.join(ROLES)})")
        if not name or not password:
            raise ServingConfigError(f"{source}: entry {n} has an empty user name or password")
        if name in users:
            raise ServingConfigError(f"{source}: user {name!r} is listed twice")
        users[name] = (password, role)
    if not users:
        raise ServingConfigError(f"{source}: no users (one user:password[:role] per line)")
    return Credentials(users, source)


def load_credentials(auth_file: str | Path | None = None,
                     env: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``auth_file``, else the file named by ``QA_AUTH_FILE``, else
    ``QA_AUTH``; None when none is given."""
    env = os.environ if env is None else env
    path = auth_file or env.get("QA_AUTH_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ServingConfigError(f"the credentials file {path} cannot be read "
                                     f"({getattr(e, 'strerror', None) or e})") from None
        try:
            mode = Path(path).stat().st_mode
            if mode & 0o004:
                log.warning("the credentials file %s is readable by every user of this machine "
                            "(chmod 600 it)", path)
        except OSError:
            pass
        return parse_credentials(text, str(path))
    if env.get("QA_AUTH"):
        return parse_credentials(env["QA_AUTH"], "QA_AUTH")
    return None


def check_launch(host: str, credentials: Credentials | None, insecure: bool = False) -> None:
    """Refuse to serve a non-loopback address to everyone: anyone who reaches it
    could read every document and add or remove documents."""
    if credentials is None and not insecure and not is_loopback(host):
        raise ServingConfigError(
            f"refusing to serve on {host} without credentials: anyone who can reach it could read every "
            "document and change the index. Give users with --auth-file FILE (lines user:password[:role], "
            "role reader or editor), QA_AUTH_FILE or QA_AUTH, or serve on 127.0.0.1; --insecure serves "
            "everyone anyway")


def check_port(host: str, port: int) -> None:
    """Refuse, before any model loads, an address the server could not listen on: a
    port in use (gradio said so only after the index and models had loaded, in a
    traceback telling to pass ``server_port`` to ``launch()``), or a host that is not
    this machine's. Bound the way uvicorn binds (``SO_REUSEADDR``), then let go."""
    import errno
    import socket

    try:
        infos = socket.getaddrinfo(host.strip("[]") or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise ServingConfigError(f"cannot serve on {host}: {getattr(e, 'strerror', None) or e}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(address)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ServingConfigError(f"port {port} on {host} is in use (another server, or this app "
                                         "already running): choose another with --port (or QA_PORT)") from None
            raise ServingConfigError(f"cannot serve on {host} port {port}: {e.strerror or e}") from None


def require_editor(request: gr.Request | None, credentials: Credentials | None,
                   what: str = "add or remove documents") -> None:
    """A ``gr.Error`` unless the request may change the index (no credentials:
    everyone may); ``what`` names the change refused, for the message."""
    if credentials is None:
        return
    username = getattr(request, "username", None)
    if credentials.role(username) != "editor":
        log.warning("refused to %s for %r (role %s)", what, username, credentials.role(username))
        raise gr.Error(f"your account may ask questions but not {what} (ask for the editor role)",
                       print_exception=False)


def one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


#: An absolute path of two or more parts (not part of a word, a URL, a fraction or "and/or").
_SERVER_PATH = re.compile(r"(?<![\w.:/~-])~?(?:/[^\s/'\"`,;:()\[\]{}<>|*?]+){2,}/?")


def without_server_paths(text: str) -> str:
    """``text`` for a web client: each absolute path cut to its last part
    ('no index in /srv/qa/index' -> 'no index in index', "'/tmp/gradio/ab12/gold.jsonl'"
    -> "'gold.jsonl'"). Errors name files and folders the way the CLI needs them, but a
    client must learn neither the server's layout nor where its users keep their files;
    the log keeps the whole message."""
    return _SERVER_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], str(text))


def web_errors(what: str) -> Callable[[Callable], Callable]:
    """Decorate a handler so that every failure reaches the client as a message:
    a ``QAError`` (bad input, over a limit, a missing index) is logged as one line,
    anything else (a bug) with its traceback."""

    def wrap(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def handler(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except gr.Error:
                raise
            except QAError as e:
                log.info("%s refused: %s", what, one_line(e))
                raise gr.Error(without_server_paths(e) or type(e).__name__, print_exception=False) from e
            except Exception as e:  # noqa: BLE001 - a bug: the log keeps the traceback
                log.exception("%s failed", what)
                raise gr.Error(f"Something went wrong: {type(e).__name__}: {without_server_paths(one_line(e))}",
                               print_exception=False) from e

        return handler

    return wrap


def _request_message(block_fn: Any, error: BaseException) -> str:
    """One line saying what was wrong with a request gradio could not decode."""
    import re

    name = getattr(block_fn, "api_name", None) or getattr(block_fn, "name", None) or "this endpoint"
    cause = error.__cause__ or error.__context__
    text = str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    needed = re.search(r"needed: (\d+), got: (\d+)", text)
    pydantic = next((e for e in (error, cause) if callable(getattr(e, "errors", None))), None)
    if needed:
        detail = f"it takes {needed.group(1)} values, {needed.group(2)} were sent"
    elif pydantic is not None:
        try:
            first = pydantic.errors()[0]
            where = ".".join(str(x) for x in first.get("loc", ()))
            detail = f"{first.get('msg', pydantic)}{' at ' + where if where else ''}"
        except Exception:  # noqa: BLE001 - any other errors() method
            detail = lines[0] if lines else type(error).__name__
    else:
        expected = [line for line in lines if line.startswith(("Expected", "Cannot", "File", "Invalid"))]
        detail = expected[0] if expected else (lines[0] if lines else type(error).__name__)
    return one_line(f"malformed request to /{name}: {detail}")


def harden(demo: gr.Blocks) -> gr.Blocks:
    """Requests gradio cannot turn into a handler's arguments (too few values, a
    string for a number, a file path that was never uploaded) get a message
    instead of ``{"error": null}``, and one log line instead of a traceback."""
    original = demo.preprocess_data

    async def preprocess_data(block_fn, inputs, state, explicit_call=False):
        try:
            return await original(block_fn, inputs, state, explicit_call)
        except Exception as e:  # noqa: BLE001 - anything a client can send (gradio's own range checks too)
            message = _request_message(block_fn, e)
            log.info("%s", message)
            raise gr.Error(message, print_exception=False) from None

    demo.preprocess_data = preprocess_data  # type: ignore[method-assign]
    return demo


def exception_handlers() -> dict:
    """For ``launch(app_kwargs={"exception_handlers": ...})``: requests that name an
    API endpoint or function that does not exist get a 404/422 with a message,
    not an HTTP 500 and a traceback in the log."""
    from fastapi.responses import JSONResponse
    from gradio.route_utils import FnIndexInferError

    def no_such_endpoint(request, exc):
        log.info("request for an unknown endpoint %s: %s", request.url.path, one_line(exc))
        return JSONResponse({"error": f"no such endpoint: {one_line(exc)}"}, status_code=404)

    def unknown_key(request, exc):
        if "/gradio_api/" not in request.url.path:  # not a request's own key: a bug, let it be a 500
            raise exc
        log.info("malformed request to %s: unknown %s", request.url.path, one_line(exc))
        return JSONResponse({"error": f"malformed request: unknown function or key {one_line(exc)}"},
                            status_code=422)

    return {FnIndexInferError: no_such_endpoint, KeyError: unknown_key}


class RequestSizeLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets a 413 and a message
    before the application reads it. FastAPI reads a JSON body whole into memory
    and parses it before any handler, limit or even the login check runs (one
    anonymous 200 MB POST cost the server ~500 MB). The refused body is read and
    dropped, a piece at a time, so the client gets the answer instead of a reset
    connection. Paths ending in one of ``exempt`` (gradio's ``/upload``, which
    streams files to disk with its own per-file limit) pass unchecked."""

    def __init__(self, app: Any, max_bytes: int, exempt: tuple[str, ...] = ("/upload",)) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith(self.exempt):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None:
            try:
                size = int(length)
            except ValueError:
                size = 0  # the server itself refuses a malformed length
            if size > self.max_bytes:
                await self._refuse(receive, send, size)
            else:
                await self.app(scope, receive, send)
            return
        if b"chunked" not in headers.get(b"transfer-encoding", b"").lower():
            await self.app(scope, receive, send)  # no body
            return
        # A body of unknown length: read it up to the limit, then hand it on.
        kept: list[dict] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                kept.append(message)
                break
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self._refuse(receive, send, None, more=message.get("more_body", False))
                return
            kept.append(message)
            if not message.get("more_body", False):
                break

        async def replay() -> dict:
            return kept.pop(0) if kept else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, receive: Callable, send: Callable, size: int | None, more: bool = True) -> None:
        from fastapi.responses import JSONResponse

        while more:  # drop the rest of the body, never holding more than a piece of it
            message = await receive()
            more = message["type"] == "http.request" and message.get("more_body", False)
        said = f"{size:,} bytes" if size is not None else f"over {self.max_bytes:,} bytes"
        text = (f"the request is {said}; the limit is {self.max_bytes:,} (limits.max_request_bytes): "
                "a question with its history takes far less (files go through the upload)")
        log.info("refused a request body: %s", text)
        response = JSONResponse({"error": text}, status_code=413)
        await response({"type": "http"}, receive, send)


class FailedLogins:
    """Failed logins per user name and per client address within a sliding window
    (``limits.login_window_s``); a key over its limit is locked for
    ``limits.login_cooldown_s``. Keys are dropped once nothing about them is
    remembered any longer, so a stream of new names or addresses costs memory only
    for the window. Used from the event loop only (no lock needed)."""

    def __init__(self, limits: LimitsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = limits
        self.clock = clock
        # key -> (failure times within the window, locked until); ordered by last change
        self._keys: OrderedDict[tuple[str, str], tuple[deque[float], float]] = OrderedDict()

    def _limit(self, kind: str) -> tuple[int, str]:
        if kind == "user":
            return self.limits.max_failed_logins_per_user, "limits.max_failed_logins_per_user"
        return self.limits.max_failed_logins_per_client, "limits.max_failed_logins_per_client"

    def _forget_old(self, now: float) -> None:
        keep_s = max(self.limits.login_window_s, self.limits.login_cooldown_s)
        while self._keys:
            key, (times, until) = next(iter(self._keys.items()))
            if max(times[-1] if times else until, until) + keep_s > now:
                break
            del self._keys[key]

    def refusal(self, client: str, username: str) -> tuple[str, float] | None:
        """(message, seconds left) when logins for ``username`` or from ``client``
        are locked now, else None."""
        now = self.clock()
        self._forget_old(now)
        for key, whom in ((("client", client), "from your address"), (("user", username), "for this user name")):
            entry = self._keys.get(key)
            if entry is not None and entry[1] > now:
                left = entry[1] - now
                n, name = self._limit(key[0])
                return (f"too many failed logins {whom} ({n} within {self.limits.login_window_s:g} s, {name}): "
                        f"try again in {math.ceil(left)} s", left)
        return None

    def failed(self, client: str, username: str) -> None:
        now = self.clock()
        for key in (("client", client), ("user", username)):
            times, until = self._keys.pop(key, (deque(), 0.0))
            times.append(now)
            while times and times[0] <= now - self.limits.login_window_s:
                times.popleft()
            n, _ = self._limit(key[0])
            if len(times) >= n:
                log.warning("%d failed logins %s %r within %g s: refusing its logins for %g s", len(times),
                            "for user" if key[0] == "user" else "from", key[1], self.limits.login_window_s,
                            self.limits.login_cooldown_s)
                times, until = deque(), now + self.limits.login_cooldown_s
            self._keys[key] = (times, until)  # (re)inserted last: the order stays by last change

    def succeeded(self, username: str) -> None:
        """The user knew the password: its name's failures are forgotten (the
        address's are not, or one valid account would clear the way to guessing others)."""
        self._keys.pop(("user", username), None)


class LoginThrottle:
    """ASGI middleware: gradio's ``POST /login`` (the page's form, ``gradio_client``'s
    ``auth``) with a limit on failed attempts (``FailedLogins``, numbers from
    ``qa.config.LimitsConfig``). gradio answers each wrong password at once with a
    400 and no limit, so a client could try passwords without end. A locked client
    or name gets a 429 with a message and ``Retry-After``, before its password is
    checked. Client addresses are the connection's (behind a proxy: the proxy's,
    unless the server is told to trust its forwarded headers)."""

    def __init__(self, app: Any, limits: LimitsConfig | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.failures = FailedLogins(limits or LimitsConfig(), clock)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or not scope["path"].rstrip("/").endswith("/login")):
            await self.app(scope, receive, send)
            return
        from starlette.requests import Request

        kept: list[dict] = []  # the form, small (RequestSizeLimit caps it), read here and replayed to gradio
        while True:
            message = await receive()
            kept.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        try:
            form = await Request(scope, _replayer(kept, receive)).form()
            username = str(form.get("username") or "").strip()  # as gradio reads it
            await form.close()
        except Exception:  # noqa: BLE001 - not a form: gradio says what is wrong with it
            username = ""
        client = (scope.get("client") or ("?",))[0]
        refusal = self.failures.refusal(client, username)
        if refusal is not None:
            from fastapi.responses import JSONResponse

            text, left = refusal
            log.info("login refused for %r from %s: %s", username, client, text)
            response = JSONResponse({"detail": text}, status_code=429,
                                    headers={"Retry-After": str(math.ceil(left))})
            await response(scope, _replayer(kept, receive), send)
            return

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 400:  # gradio's "Incorrect credentials."
                    self.failures.failed(client, username)
                elif message["status"] == 200:
                    self.failures.succeeded(username)
            await send(message)

        await self.app(scope, _replayer(kept, receive), watch)


def _replayer(messages: list[dict], receive: Callable) -> Callable:
    """An ASGI ``receive`` that hands out ``messages`` (a body already read) again, then
    what ``receive`` brings (the disconnect)."""
    pending = list(messages)

    async def replay() -> dict:
        return pending.pop(0) if pending else await receive()

    return replay


def gradio_user(scope: dict) -> str | None:
    """The user a request to gradio's app is logged in as, read as gradio's own
    ``get_current_user`` reads it (its login cookie, looked up in ``app.tokens``)."""
    from starlette.requests import HTTPConnection

    app = scope.get("app")
    tokens = getattr(app, "tokens", None)
    cookie_id = getattr(app, "cookie_id", None)
    if not tokens or cookie_id is None:
        return None
    cookies = HTTPConnection(scope).cookies
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return tokens.get(token)


class EditorsOnlyUploads:
    """ASGI middleware: gradio's ``POST /gradio_api/upload`` for editors only
    (``credentials``; logged-out requests go on to gradio's own 401). Every
    logged-in user could upload any number of files (each up to the per-file limit)
    into gradio's temporary folder, kept there an hour, though only editors can do
    anything with an upload (add documents, run an evaluation). Refused with a 403
    and a message before the body is read."""

    def __init__(self, app: Any, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] == "http" and scope.get("method") == "POST"
                and scope["path"].rstrip("/").endswith("/upload")):
            username = gradio_user(scope)
            if username is not None and self.credentials.role(username) != "editor":
                from fastapi.responses import JSONResponse

                log.warning("refused an upload for %r (role %s)", username, self.credentials.role(username))
                more = True
                while more:  # drop the body a piece at a time, so the client reads the answer, not a reset
                    message = await receive()
                    more = message["type"] == "http.request" and message.get("more_body", False)
                response = JSONResponse({"detail": "your account may ask questions but not upload files "
                                                   "(ask for the editor role)"}, status_code=403)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def login_message(limits: LimitsConfig) -> str:
    """What the login page says before anyone tries (gradio's page shows nothing
    for a 429: it only knows "incorrect credentials")."""
    return (f"After {limits.max_failed_logins_per_user} failed logins for a user name (or "
            f"{limits.max_failed_logins_per_client} from one address) within {limits.login_window_s / 60:g} "
            f"minutes, logins there pause for {limits.login_cooldown_s / 60:g} minutes.")


def ask_within(asker: Any, budget_s: float, question: Any, **kwargs: Any):
    """``asker.ask`` that gives up after ``budget_s`` seconds with a
    ``RequestTimeoutError`` (the question is dropped if it has not started)."""
    try:
        return asker.ask(question, timeout=budget_s, **kwargs)
    except TimeoutError:
        raise RequestTimeoutError(f"no answer within {budget_s:g} s (limits.web_time_budget_s): the server is "
                                  "busy; try again in a moment") from None


def without_temp_file_leak(files: gr.File) -> gr.File:
    """``files`` (a ``gr.File`` of type "filepath") without the leak of gradio
    6.31's ``File._process_single_file``, which opens an empty
    ``NamedTemporaryFile`` in the upload folder for every file of every request
    and never removes (nor closes) it. Done on the instance, not by subclassing:
    gradio writes a ``.pyi`` stub next to the module of every ``Component``
    subclass, which would land in the installed package (and fail where it is
    read-only). The check of the file type is kept."""
    import types

    from gradio.utils import NamedString
    from gradio_client import utils as client_utils

    if files.type != "filepath":
        return files

    def _process_single_file(self, f):
        if self.file_types and not client_utils.is_valid_file(f.path, self.file_types):
            raise gr.Error(f"Invalid file type. Please upload a file that is one of these formats: "
                           f"{self.file_types}", print_exception=False)
        return NamedString(f.path)

    files._process_single_file = types.MethodType(_process_single_file, files)  # type: ignore[method-assign]
    return files


__all__ = ["Credentials", "EditorsOnlyUploads", "FailedLogins", "LoginThrottle", "ROLES", "RequestSizeLimit", "ask_within", "check_launch", "exception_handlers", "harden",
           "is_loopback",
           "gradio_user", "load_credentials", "login_message", "parse_credentials", "require_editor", "web_errors", "without_server_paths",
           "without_temp_file_leak"]
