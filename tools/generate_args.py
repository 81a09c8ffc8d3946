#!/usr/bin/env python3
"""Compose conf/ with Hydra and print the bash arrays train.py takes (--help lists the options).

The command line of ``slime.cli.generate_args``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.generate_args")())
