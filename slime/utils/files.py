"""Writing generated files: atomically (complete or absent), or checking them against a fresh render.

``write_output`` is what ``-o PATH`` does, as a shell's ``>`` would but never half-written: a
regular file (or a new one) is replaced atomically, through any symlinks, keeping an existing
file's mode and giving a new one the umask's; a character device or a pipe is written through;
``output_problems`` says beforehand why a path cannot be written: a folder, a missing folder,
a file the run read, a socket.
"""

from __future__ import annotations

import difflib
import os
import stat
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

TEMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _remove_stale_temps(path: Path) -> None:
    """Remove hidden temp files of earlier writes of ``path`` whose writer died (SIGKILL, power
    loss): named ``.<name>.<pid>.<random>.tmp``, owned by this user, their process gone."""
    prefix = _temp_prefix(path)
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(TEMP_SUFFIX)]
    except OSError:
        return
    for candidate in candidates:
        pid = candidate.name[len(prefix):].split(".", 1)[0]
        try:
            if not pid.isdigit() or candidate.lstat().st_uid != os.getuid() or _alive(int(pid)):
                continue
            candidate.unlink()
        except OSError:
            continue


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: sends nothing, only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path | str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to the regular file ``path`` so that readers see the old file or the whole new
    one, never a part. The mode is ``mode``, else the existing file's, else the umask's."""
    path = Path(path)
    _remove_stale_temps(path)
    try:
        existing = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        existing = None
    fd, tmp = tempfile.mkstemp(prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode if mode is not None else existing if existing is not None else 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def output_problems(path: Path, read_files: Iterable[Path] = ()) -> list[str]:
    """Why ``-o path`` cannot be written, if it cannot (every reason found)."""
    shown = str(path)
    target = Path(os.path.realpath(path))
    if _is_open_file(target):
        return []  # /dev/stdout and the like: written through, as the shell opened it
    if target.is_dir():
        return [f"-o {shown}: is a folder; name a file in it, e.g. -o {path / 'args.sh'}"]
    if not target.parent.is_dir():
        return [f"-o {shown}: the folder {target.parent} does not exist; create it first"]
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        return [f"-o {shown}: permission denied"]
    read = {Path(os.path.realpath(p)) for p in read_files}
    if target in read:
        return [f"-o {shown}: that is a config file this run read ({target}); write the args elsewhere, "
                "e.g. -o args.sh"]
    if target.exists() and stat.S_ISSOCK(os.stat(target).st_mode):
        return [f"-o {shown}: is a socket; name a file, a pipe or a character device"]
    return []


def _is_open_file(target: Path) -> bool:
    """Whether a resolved path is a process's open file (``/dev/stdout`` → ``/proc/self/fd/1`` → …)."""
    return target.parts[:2] == ("/", "proc")


def write_output(path: Path | str, text: str) -> None:
    """``-o path``: atomic replace of a regular or new file (reached through any symlinks); a
    character device, pipe or ``/proc/self/fd`` entry is written through, as a shell's ``>`` does."""
    path = Path(path)
    target = Path(os.path.realpath(path))
    if _is_open_file(target) or (target.exists() and not stat.S_ISREG(os.stat(target).st_mode)):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
        return
    atomic_write(target, text)


def write_or_check(path: Path, text: str, check: bool, regenerate: str, quiet: bool = False) -> int:
    """Rewrite ``path``, or with ``check`` print a unified diff and return 1 when it differs from ``text``."""
    current = path.read_text() if path.exists() else ""
    if check:
        if current == text:
            if not quiet:
                print(f"{path} is up to date")
            return 0
        sys.stdout.writelines(difflib.unified_diff(
            current.splitlines(True), text.splitlines(True), f"{path} (committed)", f"{path} (generated)"))
        print(f"{path} is stale: run {regenerate}", file=sys.stderr)
        return 1
    if current != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
        if not quiet:
            print(f"wrote {path}")
    return 0
