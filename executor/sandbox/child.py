"""The child side of the fork: the supervisor of a sandboxed run, and its fork server.

``parent.py`` starts this file once per server process as
``python -I -S child.py FD``: a fork server on the ``SOCK_SEQPACKET``
socket ``FD``. For each run the server sends it the run's JSON config and
four descriptors (the program's stdin, stdout and stderr pipes and a
control socket); it forks, and the forked process becomes that run's
supervisor. A fork of this small, already started interpreter costs about
a millisecond, where starting a fresh one and importing what it needs cost
tens of milliseconds of CPU per run. The fork server runs without the
package on its path, so it uses the standard library only and imports
nothing of ``executor``; the server imports nothing from it but constants
(``SCRIPT``, ``SECCOMP_FD_ARG``). The fork server exits when its socket
ends, so when the server closes it or dies.

Each supervisor:

* is single-threaded (forked from a single-threaded process), so setting
  limits and dropping privileges between ``fork`` and ``exec`` is safe
  here, unlike in the threaded server;
* starts the sandbox command in a new session, with rlimits, optionally a
  private network namespace, the sandbox uid, ``no_new_privs``, a
  parent-death signal (so that it dies with us) and the seccomp filter
  (loaded here, or handed to bwrap, which loads it after its own set-up);
* is a child subreaper, so orphans of the sandbox are re-parented to it
  rather than to PID 1 (which here reaps only every few seconds, and the
  zombies count against RLIMIT_NPROC); it reaps them all before exiting, and
  the fork server reaps it, so the server never calls ``waitpid(-1)`` and
  never steals an exit status from asyncio's child watcher;
* kills the whole tree when the server writes to the control socket or
  closes it (also when the server dies), when the tree's total memory passes
  the configured cap, and always once the program exits;
* reports one JSON line on the control socket: how the command ended, plus
  its CPU time and peak RSS.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import select
import signal
import socket
import sys
import time
from typing import Any

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
# Stands in the bwrap argv for the number of the fd holding the filter.
SECCOMP_FD_ARG = "@seccomp-fd@"
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
REAP_SECONDS = 5.0
# How often the tree's total memory is checked.
WATCH_SECONDS = 0.2
# A request to the fork server: stdin, stdout, stderr, control socket.
REQUEST_FDS = 4
MAX_REQUEST_BYTES = 1024 * 1024

# This file's path, which the server starts as a script.
SCRIPT = os.path.abspath(__file__)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), "prctl")


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _private_network(uid: int, gid: int) -> None:
    """Move into an empty network namespace (only loopback, down)."""
    if os.geteuid() == 0:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        return
    # Unprivileged: a user namespace grants the right to make the network
    # namespace; map our own ids so that files keep their owners.
    _check(_libc.unshare(CLONE_NEWUSER | CLONE_NEWNET), "unshare(CLONE_NEWUSER|CLONE_NEWNET)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _install_seccomp(program: bytes) -> None:
    """Load a classic-BPF filter into this process; it survives exec."""
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.addressof(buffer))
    result = _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0)
    _check(result, "prctl(PR_SET_SECCOMP)")


def _exec_child(config: dict[str, Any], parent: int) -> None:
    """In the forked child: confine this process, then exec the command."""
    os.setsid()
    # Python ignores these; the program should get the default behaviour.
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(signum, signal.SIG_DFL)
    if config["netns"]:
        _private_network(os.getuid(), os.getgid())
    for which, soft, hard in config["rlimits"]:
        resource.setrlimit(which, (soft, hard))
    uid = config["uid"]
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    # After the uid change, which clears it; then check that the parent did
    # not die before it was set.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(137)
    os.chdir(config["cwd"])
    if config["seccomp_fd"] is not None:
        os.set_inheritable(config["seccomp_fd"], True)  # bwrap reads it
    elif config["seccomp"] is not None:
        # Last: the filter must not hinder the set-up above.
        _install_seccomp(bytes.fromhex(config["seccomp"]))
    os.execve(config["argv"][0], config["argv"], config["env"])  # noqa: S606


def _seccomp_file(config: dict[str, Any]) -> int | None:
    """For bwrap: the filter in a memfd, its number put into the argv."""
    if config["seccomp"] is None or SECCOMP_FD_ARG not in config["argv"]:
        return None
    fd = os.memfd_create("seccomp")
    os.write(fd, bytes.fromhex(config["seccomp"]))
    os.lseek(fd, 0, os.SEEK_SET)
    config["argv"] = [str(fd) if arg == SECCOMP_FD_ARG else arg for arg in config["argv"]]
    return fd


def _spawn(config: dict[str, Any]) -> int:
    """Fork and exec the command; raise OSError with the child's reason."""
    config["seccomp_fd"] = _seccomp_file(config)
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            _exec_child(config, parent)
        except BaseException as exc:  # reported to the parent, which raises it
            os.write(write_end, f"{type(exc).__name__}: {exc}".encode()[:4000])
        os._exit(127)
    os.close(write_end)
    if config["seccomp_fd"] is not None:
        os.close(config["seccomp_fd"])
    with os.fdopen(read_end, "rb") as reader:
        reason = reader.read()
    if reason:
        os.waitpid(pid, 0)
        raise OSError(reason.decode(errors="replace"))
    return pid


