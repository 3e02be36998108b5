"""Drive real JavaScript Yjs clients from Python tests and benchmarks.

``YjsClients`` runs one ``node tests/js/client.mjs`` process that hosts any number of
scripted editors (a ``Y.Doc`` with the stock y-websocket ``WebsocketProvider`` each) and
talks to it in line-delimited JSON. ``replay_with_yjs`` rebuilds a document from an
update log with the JavaScript Yjs, to compare with pycrdt. ``reference_server`` starts
the npm y-websocket reference server, to test the harness and to benchmark against.

Positions and lengths are Yjs units (UTF-16 code units), as in a browser editor.

Errors::

    YjsHarnessError
     ├── NodeMissingError      node/npm not installed, or npm ci failed
     ├── YjsCommandError       the node side answered {"ok": false}
     └── YjsTimeoutError       a wait ran out (also a TimeoutError)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TypeAlias

JS_DIR = Path(__file__).resolve().parents[1] / "js"
_REQUIRED_PACKAGES = ("yjs", "y-websocket", "y-protocols", "ws", "@y/websocket-server")
_REFERENCE_SERVER = Path("node_modules", "@y", "websocket-server", "src", "server.js")
# Replies such as encode_state of a large document can be long lines.
_LINE_LIMIT = 64 * 1024 * 1024
# Slack on top of a node-side wait, so node reports its own timeout (with the current
# text) before the Python guard fires.
_GUARD_MARGIN = 5.0
_STDERR_LINES_KEPT = 40
_UNSET: Any = object()

Reply: TypeAlias = dict[str, Any]


class YjsHarnessError(Exception):
    """Base class for failures of the Yjs test harness."""


class NodeMissingError(YjsHarnessError):
    """Node.js or npm is missing, or the npm packages could not be installed."""


class YjsCommandError(YjsHarnessError):
    """The node side refused or failed a command; ``reply`` is its full answer."""

    def __init__(self, message: str, reply: Reply) -> None:
        super().__init__(message)
        self.reply = reply


class YjsTimeoutError(YjsHarnessError, TimeoutError):
    """A command or a wait did not finish in time."""


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """Outcome of ``connect``/``reconnect``: synced, or closed by the server first.

    ``close_code`` is the WebSocket close code (e.g. 4401) when the server closed the
    socket before the first sync; ``http_status`` is set when it refused the upgrade.
    ``attempts`` counts WebSocket connections this client has opened so far.
    """

    synced: bool
    client_id: int
    close_code: int | None
    close_reason: str | None
    http_status: int | None
    attempts: int
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the client is connected and synced."""
        return self.synced


@dataclass(frozen=True, slots=True)
class ClientStatus:
    """Connection state of one scripted client, as its provider sees it."""

    client_id: int
    connected: bool
    connecting: bool
    synced: bool
    should_connect: bool
    attempts: int
    close_count: int
    last_close_code: int | None
    last_close_reason: str | None
    terminal_close_code: int | None
    last_error: str | None
    http_status: int | None


@dataclass(frozen=True, slots=True)
class EditBurst:
    """Result of ``random_edits``: how many edits of each kind, and the text after."""

    inserts: int
    deletes: int
    text: str


@dataclass(frozen=True, slots=True)
class YjsReplay:
    """A log rebuilt by the JavaScript Yjs.

    ``pending`` is true when some update still waits for a missing predecessor, which
    Yjs keeps aside where pycrdt may integrate it anyway.
    """

    text: str
    state: bytes
    pending: bool


def node_available() -> bool:
    """Whether ``node`` and ``npm`` are on the PATH."""
    return shutil.which("node") is not None and shutil.which("npm") is not None


def ensure_node_modules() -> Path:
    """Install tests/js's locked npm packages once, if they are missing.

    Returns:
        The ``node_modules`` directory.

    Raises:
        NodeMissingError: node or npm is missing, or ``npm ci`` failed.
    """
    modules = JS_DIR / "node_modules"
    if _modules_installed(modules):
        return modules
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        raise NodeMissingError("node and npm are needed for the Yjs tests (Node.js >= 20)")
    # Several test processes may start at once; one installs, the others wait for it.
    with _install_lock():
        if not _modules_installed(modules):
            _npm_ci(npm)
    return modules


def _modules_installed(modules: Path) -> bool:
    return all((modules / name / "package.json").is_file() for name in _REQUIRED_PACKAGES)


