"""The code-execution sandbox, against hostile programs.

Most tests run in bubblewrap mode, the one production uses. Without bwrap
they are skipped locally and fail under CI=true or COLLAB_REQUIRE_SERVICES=1.
The fallback tests force ``mode="fallback"``. Processes a test starts carry a
random token on their command line (the programs re-exec themselves with it),
so checks for leftovers see only this test's processes.
"""

from __future__ import annotations

import asyncio
import os
import platform
import re
import signal
import time
import uuid
from pathlib import Path

import pytest

from executor.sandbox import Limits, Protections, RunResult, detect_protections, run_code
from executor.sandbox.isolation import SLOT_COUNT, SLOT_UID_BASE, Mode, is_root
from executor.sandbox.languages import LANGUAGES, Language
from executor.sandbox.parent import FORK_SERVER
from tests.services import services_required

SHORT = Limits(wall_ms=1500)


@pytest.fixture
def bubblewrap() -> Protections:
    """The bubblewrap protections; skip (or fail in CI) without them."""
    protections = detect_protections()
    if protections.mode != "bubblewrap":
        message = "bubblewrap is not installed or not usable here (apt-get install bubblewrap)"
        if services_required():
            pytest.fail(f"{message}; required under CI=true or COLLAB_REQUIRE_SERVICES=1")
        pytest.skip(message)
    return protections


async def run(
    language: str, source: str, *, mode: Mode = "bubblewrap", **kwargs: object
) -> RunResult:
    return await run_code(language, source, mode=mode, **kwargs)  # type: ignore[arg-type]


def tagged(body: str) -> tuple[str, str]:
    """A Python program that re-execs itself with a token, and the token."""
    token = f"collabtest{uuid.uuid4().hex}"
    header = (
        "import os, sys\n"
        "if len(sys.argv) < 2:\n"
        f"    os.execv(sys.executable, [sys.executable, '-I', '-S', sys.argv[0], {token!r}])\n"
    )
    return header + body, token


def processes_with(token: str) -> list[int]:
    """Pids of live (non-zombie) processes whose command line holds ``token``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline:
            found.append(int(entry))
    return found


def written(directories: list[str], name: str) -> list[str]:
    """Which of ``directories`` hold a file called ``name``."""
    return [d for d in directories if os.path.exists(os.path.join(d, name))]


def zombies(*, parents: set[int]) -> list[int]:
    """Zombies of a sandbox uid, or any zombie whose parent is in ``parents``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(re.findall(r"^(\w+):\s+(\S+)", status, re.MULTILINE))
        if fields.get("State") != "Z":
            continue
        uid = int(fields["Uid"])
        ppid = int(fields["PPid"])
        if ppid in parents or (SLOT_UID_BASE <= uid < SLOT_UID_BASE + SLOT_COUNT and ppid == 1):
            found.append(int(entry))
    return found


# --- ordinary programs -----------------------------------------------------


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "print('hello, world')"),
        ("javascript", "console.log('hello, world')"),
    ],
)
async def test_hello_world(language: str, source: str) -> None:
    result = await run(language, source)
    assert result == RunResult(
        "succeeded", 0, "hello, world\n", "", False, result.duration_ms, None
    )
    assert 0 < result.duration_ms < 5000


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "import sys\nfor line in sys.stdin: print(line.strip().upper())"),
        (
            "javascript",
            "let s = ''; process.stdin.on('data', d => s += d);"
            "process.stdin.on('end', () => console.log(s.trim().toUpperCase()))",
        ),
    ],
)
async def test_stdin_is_passed_through(language: str, source: str) -> None:
    result = await run(language, source, stdin="héllo\n")
    assert result.status == "succeeded"
    assert result.stdout == "HÉLLO\n"


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("source", "limits", "status"),
    [
        ("print('ignored it')", Limits(), "succeeded"),
        ("import time\ntime.sleep(60)", Limits(wall_ms=500), "timed_out"),
    ],
)
async def test_large_stdin_the_program_never_reads(
    source: str, limits: Limits, status: str
) -> None:
    result = await run("python", source, stdin="x" * (4 * 1024 * 1024), limits=limits)
    assert result.status == status


