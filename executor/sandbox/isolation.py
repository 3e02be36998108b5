"""How a run is confined, on the server side: the modes, their detection, uid slots.

Modes, strongest first:

``bubblewrap``
    ``bwrap`` gives the program new user, mount, pid, ipc, uts, network and
    cgroup namespaces. It sees a read-only ``/usr`` (with the ``/bin``,
    ``/lib``, ``/lib64`` links), the few ``/etc`` files the dynamic loader
    needs, a fresh ``/proc`` and ``/dev``, and size-capped tmpfs mounts at
    ``/sandbox`` (its working directory and ``HOME``), ``/tmp`` and
    ``/dev/shm``; everything else, such as ``/etc/shadow``, ``/root``,
    ``/home``, ``/work`` and the host's processes, does not exist for it.
    The source is bound read-only from the private host directory. There is
    no network, and nested user namespaces are disabled.

``fallback`` (when bwrap is missing or unusable)
    The program runs directly, in the private host directory, with the
    rlimits, the uid drop and, where the kernel allows, an empty network
    namespace. It can read whatever its uid may read on the host and write
    to world-writable places such as ``/tmp``: install bubblewrap.

Both modes: a fresh private directory per run, removed afterwards and never
read back (output comes over pipes); a minimal environment; rlimits on CPU
time, memory, processes, file size and open files, set by the supervisor
(``child.py``) between fork and exec; a new session; and, when
the server runs as root, a uid of its own per concurrent run
(``SLOT_UID_BASE + slot``), because RLIMIT_NPROC counts every process of a
uid across sandboxes and is ignored for root. As a non-root server the
program keeps the server's uid (then, in fallback mode, it could signal the
server's processes) and RLIMIT_NPROC is raised by the number of tasks that
uid already has. Rlimits hold each process; the supervisor also polls the
proportional anonymous memory of the whole tree and stops a run whose
processes together pass the memory limit (plus a margin).

Both modes load a seccomp filter (``seccomp.py``) where one is
built for the machine (x86-64). No cgroup is used; ``Protections`` says so. A
cgroup would make the memory and process caps exact, but needs a hierarchy
delegated to the service; creating one under whatever cgroup the server
happens to run in could block that cgroup's removal by its owner.
"""

from __future__ import annotations

import fcntl
import functools
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal

from executor.sandbox.child import SCRIPT as CHILD_SCRIPT
from executor.sandbox.child import SECCOMP_FD_ARG
from executor.sandbox.seccomp import build_filter

Mode = Literal["bubblewrap", "fallback"]

SLOT_UID_BASE = 60_000
SLOT_COUNT = 256
# Used only by the start-up probe, so that it never shares a uid with a run.
PROBE_UID = SLOT_UID_BASE + SLOT_COUNT
SLOT_LOCK_DIR = "/run/collab-sandbox"
SANDBOX_HOME = "/sandbox"
# The sandbox's own tmpfs, not the host's /tmp.
SANDBOX_TMP = "/tmp"  # noqa: S108
SANDBOX_SHM = "/dev/shm"  # noqa: S108
SANDBOX_PATH = "/usr/local/bin:/usr/bin:/bin"
BWRAP_CANDIDATES = ("/usr/bin/bwrap", "/usr/local/bin/bwrap")

# Files outside /usr that dynamically linked interpreters need.
_ETC_FILES = (
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
)
_USR_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")


