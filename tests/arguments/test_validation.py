"""Each cross-field rule fails on a minimal bad command line, passes on a good one, and names its flags."""

from __future__ import annotations

import pytest

from slime.arguments.parser import ArgumentProblems, parse_args
from tests.helpers.command_lines import MINIMAL
from tests.helpers.hooks import HERE, KL, args_with

NOT_COLOCATED = [t for t in MINIMAL if t != "--colocate"]
RULES = {
    # name: (bad extra argv, a flag the problem must name, good extra argv)
    "samples per rollout = global batch × steps": (
        ["--global-batch-size", "16", "--num-steps-per-rollout", "3"], "--num-steps-per-rollout",
        ["--global-batch-size", "16", "--num-steps-per-rollout", "2"]),
    "global batch divides the rollout": (["--global-batch-size", "24"], "--global-batch-size", ["--global-batch-size", "16"]),
    "steps divide the rollout": (["--num-steps-per-rollout", "3"], "--num-steps-per-rollout", ["--num-steps-per-rollout", "4"]),
    "over-sampling covers a rollout": (
        ["--over-sampling-batch-size", "4"], "--over-sampling-batch-size", ["--over-sampling-batch-size", "16"]),
    "TP × PP × CP divide the actor GPUs": (
        ["--tensor-model-parallel-size", "4", "--pipeline-model-parallel-size", "2", "--context-parallel-size", "2"],
        "--tensor-model-parallel-size",
        ["--tensor-model-parallel-size", "2", "--pipeline-model-parallel-size", "2", "--context-parallel-size", "2"]),
    "expert parallelism fits": (
        ["--num-experts", "16", "--expert-model-parallel-size", "16"], "--expert-model-parallel-size",
        ["--num-experts", "16", "--expert-model-parallel-size", "8"]),
    "expert parallelism needs experts": (
        ["--expert-model-parallel-size", "2"], "--num-experts", ["--expert-model-parallel-size", "2", "--num-experts", "4"]),
    "experts split over EP": (
        ["--num-experts", "6", "--expert-model-parallel-size", "4"], "--num-experts",
        ["--num-experts", "8", "--expert-model-parallel-size", "4"]),
    "attention heads split over TP": (
        ["--tensor-model-parallel-size", "8", "--num-attention-heads", "12"], "--num-attention-heads",
        ["--tensor-model-parallel-size", "8", "--num-attention-heads", "16"]),
    "pipeline stages get whole layers": (
        ["--num-layers", "5", "--pipeline-model-parallel-size", "2"], "--decoder-last-pipeline-num-layers",
        ["--num-layers", "5", "--pipeline-model-parallel-size", "2", "--decoder-last-pipeline-num-layers", "2"]),
    "global batch splits over data parallel": (
        ["--global-batch-size", "4", "--num-steps-per-rollout", "8"], "--global-batch-size",
        ["--global-batch-size", "8", "--num-steps-per-rollout", "4"]),
    "micro-batches split a rank's share": (["--micro-batch-size", "3"], "--micro-batch-size", ["--micro-batch-size", "2"]),
    "colocate uses the actor's GPUs for rollout": (["--rollout-num-gpus", "4"], "--rollout-num-gpus", ["--rollout-num-gpus", "8"]),
    "offload switches agree": (["--offload", "--no-offload-train"], "--no-offload-train", ["--offload", "--offload-train"]),
    "dynamic batch size needs a token budget": (
        ["--use-dynamic-batch-size"], "--max-tokens-per-gpu", ["--use-dynamic-batch-size", "--max-tokens-per-gpu", "4096"]),
    "KL in reward and in loss are exclusive": (
        ["--kl-coef", "0.1", "--use-kl-loss", "--ref-load", "/ref"], "--kl-coef",
        ["--use-kl-loss", "--kl-loss-coef", "0.01", "--ref-load", "/ref"]),
    "KL loss coefficient needs the KL loss": (
        ["--kl-loss-coef", "0.01", "--ref-load", "/ref"], "--use-kl-loss", ["--kl-coef", "0.01", "--ref-load", "/ref"]),
    "KL needs a reference model": (["--use-kl-loss", "--kl-loss-coef", "0.1"], "--ref-load",
                                   ["--use-kl-loss", "--kl-loss-coef", "0.1", "--ref-load", "/ref"]),
    "a KL of weight 0 needs none": (["--kl-coef", "0.1"], "--ref-load", ["--use-kl-loss", "--kl-loss-coef", "0"]),
    "eval interval needs eval data": (
        ["--eval-interval", "5"], "--eval-prompt-data", ["--eval-interval", "5", "--eval-prompt-data", "aime", "/d/aime.jsonl"]),
    "eval data comes in name/path pairs, or one path": (
        ["--eval-prompt-data", "aime", "/d/aime.jsonl", "gsm8k"], "--eval-prompt-data", ["--eval-prompt-data", "/d/aime.jsonl"]),
    "eval config replaces eval data": (
        ["--eval-config", "e.yaml", "--eval-prompt-data", "a", "/a"], "--eval-config", ["--eval-config", "e.yaml"]),
    "save interval needs a save path": (["--save-interval", "5"], "--save", ["--save-interval", "5", "--save", "/ckpt"]),
    "temperature is positive": (["--rollout-temperature", "0"], "--rollout-temperature", ["--rollout-temperature", "0.7"]),
    "eval temperature is positive": (
        ["--eval-temperature", "0", "--eval-prompt-data", "a", "/a"], "--eval-temperature",
        ["--eval-temperature", "0.6", "--eval-prompt-data", "a", "/a"]),
    "top-p in (0, 1]": (["--rollout-top-p", "1.5"], "--rollout-top-p", ["--rollout-top-p", "0.95"]),
    "context fits the position embeddings": (
        ["--max-position-embeddings", "4096", "--rollout-max-context-len", "8192"], "--rollout-max-context-len",
        ["--max-position-embeddings", "8192", "--rollout-max-context-len", "8192"]),
    "PPO needs a critic": (["--advantage-estimator", "ppo"], "--use-critic", ["--advantage-estimator", "ppo", "--use-critic"]),
    "a critic needs PPO": (["--use-critic"], "--advantage-estimator", ["--use-critic", "--advantage-estimator", "ppo"]),
    "critic-only steps need a critic": (
        ["--num-critic-only-steps", "2"], "--use-critic",
        ["--num-critic-only-steps", "2", "--use-critic", "--advantage-estimator", "ppo"]),
    "dual clip bound above 1": (["--eps-clip-c", "0.5"], "--eps-clip-c", ["--eps-clip-c", "3"]),
    "gamma is a discount": (["--gamma", "1.5"], "--gamma", ["--gamma", "0.99"]),
    "lambda is a discount": (["--lambd=-0.1"], "--lambd", ["--lambd", "0.95"]),
    "TIS bounds ordered": (["--use-tis", "--tis-clip-low", "3"], "--tis-clip-low", ["--use-tis", "--tis-clip-low", "0.5"]),
    "a feature not implemented yet is an error, not ignored": (["--partial-rollout"], "--partial-rollout", []),
    "a choice not implemented yet is an error": (["--loss-type", "custom_loss"], "--loss-type", ["--loss-type", "policy_loss"]),
    "a not-implemented flag at its default runs": (
        ["--rollout-data-transport", "nixl"], "--rollout-data-transport", ["--rollout-data-transport", "object-store"]),
    "function paths name a module and a function": (
        ["--custom-rm-path", "reward"], "--custom-rm-path", ["--custom-rm-path", "my.rewards.score"]),
    "module:function paths too": (
        ["--rollout-function-path", "my.rollout:"], "--rollout-function-path", ["--rollout-function-path", "my.rollout:run"]),
    "rm type is a built-in": (["--rm-type", "ifbench"], "--rm-type", ["--rm-type", "deepscaler"]),
    "remote reward needs a URL": (["--rm-type", "remote_rm"], "--rm-url", ["--rm-type", "remote_rm", "--rm-url", "http://rm"]),
    "debug modes are exclusive": (
        ["--debug-rollout-only", "--debug-train-only", "--load-debug-rollout-data", "/r/{rollout_id}.pt"],
        "--debug-train-only", ["--debug-rollout-only"]),
    "train-only starts no engines: the default rollout function needs saved rollouts": (
        ["--debug-train-only"], "--load-debug-rollout-data",
        ["--debug-train-only", "--load-debug-rollout-data", "/r/{rollout_id}.pt"]),
    "train-only runs a rollout function that needs no engines": (
        ["--debug-train-only", "--rollout-function-path", "slime.rollout.sglang_rollout:generate_rollout"],
        "--rollout-function-path", ["--debug-train-only", "--rollout-function-path", "my.sft.generate_rollout"]),
    "SGLang DP attention splits the engine's TP": (
        ["--rollout-num-gpus-per-engine", "4", "--sglang-enable-dp-attention", "--sglang-dp-size", "3"], "--sglang-dp-size",
        ["--rollout-num-gpus-per-engine", "4", "--sglang-enable-dp-attention", "--sglang-dp-size", "2"]),
    "SGLang DP attention needs a DP size": (
        ["--rollout-num-gpus-per-engine", "4", "--sglang-enable-dp-attention"], "--sglang-dp-size",
        ["--rollout-num-gpus-per-engine", "4", "--sglang-enable-dp-attention", "--sglang-dp-size", "4"]),
    "SGLang DP size needs DP attention": (
        ["--rollout-num-gpus-per-engine", "4", "--sglang-dp-size", "2"], "--sglang-enable-dp-attention",
        ["--rollout-num-gpus-per-engine", "4"]),
    "SGLang's pipeline stages split the engine's GPUs": (
        ["--rollout-num-gpus-per-engine", "2", "--sglang-pp-size", "3"], "--sglang-pp-size",
        ["--rollout-num-gpus-per-engine", "2", "--sglang-pp-size", "2"]),
    "SGLang EP splits the engine's TP, its GPUs over its pipeline stages": (
        ["--rollout-num-gpus-per-engine", "4", "--sglang-pp-size", "2", "--sglang-ep-size", "4"], "--sglang-ep-size",
        ["--rollout-num-gpus-per-engine", "4", "--sglang-pp-size", "2", "--sglang-ep-size", "2"]),
    "a critic on the actor's GPUs has the actor's sizes": (
        ["--advantage-estimator", "ppo", "--use-critic", "--critic-num-nodes", "2"], "--critic-num-nodes",
        ["--advantage-estimator", "ppo", "--use-critic", "--critic-num-nodes", "2", "--critic-placement", "separate"]),
    "Gated DeltaNet layers need their pattern": (
        ["--experimental-attention-variant", "gated_delta_net", "--train-backend", "torch"], "--linear-attention-freq",
        ["--experimental-attention-variant", "gated_delta_net", "--linear-attention-freq", "2", "--train-backend", "torch"]),
    "a linear-attention pattern lists every layer": (
        ["--experimental-attention-variant", "gated_delta_net", "--linear-attention-freq", "[1,1,0]", "--train-backend",
         "torch"], "--linear-attention-freq",
        ["--experimental-attention-variant", "gated_delta_net", "--linear-attention-freq", "[1,0]", "--train-backend",
         "torch"]),
    "SGLang EP splits the engine": (
        ["--rollout-num-gpus-per-engine", "4", "--sglang-ep-size", "3"], "--sglang-ep-size",
        ["--rollout-num-gpus-per-engine", "4", "--sglang-ep-size", "4"]),
    "SGLang DP LM head needs DP attention": (
        ["--rollout-num-gpus-per-engine", "2", "--sglang-enable-dp-lm-head"], "--sglang-enable-dp-lm-head",
        ["--rollout-num-gpus-per-engine", "2", "--sglang-enable-dp-lm-head", "--sglang-enable-dp-attention",
         "--sglang-dp-size", "2"]),
    "SGLang DeepEP mode needs the DeepEP backend": (
        ["--sglang-deepep-mode", "low_latency"], "--sglang-moe-a2a-backend",
        ["--sglang-deepep-mode", "low_latency", "--sglang-moe-a2a-backend", "deepep"]),
    "SGLang memory fraction in (0, 1)": (
        ["--sglang-mem-fraction-static", "1.5"], "--sglang-mem-fraction-static", ["--sglang-mem-fraction-static", "0.7"]),
    "SGLang CUDA-graph sizes under the max": (
        ["--sglang-cuda-graph-bs", "1", "2", "512", "--sglang-cuda-graph-max-bs", "256"], "--sglang-cuda-graph-bs-decode",
        ["--sglang-cuda-graph-bs", "1", "2", "256", "--sglang-cuda-graph-max-bs", "256"]),
}
NOT_COLOCATED_RULES = {
    "rollout GPUs without colocate": ([], "--rollout-num-gpus", ["--rollout-num-gpus", "8"]),
    "rollout GPUs split into engines": (
        ["--rollout-num-gpus", "6", "--rollout-num-gpus-per-engine", "4"], "--rollout-num-gpus-per-engine",
        ["--rollout-num-gpus", "8", "--rollout-num-gpus-per-engine", "4"]),
    "engines span whole nodes": (
        ["--rollout-num-gpus", "24", "--rollout-num-gpus-per-engine", "12"], "--num-gpus-per-node",
        ["--rollout-num-gpus", "32", "--rollout-num-gpus-per-engine", "16"]),
}


