"""The launch plan (slime.launch.plan) of the debug modes: no engines with --debug-train-only, while the
rollout function still runs; saved rollouts replayed with or without engines."""

from __future__ import annotations

from slime.arguments.parser import parse_args
from slime.launch.plan import build_plan
from tests.helpers.command_lines import MINIMAL


def test_debug_train_only_starts_no_engines_but_runs_the_rollout_function():
    args = parse_args([*MINIMAL, "--debug-train-only", "--rollout-function-path", "my.sft.generate_rollout"])
    plan = build_plan(args)
    assert plan["gpus"]["rollout"] == 0 and plan["rollout"]["server_commands"] == []
    assert args.prompt_data == "/data/train.jsonl"  # the rollout function still gets the prompt data


def test_saved_rollouts_replay_with_or_without_engines():
    replay = ["--load-debug-rollout-data", "/r/{rollout_id}.pt"]
    without = [t for t in MINIMAL if t not in ("--prompt-data", "/data/train.jsonl")]
    assert build_plan(parse_args([*without, *replay, "--debug-train-only"]))["gpus"]["rollout"] == 0
    assert build_plan(parse_args([*without, *replay]))["gpus"]["rollout"] == 8  # engines up, e.g. to evaluate