@pytest.mark.usefixtures("bubblewrap")
async def test_text_that_is_not_utf8() -> None:
    source = "import sys\nprint('\\ud800' == input())\nsys.stdout.buffer.write(b'\\xff\\n')"
    result = await run("python", source + "  # \ud800", stdin="\ud800\n")
    assert result.status == "succeeded", result
    assert result.stdout == "False\n\ufffd\n"


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source", "code"),
    [
        ("python", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)", 3),
        ("javascript", "console.log('out'); console.error('err'); process.exit(5)", 5),
    ],
)
async def test_exit_code_and_separate_streams(language: str, source: str, code: int) -> None:
    result = await run(language, source)
    assert (result.status, result.exit_code, result.error) == ("failed", code, None)
    assert (result.stdout, result.stderr) == ("out\n", "err\n")


@pytest.mark.usefixtures("bubblewrap")
async def test_uncaught_exception_fails() -> None:
    result = await run("python", "raise ValueError('boom')")
    assert (result.status, result.exit_code) == ("failed", 1)
    assert "ValueError: boom" in result.stderr


@pytest.mark.usefixtures("bubblewrap")
async def test_output_streams_live() -> None:
    chunks: list[tuple[float, str, str]] = []

    async def on_output(stream: str, text: str) -> None:
        chunks.append((time.monotonic(), stream, text))

    source = "import time\nprint('first')\ntime.sleep(0.5)\nprint('second')"
    result = await run("python", source, on_output=on_output)
    finished = time.monotonic()
    assert result.stdout == "first\nsecond\n"
    assert "".join(text for _, _, text in chunks) == result.stdout
    assert chunks[0][1] == "stdout"
    assert chunks[0][2].startswith("first")  # with or without the "\n": two writes
    assert finished - chunks[0][0] > 0.3  # it arrived while the program slept


@pytest.mark.usefixtures("bubblewrap")
async def test_failing_output_callback_stops_the_run() -> None:
    source, token = tagged("import time\nprint('x', flush=True)\ntime.sleep(30)")

    async def on_output(stream: str, text: str) -> None:
        raise RuntimeError("subscriber went away")

    with pytest.raises(RuntimeError, match="subscriber went away"):
        await run("python", source, on_output=on_output)
    assert processes_with(token) == []


def test_protections_in_bubblewrap_mode(bubblewrap: Protections) -> None:
    assert bubblewrap.namespaces
    assert bubblewrap.network_isolated
    assert bubblewrap.rlimits
    assert bubblewrap.uid_drop == is_root()
    assert bubblewrap.seccomp == (platform.machine() == "x86_64")
    assert bubblewrap.describe().startswith("sandbox mode=bubblewrap; active: namespaces")


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError, match="wall_ms"):
        Limits(wall_ms=60_001)
    with pytest.raises(ValueError, match="processes"):
        Limits(processes=0)


# --- hostile programs --------------------------------------------------------


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source"),
    [
        ("python", "print('spinning', flush=True)\nwhile True: pass"),
        ("javascript", "console.log('spinning'); for (;;) {}"),
        ("python", "import time\nprint('sleeping', flush=True)\ntime.sleep(3600)"),
    ],
    ids=["python-loop", "javascript-loop", "python-sleep"],
)
async def test_running_past_the_wall_clock_limit_times_out(language: str, source: str) -> None:
    started = time.monotonic()
    result = await run(language, source, limits=SHORT)
    assert (result.status, result.exit_code) == ("timed_out", None)
    assert result.error == "wall-clock time limit of 1500 ms exceeded"
    assert result.stdout.endswith("\n")  # what it printed before is kept
    assert time.monotonic() - started < 1.5 + 1.0


