"""The model flags against a checkpoint's config.json (slime.model.hf_config): every tiny checkpoint
agrees with the flags it was made from; the published Qwen3 configs agree with their conf/model files;
each field that disagrees is one mismatch naming the flags to change, every one at once; qk-norm is
read from the tensor names. No torch."""

from __future__ import annotations

import json

import pytest
import yaml

from slime.config.compose import namespace_from_config
from slime.model.hf_config import checkpoint_mismatches, model_fields
from slime.utils.hf_checkpoint import read_config, tensor_names
from tests.helpers.checkpoints import CHECKPOINTS, PUBLISHED
from tests.helpers.megatron import TINY_FOLDERS
from tests.helpers.paths import ROOT


def _flags(config: str, overrides=()) -> dict:
    return vars(namespace_from_config(config, list(overrides), environ={"BASE_FOLDER": "/data"}))


@pytest.mark.slow  # builds every tiny family
@pytest.mark.parametrize("model", list(TINY_FOLDERS))
def test_every_tiny_checkpoint_agrees_with_its_flags(tiny_models, model):
    flags = vars(namespace_from_config("run_tiny_megatron", [f"model={model}"],
                                       environ={"BASE_FOLDER": str(tiny_models)}))
    folder = tiny_models / TINY_FOLDERS[model]
    assert checkpoint_mismatches(flags, read_config(folder), tensor_names(folder)) == []
    model_file = yaml.safe_load((ROOT / "conf" / "model" / f"{model}.yaml").read_text())
    assert read_config(folder)["model_type"] == model_file["run"]["model_type"]


@pytest.mark.parametrize("config", list(PUBLISHED))
def test_the_published_configs_agree_with_the_model_files(config):
    assert checkpoint_mismatches(_flags(config), read_config(CHECKPOINTS / PUBLISHED[config])) == []


def test_glm4_32b_is_the_published_glm_4_32b_0414_61_layers_and_2_key_value_heads():
    flags = _flags("run_glm4_9B", ["model=glm4-32B", "run.model_dir=GLM-4-32B-0414"])
    assert checkpoint_mismatches(flags, read_config(CHECKPOINTS / "GLM-4-32B-0414")) == []
    assert (flags["num_layers"], flags["num_query_groups"]) == (61, 2)


# a field of the published Qwen3-30B-A3B config.json, a wrong value, and the flag the mismatch names
WRONG = [("num_hidden_layers", 40, "--num-layers"), ("hidden_size", 4096, "--hidden-size"),
         ("num_attention_heads", 16, "--num-attention-heads"), ("num_key_value_heads", 8, "--num-query-groups"),
         ("head_dim", 64, "--kv-channels"), ("intermediate_size", 8192, "--ffn-hidden-size"),
         ("num_experts", 64, "--num-experts"), ("num_experts_per_tok", 4, "--moe-router-topk"),
         ("moe_intermediate_size", 1024, "--moe-ffn-hidden-size"), ("vocab_size", 152064, "--vocab-size"),
         ("rope_theta", 10000.0, "--rotary-base"), ("rms_norm_eps", 1e-5, "--norm-epsilon"),
         ("tie_word_embeddings", True, "--untie-embeddings-and-output-weights"),
         ("mlp_only_layers", [0], "--moe-layer-freq")]


def test_each_disagreeing_field_is_one_mismatch_and_all_are_reported():
    published = read_config(CHECKPOINTS / "Qwen3-30B-A3B")
    flags = _flags("run_qwen3_30B_A3B")
    for key, value, flag in WRONG:
        [mismatch] = checkpoint_mismatches(flags, {**published, key: value})
        assert flag in mismatch.flags, (key, mismatch)
        assert mismatch.actual == value
    everything = checkpoint_mismatches(flags, {**published, **{key: value for key, value, _ in WRONG}})
    assert len(everything) == len(WRONG)


def test_rope_scaling_and_transformers_5_spelling():
    published = read_config(CHECKPOINTS / "Qwen3-4B")
    flags = _flags("run_qwen3_4B")
    v5 = {k: v for k, v in published.items() if k not in ("rope_theta", "rope_scaling")}
    assert checkpoint_mismatches(flags, {**v5, "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}) == []
    yarn = {**published, "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32768}}
    [mismatch] = checkpoint_mismatches(flags, yarn)
    assert (mismatch.path, mismatch.expected, mismatch.actual) == ("rope_parameters.rope_type", "default", "yarn")


def test_qk_norm_comes_from_the_tensor_names():
    published = read_config(CHECKPOINTS / "Qwen3-4B")
    flags = _flags("run_qwen3_4B")
    with_norms = ["model.layers.0.self_attn.q_norm.weight", "model.layers.0.self_attn.k_norm.weight"]
    assert checkpoint_mismatches(flags, published, with_norms) == []
    [mismatch] = checkpoint_mismatches(flags, published, ["model.layers.0.self_attn.q_proj.weight"])
    assert (mismatch.path, mismatch.flags) == ("qk_norm", ("--qk-layernorm",))
    [mismatch] = checkpoint_mismatches(_flags("run_qwen3_4B", ["model.qk_layernorm=false"]), published)
    assert mismatch.path == "qk_norm"  # Qwen3 checkpoints have them whatever the config says


def test_every_model_file_of_a_mapped_family_has_a_field_table():
    families = {"qwen3": "qwen3-4B", "qwen3_moe": "qwen3-30B-A3B", "deepseek_v3": "deepseek-v3", "glm4": "glm4-9B",
                "qwen2": "qwen2.5-0.5B", "llama": "llama3.1-8B-Instruct"}
    for family, model in families.items():
        fields = model_fields(_flags("run_qwen3_4B", [f"model={model}"]), family)
        assert {"num_hidden_layers", "hidden_size", "rope_parameters.rope_theta"} <= {f.path for f in fields}
        json.dumps([f.value for f in fields])  # plain values a config.json can hold
