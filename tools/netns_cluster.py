#!/usr/bin/env python3
"""A cluster of hosts on this machine (network namespaces, each with its own sshd) for multi-node tests.

The command line of ``slime.cli.netns_cluster``, whose docstring says how to use it."""

import sys

from _slime import main_of

if __name__ == "__main__":
    sys.exit(main_of("slime.cli.netns_cluster")())
