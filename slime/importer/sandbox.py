"""The sandbox a launcher runs in while it is imported: it can write nothing outside scratch
folders, reach no network, signal no process outside, and leaves no process behind.

``capture`` starts this file as the first process of new user, mount, PID, network, IPC and UTS
namespaces (``unshare -Urnmpiu --fork``, util-linux), with a JSON spec as its argument. As that
namespace's root it then

1. binds the whole file system into a new root, with the recording stubs bound over the real
   binaries of the faked commands, and makes every mount of it read-only, nosuid and nodev
   (``mount_setattr``, recursively);
2. puts empty, size-limited tmpfs scratch folders over ``/tmp``, ``/var/tmp``, ``/run`` and
   ``/dev/shm`` (so no socket of another program there can be reached), a ``/dev`` holding only
   ``null``, ``zero``, ``full``, ``random`` and ``urandom``, and a read-only ``/proc`` of the new PID
   namespace; the script's folder and the capture folder stay visible (the capture's output
   folder is the one writable place besides the scratch folders);
3. pivots into the new root and detaches the old one, checks in ``/proc/self/mountinfo`` that
   every mount but the scratch folders and the output folder is read-only, and writes a ``ready``
   file;
4. runs the script with no capabilities (no-new-privileges, an empty bounding set, root without
   its powers), a file-size limit, and no controlling terminal, and exits with its status: the
   kernel then ends every process left in the PID namespace.

A step that fails ends this process with the reason on stderr and no ``ready`` file: the importer
then refuses to run the script at all. Standard library only: it runs as ``python -I``.
"""

from __future__ import annotations

import ctypes
import json
import os
import platform
import resource
import subprocess
import sys

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 0x2
MOUNT_ATTR_RDONLY, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NODEV = 0x1, 0x2, 0x4
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same on every architecture since Linux 5.x's unified numbers
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "arm64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_SECUREBITS, PR_CAP_AMBIENT = 38, 24, 28, 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# noroot, no_setuid_fixup and no_cap_ambient_raise set and locked; keep_caps locked off
SECURE_BITS = 0x3 | 0xC | 0x20 | 0xC0
SCRATCH = ("/tmp", "/var/tmp", "/run")  # and /dev/shm, inside the new /dev
DEVICES = ("null", "zero", "full", "random", "urandom")
FILE_SIZE_LIMIT = 64 << 20
READY = "ready"

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(Exception):
    """A step of building the sandbox failed; the message says which and why."""


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


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


def _bind(source: str, target: str, read_only: bool = True, devices: bool = False) -> None:
    _mount(source, target, None, MS_BIND)
    if read_only:
        _read_only(target, recursive=False, devices=devices)


def _mount_point(path: str, is_file: bool = False) -> None:
    if is_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.exists(path):
            open(path, "w").close()
    else:
        os.makedirs(path, exist_ok=True)


def _under(path: str, folders) -> bool:
    return any(path == folder or path.startswith(folder.rstrip("/") + "/") for folder in folders)


def build(spec: dict) -> None:
    """Steps 1 to 3: the new root, entered, checked."""
    new_root = spec["root"]
    scratch = [p for p in SCRATCH if os.path.isdir(os.path.realpath(p))]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("/", new_root, None, MS_BIND | MS_REC)
    for stub, real in spec["covers"]:
        _mount(stub, new_root + real, None, MS_BIND)
    _read_only(new_root, recursive=True)
    writable = []
    for folder in scratch:
        _mount("tmpfs", new_root + os.path.realpath(folder), "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
        writable.append(os.path.realpath(folder))
    dev = new_root + "/dev"
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "size=1m,mode=755")
    for name in DEVICES:
        _mount_point(f"{dev}/{name}", is_file=True)
        _bind(f"/dev/{name}", f"{dev}/{name}", devices=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{dev}/{name}")
    _mount_point(f"{dev}/shm")
    _mount("tmpfs", f"{dev}/shm", "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    writable.append("/dev/shm")
    _read_only(dev, recursive=False)
    _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY)
    hidden = [*writable, "/dev"]
    for folder in spec["readable"]:
        if _under(folder, hidden):
            _mount_point(new_root + folder)
            _bind(folder, new_root + folder)
    for folder in spec["writable"]:
        _mount_point(new_root + folder)
        _bind(folder, new_root + folder, read_only=False)
        writable.append(folder)
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise SandboxError(f"pivot_root's system call number on {platform.machine()} is not known to the sandbox")
    os.chdir(new_root)
    _check(_libc.syscall(number, b".", b"."), "pivot_root into the new root")
    _check(_libc.umount2(b".", MNT_DETACH), "detaching the old root")
    os.chdir("/")
    _verify(writable)


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape")  # mountinfo writes space, tab, newline, \\ as octal


def _verify(writable: list[str]) -> None:
    """Every mount read-only except the scratch folders and the output folder, or an error."""
    with open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            mount_point, options = _unescape(fields[4]), fields[5].split(",")
            if "rw" in options and mount_point not in writable:
                raise SandboxError(f"{mount_point} is still writable inside the sandbox")


def _drop_privileges() -> None:
    """In the script's process, before exec: no capabilities now or after exec, no setuid gains."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "setting no-new-privileges")
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for capability in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0), "dropping the capability bounding set")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    _check(_libc.prctl(PR_SET_SECUREBITS, SECURE_BITS, 0, 0, 0), "setting the secure bits")
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main(argv: list[str]) -> int:
    with open(argv[0]) as handle:
        spec = json.load(handle)
    try:
        build(spec)
    except (SandboxError, OSError) as err:
        print(f"slime-sandbox: {err}", file=sys.stderr)
        return 125
    open(os.path.join(spec["writable"][0], READY), "w").close()
    child = subprocess.Popen(spec["command"], env=spec["env"], cwd=spec["cwd"], stdin=subprocess.DEVNULL,
                             preexec_fn=_drop_privileges)
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
