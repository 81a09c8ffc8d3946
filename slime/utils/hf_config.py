"""The HF ``config.json`` fields of a model, from its Megatron flags: one table per field, per family.

``hf_config_fields(flags, model_type)`` gives the fields (transformers' names) that the flags decide,
so that a checkpoint built from a ``conf/model`` file (``tools/make_tiny_model.py``) has exactly the
architecture those flags describe. Reading a config needs no torch.
"""

from __future__ import annotations

from slime.utils.arg_types import moe_layer_pattern


def _heads_kv(flags: dict) -> int:
    return flags["num_query_groups"] if flags.get("group_query_attention") else flags["num_attention_heads"]


def _rope(flags: dict, **extra) -> dict:
    return {"rope_theta": float(flags["rotary_base"]), "rope_type": "default", **extra}


def hf_config_fields(flags: dict, model_type: str) -> dict:
    """transformers config fields of ``model_type`` for these flags (a ``vars(Namespace)``)."""
    fields = {
        "vocab_size": flags["vocab_size"],
        "hidden_size": flags["hidden_size"],
        "intermediate_size": flags["ffn_hidden_size"],
        "num_hidden_layers": flags["num_layers"],
        "num_attention_heads": flags["num_attention_heads"],
        "num_key_value_heads": _heads_kv(flags),
        "head_dim": flags.get("kv_channels") or flags["hidden_size"] // flags["num_attention_heads"],
        "rms_norm_eps": flags["layernorm_epsilon"],
        "tie_word_embeddings": not flags["untie_embeddings_and_output_weights"],
        "rope_parameters": _rope(flags),
    }
    if model_type == "llama":
        fields["attention_bias"] = bool(flags.get("add_qkv_bias") or flags.get("add_bias_linear"))
        fields["mlp_bias"] = bool(flags.get("add_bias_linear"))
    if model_type in ("qwen3_moe",):
        pattern = moe_layer_pattern(flags["moe_layer_freq"], flags["num_layers"])
        fields.update(num_experts=flags["num_experts"], num_experts_per_tok=flags["moe_router_topk"],
                      moe_intermediate_size=flags["moe_ffn_hidden_size"], norm_topk_prob=True,
                      mlp_only_layers=[i for i, moe in enumerate(pattern) if not moe], decoder_sparse_step=1)
    if model_type == "glm4":
        fields["rope_parameters"] = _rope(flags, partial_rotary_factor=flags["rotary_percent"])
        fields["partial_rotary_factor"] = flags["rotary_percent"]
        fields["attention_bias"] = bool(flags.get("add_qkv_bias"))
    if model_type == "deepseek_v3":
        pattern = moe_layer_pattern(flags["moe_layer_freq"], flags["num_layers"])
        dense = pattern.index(1) if 1 in pattern else flags["num_layers"]
        fields.update(
            num_key_value_heads=flags["num_attention_heads"], head_dim=flags["qk_pos_emb_head_dim"],
            q_lora_rank=flags["q_lora_rank"], kv_lora_rank=flags["kv_lora_rank"],
            qk_nope_head_dim=flags["qk_head_dim"], qk_rope_head_dim=flags["qk_pos_emb_head_dim"],
            v_head_dim=flags["v_head_dim"], n_routed_experts=flags["num_experts"],
            num_experts_per_tok=flags["moe_router_topk"], moe_intermediate_size=flags["moe_ffn_hidden_size"],
            n_shared_experts=(flags.get("moe_shared_expert_intermediate_size") or 0) // flags["moe_ffn_hidden_size"],
            n_group=flags.get("moe_router_num_groups") or 1, topk_group=flags.get("moe_router_group_topk") or 1,
            routed_scaling_factor=flags.get("moe_router_topk_scaling_factor") or 1.0, first_k_dense_replace=dense,
            norm_topk_prob=True, rope_interleave=True)
    return fields
