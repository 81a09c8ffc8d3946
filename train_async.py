#!/usr/bin/env python3
"""slime's one-step-off-policy trainer entry point, as upstream slime's train_async.py: rollout n + 1 is
generated while rollout n trains, and the weights are pushed between them. The engines need GPUs of
their own (no --colocate). A config selects it with ``entry_point: train_async.py``; the launchers
then submit this script.

    python3 train_async.py <flags>
    python3 train_async.py --config-name run_tiny_async [overrides…] [--dry-run]

See slime/cli/train.py.
"""

from __future__ import annotations

import time

STARTED = time.time()  # for the run's start-up summary

import sys  # noqa: E402

from slime.cli.train import main as _main  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return _main(argv, "train_async.py", STARTED)


if __name__ == "__main__":
    sys.exit(main())
