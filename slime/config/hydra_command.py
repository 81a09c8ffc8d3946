"""Hydra's own command line, read and written again before Hydra runs: parsed with Hydra's parser,
written out in one spelling, the ``--cfg … --resolve`` the generator shows itself taken off, the
``--config-dir`` folders it names, and the generator's ``--help`` page selected."""

from __future__ import annotations

import argparse
import contextlib
import io
from pathlib import Path


def parse_hydra_command_line(hydra_args: list[str]) -> argparse.Namespace | None:
    """Hydra's own command line parser on the arguments (every spelling: ``--cfg=job``, ``-cjob``,
    ``-cp=DIR``, abbreviations); None where it refuses them, and Hydra then says why."""
    from hydra._internal.utils import get_args_parser

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            return get_args_parser().parse_args(hydra_args)
        except SystemExit:  # --version printed, or a usage error: Hydra repeats either when it runs
            return None


def hydra_command_line(command: argparse.Namespace) -> list[str]:
    """The parsed command line written out again, one spelling per option, the overrides last."""
    args = [f"--{name.replace('_', '-')}" for name in ("help", "hydra_help", "resolve", "run", "multirun",
                                                       "shell_completion") if getattr(command, name)]
    args += [f"--{name.replace('_', '-')}={getattr(command, name)}"
             for name in ("cfg", "package", "config_path", "config_name", "config_dir", "experimental_rerun", "info")
             if getattr(command, name) is not None]
    return [*args, *command.overrides]


def take_shown_config(command: argparse.Namespace) -> tuple[str, str | None] | None:
    """Hydra's ``--cfg job|hydra|all --resolve [--package KEY]``, which the generator prints itself;
    taken off the command line, which then runs the task once."""
    others = (command.help, command.hydra_help, command.run, command.multirun, command.shell_completion,
              command.info is not None, command.experimental_rerun is not None)
    if command.cfg is None or not command.resolve or any(others):
        return None  # Hydra's own: without --resolve nothing is resolved; with another command Hydra says no
    shown = (command.cfg, command.package)
    command.cfg, command.resolve, command.package = None, False, None
    return shown


def config_dirs(hydra_args: list[str]) -> list[Path]:
    dirs = []
    for i, arg in enumerate(hydra_args):
        if arg in ("--config-dir", "-cd") and i + 1 < len(hydra_args):
            dirs.append(Path(hydra_args[i + 1]))
        elif arg.startswith("--config-dir="):
            dirs.append(Path(arg.split("=", 1)[1]))
    return dirs


def is_override(arg: str) -> bool:
    """``key=value``, ``+key=value``, ``++key=value`` or a deletion ``~key`` (``~key=value``)."""
    return arg.startswith("~") or (not arg.startswith("-") and "=" in arg)


def with_generator_help(hydra_args: list[str]) -> list[str]:
    """Select the generator's --help page, with or without a config; Hydra takes overrides as one
    run of positionals, so the extra override goes right before the user's first one."""
    if any(arg.startswith("hydra/help=") for arg in hydra_args):
        return hydra_args
    first = next((i for i, arg in enumerate(hydra_args) if is_override(arg)), 0)
    if first and hydra_args[first - 1] in ("--config-name", "-cn", "--config-path", "-cp", "--config-dir", "-cd"):
        first = 0
    return [*hydra_args[:first], "hydra/help=slime", *hydra_args[first:]]