def _cases():
    for name, (bad, flag, good) in RULES.items():
        yield pytest.param(MINIMAL, bad, flag, good, id=name)
    for name, (bad, flag, good) in NOT_COLOCATED_RULES.items():
        yield pytest.param(NOT_COLOCATED, bad, flag, good, id=name)


@pytest.mark.parametrize(("base", "bad", "flag", "good"), list(_cases()))
def test_rule(base, bad, flag, good):
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*base, *bad])
    assert any(flag in p.flags for p in caught.value.problems), caught.value.render()
    parse_args([*base, *good])


def test_minimal_command_line_is_valid():
    parse_args(MINIMAL)


def test_all_problems_are_reported_together():
    bad = ["--rollout-temperature", "0", "--save-interval", "5", "--use-dynamic-batch-size", "--rollout-num-gpus", "4"]
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*MINIMAL, *bad])
    named = {flag for p in caught.value.problems for flag in p.flags}
    assert {"--rollout-temperature", "--save", "--max-tokens-per-gpu", "--rollout-num-gpus"} <= named
    assert "4 problems" in str(caught.value)


def test_missing_inputs_are_all_named():
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([])
    named = {flag for p in caught.value.problems for flag in p.flags}
    assert {"--hf-checkpoint", "--rollout-batch-size", "--prompt-data", "--num-rollout", "--num-layers",
            "--rollout-num-gpus"} <= named


