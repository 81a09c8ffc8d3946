"""The command that resumes a run from its last checkpoint, for the message of a run that stopped
mid-way: the launcher's own command line when a launcher started the run (``SLIME_LAUNCH_COMMAND``,
set by ``scripts/lib/launch.sh``), else the trainer's (``python3 train.py …`` from the repository).
A run resumes by itself from ``--load``; every shipped config loads from its ``--save``."""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path

from slime.utils.checkpoint import iteration_dir, latest_rollout_id
from slime.utils.checkout import ROOT

LAUNCH_COMMAND = "SLIME_LAUNCH_COMMAND"


def relaunch_command(argv: list[str], entry_point: str) -> str:
    if os.environ.get(LAUNCH_COMMAND):
        return os.environ[LAUNCH_COMMAND]
    prefix = [f"RAY_ADDRESS={os.environ['RAY_ADDRESS']}"] if os.environ.get("RAY_ADDRESS") else []
    return f"cd {shlex.quote(str(ROOT))} && " + shlex.join([*prefix, "python3", entry_point, *argv])


def _same(a: str | None, b: str | None) -> bool:
    return bool(a and b) and Path(a).resolve() == Path(b).resolve()


def resume_note(args: argparse.Namespace, argv: list[str], entry_point: str) -> str:
    """The last saved rollout and the command that goes on from it (or starts over without one)."""
    command = relaunch_command(argv, entry_point)
    saved = latest_rollout_id(args.save) if args.save else None
    if saved is None:
        where = f"--save {args.save}" if args.save else "no --save"
        return f"no rollout was saved yet ({where}, --save-interval {args.save_interval}); this starts the run over:\n    {command}"
    hint = "" if _same(args.load, args.save) else \
        f"\n  with its --load set to {args.save} (ckpt.load=…): this run loads {args.load}, which is not where it saves"
    return (f"the last rollout saved is {saved} ({iteration_dir(args.save, saved)}); the run resumes at rollout "
            f"{saved + 1} with:\n    {command}{hint}")