@pytest.mark.usefixtures("bubblewrap")
async def test_cpu_time_limit() -> None:
    source = "while True: pass"
    result = await run("python", source, limits=Limits(wall_ms=10_000, cpu_ms=1000))
    assert result.status == "timed_out"
    assert result.error == "CPU time limit of 1000 ms exceeded"
    assert result.duration_ms < 4000


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("bubblewrap")
async def test_fork_bomb_is_contained() -> None:
    bomb = "while True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n"
    source, token = tagged(bomb)
    result = await run("python", source, limits=Limits(wall_ms=2000, processes=32))
    assert result.status in {"timed_out", "failed"}
    assert result.duration_ms < 2000 + 1000
    assert processes_with(token) == []


@pytest.mark.usefixtures("bubblewrap")
async def test_process_limit_stops_forking() -> None:
    source, _ = tagged(
        "import time\n"
        "n = 0\n"
        "try:\n"
        "    while n < 1000:\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(60)\n"
        "            os._exit(0)\n"
        "        n += 1\n"
        "except OSError as exc:\n"
        "    print('refused after', n, type(exc).__name__)\n"
    )
    result = await run("python", source, limits=Limits(wall_ms=5000, processes=20))
    assert result.status == "succeeded", result
    refused = re.fullmatch(r"refused after (\d+) BlockingIOError\n", result.stdout)
    assert refused is not None, result.stdout
    assert int(refused.group(1)) < 20


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source", "symptom"),
    [
        ("python", "b = bytearray(1 << 30)", "MemoryError"),
        ("python", "a = []\nwhile True: a.append(bytearray(10**7))", "MemoryError"),
        (
            "javascript",
            "const a = []; for (;;) a.push(new Array(1e6).fill(1.5))",
            "heap out of memory",
        ),
        ("javascript", "const b = Buffer.alloc(1 << 30, 1)", "RangeError"),
    ],
    ids=["python-alloc", "python-grow", "javascript-heap", "javascript-buffer"],
)
async def test_memory_bomb_fails(language: str, source: str, symptom: str) -> None:
    result = await run(language, source, limits=Limits(wall_ms=10_000))
    assert result.status == "failed", result
    assert symptom in result.stderr


@pytest.mark.usefixtures("bubblewrap")
async def test_crowd_of_processes_is_held_to_the_memory_limit_together() -> None:
    # Each child stays under its own rlimit; together they are far over.
    source, token = tagged(
        "import time\n"
        "for _ in range(8):\n"
        "    if os.fork() == 0:\n"
        "        b = bytearray(100 * 1024 * 1024)\n"
        "        for i in range(0, len(b), 4096): b[i] = 1\n"
        "        time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    result = await run("python", source, limits=Limits(wall_ms=20_000))
    assert (result.status, result.exit_code) == ("failed", None)
    assert result.error == "memory limit exceeded: its processes used over 320 MiB"
    assert processes_with(token) == []


@pytest.mark.usefixtures("bubblewrap")
async def test_concurrent_runs_have_their_own_process_budget() -> None:
    # RLIMIT_NPROC counts per uid: sharing one would starve the others.
    source = "console.log(process.getuid())"
    limits = Limits(processes=20)
    results = await asyncio.gather(*(run("javascript", source, limits=limits) for _ in range(4)))
    assert [r.status for r in results] == ["succeeded"] * 4, results
    if is_root():
        assert len({r.stdout for r in results}) == 4


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    "source",
    [
        "import sys\nsys.stdout.write('x' * 100_000_000)",
        "while True: print('y' * 1000)",
        "import sys\nwhile True:\n    sys.stdout.write('o' * 4096)\n"
        "    sys.stderr.write('e' * 4096)",
    ],
    ids=["one-write", "many-lines", "both-streams"],
)
async def test_flood_of_output_is_cut_and_stopped(source: str) -> None:
    started = time.monotonic()
    result = await run("python", source, limits=Limits(wall_ms=30_000))
    assert result.truncated
    assert len(result.stdout.encode()) + len(result.stderr.encode()) == 1024 * 1024
    assert result.status == "failed"
    assert result.error is not None
    assert "output" in result.error
    assert time.monotonic() - started < 5


