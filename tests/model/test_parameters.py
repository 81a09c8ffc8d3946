"""Parameters per rank (slime.model.parameters): exact for Qwen3-4B and Qwen3-30B-A3B at their configs'
layouts, against the counts docs/checks.md works out by hand; equal to the tensors of every tiny HF
checkpoint; and equal to what megatron-core itself builds on CPU ranks for every tiny family at
tensor parallel 1 and 2, pipeline parallel 2 (dense families) and expert parallel 2 (MoE ones)."""

from __future__ import annotations

import json
import math

import pytest

from slime.arguments.topology import Topology
from slime.config.compose import namespace_from_config
from slime.model.parameters import (active_parameters, model_parameters, padded_vocab, rank_parameters,
                                    stage_parameters)
from tests.helpers.megatron import TINY_FOLDERS, spawn

ENV = {"BASE_FOLDER": "/data"}

# docs/checks.md, "Parameters per rank": the arithmetic written out
QWEN3_4B_TP2 = {"embedding": 76_032 * 2_560, "norms": 36 * (2_560 + 2 * 128 + 2_560) + 2_560,
                "attention": 36 * (7_864_320 + 5_242_880), "mlp": 36 * (24_903_680 + 12_451_840)}
QWEN3_30B_A3B_TP4_EP8 = {"embedding": 38_016 * 2_048, "output_layer": 38_016 * 2_048,
                         "norms": 48 * (2_048 + 2 * 128 + 2_048) + 2_048, "attention": 48 * (2_621_440 + 2_097_152),
                         "router": 48 * 128 * 2_048, "experts": 48 * 16 * (2_048 * 2 * 768 + 768 * 2_048)}


def test_qwen3_4B_per_rank_is_the_hand_count():
    [stage] = rank_parameters(namespace_from_config("run_qwen3_4B", environ=ENV))
    assert stage.parts == QWEN3_4B_TP2
    assert stage.total == 2_011_495_936 and stage.expert == 0


def test_qwen3_30B_A3B_per_rank_is_the_hand_count():
    [stage] = rank_parameters(namespace_from_config("run_qwen3_30B_A3B", environ=ENV))
    assert stage.parts == QWEN3_30B_A3B_TP4_EP8
    assert (stage.total, stage.dense, stage.expert) == (4_018_878_464, 394_999_808, 3_623_878_656)


def test_whole_models_have_their_published_sizes():
    sizes = {"run_qwen3_4B": 4.02e9, "run_qwen3_30B_A3B": 30.5e9, "run_qwen3_235B_A22B": 235.1e9,
             "run_deepseek_r1": 671.0e9, "run_qwen2.5_0.5B": 0.494e9}
    for config, published in sizes.items():
        assert model_parameters(namespace_from_config(config, environ=ENV)) == pytest.approx(published, rel=2e-3), config


def _model(name: str):
    """A conf/model file's flags, through a primary config (its layout does not change whole-model counts)."""
    return namespace_from_config("run_tiny_cpu", [f"model={name}", "run.model_dir=any"], environ=ENV)


# Whole-model and active parameters (embeddings and head included) of the families with Gated DeltaNet layers
# and the attention output gate, and of GLM-4-32B-0414: transformers' own modelling of each, built on the meta
# device with the published dimensions, counts exactly these (test_the_counts_are_transformers_counts, slow)
PUBLISHED_COUNTS = {
    "qwen3-next-80B-A3B": (79_674_391_296, 3_874_929_408),  # published: 80 B, 3 B active
    "qwen3.5-0.8B": (752_393_024, 752_393_024),
    "qwen3.5-4B": (4_205_751_296, 4_205_751_296),
    "qwen3.5-9B": (8_953_803_264, 8_953_803_264),
    "qwen3.5-27B": (26_895_998_464, 26_895_998_464),
    "qwen3.5-35B-A3B": (34_660_610_688, 3_454_988_928),
    "glm4-32B": (32_566_081_536, 32_566_081_536),
}


@pytest.mark.parametrize("model", list(PUBLISHED_COUNTS))
def test_hybrid_attention_and_glm4_32B_have_their_published_counts(model):
    args = _model(model)
    assert (model_parameters(args), active_parameters(args)) == PUBLISHED_COUNTS[model]


