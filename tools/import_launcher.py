#!/usr/bin/env python3
"""Bring an existing bash launcher into conf/, with a parity check against its real argv.

The command line of ``slime.cli.import_launcher``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.import_launcher")())