@contextlib.contextmanager
def _install_lock() -> Iterator[None]:
    digest = hashlib.sha256(str(JS_DIR).encode()).hexdigest()[:12]
    lock_path = Path(tempfile.gettempdir(), f"collab-yjs-npm-{digest}.lock")
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _npm_ci(npm: str) -> None:
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise NodeMissingError(f"npm ci in {JS_DIR} failed:\n{done.stderr[-2000:]}")


class YjsClients:
    """One node process hosting scripted Yjs editors, used as an async context manager.

    Every method takes the client's name (``cid``) first. Waits are bounded twice: node
    gives up after ``within`` seconds, and Python after a few more, so a hung node
    process never hangs a test.

    Example::

        async with YjsClients() as yjs:
            await yjs.connect("a", "ws://127.0.0.1:8080/ws", "doc1", token)
            await yjs.insert("a", 0, "hi")
    """

    def __init__(self, *, command_timeout: float = 10.0) -> None:
        self._command_timeout = command_timeout
        self._seq = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Reply]] = {}
        self._stderr: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
        self._proc: asyncio.subprocess.Process | None = None
        self._readers: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(ensure_node_modules)
        self._proc = await asyncio.create_subprocess_exec(
            "node",
            str(JS_DIR / "client.mjs"),
            cwd=JS_DIR,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=_LINE_LIMIT,
        )
        self._readers = [
            asyncio.create_task(self._read_replies(), name="yjs-replies"),
            asyncio.create_task(self._read_stderr(), name="yjs-stderr"),
        ]
        try:
            await self.ping()
        except BaseException:
            await self._shut_down()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shut_down()

    @property
    def stderr_tail(self) -> str:
        """The last lines node wrote to stderr, for failure messages."""
        return "\n".join(self._stderr)

    async def request(self, cmd: str, cid: str | None = None, **fields: Any) -> Reply:
        """Send one raw command and return node's reply, whether ``ok`` or not.

        A ``within`` field (seconds) becomes node's ``timeout_ms`` and widens the
        Python guard accordingly.

        Raises:
            YjsTimeoutError: no reply within the guard time.
            YjsHarnessError: the node process is gone.
        """
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise YjsHarnessError(f"node is not running\n{self.stderr_tail}")
        guard = self._command_timeout
        if (wait := fields.pop("within", None)) is not None:
            fields["timeout_ms"] = int(wait * 1000)
            guard = max(guard, wait + _GUARD_MARGIN)
        seq = next(self._seq)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._pending[seq] = future
        message = {"seq": seq, "cmd": cmd, **({"id": cid} if cid is not None else {}), **fields}
        try:
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            await proc.stdin.drain()
            async with asyncio.timeout(guard):
                return await future
        except TimeoutError:
            raise YjsTimeoutError(
                f"no reply to {cmd} {cid or ''} within {guard}s\n{self.stderr_tail}"
            ) from None
        finally:
            self._pending.pop(seq, None)

    async def call(self, cmd: str, cid: str | None = None, **fields: Any) -> Reply:
        """Like ``request``, but raise on an ``{"ok": false}`` reply.

        Raises:
            YjsTimeoutError: node or Python gave up waiting.
            YjsCommandError: node refused or failed the command.
        """
        reply = await self.request(cmd, cid, **fields)
        if reply.get("ok") is True:
            return reply
        detail = f"{cmd} {cid or ''}: {reply.get('error')}"
        if "text" in reply:
            detail += f"; text is {reply['text']!r}"
        if reply.get("timeout"):
            raise YjsTimeoutError(detail)
        raise YjsCommandError(detail, reply)

    async def ping(self) -> list[str]:
        """Check that node answers; returns the names of its clients."""
        reply = await self.call("ping")
        return list(reply["clients"])

    async def connect(
        self,
        cid: str,
        url: str,
        doc: str,
        token: str | None = None,
        *,
        params: Mapping[str, str] | None = None,
        client_id: int | None = None,
        keep_trying: bool = False,
        within: float = 10.0,
        headers: Mapping[str, str] | None = None,
    ) -> ConnectResult:
        """Create client ``cid`` and connect it to ``{url}/{doc}?token=...``.

        Returns when the client has synced, or when the server closed the socket first
        (then the provider is stopped, so it does not retry in the background, unless
        ``keep_trying``: then it follows y-websocket's own policy until ``within``).
        Inspect the result's ``synced``/``close_code``; this does not raise for them.

        Args:
            cid: Name of the new client in this harness.
            url: Server base URL without the document, e.g. ``ws://127.0.0.1:8080/ws``.
            doc: Document id, appended to ``url`` by the provider.
            token: Access token, sent as the ``token`` query parameter.
            params: Extra query parameters.
            client_id: Fixed Yjs clientID (default: random, as in a browser).
            keep_trying: Keep reconnecting after non-permanent closes.
            within: Seconds to wait for the first sync.
            headers: HTTP headers of every upgrade (``Cookie``, ``Origin``), as a
                browser sends them.
        """
        fields: dict[str, Any] = {"url": url, "doc": doc, "within": within}
        if headers:
            fields["headers"] = dict(headers)
        if token is not None:
            fields["token"] = token
        if params:
            fields["params"] = dict(params)
        if client_id is not None:
            fields["client_id"] = client_id
        if keep_trying:
            fields["keep_trying"] = True
        return _connect_result(await self._connect_request("connect", cid, fields))

    async def reconnect(
        self, cid: str, *, keep_trying: bool = False, within: float = 10.0
    ) -> ConnectResult:
        """Bring a disconnected client back online and wait for it to sync."""
        fields: dict[str, Any] = {"within": within, "keep_trying": keep_trying}
        return _connect_result(await self._connect_request("reconnect", cid, fields))

    async def set_headers(self, cid: str, headers: Mapping[str, str]) -> None:
        """Replace the HTTP headers the client's next upgrades send (a renewed cookie)."""
        await self.call("set_headers", cid, headers=dict(headers))

    async def _connect_request(self, cmd: str, cid: str, fields: dict[str, Any]) -> Reply:
        reply = await self.request(cmd, cid, **fields)
        # A refused or timed-out connection is a result; anything else is a misuse.
        if not reply.get("ok") and "client_id" not in reply:
            raise YjsCommandError(f"{cmd} {cid}: {reply.get('error')}", reply)
        return reply

    async def disconnect(self, cid: str) -> None:
        """Go offline and keep the document, so edits pile up locally."""
        await self.call("disconnect", cid)

    async def wait_synced(self, cid: str, *, within: float = 10.0) -> None:
        """Wait until the client is connected and synced with the server."""
        await self.call("wait_synced", cid, within=within)

    async def insert(self, cid: str, pos: int, text: str) -> int:
        """Insert ``text`` at ``pos``; returns the new length."""
        reply = await self.call("insert", cid, pos=pos, text=text)
        return int(reply["length"])

    async def delete(self, cid: str, pos: int, length: int) -> int:
        """Delete ``length`` units from ``pos``; returns the new length."""
        reply = await self.call("delete", cid, pos=pos, len=length)
        return int(reply["length"])

    async def text(self, cid: str) -> str:
        """The client's current ``getText('content')``."""
        reply = await self.call("text", cid)
        return str(reply["text"])

    async def wait_text(self, cid: str, text: str, *, within: float = 10.0) -> None:
        """Wait until the client's text equals ``text``.

        Raises:
            YjsTimeoutError: it did not, within ``within``; the message shows the text.
        """
        await self.call("wait_text", cid, text=text, within=within)

    async def wait_converged(self, cids: Sequence[str], *, within: float = 10.0) -> str:
        """Wait until all the clients show the same text; returns it.

        Raises:
            YjsTimeoutError: they still differ after ``within``.
        """
        texts: list[str] = []
        try:
            async with asyncio.timeout(within):
                while True:
                    texts = list(await asyncio.gather(*(self.text(cid) for cid in cids)))
                    if len(set(texts)) <= 1:
                        return texts[0] if texts else ""
                    await asyncio.sleep(0.02)
        except TimeoutError:
            shown = dict(zip(cids, texts, strict=False))
            raise YjsTimeoutError(f"clients did not converge: {shown!r}") from None

    async def awareness_set(self, cid: str, state: Mapping[str, Any] | None) -> None:
        """Replace the local awareness state (``None`` removes it, like going away)."""
        await self.call("awareness_set", cid, state=None if state is None else dict(state))

    async def awareness_set_field(self, cid: str, field: str, value: Any) -> None:
        """Set one field of the local awareness state."""
        await self.call("awareness_set", cid, field=field, value=value)

    async def awareness_states(self, cid: str) -> dict[int, Any]:
        """The awareness states this client sees, by Yjs clientID (its own included)."""
        reply = await self.call("awareness_states", cid)
        return _states(reply)

    async def wait_awareness(
        self,
        cid: str,
        client_id: int,
        *,
        state: Any = _UNSET,
        present: bool = True,
        within: float = 10.0,
    ) -> dict[int, Any]:
        """Wait until ``cid`` sees ``client_id``'s state (equal to ``state`` if given).

        With ``present=False``, wait until that state is gone. Returns all the states.
        """
        fields: dict[str, Any] = {"client_id": client_id, "present": present}
        if state is not _UNSET:
            fields["state"] = state
        return _states(await self.call("wait_awareness", cid, within=within, **fields))

    async def state_vector(self, cid: str) -> bytes:
        """``Y.encodeStateVector`` of the client's document."""
        reply = await self.call("state_vector", cid)
        return base64.b64decode(reply["data"])

    async def encode_state(self, cid: str, state_vector: bytes | None = None) -> bytes:
        """``Y.encodeStateAsUpdate`` of the client's document (diff against a vector)."""
        fields = {} if state_vector is None else {"state_vector": _b64(state_vector)}
        reply = await self.call("encode_state", cid, **fields)
        return base64.b64decode(reply["data"])

    async def apply_update(self, cid: str, update: bytes) -> str:
        """Apply a Yjs update locally (it is sent on like a local edit); returns the text."""
        reply = await self.call("apply_update", cid, update=_b64(update))
        return str(reply["text"])

    async def random_edits(
        self,
        cid: str,
        count: int,
        seed: int,
        *,
        interval_ms: int = 0,
        delete_ratio: float = 0.3,
        within: float = 60.0,
    ) -> EditBurst:
        """Type ``count`` seeded random inserts/deletes, one transaction each.

        Remote updates are applied between the edits, as for a real typist.
        """
        fields = {"count": count, "seed": seed, "interval_ms": interval_ms}
        reply = await self.call(
            "random_edits", cid, delete_ratio=delete_ratio, within=within, **fields
        )
        return EditBurst(int(reply["inserts"]), int(reply["deletes"]), str(reply["text"]))

    async def status(self, cid: str) -> ClientStatus:
        """Connection state, attempt count and the last close code of a client."""
        reply = await self.call("status", cid)
        terminal = reply.get("terminal_close")
        return ClientStatus(
            client_id=int(reply["client_id"]),
            connected=bool(reply["connected"]),
            connecting=bool(reply["connecting"]),
            synced=bool(reply["synced"]),
            should_connect=bool(reply["should_connect"]),
            attempts=int(reply["attempts"]),
            close_count=int(reply["close_count"]),
            last_close_code=reply["last_close_code"],
            last_close_reason=reply["last_close_reason"],
            terminal_close_code=None if terminal is None else int(terminal["code"]),
            last_error=reply["last_error"],
            http_status=reply["http_status"],
        )

    async def close(self, cid: str) -> None:
        """Destroy the client: its socket closes and its document is dropped."""
        await self.call("close", cid)

    async def _read_replies(self) -> None:
        stdout = self._stdout()
        while line := await stdout.readline():
            try:
                reply = json.loads(line)
            except ValueError:
                self._stderr.append(f"(stdout) {line.decode(errors='replace').rstrip()}")
                continue
            seq = reply.get("seq") if isinstance(reply, dict) else None
            future = self._pending.get(seq) if isinstance(seq, int) else None
            if future is not None and not future.done():
                future.set_result(reply)
        self._fail_pending()

    async def _read_stderr(self) -> None:
        if self._proc is None or self._proc.stderr is None:
            return
        while line := await self._proc.stderr.readline():
            self._stderr.append(line.decode(errors="replace").rstrip())

    def _stdout(self) -> asyncio.StreamReader:
        if self._proc is None or self._proc.stdout is None:
            raise RuntimeError("node process was started without a stdout pipe")
        return self._proc.stdout

    def _fail_pending(self) -> None:
        error = YjsHarnessError(f"node exited\n{self.stderr_tail}")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)

    async def _shut_down(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(YjsHarnessError, OSError):
                await self.request("quit")
        await _stop_process(proc, grace=2.0)
        for task in self._readers:
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        self._proc = None


async def _stop_process(proc: asyncio.subprocess.Process, *, grace: float) -> None:
    """Close stdin, give the process ``grace`` seconds to exit, then kill it."""
    if proc.stdin is not None and not proc.stdin.is_closing():
        proc.stdin.close()
    try:
        async with asyncio.timeout(grace):
            await proc.wait()
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _connect_result(reply: Reply) -> ConnectResult:
    return ConnectResult(
        synced=bool(reply.get("synced")),
        client_id=int(reply["client_id"]),
        close_code=reply.get("close_code"),
        close_reason=reply.get("close_reason"),
        http_status=reply.get("http_status"),
        attempts=int(reply.get("attempts", 0)),
        error=reply.get("error"),
    )


def _states(reply: Reply) -> dict[int, Any]:
    # JSON object keys are strings; Yjs clientIDs are integers.
    return {int(key): value for key, value in reply["states"].items()}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def replay_log_with_yjs(updates: Sequence[bytes], *, within: float = 60.0) -> YjsReplay:
    """Apply ``updates`` in order to a fresh JavaScript ``Y.Doc``.

    Raises:
        YjsHarnessError: node failed or rejected an update.
        YjsTimeoutError: it took longer than ``within``.
    """
    await asyncio.to_thread(ensure_node_modules)
    payload = json.dumps({"updates": [_b64(update) for update in updates]}).encode()
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(JS_DIR / "replay.mjs"),
        cwd=JS_DIR,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=_LINE_LIMIT,
    )
    try:
        async with asyncio.timeout(within):
            out, err = await proc.communicate(payload)
    except TimeoutError:
        await _stop_process(proc, grace=0)
        raise YjsTimeoutError(f"replay.mjs took more than {within}s") from None
    result = _replay_result(out, err)
    return YjsReplay(result["text"], base64.b64decode(result["state"]), result["pending"])


