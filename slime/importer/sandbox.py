"""The sandbox a launcher runs in while it is imported: it sees the real file system, read-only,
writes only into a small scratch folder of its own, reaches no network and no local server,
signals no process outside, and leaves no process behind.

``capture`` starts this file as the first process of new user, mount, PID, network, IPC and UTS
namespaces (``unshare -Urnmpiu --fork``, util-linux), with a JSON spec as its argument. As that
namespace's root it then

1. binds the whole file system into a new root, with the recording stubs bound over the real
   binaries of the faked commands, and makes every mount of it read-only, nosuid and nodev
   (``mount_setattr``, recursively): ``/tmp``, ``/var/tmp`` and ``/run`` included, so a script and
   the files it sources are seen wherever they are, as they are;
2. puts the scratch folder, an empty tmpfs of ``SCRATCH_SIZE`` bytes, over the importer's capture
   folder (the one writable place: the capture records, ``TMPDIR`` and ``HOME`` live there), a
   ``/dev`` holding only ``null``, ``zero``, ``full``, ``random`` and ``urandom``, and a read-only
   ``/proc`` of the new PID namespace;
3. pivots into the new root and detaches the old one, checks in ``/proc/self/mountinfo`` that
   every mount but the scratch folder is read-only, and writes a ``ready`` file into the capture
   folder outside (through a descriptor opened before any mount);
4. runs the script with no capabilities (no-new-privileges, an empty bounding set, root without
   its powers), a seccomp filter that refuses Unix-domain sockets (so no server listening on a
   socket file under the now visible ``/tmp`` or ``/run`` can be reached; the network namespace
   has no interface), a file-size limit, and no controlling terminal;
5. when the script ends, copies the capture file (a regular file, at most the scratch folder's
   size) out of the scratch folder into the capture folder outside, and exits with the script's
   status: the kernel then ends every process left in the PID namespace, and the scratch folder
   is gone with the mount namespace.

A step that fails ends this process with the reason on stderr and no ``ready`` file: the importer
then refuses to run the script at all. Standard library only: it runs as ``python -I``.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import resource
import stat
import subprocess
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 0x2
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same on every architecture since Linux 5.x's unified numbers
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT, PR_SET_SECCOMP = 38, 24, 28, 47, 22
PR_CAP_AMBIENT_CLEAR_ALL = 4
# noroot, no_setuid_fixup and no_cap_ambient_raise set and locked; keep_caps locked off
SECURE_BITS = 0x3 | 0xC | 0x20 | 0xC0
DEVICES = ("null", "zero", "full", "random", "urandom")
SCRATCH_SIZE = 64 << 20  # the scratch folder's tmpfs: every file the script writes, together
FILE_SIZE_LIMIT = 64 << 20
READY = "ready"

# The seccomp filter's facts per architecture: its audit number, socket(2)'s number; io_uring_setup(2)
# is 425 on all of them (io_uring could open a socket without a socket(2) call the filter sees).
SECCOMP_ARCH = {"x86_64": (0xC000003E, 41), "aarch64": (0xC00000B7, 198), "arm64": (0xC00000B7, 198),
                "riscv64": (0xC00000F3, 198)}
SYS_IO_URING_SETUP = 425
X32_SYSCALL_BIT = 0x40000000  # x86_64's x32 ABI: the same calls under other numbers
AF_UNIX, EPERM, EACCES = 1, 1, 13
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_ERRNO, SECCOMP_RET_ALLOW = 0x80000000, 0x00050000, 0x7FFF0000
BPF_LD_W_ABS, BPF_JEQ_K, BPF_JGE_K, BPF_RET_K = 0x20, 0x15, 0x35, 0x06

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """A step of building the sandbox failed; the message says which and why."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter))]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SandboxError(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    encode = (lambda s: s.encode() if s is not None else None)
    _check(_libc.mount(encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)),
           f"mount {source or fstype} on {target}")