def test_a_gated_delta_net_layer_is_its_hand_count():
    """Qwen3-Next's layer 0 (linear) against layer 3 (full attention with the output gate), TP 1."""
    args = _model("qwen3-next-80B-A3B")
    args.num_layers, args.moe_layer_freq, args.num_experts = 4, 1, None  # the mixers alone, with a dense MLP
    counts = stage_parameters(args, Topology(), 0).parts
    h, qk, v = 2_048, 16 * 128, 32 * 128
    linear = h * (2 * qk + 2 * v + 2 * 32) + (2 * qk + v) * 4 + 2 * 32 + v * h  # in_proj, conv1d, A_log + dt_bias, out_proj
    assert linear == 33_718_336  # transformers' GatedDeltaNet of Qwen3-Next: 33,718,464 with its 128-wide norm
    assert counts["linear_attention"] == 3 * linear
    assert counts["attention"] == h * (2 * 16 * 256 + 2 * 2 * 256) + 16 * 256 * h  # the gate doubles the query rows


@pytest.mark.slow  # imports transformers
@pytest.mark.parametrize("model", list(PUBLISHED_COUNTS))
def test_the_counts_are_transformers_counts(model):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    published = {  # transformers' defaults are Qwen3-Next-80B-A3B's and Qwen3.5-35B-A3B's published configs
        "qwen3-next-80B-A3B": ("qwen3_next", {}),
        "qwen3.5-35B-A3B": ("qwen3_5_moe_text", {}),
        "glm4-32B": ("glm4", {"num_hidden_layers": 61, "hidden_size": 6144, "intermediate_size": 23040,
                               "num_attention_heads": 48, "num_key_value_heads": 2, "head_dim": 128,
                               "vocab_size": 151552, "attention_bias": False, "tie_word_embeddings": False}),
    }
    # the Qwen3.5 dense sizes (a public table of the family's dimensions; every linear layer has 16 key heads)
    for name, layers, hidden, ffn, heads, groups, value_heads, tied in [
            ("qwen3.5-0.8B", 24, 1024, 3584, 8, 2, 16, True), ("qwen3.5-4B", 32, 2560, 9216, 16, 4, 32, True),
            ("qwen3.5-9B", 32, 4096, 12288, 16, 4, 32, False), ("qwen3.5-27B", 64, 5120, 17408, 24, 4, 48, False)]:
        published[name] = ("qwen3_5_text", {"num_hidden_layers": layers, "hidden_size": hidden,
                                             "intermediate_size": ffn, "num_attention_heads": heads,
                                             "num_key_value_heads": groups, "linear_num_value_heads": value_heads,
                                             "tie_word_embeddings": tied})
    model_type, fields = published[model]
    with torch.device("meta"):
        hf = AutoModelForCausalLM.from_config(AutoConfig.for_model(model_type, **fields))
    total = sum(p.numel() for p in hf.parameters())
    experts = sum(p.numel() for name, p in hf.named_parameters() if ".mlp.experts." in name)
    config = hf.config
    active = total - experts + experts * config.num_experts_per_tok // config.num_experts if experts else total
    assert (total, active) == PUBLISHED_COUNTS[model]


def test_pipeline_stages_take_megatrons_uneven_split():
    args = namespace_from_config("run_qwen3_235B_A22B", environ=ENV)  # 94 layers: 24, 24, 24, 22
    stages = rank_parameters(args)
    assert [len(s.layers) for s in stages] == [24, 24, 24, 22]
    assert "embedding" in stages[0].parts and "output_layer" in stages[-1].parts
    assert "embedding" not in stages[1].parts and "output_layer" not in stages[1].parts


# HF tensors that megatron keeps as buffers, not parameters: DeepSeek-V3's router expert bias
MEGATRON_BUFFERS = (".e_score_correction_bias",)


def _hf_parameter_count(folder) -> int:
    data = (folder / "model.safetensors").read_bytes()
    header = json.loads(data[8:8 + int.from_bytes(data[:8], "little")])
    return sum(math.prod(entry["shape"]) for name, entry in header.items()
               if name != "__metadata__" and not name.endswith(MEGATRON_BUFFERS))


