#!/usr/bin/env python3
"""The deep check: what megatron-core, SGLang and the checkpoint say about a config, and its memory.

The command line of ``slime.cli.check_config``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.check_config")())