def test_the_megatron_backend_needs_the_architecture_but_the_torch_backend_does_not():
    run = [t for t in MINIMAL if t not in ("--num-layers", "2", "--hidden-size", "64", "--num-attention-heads")]
    run.remove("8")  # the value of --num-attention-heads
    with pytest.raises(ArgumentProblems, match="--num-layers, --hidden-size, --num-attention-heads unset"):
        parse_args(run)
    parse_args([*run, "--train-backend", "torch"])


def test_derived_values_are_set_and_explained():
    args = parse_args(MINIMAL)
    expected = {
        "global_batch_size": 32, "num_steps_per_rollout": 1, "rollout_num_gpus": 8, "offload_train": True,
        "offload_rollout": True, "over_sampling_batch_size": 8, "eps_clip_high": 0.2,
        "expert_tensor_parallel_size": 1,
    }
    for attr, value in expected.items():
        assert getattr(args, attr) == value, attr
        assert args.derived_values[attr], attr


def test_derived_batch_sizes_follow_the_given_one():
    assert parse_args([*MINIMAL, "--global-batch-size", "8"]).num_steps_per_rollout == 4
    assert parse_args([*MINIMAL, "--num-steps-per-rollout", "2"]).global_batch_size == 16


def test_given_values_are_never_rederived():
    args = parse_args([*MINIMAL, "--no-offload-rollout", "--critic-lr", "1e-5", "--use-critic",
                       "--advantage-estimator", "ppo"])
    assert args.offload_rollout is False and "offload_rollout" not in args.derived_values
    assert args.critic_lr == 1e-5 and "critic_lr" not in args.derived_values
    assert args.critic_num_nodes == 1 and args.derived_values["critic_num_nodes"]


