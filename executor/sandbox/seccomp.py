"""A small seccomp filter: system calls that sandboxed programs never need.

It is a deny list, not an allow list: interpreters use a wide and changing
set of calls, and the namespaces and the uid drop already confine what the
allowed ones can reach. What it removes is kernel attack surface (the
subsystems behind many local privilege escalations: io_uring, bpf,
userfaultfd, keyrings, perf) and the calls that inspect or reshape other
processes and mounts. Denied calls fail with EPERM, so runtimes that probe
for a feature (libuv tries io_uring) fall back instead of dying.

The filter is classic BPF over ``struct seccomp_data``; it is built for
x86-64 only (``build_filter`` returns ``None`` elsewhere). Calls made through
another ABI (i386 ``int 0x80``, x32) are denied wholesale, since the numbers
below would not match them.
"""

from __future__ import annotations

import errno
import platform
import struct

# Offsets in struct seccomp_data.
_NR = 0
_ARCH = 4
_AUDIT_ARCH_X86_64 = 0xC000003E
_X32_SYSCALL_BIT = 0x40000000

# Classic BPF opcodes.
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_EPERM = 0x00050000 | errno.EPERM

DENIED_X86_64: dict[str, int] = {
    "iopl": 172,
    "ioperm": 173,
    "ptrace": 101,
    "syslog": 103,
    "uselib": 134,
    "vhangup": 153,
    "pivot_root": 155,
    "_sysctl": 156,
    "acct": 163,
    "mount": 165,
    "umount2": 166,
    "swapon": 167,
    "swapoff": 168,
    "reboot": 169,
    "init_module": 175,
    "delete_module": 176,
    "quotactl": 179,
    "lookup_dcookie": 212,
    "kexec_load": 246,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "unshare": 272,
    "perf_event_open": 298,
    "name_to_handle_at": 303,
    "open_by_handle_at": 304,
    "setns": 308,
    "process_vm_readv": 310,
    "process_vm_writev": 311,
    "finit_module": 313,
    "kexec_file_load": 320,
    "bpf": 321,
    "userfaultfd": 323,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("<HBBI", code, jt, jf, k)


def build_filter() -> bytes | None:
    """The filter as a ``sock_filter`` array, or ``None`` off x86-64.

    Layout: check the ABI, load the call number, one comparison per denied
    call jumping to the final EPERM, else allow.
    """
    if platform.machine() not in {"x86_64", "AMD64"}:
        return None
    denied = sorted(DENIED_X86_64.values())
    # Instruction indexes: 0 load arch, 1 check, 2 wrong-arch EPERM, 3 load
    # nr, 4 x32 check, then the comparisons, then ALLOW, then EPERM.
    deny_at = 5 + len(denied) + 1
    program = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, _AUDIT_ARCH_X86_64, jt=1),
        _op(_RET_K, _RET_EPERM),
        _op(_LD_W_ABS, _NR),
        _op(_JGE_K, _X32_SYSCALL_BIT, jt=deny_at - 4 - 1),
    ]
    for index, number in enumerate(denied, start=5):
        program.append(_op(_JEQ_K, number, jt=deny_at - index - 1))
    program += [_op(_RET_K, _RET_ALLOW), _op(_RET_K, _RET_EPERM)]
    return b"".join(program)
