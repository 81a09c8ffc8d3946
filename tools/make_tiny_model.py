#!/usr/bin/env python3
"""Build tiny models of every mapped family, their tokenizer and the toy tasks under a folder, locally.

The command line of ``slime.cli.make_tiny_model``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.make_tiny_model")())
