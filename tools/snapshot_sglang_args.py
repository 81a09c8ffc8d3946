#!/usr/bin/env python3
"""Regenerate (or check) the snapshot of SGLang's server flags from the installed SGLang.

The command line of ``slime.cli.snapshot_sglang_args``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.snapshot_sglang_args")())