def _kill_uid(uid: int | None) -> None:
    """SIGKILL every process of ``uid``, atomically, from a helper of that uid.

    ``kill(-1)`` walks the process list under the kernel's tasklist lock, so
    even a fork bomb cannot slip through, and a process of ``uid`` can signal
    only its own uid's processes.
    """
    if uid is None:
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def _parent_map() -> dict[int, int]:
    """Every live process's parent pid."""
    parents = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        # The command name may contain spaces and parentheses: split after it.
        fields = stat[stat.rfind(b")") + 2 :].split()
        parents[int(entry)] = int(fields[1])
    return parents


def _children() -> list[int]:
    """Pids whose parent is this process (orphans adopted as subreaper)."""
    me = os.getpid()
    return [pid for pid, parent in _parent_map().items() if parent == me]


def _descendants() -> list[int]:
    """Every process below this one: the run, including adopted orphans."""
    below: dict[int, list[int]] = {}
    for pid, parent in _parent_map().items():
        below.setdefault(parent, []).append(pid)
    found, todo = [], [os.getpid()]
    while todo:
        children = below.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _anonymous_memory(pids: list[int]) -> int:
    """Proportional anonymous memory of ``pids``, so shared COW pages count once."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as file:
                for line in file:
                    if line.startswith(b"Pss_Anon:"):
                        total += int(line.split()[1]) * 1024
                        break
        except (OSError, ValueError):
            continue  # exited meanwhile, or a zombie
    return total


def _kill_tree(pid: int, uid: int | None) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    _kill_uid(uid)


def _reap_all(uid: int | None) -> None:
    """Kill and reap whatever is left below us until we have no child."""
    _kill_uid(uid)
    deadline = time.monotonic() + REAP_SECONDS
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            for child in _children():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            time.sleep(0.005)


def _wait(
    pid: int, uid: int | None, control: int, memory_limit: int | None
) -> tuple[int, resource.struct_rusage, str | None]:
    """Wait for the command; return its status, usage and why we stopped it.

    Stops it when the server asks (any byte, or EOF because the server went
    away) or when the whole tree's memory passes ``memory_limit``: rlimits
    cap each process, this caps their sum.
    """
    pidfd = os.pidfd_open(pid)
    stopped = None
    timeout = WATCH_SECONDS if memory_limit is not None else None
    while stopped is None:
        ready, _, _ = select.select([pidfd, control], [], [], timeout)
        if pidfd in ready:
            break
        if control in ready:
            stopped = "request"
        elif memory_limit is not None and _anonymous_memory(_descendants()) > memory_limit:
            stopped = "memory"
    if stopped is not None:
        _kill_tree(pid, uid)
    os.close(pidfd)
    _, status, usage = os.wait4(pid, 0)
    return status, usage, stopped


def _outcome(status: int, usage: resource.struct_rusage, stopped: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "stopped": stopped,
        "cpu_ms": round((usage.ru_utime + usage.ru_stime) * 1000),
        "max_rss_kib": usage.ru_maxrss,
    }
    if os.WIFSIGNALED(status):
        report.update(kind="signaled", code=os.WTERMSIG(status))
    else:
        report.update(kind="exited", code=os.waitstatus_to_exitcode(status))
    return report


def _report(control: int, report: dict[str, Any]) -> None:
    data = (json.dumps(report) + "\n").encode()
    with contextlib.suppress(OSError):  # the server is gone; nothing to tell
        os.write(control, data)


def supervise(config: dict[str, Any]) -> None:
    """Run the command described by ``config`` and report how it ended."""
    control = config["control_fd"]
    os.set_inheritable(control, False)
    _prctl(PR_SET_CHILD_SUBREAPER, 1)
    uid = config["uid"] if config["kill_uid"] else None
    _kill_uid(uid)  # leftovers of an earlier run of this slot that crashed
    try:
        pid = _spawn(config)
    except OSError as exc:
        _report(control, {"kind": "error", "message": str(exc)})
        return
    status, usage, stopped = _wait(pid, uid, control, config["memory_total"])
    _reap_all(uid)
    _report(control, _outcome(status, usage, stopped))


def _become_supervisor(request: bytes, fds: list[int], inherited: list[int]) -> None:
    """In a child of the fork server: take the run's pipes and supervise it. Never returns."""
    try:
        for fd in inherited:
            os.close(fd)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.setsid()
        *stdio, control = fds
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
                os.close(fd)
        supervise(json.loads(request) | {"control_fd": control})
    finally:
        os._exit(0)


