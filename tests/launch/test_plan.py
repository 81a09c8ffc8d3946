"""The launch plan (slime.launch.plan) of the debug modes: no engines with --debug-train-only, while the
rollout function still runs; saved rollouts replayed with or without engines; the PPO critic on the actor's
GPUs (upstream's layout, the default) or on its own."""

from __future__ import annotations

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args
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


def test_the_ppo_critic_trains_on_the_actors_gpus_by_default_and_on_its_own_when_separate():
    from slime.config.compose import namespace_from_config
    from slime.launch.plan import format_plan
    from slime.ray.placement import bundles_needed

    shared = namespace_from_config("run_qwen3_4B_ppo", environ={"BASE_FOLDER": "/data"})
    plan = build_plan(shared)
    assert plan["gpus"] == {"actor": 8, "critic": 8, "rollout": 8, "total": 8} and plan["placement"]["nodes"] == 1
    assert "GPUs              actor 8, critic 8 (the actor's, taking turns), rollout 8 (shared); total 8 on 1 node(s)" \
        in format_plan(plan)
    assert bundles_needed(shared) == 8
    separate = namespace_from_config("run_qwen3_4B_ppo", ["+cluster.critic_placement=separate"],
                                     environ={"BASE_FOLDER": "/data"})
    plan = build_plan(separate)
    assert plan["gpus"]["total"] == 16 and plan["placement"]["nodes"] == 2 and bundles_needed(separate) == 16
    assert "GPUs              actor 8, critic 8, rollout 8 (shared); total 16 on 2 node(s)" in format_plan(plan)


def test_a_critic_of_another_size_needs_gpus_of_its_own():
    ppo = [*MINIMAL, "--advantage-estimator", "ppo", "--use-critic", "--critic-num-gpus-per-node", "4"]
    with pytest.raises(ArgumentProblems, match=r"--critic-num-gpus-per-node 4 differs from --actor-num-gpus-per-node 8, "
                                               r"but the critic trains on the actor's GPUs \(--critic-placement with-actor"):
        parse_args(ppo)
    args = parse_args([*ppo, "--critic-placement", "separate"])
    assert build_plan(args)["gpus"] == {"actor": 8, "critic": 4, "rollout": 8, "total": 12}
