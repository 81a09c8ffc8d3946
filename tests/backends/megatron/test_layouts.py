"""The megatron backend's pure pieces, without processes: HF ↔ megatron layouts, tensor-parallel
shards, micro-batches, the configs built from the registry, and what a CPU refuses."""

from __future__ import annotations

import argparse

import pytest
import torch

from tests.helpers.stack import require_module

pytest.importorskip("torch")


def model_args(**fields) -> argparse.Namespace:
    base = dict(num_attention_heads=4, num_query_groups=2, group_query_attention=True, kv_channels=3, hidden_size=8,
                vocab_size=5, multi_latent_attention=False)
    return argparse.Namespace(**{**base, **fields})


def test_qkv_follows_megatrons_grouped_layout_and_round_trips():
    from slime.backends.megatron.hf_mapping import HFMapping

    mapping = HFMapping(model_args(), "qwen2")
    heads, groups, dim = 4, 2, 3
    q = torch.arange(heads * dim * 2, dtype=torch.float32).reshape(heads * dim, 2)
    k = 100 + torch.arange(groups * dim * 2, dtype=torch.float32).reshape(groups * dim, 2)
    v = 200 + torch.arange(groups * dim * 2, dtype=torch.float32).reshape(groups * dim, 2)
    hf = {"model.layers.0.self_attn.q_proj.weight": q, "model.layers.0.self_attn.k_proj.weight": k,
          "model.layers.0.self_attn.v_proj.weight": v}
    fused = mapping.from_hf("decoder.layers.0.self_attention.linear_qkv.weight", hf.__getitem__)
    # group 0: q heads 0 and 1, k head 0, v head 0; then group 1
    expected = torch.cat([q[0:6], k[0:3], v[0:3], q[6:12], k[3:6], v[3:6]])
    assert torch.equal(fused, expected)
    back = dict(mapping.to_hf("decoder.layers.0.self_attention.linear_qkv.weight", fused))
    assert all(torch.equal(back[name], tensor) for name, tensor in hf.items())


def test_vocabulary_is_padded_for_megatron_and_cut_for_hf():
    from slime.backends.megatron.hf_mapping import HFMapping

    mapping = HFMapping(model_args(), "llama")
    rows = torch.randn(5, 8)
    padded = mapping.from_hf("embedding.word_embeddings.weight", {"model.embed_tokens.weight": rows}.__getitem__,
                             padded_rows=8)
    assert padded.shape == (8, 8) and torch.equal(padded[:5], rows) and not padded[5:].any()
    assert torch.equal(dict(mapping.to_hf("output_layer.weight", padded))["lm_head.weight"], rows)


@pytest.mark.parametrize("name,expected", [
    ("decoder.layers.3.mlp.experts.local_experts.7.linear_fc1.weight",
     ["model.layers.3.mlp.experts.7.gate_proj.weight", "model.layers.3.mlp.experts.7.up_proj.weight"]),
    ("decoder.layers.3.mlp.experts.linear_fc2.weight7", ["model.layers.3.mlp.experts.7.down_proj.weight"]),
    ("decoder.layers.0.self_attention.linear_qkv.layer_norm_weight", ["model.layers.0.input_layernorm.weight"]),
    ("decoder.layers.0.mlp.router.expert_bias", ["model.layers.0.mlp.gate.e_score_correction_bias"]),
])
def test_names_of_expert_and_transformer_engine_parameters(name, expected):
    from slime.backends.megatron.hf_mapping import HFMapping

    assert HFMapping(model_args(), "qwen3_moe").rule(name)[1] == expected


