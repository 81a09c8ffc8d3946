"""Checkpoint layout, Megatron-LM's, shared by every train backend:

    <save>/latest_checkpointed_iteration.txt   the last rollout id saved ("release" for a converted one)
    <save>/iter_0000020/                       the actor after rollout 20: torch_dist files (megatron
                                               backend) or model.pt / optimizer.pt (torch backend),
                                               run.json: argv, resolved settings, data position,
                                               and args.sh: the args file the run was launched from
    <critic save>/iter_0000020/                the critic, in --critic-save (default <save>/critic)

``--load`` resumes at the rollout after the latest one saved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slime.utils.files import atomic_write

INDEX = "latest_checkpointed_iteration.txt"
RUN_RECORD = "run.json"
ARGS_FILE = "args.sh"


def iteration_dir(directory: str | Path, rollout_id: int) -> Path:
    return Path(directory) / f"iter_{rollout_id:07d}"


def latest_rollout_id(directory: str | Path | None) -> int | None:
    """The rollout id of the latest checkpoint under ``directory``; None without one (or for a release,
    which holds weights but no run)."""
    index = Path(directory) / INDEX if directory else None
    if index is None or not index.is_file():
        return None
    mark = index.read_text().strip()
    return int(mark) if mark.isdigit() else None


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def write_run_record(directory: str, rollout_id: int, argv: list[str], args: argparse.Namespace, extra: dict,
                     args_file: str | None = None) -> None:
    """run.json (and the run's args file, when known) beside the weights, then the index: a checkpoint
    counts only once it is complete."""
    record = {"rollout_id": rollout_id, "argv": argv,
              "args": {key: _jsonable(value) for key, value in sorted(vars(args).items())}, **extra}
    target = iteration_dir(directory, rollout_id)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / RUN_RECORD, json.dumps(record, indent=1) + "\n")
    if args_file is not None:
        atomic_write(target / ARGS_FILE, args_file)
    atomic_write(Path(directory) / INDEX, f"{rollout_id}\n")


def read_run_record(directory: str, rollout_id: int) -> dict:
    return json.loads((iteration_dir(directory, rollout_id) / RUN_RECORD).read_text())