@pytest.mark.usefixtures("bubblewrap")
async def test_output_just_over_the_limit_is_cut_but_the_program_finishes() -> None:
    limits = Limits(output_bytes=1000)
    result = await run("python", "print('z' * 1500)\nprint('done')", limits=limits)
    assert (result.status, result.truncated) == ("succeeded", True)
    assert result.stdout == "z" * 1000


@pytest.mark.usefixtures("bubblewrap")
async def test_file_size_limit() -> None:
    source = "open('big', 'wb').write(b'x' * 2_000_000)"
    result = await run("python", source, limits=Limits(file_bytes=1_000_000))
    assert result.status == "failed"
    assert "File too large" in result.stderr


@pytest.mark.usefixtures("bubblewrap")
async def test_writes_outside_the_work_directory_fail(tmp_path: Path) -> None:
    marker = f"collab-escape-{uuid.uuid4().hex}"
    targets = ["/", "/etc", "/usr", "/usr/lib", "/dev", "/work", str(tmp_path), os.getcwd()]
    source = (
        "import os\n"
        f"for d in {targets!r}:\n"
        "    try:\n"
        f"        open(os.path.join(d, {marker!r}), 'w').write('x')\n"
        "        print('WROTE', d)\n"
        "    except OSError as exc:\n"
        "        print('refused', d, type(exc).__name__)\n"
        f"open({marker!r}, 'w').write('inside')\n"
        f"open('/tmp/' + {marker!r}, 'w').write('private tmp')\n"
        "print('ok')\n"
    )
    result = await run("python", source)
    assert result.status == "succeeded", result
    assert "WROTE" not in result.stdout
    assert result.stdout.endswith("ok\n")
    assert written([*targets, "/tmp"], marker) == []


@pytest.mark.usefixtures("bubblewrap")
async def test_server_environment_and_files_are_invisible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("COLLAB_JWT_SECRET", secret)
    monkeypatch.setenv("DATABASE_URL", f"postgresql://u:{secret}@127.0.0.1/db")
    host_file = tmp_path / "secret.txt"
    host_file.write_text(secret)
    paths = ["/etc/shadow", "/etc/passwd", "/root", "/home", "/work", str(host_file)]
    source = (
        "import os\n"
        "print(dict(os.environ))\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        try: print(open(f'/proc/{pid}/environ').read())\n"
        "        except OSError: pass\n"
        f"for p in {paths!r}:\n"
        "    try:\n"
        "        print('LISTED', p, os.listdir(p)) if os.path.isdir(p) else None\n"
        "        print('READ', p, open(p).read())\n"
        "    except OSError as exc:\n"
        "        print('denied', p, type(exc).__name__)\n"
    )
    result = await run("python", source)
    assert result.status == "succeeded", result
    assert secret not in result.stdout
    assert "COLLAB_JWT_SECRET" not in result.stdout
    assert "LISTED" not in result.stdout
    assert "READ" not in result.stdout
    assert result.stdout.count("denied") == len(paths)


@pytest.mark.usefixtures("bubblewrap")
@pytest.mark.parametrize(
    ("language", "source"),
    [
        (
            "python",
            "import socket\n"
            "for port in (5432, 6379):\n"
            "    try:\n"
            "        socket.create_connection(('127.0.0.1', port), timeout=2)\n"
            "        print('CONNECTED', port)\n"
            "    except OSError as exc:\n"
            "        print('refused', port, type(exc).__name__)\n",
        ),
        (
            "javascript",
            "const net = require('net');"
            "for (const port of [5432, 6379]) {"
            "  const s = net.connect(port, '127.0.0.1');"
            "  s.on('connect', () => { console.log('CONNECTED', port); s.destroy() });"
            "  s.on('error', e => console.log('refused', port, e.code)) }",
        ),
    ],
)
async def test_no_network(language: str, source: str) -> None:
    result = await run(language, source)
    assert result.status == "succeeded", result
    assert "CONNECTED" not in result.stdout
    assert result.stdout.count("refused") == 2