def test_mla_and_glm4_names_and_unmapped_parameters_are_named():
    from slime.backends.megatron.hf_mapping import HFMapping, UnmappedWeight

    mla = HFMapping(model_args(multi_latent_attention=True), "deepseek_v3")
    assert mla.rule("decoder.layers.1.self_attention.linear_kv_down_proj.weight")[1] == [
        "model.layers.1.self_attn.kv_a_proj_with_mqa.weight"]
    assert mla.rule("decoder.layers.1.mlp.shared_experts.linear_fc2.weight")[1] == [
        "model.layers.1.mlp.shared_experts.down_proj.weight"]
    glm = HFMapping(model_args(), "glm4")
    assert glm.rule("decoder.layers.2.mlp.linear_fc1.weight")[1] == ["model.layers.2.mlp.gate_up_proj.weight"]
    with pytest.raises(UnmappedWeight, match="decoder.layers.0.self_attention.nope"):
        glm.rule("decoder.layers.0.self_attention.nope")
    with pytest.raises(ValueError, match="'gpt2'.*maps llama"):
        HFMapping(model_args(), "gpt2")


def test_swiglu_shards_take_their_chunk_of_gate_and_of_up():
    from slime.backends.megatron.hf_mapping import shard, unshard

    param = torch.empty(4, 2)
    param.tensor_model_parallel, param.partition_dim = True, 0
    gate, up = torch.arange(8.0).reshape(4, 2), 100 + torch.arange(8.0).reshape(4, 2)
    full = torch.cat([gate, up])
    pieces = [shard("mlp.linear_fc1.weight", full, param, rank, 2, gated=True) for rank in range(2)]
    assert torch.equal(pieces[1], torch.cat([gate[2:], up[2:]]))
    assert torch.equal(unshard("mlp.linear_fc1.weight", pieces, param, gated=True), full)
    plain = [shard("self_attention.linear_proj.weight", full, param, rank, 2, gated=True) for rank in range(2)]
    assert torch.equal(plain[0], full[:4])


def test_dynamic_micro_batches_stay_within_the_token_budget():
    from slime.backends.megatron.batches import pack, split

    samples = [{"prompt_tokens": [1] * p, "response_tokens": [2] * r} for p, r in [(3, 5), (1, 1), (6, 6), (2, 2)]]
    groups = split(samples, None, max_tokens=16)
    assert sorted(i for group in groups for i in group) == [0, 1, 2, 3]
    for group in groups:
        longest = max(len(samples[i]["prompt_tokens"]) + len(samples[i]["response_tokens"]) for i in group)
        assert longest * len(group) <= 16 or len(group) == 1
    assert split(samples, 3, None) == [[0, 1, 2], [3]]
    packed = pack([samples[0], samples[1]])
    assert packed.input_ids.shape == (2, 8)
    assert packed.columns.tolist() == [2, 3, 4, 5, 6, 0]  # the positions predicting each response token
    assert packed.rows.tolist() == [0, 0, 0, 0, 0, 1]


@pytest.mark.slow
def test_configs_come_from_the_registry():
    require_module("megatron.core")
    from slime.backends.megatron import config
    from slime.config.compose import namespace_from_config

    args = config.with_slime_defaults(namespace_from_config("run_qwen3_30B_A3B", [], environ={"BASE_FOLDER": "/data"}),
                                      gpu=True)
    transformer = config.transformer_config(args, checking=True)
    assert (transformer.num_layers, transformer.num_moe_experts, transformer.moe_router_topk) == (48, 128, 8)
    assert transformer.num_query_groups == 4 and transformer.qk_layernorm and transformer.gated_linear_unit
    assert transformer.moe_ffn_hidden_size == 768 and transformer.tensor_model_parallel_size == args.tensor_model_parallel_size
    assert config.gpt_model_kwargs(args)["vocab_size"] % (128 * args.tensor_model_parallel_size) == 0
    optimizer = config.optimizer_config(args, checking=True)
    assert (optimizer.lr, optimizer.weight_decay, optimizer.adam_beta2) == (args.lr, args.weight_decay, args.adam_beta2)
    assert optimizer.bf16 and optimizer.use_distributed_optimizer
    mla = config.transformer_config(namespace_from_config("run_deepseek_r1", [], environ={"BASE_FOLDER": "/data"}),
                                    checking=True)
    assert type(mla).__name__ == "MLATransformerConfig" and mla.kv_lora_rank == 512


