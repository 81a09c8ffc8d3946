"""Memory per GPU (slime.launch.memory): the estimate of Qwen3-4B and Qwen3-30B-A3B at their configs' layouts
is the arithmetic docs/checks.md writes out, byte for byte; the launch plan shows it and warns when a GPU
needs more than the cluster's --gpu-memory-gib."""

from __future__ import annotations

import pytest

from slime.config.compose import namespace_from_config
from slime.launch.memory import GIB, engine_memory, memory_plan, train_memory
from slime.launch.plan import build_plan, format_plan

ENV = {"BASE_FOLDER": "/data"}

# docs/checks.md, "Memory per GPU": Qwen3-4B, TP 2 on 8 GPUs (DP 4), 2,011,495,936 parameters per rank
QWEN3_4B_ACTOR = {
    "weights": 2_011_495_936 * 2,  # bf16
    "gradients": 2_011_495_936 * 4,  # fp32 gradient buffer (--accumulate-allreduce-grads-in-fp32)
    "optimizer": 2_011_495_936 * 12 // 4,  # fp32 main parameters and two moments, over DP 4
    "activations": 9_216 * (36 * 2_560 + 54_848) + 9_216 * 76_032 * 18,  # checkpoints, one layer, the head
    "margin": 1024**3,
}
QWEN3_4B_ENGINE = {"static": int(0.7 * 80 * GIB), "weights": 4_022_468_096, "kv_token_bytes": 36 * 2 * 4 * 128 * 2}
# Qwen3-30B-A3B: TP 4, EP 8, the optimizer wholly on the CPU
QWEN3_30B_A3B_ACTOR = {
    "weights": 4_018_878_464 * 2,
    "gradients": 4_018_878_464 * 4,
    "optimizer": 0,
    "activations": 16_384 * (48 * 1_024 + 36_768) + 16_384 * 38_016 * 18,
    "margin": 1024**3,
}
QWEN3_30B_A3B_ENGINE = {"static": int(0.7 * 80 * GIB), "weights": 30_532_122_624 * 2 // 8,
                        "kv_token_bytes": 48 * 2 * 1 * 128 * 2}


def _parts(memory, keys) -> dict:
    return {key: getattr(memory, key) for key in keys}


@pytest.mark.parametrize("config, actor, engine", [("run_qwen3_4B", QWEN3_4B_ACTOR, QWEN3_4B_ENGINE),
                                                   ("run_qwen3_30B_A3B", QWEN3_30B_A3B_ACTOR, QWEN3_30B_A3B_ENGINE)])
def test_the_estimate_is_the_hand_arithmetic(config, actor, engine):
    args = namespace_from_config(config, environ=ENV)
    [stage] = train_memory(args)
    assert _parts(stage, actor) == actor
    assert stage.total == sum(actor.values())
    rollout = engine_memory(args)
    assert _parts(rollout, engine) == engine
    assert rollout.kv_cache == engine["static"] - engine["weights"]
    assert rollout.kv_tokens == rollout.kv_cache // engine["kv_token_bytes"]
    # colocated with both offloads, a GPU holds either side in turn: the engines' static share is the peak
    assert memory_plan(args)["peak_per_gpu"] == {"actor": max(stage.total, engine["static"])}


def test_the_plan_shows_memory_per_gpu_without_warning_at_80_gib():
    text = format_plan(build_plan(namespace_from_config("run_qwen3_4B", environ=ENV)))
    assert "Memory       actor 30.9 GiB per GPU: 2,011,495,936 parameters → weights 3.7 GiB, gradients 7.5 GiB, " \
           "optimizer 5.6 GiB, activations 13.0 GiB, margin 1.0 GiB" in text
    assert "Memory       each engine 56.0 GiB per GPU (--sglang-mem-fraction-static): weights 3.7 GiB, KV cache 52.3 GiB = " \
           "761,000 tokens of 73,728 bytes" in text
    assert "Memory       peak per GPU actor 56.0 GiB of 80 GiB" in text
    assert "Warning" not in text


def test_the_plan_warns_when_a_gpu_needs_more_than_the_cluster_has():
    args = namespace_from_config("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV)
    text = format_plan(build_plan(args))
    assert "Warning      an actor GPU (shared with the engines) needs about 30.9 GiB, more than --gpu-memory-gib 24" \
        in text


def test_an_engine_without_room_for_one_request_is_a_warning_without_room_for_weights_over():
    def plan(fraction):
        args = namespace_from_config("run_qwen3_4B", [f"sglang.sglang_mem_fraction_static={fraction}"], environ=ENV)
        return memory_plan(args)

    assert plan(0.05)["warnings"] == ["an engine's KV cache holds 3,696 tokens, fewer than one request's 8,192 "
                                      "(prompt and response)"]  # (0.05 × 80 GiB − 4,022,468,096 B) // 73,728 B
    assert plan(0.05)["over"] == []
    assert plan(0.04)["warnings"] == []
    assert [o["message"] for o in plan(0.04)["over"]] == [
        "an engine's weights (3.7 GiB per GPU) do not fit in its static memory (--sglang-mem-fraction-static 0.04 × "
        "80 GiB = 3.2 GiB): no room for the KV cache; lower it with --sglang-mem-fraction-static, "
        "--rollout-num-gpus-per-engine"]


def test_a_gpu_over_its_memory_names_its_role_figure_and_the_flags_that_lower_it():
    args = namespace_from_config("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV)
    [over] = memory_plan(args)["over"]
    # activations (13.0 GiB) are the largest part, then gradients (7.5), the optimizer (5.6) and the weights (3.7);
    # full recompute and the distributed optimizer are on already, so they are not offered
    assert over["knobs"] == ["--max-tokens-per-gpu", "--context-parallel-size", "--tensor-model-parallel-size",
                             "--pipeline-model-parallel-size", "--optimizer-cpu-offload", "--sglang-mem-fraction-static"]
    assert over["message"].startswith("an actor GPU (shared with the engines) needs about 30.9 GiB, more than "
                                      "--gpu-memory-gib 24; lower it with --max-tokens-per-gpu, ")


def test_offloading_the_optimizer_takes_its_share_off_the_gpu():
    args = namespace_from_config("run_qwen3_4B", ["+optimizer.optimizer_cpu_offload=true",
                                                  "+optimizer.optimizer_offload_fraction=0.25"], environ=ENV)
    [stage] = train_memory(args)
    assert stage.optimizer == int(QWEN3_4B_ACTOR["optimizer"] * 0.75)


def test_a_cpu_run_has_no_gpu_estimate():
    assert build_plan(namespace_from_config("run_tiny_cpu", environ=ENV))["memory"] is None


def test_a_model_without_its_sizes_is_said_not_estimated():
    args = namespace_from_config("run_qwen3_4B", ["~model.vocab_size"], environ=ENV)
    assert memory_plan(args)["unknown"] == ["--vocab-size"]
    assert "Memory       not estimated: --vocab-size unset" in format_plan(build_plan(args))
