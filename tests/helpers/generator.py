"""tools/generate_args.py run by the tests: its ``main()`` (``slime.cli.generate_args``) in this process, the
very code of the command without a Python start-up per call, for tests that run it many times
(``run_generator``); or the command itself in a subprocess (``generator``)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from slime.cli.generate_args import main
from tests.helpers.paths import ROOT


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def run_generator(*args: str, cwd: Path | None = None) -> Result:
    """What ``python tools/generate_args.py ARGS`` prints and returns, run from ``cwd``."""
    out, err = io.StringIO(), io.StringIO()
    argv, here = list(sys.argv), os.getcwd()
    try:
        os.chdir(cwd or ROOT)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(list(args))
            except SystemExit as stop:
                code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        os.chdir(here)
        sys.argv = argv
    return Result(code, out.getvalue(), err.getvalue())


def generator(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    """``python tools/generate_args.py ARGS`` in a subprocess, run from ``cwd``."""
    return subprocess.run([sys.executable, str(ROOT / "tools" / "generate_args.py"), *args],
                          capture_output=True, text=True, cwd=cwd, check=False)
