"""The command line of the trainer's entry points, ``train.py`` and ``train_async.py``.

    python3 train.py <flags>                                   # the arrays of a generated args file
    python3 train.py --config-name run_qwen3_4B [overrides…]   # the same, straight from conf/

``--dry-run`` prints the launch plan and exits without importing torch, Ray or any GPU library;
otherwise the plan is printed, the preflight (``slime.launch.preflight``: input paths, ``--save``, the
checkpoint's config.json, the packages the run needs; then SGLang's check of the engines' commands)
reports every problem at once with exit status 2 before anything is started, and the training loop
(``slime.trainer``) runs, synchronously for ``train.py`` and one step off policy for ``train_async.py``. Every checkpoint keeps the run's args
file beside its run record: the one the launcher generated (``SLIME_ARGS_FILE``, set by
``scripts/lib/launch.sh``), or, with ``--config-name``, the one this config generates.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from slime.arguments.parser import ArgumentProblems, parse_args
from slime.arguments.problems import Problem
from slime.arguments.entry_points import entry_point_problems
from slime.launch.plan import build_plan, format_plan
from slime.utils.checkout import CONF_DIR


def _from_config(argv: list[str], entry_point: str):
    """``--config-name NAME [--dry-run] [hydra overrides…]``: compose, generate and parse in-process;
    the Namespace and the generated arrays."""
    from slime.config.compose import generate_config, namespace_from_generated

    from slime.config.hydra_errors import config_groups
    from slime.config.misplaced import split

    head = argparse.ArgumentParser(prog=entry_point, allow_abbrev=False)
    head.add_argument("--config-name", required=True)
    head.add_argument("--dry-run", action="store_true")
    head.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. optimizer.lr=2e-6 +experiment=quick_test")
    rest, misplaced = split(argv, set(config_groups([CONF_DIR])), own=frozenset({"--dry-run"}))
    options = head.parse_args(rest)
    if misplaced:  # trainer flags or bare flag keys among the overrides: the override each meant
        from omegaconf import OmegaConf

        from slime.config.compose import compose_config
        from slime.config.misplaced import hints

        config = OmegaConf.to_container(compose_config(options.config_name, options.overrides), resolve=False)
        raise ArgumentProblems([Problem(message) for message in hints(misplaced, config)],
                               f"{options.config_name}: overrides, not flags")
    gen = generate_config(options.config_name, options.overrides)
    args = namespace_from_generated(gen)
    args.dry_run = args.dry_run or options.dry_run
    return args, gen


def _args_file(gen) -> str | None:
    """The run's args file: the one tools/generate_args.py writes for this command line (``gen``), or the
    one the launcher generated (``SLIME_ARGS_FILE``), when it is readable here."""
    if gen is not None:
        from slime.config.argsfile import Reproduction, project_revision, render_bash

        return render_bash(gen, reproduction=Reproduction((), project_revision()))
    path = os.environ.get("SLIME_ARGS_FILE")
    try:
        return Path(path).read_text() if path else None
    except OSError as err:
        print(f"slime: SLIME_ARGS_FILE {path} is not readable here ({err.strerror}): checkpoints keep run.json "
              "without the args file", flush=True)
        return None


def _entry_point_mismatch(gen, entry_point: str) -> str | None:
    if gen is None or gen.entry_point == entry_point:
        return None
    return (f"{gen.config_name} is written for {gen.entry_point} (its entry_point), not {entry_point}: run "
            f"python {gen.entry_point} --config-name {gen.config_name}, or set entry_point={entry_point}")


def main(argv: list[str] | None = None, entry_point: str = "train.py", started: float | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        if any(token == "--config-name" or token.startswith("--config-name=") for token in argv):
            args, gen = _from_config(argv, entry_point)
        else:
            args, gen = parse_args(argv), None
    except ArgumentProblems as err:
        print(f"{entry_point}: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # Hydra's own errors: a missing config, a bad override
        if type(err).__module__.split(".")[0] not in ("hydra", "omegaconf"):
            raise
        from slime.config.hydra_errors import explain

        print("\n".join(f"{entry_point}: {line}" for line in explain(str(err), argv, [CONF_DIR]) or [str(err)]),
              file=sys.stderr)
        return 2
    problems = [p.message for p in entry_point_problems(args, entry_point)]
    mismatch = _entry_point_mismatch(gen, entry_point)
    if problems or mismatch:
        print(f"{entry_point}: " + "\n  ".join(([mismatch] if mismatch else []) + problems), file=sys.stderr)
        return 2
    sys.stdout.write(format_plan(build_plan(args, entry_point)))
    if args.dry_run:
        return 0
    problems = _preflight_problems(args, gen, entry_point)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        print(f"{entry_point}: the run cannot start ({count}); nothing was started:\n  - " + "\n  - ".join(problems),
              file=sys.stderr)
        return 2
    from slime.trainer import run

    return run(args, argv, _args_file(gen), started=started, entry_point=entry_point)


def _preflight_problems(args: argparse.Namespace, gen, entry_point: str) -> list[str]:
    """Everything that would stop the run once Ray and its engines are up (slime.launch.preflight, then
    SGLang's own check of the engines' commands), in the generator's words when a config is at hand."""
    from slime.launch.preflight import preflight

    found = preflight(args)
    if gen is not None and found:
        from slime.config.compose import hydra_context

        with hydra_context():  # the files behind each key come from Hydra's defaults list
            problems = [gen.explain(p.message, p.flags) for p in found]
    else:
        problems = [p.message for p in found]
    return problems + [f"SGLang rejects the engines' server arguments: {p}" for p in _sglang_problems(args, entry_point)]


def _sglang_problems(args: argparse.Namespace, entry_point: str) -> list[str]:
    """SGLang's own check of every engine's server command, before any cluster resource is taken."""
    import importlib.util

    if args.rollout_backend != "sglang" or args.debug_train_only or importlib.util.find_spec("sglang") is None:
        return []
    from slime.engines.sglang_check import check_server_args

    problems, notes = check_server_args(args)
    for note in notes:
        print(f"{entry_point}: note: {note}", file=sys.stderr)
    return problems
