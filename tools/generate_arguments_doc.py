#!/usr/bin/env python3
"""Write docs/arguments.md, the argument reference, from the flag tables (--check: fail when stale).

The command line of ``slime.cli.generate_arguments_doc``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.generate_arguments_doc")())