@pytest.mark.parametrize(("given", "missing"), [(["--sglang-router-ip", "10.0.0.1"], "--sglang-router-port"),
                                                (["--sglang-router-port", "30000"], "--sglang-router-ip")])
def test_an_external_router_needs_both_its_address_and_its_port(given, missing):
    with pytest.raises(ArgumentProblems, match=f"needs both its address and its port: {given[0]} is set, {missing} is not"):
        parse_args([*MINIMAL, *given])
    parse_args([*MINIMAL, "--sglang-router-ip", "10.0.0.1", "--sglang-router-port", "30000"])


def test_cispo_parses_and_validates_as_an_estimator():
    assert args_with("--advantage-estimator", "cispo").advantage_estimator == "cispo"


def test_custom_advantages_and_supplied_advantages_are_exclusive():
    with pytest.raises(ArgumentProblems, match="keep one"):
        args_with("--custom-advantage-function-path", f"{HERE}.reward_per_token",
                  "--disable-compute-advantages-and-returns")


@pytest.mark.parametrize(("extra", "message"), [
    (["--ref-update-interval", "2"], "updates a reference model that this run does not have"),
    ([*KL, "--ref-update-interval", "0"], "must be at least 1, got 0"),
])
def test_a_reference_update_without_a_reference_is_refused(extra, message):
    with pytest.raises(ArgumentProblems, match=message):
        args_with(*extra)


def test_a_flag_of_a_missing_feature_is_named_when_set_and_silent_at_its_default():
    parse_args([*MINIMAL, "--rollout-task-type", "math", "--update-weight-mode", "full"])
    with pytest.raises(ArgumentProblems) as caught:
        parse_args([*MINIMAL, "--use-opd", "--update-weight-mode", "delta", "--profile-target", "train_actor"])
    messages = [str(p) for p in caught.value.problems]
    assert messages == [
        "--update-weight-mode delta: not implemented yet (delta weight updates); drop the flag (its default, full, runs)",
        "--profile-target train_actor: not implemented yet (profiling); drop the flag (its default, train_overall, runs)",
        "--use-opd: not implemented yet (on-policy distillation); drop the flag",
    ]