def test_a_cpu_names_every_gpu_only_setting():
    require_module("megatron.core")
    if torch.cuda.is_available():
        pytest.skip("refusals are for machines without CUDA")
    from slime.backends.megatron.config import unsupported_here
    from slime.config.compose import namespace_from_config

    problems = unsupported_here(namespace_from_config("run_qwen3_4B", ["+misc.bf16=true"], environ={"BASE_FOLDER": "/data"}))
    flags = {flag for _, names in problems for flag in names}
    assert {"--transformer-impl", "--no-rope-fusion", "--no-gradient-accumulation-fusion", "--sequence-parallel",
            "--bf16"} <= flags
    assert all("needs a GPU" in message for message, _ in problems)
    tiny = namespace_from_config("run_tiny_megatron", [], environ={"BASE_FOLDER": "/data"})
    assert unsupported_here(tiny) == []
    # context parallel (transformer-engine attention) and the distributed optimizer (its resume): each
    # named with its flag, as the backend's init reports them before it starts
    tiny.context_parallel_size, tiny.use_distributed_optimizer = 2, True
    refused = dict((names[0], message) for message, names in unsupported_here(tiny))
    assert sorted(refused) == ["--context-parallel-size", "--use-distributed-optimizer"]
    assert "transformer-engine attention" in refused["--context-parallel-size"]
    assert "resume needs transformer-engine or Apex" in refused["--use-distributed-optimizer"]


def _fp8_checkpoint(folder, quantization: dict, tensors: dict) -> None:
    import json

    from safetensors.torch import save_file

    folder.mkdir()
    save_file(tensors, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps({"model_type": "deepseek_v3", "quantization_config": quantization}))


def test_block_fp8_weights_are_read_dequantized_and_other_quantizations_refused(tmp_path, capsys):
    from slime.cli import convert_checkpoint as conversion_cli
    from slime.backends.megatron.quantized import HFReader

    block = [2, 3]  # a 5 × 7 weight: blocks of 2 rows and 3 columns, the last ones short
    weight = (torch.randn(5, 7, generator=torch.Generator().manual_seed(0)) * 40).to(torch.float8_e4m3fn)
    scales = torch.tensor([[0.5, 2.0, 4.0], [1.0, 3.0, 0.25], [8.0, 1.0, 2.0]])
    fp8 = {"quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic", "weight_block_size": block}
    _fp8_checkpoint(tmp_path / "fp8", fp8, {"a.weight": weight, "a.weight_scale_inv": scales,
                                            "b.weight": weight.clone(), "norm.weight": torch.ones(7)})
    reader = HFReader(tmp_path / "fp8")
    expected = torch.empty(5, 7)
    for row in range(5):
        for column in range(7):
            expected[row, column] = float(weight[row, column].float()) * float(scales[row // 2, column // 3])
    assert torch.equal(reader.get("a.weight"), expected)
    assert torch.equal(reader.get("norm.weight"), torch.ones(7))  # full precision stays as stored
    with pytest.raises(ValueError, match="b.weight is stored as torch.float8_e4m3fn but the checkpoint has no "
                                         "b.weight_scale_inv.*convert the checkpoint to bf16"):
        reader.get("b.weight")

    _fp8_checkpoint(tmp_path / "gptq", {"quant_method": "gptq", "bits": 4}, {"norm.weight": torch.ones(7)})
    config_file = str(tmp_path / "gptq" / "config.json")
    with pytest.raises(ValueError) as refused:
        HFReader(tmp_path / "gptq")
    assert config_file in str(refused.value) and "quant_method 'gptq'" in str(refused.value)
    assert "Convert the checkpoint to bf16 first" in str(refused.value)
    # the converter refuses it before starting a process
    status = conversion_cli.main("hf_to_torch_dist", ["--hf-checkpoint", str(tmp_path / "gptq"),
                                                      "--save", str(tmp_path / "out")])
    assert status == 2 and f"--hf-checkpoint {config_file}: quantization_config" in capsys.readouterr().err