@pytest.mark.slow  # builds every tiny family
@pytest.mark.parametrize("model", list(TINY_FOLDERS))
def test_every_tiny_checkpoint_has_the_counted_parameters(tiny_models, model):
    args = namespace_from_config("run_tiny_megatron", [f"model={model}"], environ={"BASE_FOLDER": str(tiny_models)})
    padding = (padded_vocab(args, 1) - args.vocab_size) * args.hidden_size
    tied = not args.untie_embeddings_and_output_weights
    assert model_parameters(args) - padding * (1 if tied else 2) == _hf_parameter_count(tiny_models / TINY_FOLDERS[model])


# -- against megatron-core ------------------------------------------------------------------------
def _count_on_ranks(rank, world_size, port, cases):
    """For each (args, role): the parameters megatron builds on this rank, and its pipeline stage."""
    import torch.distributed as dist
    from megatron.core import parallel_state, tensor_parallel

    from slime.backends.megatron import cpu_compat
    from slime.backends.megatron.config import transformer_config
    from slime.backends.megatron.model import build_model

    cpu_compat.install()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    counts = []
    for args, role in cases:
        parallel_state.initialize_model_parallel(
            tensor_model_parallel_size=args.tensor_model_parallel_size,
            pipeline_model_parallel_size=args.pipeline_model_parallel_size,
            expert_model_parallel_size=args.expert_model_parallel_size,
            expert_tensor_parallel_size=args.expert_tensor_parallel_size)
        tensor_parallel.model_parallel_cuda_manual_seed(args.seed)
        with cpu_compat.cuda_as_cpu():  # tied embeddings over pipeline stages: megatron moves the copy to "cuda"
            model = build_model(args, transformer_config(args), role)
        counts.append((parallel_state.get_pipeline_model_parallel_rank(), sum(p.numel() for p in model.parameters())))
        parallel_state.destroy_model_parallel()
    dist.destroy_process_group()
    return counts


LAYOUTS = {"tp1": ["perf.tensor_model_parallel_size=1"], "tp2": [],
           "pp2": ["perf.tensor_model_parallel_size=1", "perf.pipeline_model_parallel_size=2"],
           "ep2": ["perf.tensor_model_parallel_size=1", "+perf.expert_model_parallel_size=2"]}


@pytest.fixture(scope="module")
def megatron_counts(tmp_path_factory):
    """Every tiny family at TP 1 and TP 2, the dense ones at PP 2, the MoE ones at EP 2, and the critic once."""
    base = tmp_path_factory.mktemp("parameters")
    cases = []
    for model in TINY_FOLDERS:
        for layout, overrides in LAYOUTS.items():
            moe = model in ("tiny-qwen3-moe", "tiny-deepseek-v3")
            # ep2 only for MoE; pp2 not for MoE: megatron-core refuses the all-gather dispatcher (the one that
            # runs on CPU) with pipeline parallelism's variable sequence lengths
            if (layout == "ep2" and not moe) or (layout == "pp2" and moe):
                continue
            args = namespace_from_config("run_tiny_megatron", [f"model={model}", *overrides],
                                         environ={"BASE_FOLDER": str(base)})
            cases.append(((model, layout, "actor"), args))
    critic = namespace_from_config("run_tiny_megatron_ppo", environ={"BASE_FOLDER": str(base)})
    cases.append((("tiny", "tp2", "critic"), critic))
    ranks = spawn(2, _count_on_ranks, [(args, key[2]) for key, args in cases])
    return [(key, args, [rank[i] for rank in ranks]) for i, (key, args) in enumerate(cases)]


@pytest.mark.slow
def test_the_count_per_rank_is_what_megatron_builds(megatron_counts):
    wrong = []
    for (model, layout, role), args, per_rank in megatron_counts:
        for rank, (stage, built) in enumerate(per_rank):
            counted = stage_parameters(args, Topology.of(args, role), stage, role).total
            if counted != built:
                wrong.append(f"{model} {layout} {role} rank {rank} (stage {stage}): counted {counted}, megatron {built}")
    assert not wrong, "\n".join(wrong)
    assert len(megatron_counts) == 6 * 2 + 4 + 2 + 1  # tp1 and tp2 for all, pp2 for the dense, ep2 for the MoE
