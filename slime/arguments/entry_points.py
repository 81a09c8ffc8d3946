"""The trainer's two entry points, as upstream slime has them, and what each asks of a run.

- ``train.py``: the synchronous loop: generate rollout n, train on it, push the weights, repeat.
- ``train_async.py``: one step off policy: rollout n + 1 is generated while rollout n trains, and the
  weights are pushed between them, so the engines need GPUs of their own (no ``--colocate``).

A config names its entry point with the top-level ``entry_point`` key; the generated args file
carries it (``SLIME_ENTRY_POINT``), and the launchers, the plan and the importer follow it.
"""

from __future__ import annotations

import argparse

from slime.arguments.problems import Problem

DEFAULT_ENTRY_POINT = "train.py"
ENTRY_POINTS = {
    "train.py": "synchronous: each rollout is generated with the weights trained on the one before",
    "train_async.py": "one step off policy: rollout n+1 is generated while rollout n trains, the weights pushed "
                      "between them",
}


def entry_point_problems(args: argparse.Namespace, entry_point: str) -> list[Problem]:
    """What keeps a validated Namespace from running under ``entry_point``."""
    if entry_point not in ENTRY_POINTS:
        return [Problem(f"entry point {entry_point!r} is none of the trainer's: {', '.join(ENTRY_POINTS)}")]
    problems = []
    if entry_point == "train_async.py" and args.colocate:
        problems.append(Problem("train_async.py generates the next rollout while training on this one, so the "
                                "engines need GPUs of their own: drop --colocate and give them --rollout-num-gpus",
                                ("--colocate",)))
    if entry_point == "train_async.py" and (args.debug_train_only or args.debug_rollout_only):
        problems.append(Problem("train_async.py overlaps generation with training: a debug mode that leaves one "
                                "out runs with train.py", ("--debug-train-only", "--debug-rollout-only")))
    return problems