def _read_only(target: str, recursive: bool, devices: bool = False) -> None:
    """Read-only and nosuid; nodev too unless the mount is one of the device nodes."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | (0 if devices else MOUNT_ATTR_NODEV), 0, 0, 0)
    flags = AT_RECURSIVE if recursive else 0
    result = _libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, target.encode(), flags, ctypes.byref(attr),
                           ctypes.sizeof(attr))
    if result != 0 and ctypes.get_errno() == 38:  # ENOSYS
        raise SandboxError("this kernel lacks mount_setattr (Linux 5.12 or newer is needed)")
    _check(result, f"making {target} read-only")


def _bind(source: str, target: str, devices: bool = False) -> None:
    _mount(source, target, None, MS_BIND)
    _read_only(target, recursive=False, devices=devices)


def _touch(path: str) -> None:
    if not os.path.exists(path):
        open(path, "w").close()


def socket_filter(machine: str) -> list[tuple[int, int, int, int]]:
    """The seccomp program (BPF instructions) for ``machine``: socket(AF_UNIX, …) and io_uring_setup fail,
    every other call of the native ABI is allowed, a call of another ABI ends the process."""
    if machine not in SECCOMP_ARCH:
        raise SandboxError(f"the sandbox's seccomp filter knows no system call numbers for {machine} "
                           f"(it knows {', '.join(sorted(SECCOMP_ARCH))})")
    audit_arch, sys_socket = SECCOMP_ARCH[machine]
    program = [(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
               (BPF_JEQ_K, 1, 0, audit_arch),
               (BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
               (BPF_LD_W_ABS, 0, 0, 0)]  # seccomp_data.nr
    if machine == "x86_64":
        program += [(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM)]
    program += [(BPF_JEQ_K, 0, 1, SYS_IO_URING_SETUP), (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
                (BPF_JEQ_K, 0, 3, sys_socket),
                (BPF_LD_W_ABS, 0, 0, 16),  # seccomp_data.args[0], its low half (little-endian): the domain
                (BPF_JEQ_K, 0, 1, AF_UNIX),
                (BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EACCES),
                (BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW)]
    return program


def build(spec: dict) -> None:
    """Steps 1 to 3: the new root, entered, checked."""
    new_root, scratch = spec["root"], spec["scratch"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("/", new_root, None, MS_BIND | MS_REC)
    for stub, real in spec["covers"]:
        _mount(stub, new_root + real, None, MS_BIND)
    _read_only(new_root, recursive=True)
    _mount("tmpfs", new_root + scratch, "tmpfs", MS_NOSUID | MS_NODEV, f"size={SCRATCH_SIZE},mode=700")
    for folder in spec["scratch_folders"]:
        os.mkdir(os.path.join(new_root + scratch, folder), 0o700)
    dev = new_root + "/dev"
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=1m,mode=755")
    for name in DEVICES:
        _touch(f"{dev}/{name}")
        _bind(f"/dev/{name}", f"{dev}/{name}", devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    _read_only(dev, recursive=False)
    _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxError(f"pivot_root's system call number on {platform.machine()} is not known to the sandbox")
    os.chdir(new_root)
    _check(_libc.syscall(number, b".", b"."), "pivot_root into the new root")
    _check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/")
    _verify([scratch])


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")  # mountinfo writes space, tab, newline, \\ as octal


def _verify(writable: list[str]) -> None:
    """Every mount read-only except the scratch folder, or an error."""
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            mount_point, options = _unescape(fields[4]), fields[5].split(",")
            if "rw" in options and mount_point not in writable:
                raise SandboxError(f"{mount_point} is still writable inside the sandbox")


def _drop_privileges(program: list[tuple[int, int, int, int]]) -> None:
    """In the script's process, before exec: no capabilities now or after exec, no setuid gains, no
    Unix-domain socket (``program``, the seccomp filter, installed last)."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no-new-privileges")
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for capability in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), "dropping the capability bounding set")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    _check(_libc.prctl(PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0), "setting the secure bits")
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    instructions = (_SockFilter * len(program))(*[_SockFilter(*step) for step in program])
    fprog = _SockFprog(len(program), instructions)
    _check(_libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "installing the seccomp filter")


def _write_outside(folder: int, name: str, data: bytes) -> None:
    """A file in the capture folder outside (``folder``: its descriptor, opened before any mount)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600, dir_fd=folder)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _copy_out(scratch: str, name: str, folder: int) -> None:
    """Step 5: the scratch folder's ``name`` into the capture folder outside, if it is a regular file
    (not a link, a FIFO or a device the script put there); at most the scratch folder's size. Anything
    else is said on stderr as ``slime-sandbox: the capture file … is …``, which the importer refuses."""
    try:
        fd = os.open(os.path.join(scratch, name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return
    except OSError as err:
        why = "is a symbolic link" if err.errno == errno.ELOOP else f"cannot be read back: {err.strerror}"
        print(f"slime-sandbox: the capture file {name} {why}", file=sys.stderr)
        return
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            print(f"slime-sandbox: the capture file {name} is {kind}", file=sys.stderr)
            return
        _write_outside(folder, name, handle.read(SCRATCH_SIZE))


def main(argv: list[str]) -> int:
    with open(argv[0]) as handle:
        spec = json.load(handle)
    try:
        program = socket_filter(platform.machine())
        outside = os.open(spec["scratch"], os.O_RDONLY | os.O_DIRECTORY)  # the capture folder, before any mount
        build(spec)
    except (SandboxError, OSError) as err:
        print(f"slime-sandbox: {err}", file=sys.stderr)
        return 125
    _write_outside(outside, READY, b"")
    child = subprocess.Popen(spec["command"], env=spec["env"], cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                             preexec_fn=lambda: _drop_privileges(program))
    status = child.wait()
    _copy_out(spec["scratch"], spec["capture"], outside)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