SYSCALLS = """import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
for name, number, args in [
    ("ptrace", 101, (0, 0, 0, 0)),  # PTRACE_TRACEME: succeeds unfiltered
    ("io_uring_setup", 425, (1, 0)),  # EFAULT unfiltered
    ("bpf", 321, (0, 0, 0)),
    ("keyctl", 250, (0, 0)),
    ("unshare", 272, (0x40000000,)),
    ("userfaultfd", 323, (0,)),
]:
    result = libc.syscall(number, *args)
    print(name, os.strerror(ctypes.get_errno()) if result < 0 else "ALLOWED")
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the filter is built for x86-64")
@pytest.mark.parametrize("mode", ["bubblewrap", "fallback"])
async def test_seccomp_denies_kernel_attack_surface(
    mode: Mode, request: pytest.FixtureRequest
) -> None:
    if mode == "bubblewrap":
        request.getfixturevalue("bubblewrap")
    result = await run("python", SYSCALLS, mode=mode)
    assert result.status == "succeeded", result
    lines = result.stdout.splitlines()
    assert len(lines) == 6
    assert all(line.endswith(" Operation not permitted") for line in lines), lines


@pytest.mark.usefixtures("bubblewrap")
async def test_killing_its_parents_harms_nobody() -> None:
    source = (
        "import os, signal\n"
        "for target in (os.getppid(), -1, 1):\n"
        "    try:\n"
        "        os.kill(target, signal.SIGKILL)\n"
        "    except OSError as exc:\n"
        "        print(target, type(exc).__name__)\n"
        "print('still here')\n"
    )
    result = await run("python", source)
    assert result.stdout.endswith("still here\n"), result
    assert result.status == "succeeded"
    # This test process survived, and the sandbox still works.
    assert (await run("python", "print(1)")).stdout == "1\n"


@pytest.mark.usefixtures("bubblewrap")
async def test_cancel_kills_the_whole_tree_within_a_second() -> None:
    source, token = tagged(
        "import time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()  # try to escape the process group\n"
        "        time.sleep(3600)\n"
        "print('ready', flush=True)\n"
        "time.sleep(3600)\n"
    )
    cancel = asyncio.Event()
    ready = asyncio.Event()

    async def on_output(stream: str, text: str) -> None:
        if "ready" in text:
            ready.set()

    job = asyncio.create_task(run("python", source, on_output=on_output, cancel=cancel))
    async with asyncio.timeout(5):
        await ready.wait()
    assert len(processes_with(token)) == 4
    cancel.set()
    cancelled_at = time.monotonic()
    result = await job
    assert time.monotonic() - cancelled_at < 1.0
    assert (result.status, result.exit_code, result.stdout) == ("cancelled", None, "ready\n")
    assert processes_with(token) == []


@pytest.mark.usefixtures("bubblewrap")
async def test_cancelling_the_task_kills_the_run() -> None:
    source, token = tagged("import time\nprint('ready', flush=True)\ntime.sleep(3600)")
    ready = asyncio.Event()

    async def on_output(stream: str, text: str) -> None:
        ready.set()

    job = asyncio.create_task(run("python", source, on_output=on_output))
    async with asyncio.timeout(5):
        await ready.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    assert processes_with(token) == []


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("bubblewrap")
async def test_sequential_runs_leave_no_zombies() -> None:
    for index in range(20):
        # Some leave background processes and some are killed, the cases
        # that orphan processes.
        source = (
            "import os, time\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    time.sleep(60)\n"
            f"print({index})\n"
        )
        limits = SHORT
        if index % 3 == 0:
            source, limits = "import time; time.sleep(9)", Limits(wall_ms=200 + 10 * index)
        result = await run("python", source, limits=limits)
        assert result.status == ("timed_out" if index % 3 == 0 else "succeeded"), result
    assert zombies(parents={os.getpid()}) == []


async def test_a_dead_fork_server_is_replaced() -> None:
    assert (await run_code("python", "print(1)")).stdout == "1\n"
    first = FORK_SERVER.pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    assert (await run_code("python", "print(2)")).stdout == "2\n"
    assert FORK_SERVER.pid not in {None, first}


async def test_fork_server_keeps_no_zombies_and_leaks_no_descriptors() -> None:
    for index in range(5):
        assert (await run_code("python", f"print({index})")).stdout == f"{index}\n"
    server = FORK_SERVER.pid
    assert server is not None
    await asyncio.sleep(0.1)  # the last supervisor's SIGCHLD
    assert zombies(parents={server}) == []
    # Its socket, the wake-up pipe and the standard streams; nothing of a run.
    assert len(os.listdir(f"/proc/{server}/fd")) <= 6


# --- errors -------------------------------------------------------------------


async def test_missing_runtime_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    missing = Language(name="cobol", runtime="/usr/bin/no-such-cobol", filename="main.cob")
    monkeypatch.setitem(LANGUAGES, "cobol", missing)
    result = await run_code("cobol", "DISPLAY 'HI'.")
    assert (result.status, result.exit_code) == ("error", None)
    assert result.error is not None
    assert "'cobol' is not available" in result.error
    assert "/usr/bin/no-such-cobol" in result.error


async def test_unknown_language_is_an_error() -> None:
    result = await run_code("brainfuck", "+")
    assert result.status == "error"
    assert result.error is not None
    assert "unknown language 'brainfuck'" in result.error


async def test_cancel_before_start() -> None:
    cancel = asyncio.Event()
    cancel.set()
    result = await run_code("python", "print(1)", cancel=cancel)
    assert result.status == "cancelled"


# --- fallback mode --------------------------------------------------------------


def test_fallback_protections() -> None:
    protections = detect_protections("fallback")
    assert protections.mode == "fallback"
    assert not protections.namespaces
    assert protections.uid_drop == is_root()
    assert "mode=fallback" in protections.describe()


async def test_fallback_runs_and_times_out() -> None:
    source, token = tagged(
        "import time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    time.sleep(3600)\n"
        "print('looping', flush=True)\n"
        "while True: pass\n"
    )
    hello = await run("python", "print(input())", stdin="hi", mode="fallback")
    assert (hello.status, hello.stdout) == ("succeeded", "hi\n")
    result = await run("python", source, limits=SHORT, mode="fallback")
    assert (result.status, result.stdout) == ("timed_out", "looping\n")
    assert processes_with(token) == []


async def test_fallback_cuts_a_flood() -> None:
    result = await run("python", "while True: print('y' * 1000)", mode="fallback")
    assert result.truncated
    assert len(result.stdout) == 1024 * 1024
    assert result.duration_ms < 5000


async def test_fallback_scrubs_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"s3cret-{uuid.uuid4().hex}"
    monkeypatch.setenv("COLLAB_JWT_SECRET", secret)
    result = await run("javascript", "console.log(JSON.stringify(process.env))", mode="fallback")
    assert result.status == "succeeded"
    assert secret not in result.stdout
    assert set(eval(result.stdout)) <= {"PATH", "HOME", "TMPDIR", "LANG", "LC_ALL"}  # noqa: S307


async def test_fallback_network_namespace() -> None:
    protections = detect_protections("fallback")
    if not protections.network_isolated:
        pytest.skip("no network namespace available here for the fallback mode")
    source = (
        "import socket\n"
        "try:\n"
        "    socket.create_connection(('127.0.0.1', 6379), timeout=2)\n"
        "    print('CONNECTED')\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    result = await run("python", source, mode="fallback")
    assert result.stdout.startswith("refused"), result
