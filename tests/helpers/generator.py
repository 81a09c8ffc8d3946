"""tools/generate_args.py's ``main()`` (``slime.cli.generate_args``) run in this process: the very code of
the command, without a Python start-up per call, for tests that run it many times."""

from __future__ import annotations

import contextlib
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from slime.cli.generate_args import main
from tests.conftest import ROOT


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
