#!/usr/bin/env python3
"""slime's trainer entry point, run as a Ray job by the launchers: the synchronous loop (each rollout
generated with the weights trained on the one before). train_async.py is the one-step-off-policy one.

    python3 train.py <flags>                                   # the arrays of a generated args file
    python3 train.py --config-name run_qwen3_4B [overrides…]   # the same, straight from conf/
    python3 train.py … --dry-run                               # the launch plan, without torch, Ray or a GPU

See slime/cli/train.py.
"""

from __future__ import annotations

import time

STARTED = time.time()  # for the run's start-up summary

import sys  # noqa: E402

from slime.cli.train import main as _main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return _main(argv, "train.py", STARTED)


if __name__ == "__main__":
    sys.exit(main())