def _replay_result(out: bytes, err: bytes) -> Reply:
    try:
        result: Reply = json.loads(out)
    except ValueError:
        raise YjsHarnessError(f"replay.mjs failed: {err.decode(errors='replace')}") from None
    if "error" in result:
        raise YjsHarnessError(f"replay.mjs rejected the log: {result['error']}")
    return result


async def replay_with_yjs(updates: list[bytes]) -> tuple[str, bytes]:
    """Rebuild a log with the JavaScript Yjs; returns its text and full state update."""
    replay = await replay_log_with_yjs(updates)
    return replay.text, replay.state


@dataclass(frozen=True, slots=True)
class ReferenceServer:
    """A running npm y-websocket reference server (no auth, no persistence)."""

    host: str
    port: int

    @property
    def ws_url(self) -> str:
        """Base URL in the form the collab server uses: ``ws://host:port/ws``."""
        return f"ws://{self.host}:{self.port}/ws"


@contextlib.asynccontextmanager
async def reference_server(*, within: float = 10.0) -> AsyncIterator[ReferenceServer]:
    """Run ``@y/websocket-server`` on a free port of 127.0.0.1 for the block's duration.

    It accepts any path and token, and keeps documents in memory only.

    Raises:
        YjsHarnessError: it did not start listening within ``within``.
    """
    await asyncio.to_thread(ensure_node_modules)
    output: deque[str] = deque(maxlen=_STDERR_LINES_KEPT)
    # A free port can be taken between probing and binding; try a few.
    for _ in range(3):
        port = _free_port()
        proc = await _spawn_reference_server(port)
        listening = asyncio.Event()
        drain = asyncio.create_task(_drain_server_output(proc, output, listening))
        try:
            if await _wait_listening(proc, listening, within):
                yield ReferenceServer("127.0.0.1", port)
                return
        finally:
            await _stop_process(proc, grace=0)
            await drain
    raise YjsHarnessError("reference server did not start:\n" + "\n".join(output))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _spawn_reference_server(port: int) -> asyncio.subprocess.Process:
    env = {key: value for key, value in os.environ.items() if key != "YPERSISTENCE"}
    env.update(HOST="127.0.0.1", PORT=str(port))
    return await asyncio.create_subprocess_exec(
        "node",
        str(_REFERENCE_SERVER),
        cwd=JS_DIR,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _drain_server_output(
    proc: asyncio.subprocess.Process, output: deque[str], listening: asyncio.Event
) -> None:
    # Read until EOF so the server never blocks on a full pipe.
    if proc.stdout is None:
        return
    while line := await proc.stdout.readline():
        text = line.decode(errors="replace").rstrip()
        output.append(text)
        if text.startswith("running at"):
            listening.set()


async def _wait_listening(
    proc: asyncio.subprocess.Process, listening: asyncio.Event, within: float
) -> bool:
    """True once the server printed that it listens; False if it exited first."""
    exited = asyncio.create_task(proc.wait())
    ready = asyncio.create_task(listening.wait())
    try:
        async with asyncio.timeout(within):
            await asyncio.wait({exited, ready}, return_when=asyncio.FIRST_COMPLETED)
    except TimeoutError:
        raise YjsHarnessError(f"reference server not listening after {within}s") from None
    finally:
        exited.cancel()
        ready.cancel()
        await asyncio.gather(exited, ready, return_exceptions=True)
    return listening.is_set()