def _fork_supervisor(request: bytes, fds: list[int], inherited: list[int]) -> tuple[bytes, int]:
    """Fork the supervisor of one run; the reply for the server and a pidfd of it."""
    if len(fds) != REQUEST_FDS:
        raise OSError(f"expected {REQUEST_FDS} file descriptors, got {len(fds)}")
    pid = os.fork()
    if pid == 0:
        _become_supervisor(request, fds, inherited)
    # Opened before we could reap it, so the pid cannot have been reused.
    return f"ok {pid}".encode(), os.pidfd_open(pid)


def _reap_supervisors() -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def serve(channel: socket.socket) -> None:
    """Fork one supervisor per request on ``channel`` until the server closes it.

    A request is the run's JSON config with four descriptors: the program's
    stdin, stdout and stderr, and the control socket. The reply is ``ok PID``
    with a pidfd of the supervisor (the server cannot wait for a process
    that is not its child), or ``error MESSAGE``. Starting a supervisor
    this way costs a fork instead of an interpreter start-up.
    """
    # No parent-death signal: it would fire when the server's thread that
    # started us ends, not the server. The end of ``channel`` is the signal.
    wake_read, wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    # SIGCHLD interrupts the select below, so ended supervisors are reaped at once.
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    inherited = [channel.fileno(), wake_read, wake_write]
    while True:
        ready, _, _ = select.select([channel.fileno(), wake_read], [], [])
        if wake_read in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_read, 4096)
            _reap_supervisors()
        if channel.fileno() not in ready:
            continue
        request, fds, _, _ = socket.recv_fds(channel, MAX_REQUEST_BYTES, REQUEST_FDS)
        if not request:
            return  # the server closed its end, or died
        pidfd = None
        try:
            reply, pidfd = _fork_supervisor(request, fds, inherited)
        except OSError as exc:
            reply = f"error {exc}".encode()
        finally:
            for fd in fds:
                os.close(fd)
        try:
            socket.send_fds(channel, [reply], [] if pidfd is None else [pidfd])
        finally:
            if pidfd is not None:
                os.close(pidfd)


def main() -> None:
    """Serve the channel whose descriptor number is ``sys.argv[1]``."""
    channel = socket.socket(fileno=int(sys.argv[1]))
    # Descriptors 0 to 2 held open, so that received ones never take those
    # numbers (a server started with stderr closed passes none).
    for fd in range(3):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)
    serve(channel)


if __name__ == "__main__":
    main()
