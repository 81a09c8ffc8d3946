"""Writing generated files: atomically (complete or absent), or checking them against a fresh render."""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
from pathlib import Path


def atomic_write(path: Path | str, text: str, mode: int | None = None) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


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