class NoFreeSlotError(Exception):
    """Every sandbox uid slot is in use."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Protections:
    """Which protections a run gets on this machine.

    Attributes:
        mode: ``"bubblewrap"`` (strongest) or ``"fallback"``.
        namespaces: Mount, pid, ipc and uts namespaces hide the host.
        network_isolated: The program has no network (an empty namespace).
        uid_drop: The program runs under a per-slot uid, not the server's.
        rlimits: CPU, memory, process, file-size and open-file rlimits.
        cgroup: A cgroup caps memory and processes (not implemented).
        seccomp: A seccomp filter denies system calls sandboxed code has no
            use for (``executor/sandbox/seccomp.py``).
        bwrap: Path of the bubblewrap binary in use, if any.
    """

    mode: Mode
    namespaces: bool
    network_isolated: bool
    uid_drop: bool
    rlimits: bool = True
    cgroup: bool = False
    seccomp: bool = False
    bwrap: str | None = None

    def describe(self) -> str:
        """A one-line summary for logs."""
        flags = {
            "namespaces": self.namespaces,
            "no-network": self.network_isolated,
            "uid-drop": self.uid_drop,
            "rlimits": self.rlimits,
            "cgroup": self.cgroup,
            "seccomp": self.seccomp,
        }
        on = ", ".join(name for name, active in flags.items() if active) or "none"
        off = ", ".join(name for name, active in flags.items() if not active) or "none"
        return f"sandbox mode={self.mode}; active: {on}; inactive: {off}"


def is_root() -> bool:
    """Whether the server can drop to per-slot uids."""
    return os.geteuid() == 0


def bwrap_args(*, source: str | None, filename: str, tmpfs_bytes: int, seccomp: bool) -> list[str]:
    """The bwrap command line up to (not including) the program's argv.

    Args:
        source: Host path of the source file, bound read-only into the
            sandbox's working directory; ``None`` for the probe.
        filename: The name it gets there.
        tmpfs_bytes: Size of each writable tmpfs.
        seccomp: Load the filter from the fd that the supervisor puts in
            place of ``SECCOMP_FD_ARG``.
    """
    size = str(tmpfs_bytes)
    args = ["--seccomp", SECCOMP_FD_ARG] if seccomp else []
    args += [
        "--unshare-all",
        "--unshare-user",
        "--disable-userns",
        "--die-with-parent",
        "--new-session",
        "--hostname",
        "sandbox",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    for link in _USR_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    for path in _ETC_FILES:
        args += ["--ro-bind-try", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    for mount in (SANDBOX_SHM, SANDBOX_TMP, SANDBOX_HOME):
        args += ["--size", size, "--tmpfs", mount]
    if source is not None:
        args += ["--ro-bind", source, f"{SANDBOX_HOME}/{filename}"]
    # Last: nothing outside the tmpfs mounts stays writable.
    args += ["--remount-ro", "/dev", "--remount-ro", "/", "--chdir", SANDBOX_HOME]
    return args


def find_bwrap() -> str | None:
    """Path of an installed bubblewrap binary, if any."""
    for candidate in BWRAP_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _probe(argv: list[str], *, as_sandbox_uid: bool, pass_fds: tuple[int, ...] = ()) -> bool:
    """Whether ``argv`` runs and exits 0, as a sandbox uid if asked."""
    uid = PROBE_UID if as_sandbox_uid and is_root() else None
    try:
        done = subprocess.run(
            argv,
            pass_fds=pass_fds,
            env={"PATH": SANDBOX_PATH},
            user=uid,
            group=uid,
            extra_groups=[] if uid is not None else None,
            cwd="/",
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


@functools.cache
def _bwrap_works(bwrap: str, *, seccomp: bool) -> bool:
    args = bwrap_args(source=None, filename="", tmpfs_bytes=1024 * 1024, seccomp=seccomp)
    program = build_filter()
    if not seccomp or program is None:
        return _probe([bwrap, *args, "/usr/bin/true"], as_sandbox_uid=True)
    fd = os.memfd_create("seccomp", 0)
    try:
        os.write(fd, program)
        os.lseek(fd, 0, os.SEEK_SET)
        args = [str(fd) if arg == SECCOMP_FD_ARG else arg for arg in args]
        return _probe([bwrap, *args, "/usr/bin/true"], as_sandbox_uid=True, pass_fds=(fd,))
    finally:
        os.close(fd)


@functools.cache
def _network_namespace_works() -> bool:
    # The same calls the supervisor makes before it drops the uid, in a
    # throwaway process that loads the child script as a plain module.
    code = (
        "import ctypes, os, sys\n"
        f"sys.path.insert(0, {os.path.dirname(CHILD_SCRIPT)!r})\n"
        "import child\n"
        "child._private_network(os.getuid(), os.getgid())\n"
    )
    return _probe([sys.executable, "-I", "-S", "-c", code], as_sandbox_uid=False)


def detect_protections(mode: Mode | None = None) -> Protections:
    """What a run gets here, probing the machine once per process.

    Args:
        mode: Force a mode; ``None`` picks the strongest that works.

    Returns:
        The protections; ``mode="bubblewrap"`` when bwrap is unusable comes
        back as ``mode="bubblewrap"`` with ``namespaces=False``, which
        ``run_code`` reports as an error instead of running unconfined.
    """
    bwrap = find_bwrap()
    filtered = build_filter() is not None
    seccomp = bwrap is not None and filtered and _bwrap_works(bwrap, seccomp=True)
    usable = seccomp or (bwrap is not None and _bwrap_works(bwrap, seccomp=False))
    if mode == "bubblewrap" or (mode is None and usable):
        return Protections(
            mode="bubblewrap",
            namespaces=usable,
            network_isolated=usable,
            uid_drop=is_root(),
            seccomp=seccomp,
            bwrap=bwrap if usable else None,
        )
    return Protections(
        mode="fallback",
        namespaces=False,
        network_isolated=_network_namespace_works(),
        uid_drop=is_root(),
        seccomp=filtered,
    )


def _open_lock_dir() -> str:
    """The root-only directory of slot lock files, created if needed."""
    os.makedirs(SLOT_LOCK_DIR, mode=0o700, exist_ok=True)
    info = os.lstat(SLOT_LOCK_DIR)
    # A directory someone else made could let them hold or share our slots.
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o077:
        raise NoFreeSlotError(f"{SLOT_LOCK_DIR} must be a directory owned by root, mode 0700")
    return SLOT_LOCK_DIR


@contextmanager
def sandbox_uid() -> Iterator[int | None]:
    """Hold a free uid slot for one run (``None`` when not root).

    Slots are ``flock``-ed files, so they are exclusive across every process
    on the machine and freed automatically if the holder dies.

    Raises:
        NoFreeSlotError: All ``SLOT_COUNT`` slots are taken.
    """
    if not is_root():
        yield None
        return
    directory = _open_lock_dir()
    for slot in range(SLOT_COUNT):
        fd = os.open(f"{directory}/slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield SLOT_UID_BASE + slot
        finally:
            os.close(fd)  # releases the lock
        return
    raise NoFreeSlotError(f"all {SLOT_COUNT} sandbox slots are in use")


def count_tasks_of(uid: int) -> int:
    """Threads of all processes whose real uid is ``uid``: what NPROC counts."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as file:
                fields = dict(line.split(":", 1) for line in file if ":" in line)
        except (OSError, ValueError):
            continue
        if int(fields.get("Uid", "-1 0").split()[0]) == uid:
            total += int(fields.get("Threads", "1"))
    return total


@contextmanager
def private_directory(owner: int | None) -> Iterator[str]:
    """A fresh 0700 directory owned by ``owner``, removed afterwards.

    Nothing in it is ever read back; ``shutil.rmtree`` does not follow
    symlinks the program may have planted.
    """
    path = tempfile.mkdtemp(prefix="collab-run-")
    try:
        if owner is not None:
            os.chown(path, owner, owner)
        yield path
    finally:
        shutil.rmtree(path, onerror=_force_remove)


def _force_remove(func: object, path: str, _exc: object) -> None:
    """Retry a removal that failed because the program removed permissions."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass
