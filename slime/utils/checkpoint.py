"""Checkpoint layout (Megatron's convention for the index file):

    <save>/latest_checkpointed_iteration.txt      the last rollout id saved
    <save>/rollout_<id>/actor/{model,optimizer}.pt
    <save>/rollout_<id>/critic/{model,optimizer}.pt
    <save>/rollout_<id>/run.json                  argv, resolved settings, data position

``--load`` resumes at the rollout after the latest one.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from slime.utils.files import atomic_write

INDEX = "latest_checkpointed_iteration.txt"


def rollout_dir(directory: str, rollout_id: int) -> Path:
    return Path(directory) / f"rollout_{rollout_id}"


def role_dir(directory: str, rollout_id: int, role: str) -> Path:
    return rollout_dir(directory, rollout_id) / role


def latest_rollout_id(directory: str | None) -> int | None:
    index = Path(directory) / INDEX if directory else None
    if index is None or not index.exists():
        return None
    return int(index.read_text().strip())


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return repr(value)


def write_run_record(directory: str, rollout_id: int, argv: list[str], args: argparse.Namespace, extra: dict) -> None:
    """run.json beside the weights, then the index: a checkpoint counts only once it is complete."""
    record = {"rollout_id": rollout_id, "argv": argv,
              "args": {key: _jsonable(value) for key, value in sorted(vars(args).items())}, **extra}
    target = rollout_dir(directory, rollout_id)
    target.mkdir(parents=True, exist_ok=True)
    atomic_write(target / "run.json", json.dumps(record, indent=1) + "\n")
    atomic_write(Path(directory) / INDEX, f"{rollout_id}\n")


def read_run_record(directory: str, rollout_id: int) -> dict:
    return json.loads((rollout_dir(directory, rollout_id) / "run.json").read_text())
