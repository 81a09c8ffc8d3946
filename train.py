#!/usr/bin/env python3
"""slime's trainer entry point, run as a Ray job by the launchers: ``python3 train.py <flags>``.

``--dry-run`` prints the launch plan and exits without importing torch, Ray or any GPU library.
"""

from __future__ import annotations

import sys

from slime.utils.arguments import ArgumentProblems, parse_args
from slime.utils.plan import build_plan, format_plan


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except ArgumentProblems as err:
        print(f"train.py: {err}", file=sys.stderr)
        return 2
    if args.dry_run:
        sys.stdout.write(format_plan(build_plan(args)))
        return 0
    print("train.py: the training loop is not part of this version yet; run with --dry-run to check a launch",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
