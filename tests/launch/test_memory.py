"""Memory per GPU (slime.launch.memory): the estimate of Qwen3-4B and Qwen3-30B-A3B at their configs' layouts
is the arithmetic docs/checks.md writes out, byte for byte; the critic has no log-probability head;
DeepSeek-R1's engines hold its FP8 weights; an 80 GB H100 is 79.11 GiB, less each process's context; the
launch plan shows it (with the model's whole and active parameters) and warns when a GPU needs more than
the cluster's --gpu-memory-gib."""

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
# an engine sizes its pools from the memory free when it starts: the usable 79.11 GiB less its own context (1 GiB)
FREE_AT_START = int((79.11 - 1) * GIB)
CONTEXT = GIB  # --gpu-context-gib: what each process keeps on its GPU whatever it releases
QWEN3_4B_ENGINE = {"static": int(0.7 * FREE_AT_START), "weights": 4_022_468_096, "kv_token_bytes": 36 * 2 * 4 * 128 * 2}
# Qwen3-30B-A3B: TP 4, EP 8, the optimizer wholly on the CPU
QWEN3_30B_A3B_ACTOR = {
    "weights": 4_018_878_464 * 2,
    "gradients": 4_018_878_464 * 4,
    "optimizer": 0,
    "activations": 16_384 * (48 * 1_024 + 36_768) + 16_384 * 38_016 * 18,
    "margin": 1024**3,
}
QWEN3_30B_A3B_ENGINE = {"static": int(0.7 * FREE_AT_START), "weights": 30_532_122_624 * 2 // 8,
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
    # colocated with both offloads, a GPU holds either side in turn, each with the other's context: training
    # (the trainer, its context, the released engine's) or rollout (the engine's context and static share, the
    # offloaded trainer's context), the larger
    training, rollout = stage.total + 2 * CONTEXT, CONTEXT + engine["static"] + CONTEXT
    assert memory_plan(args)["peak_per_gpu"] == {"actor": max(training, rollout)}


def test_usable_memory_is_a_cluster_setting_of_79_11_gib_for_an_80_gb_h100_by_default():
    from slime.arguments.parser import parse_args
    from tests.helpers.command_lines import MINIMAL

    assert parse_args(MINIMAL).gpu_memory_gib == 79.11  # PyTorch's total capacity of an 80 GB H100
    assert namespace_from_config("run_qwen3_235B_A22B", environ=ENV).gpu_memory_gib == 79.11  # conf/cluster/
    h200 = namespace_from_config("run_qwen3_4B", ["cluster.gpu_memory_gib=139.8"], environ=ENV)
    assert engine_memory(h200).static == int(0.7 * (139.8 - 1) * GIB)


def test_the_critic_has_no_log_probability_head():
    args = namespace_from_config("run_qwen3_4B_ppo", environ=ENV)
    [actor], [critic] = train_memory(args, "actor"), train_memory(args, "critic")
    assert actor.activations == QWEN3_4B_ACTOR["activations"]
    assert critic.activations == 9_216 * (36 * 2_560 + 54_848)  # the layers only: 1.3 GiB, not 13.0
    assert critic.parameters == 2_011_495_936 + 2_561  # the value head (h + 1) in place of the tied output


def test_a_critic_on_the_actors_gpus_trains_beside_it():
    args = namespace_from_config("run_qwen3_4B_ppo", environ=ENV)
    [actor], [critic] = train_memory(args, "actor"), train_memory(args, "critic")
    [engine_static] = [engine_memory(args).static]
    training = actor.total + critic.total + 3 * CONTEXT  # both trainers' contexts and the released engine's
    rollout = CONTEXT + engine_static + 2 * CONTEXT  # both trainers offloaded
    assert memory_plan(args)["peak_per_gpu"] == {"actor": max(training, rollout)}
    separate = namespace_from_config("run_qwen3_4B_ppo", ["+cluster.critic_placement=separate"], environ=ENV)
    assert memory_plan(separate)["peak_per_gpu"] == {"actor": CONTEXT + engine_static + CONTEXT,
                                                     "critic": critic.total + CONTEXT}


def test_deepseek_r1s_engines_hold_its_block_fp8_weights():
    args = namespace_from_config("run_deepseek_r1", environ=ENV)  # --sglang-quantization fp8, as SGLang serves it
    fp8 = engine_memory(args)
    args.sglang_quantization = None
    bf16 = engine_memory(args)
    assert (fp8.weight_format, bf16.weight_format) == ("fp8", "bf16")
    # linear layers' weights one byte (and an fp32 scale per 128 × 128 block), the rest bf16; dense parts over the
    # attention tensor-parallel size 8, experts over the engine's 64 GPUs
    assert round(fp8.weights / GIB, 2) == 11.74 and round(bf16.weights / GIB, 2) == 23.02
    assert fp8.kv_tokens / bf16.kv_tokens == pytest.approx(1.356, abs=1e-3)  # the KV cache bf16 weights understated


def test_only_full_attention_layers_hold_a_kv_cache():
    args = namespace_from_config("run_qwen3_4B", ["model=qwen3-next-80B-A3B", "run.model_dir=Qwen3-Next-80B-A3B",
                                                  "+cluster.train_backend=torch"], environ=ENV)
    assert engine_memory(args).kv_token_bytes == 12 * 2 * 1 * 256 * 2  # 12 of its 48 layers, one of 2 KV heads per GPU


def test_the_plan_shows_memory_per_gpu_without_warning_at_79_11_gib():
    text = format_plan(build_plan(namespace_from_config("run_qwen3_4B", environ=ENV)))
    assert "Model        4,022,468,096 (4.02 B) parameters\n" in text
    assert "Memory       actor 30.9 GiB per GPU: 2,011,495,936 parameters → weights 3.7 GiB, gradients 7.5 GiB, " \
           "optimizer 5.6 GiB, activations 13.0 GiB, margin 1.0 GiB" in text
    assert "Memory       each engine 54.7 GiB per GPU (--sglang-mem-fraction-static of the 78.1 GiB free when it " \
           "starts): weights 3.7 GiB (bf16), KV cache 50.9 GiB = 741,733 tokens of 73,728 bytes" in text
    assert "Memory       peak per GPU actor 56.7 GiB of 79.11 GiB, with 1 GiB for each process on it" in text
    assert "Warning" not in text


def test_the_plan_prints_whole_and_active_parameters_and_the_stage_with_the_most():
    text = format_plan(build_plan(namespace_from_config("run_qwen3_235B_A22B", environ=ENV)))
    assert "Model            235,093,634,560 (235.09 B) parameters, 22,190,763,520 (22.19 B) active per token" in text
    # stage 3 (22 layers and the output layer) needs the most memory; stage 0 (24 layers and the embedding) has
    # the most parameters
    assert "Memory           actor 34.9 GiB per GPU (stage 3 of 4, the fullest; stage 0 holds the most parameters, " \
           "4,220,196,864): 3,881,494,016 parameters" in text


def test_the_plan_warns_when_a_gpu_needs_more_than_the_cluster_has():
    args = namespace_from_config("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV)
    text = format_plan(build_plan(args))
    assert "Warning      an actor GPU (shared with the engines) needs about 32.9 GiB, more than --gpu-memory-gib 24" \
        in text


def test_an_engine_without_room_for_one_request_is_a_warning_without_room_for_weights_over():
    def plan(fraction):
        args = namespace_from_config("run_qwen3_4B", [f"sglang.sglang_mem_fraction_static={fraction}"], environ=ENV)
        return memory_plan(args)

    assert plan(0.05)["warnings"] == ["an engine's KV cache holds 2,319 tokens, fewer than one request's 8,192 "
                                      "(prompt and response)"]  # (0.05 × 78.11 GiB − 4,022,468,096 B) // 73,728 B
    assert plan(0.05)["over"] == []
    assert plan(0.04)["warnings"] == []
    assert [o["message"] for o in plan(0.04)["over"]] == [
        "an engine's weights (3.7 GiB per GPU) do not fit in its static memory (--sglang-mem-fraction-static 0.04 × "
        "the 78.1 GiB free when it starts = 3.1 GiB): no room for the KV cache; lower it with "
        "--sglang-mem-fraction-static, --rollout-num-gpus-per-engine"]


def test_a_gpu_over_its_memory_names_its_role_figure_and_the_flags_that_lower_it():
    args = namespace_from_config("run_qwen3_4B", ["cluster.gpu_memory_gib=24"], environ=ENV)
    [over] = memory_plan(args)["over"]
    # activations (13.0 GiB) are the largest part, then gradients (7.5), the optimizer (5.6) and the weights (3.7);
    # full recompute and the distributed optimizer are on already, so they are not offered
    assert over["knobs"] == ["--max-tokens-per-gpu", "--context-parallel-size", "--tensor-model-parallel-size",
                             "--pipeline-model-parallel-size", "--optimizer-cpu-offload", "--sglang-mem-fraction-static"]
    assert over["message"].startswith("an actor GPU (shared with the engines) needs about 32.9 GiB, more than "
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
