"""The HF ``config.json`` fields of a model, from its Megatron flags: one table per field, per family.

``model_fields(flags, model_type)`` is the table: each field of transformers' config (a dotted path
for nested ones, ``rope_parameters.rope_theta``) with the value the flags give it and the flags
that decide it. Two things read it:

- ``hf_config_fields`` builds a config from it, so that a checkpoint made from a ``conf/model`` file
  (``tools/make_tiny_model.py``) has exactly the architecture those flags describe;
- ``checkpoint_mismatches`` compares it with a checkpoint's ``config.json`` (and its tensor names,
  for what the config does not say, such as Qwen3's per-head query/key norms): every field that
  disagrees, with the flags to change; ``described_mismatches`` says each for a person, as the
  deep check and the trainer's preflight report it.

A few fields are facts of the family rather than of the config (Qwen2 always has QKV biases);
``FAMILY_FACTS`` names them, and the tensor names confirm them when the checkpoint is at hand.
Reading needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from slime.arguments.arg_types import moe_layer_pattern

FAMILIES = ("llama", "qwen2", "qwen3", "qwen3_moe", "glm4", "deepseek_v3")
# What a family's checkpoints have whatever their config says (``None``: the config field says).
FAMILY_FACTS = {
    "qk_norm": {"llama": False, "qwen2": False, "qwen3": True, "qwen3_moe": True, "glm4": False, "deepseek_v3": True},
    "qkv_bias": {"qwen2": True, "qwen3": None, "qwen3_moe": None, "llama": None, "glm4": None, "deepseek_v3": False},
}
# Tensor names that show a fact in a checkpoint (any layer).
FACT_TENSORS = {"qk_norm": (".q_norm.", ".k_norm.", ".q_a_layernorm.", ".kv_a_layernorm."),
                "qkv_bias": (".q_proj.bias", ".query_key_value.bias")}
# transformers' defaults of fields a config.json may leave out, per family
CONFIG_DEFAULTS = {"tie_word_embeddings": False, "mlp_only_layers": [], "attention_bias": {"glm4": True},
                   "partial_rotary_factor": {"glm4": 0.5}, "decoder_sparse_step": 1}
# megatron's Llama-3 RoPE scaling constants (megatron.core.models.common.embeddings.rotary_pos_embedding)
LLAMA3_SCALING = {"low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}


@dataclass(frozen=True)
class Field:
    """A config field: its (dotted) path, the value the flags give it, the options that decide it."""

    path: str
    value: object
    flags: tuple[str, ...]
    compared: bool = True  # False: written into built configs, not held against checkpoints
    fact: bool = False  # not a config.json field: what the family's tensors show


@dataclass(frozen=True)
class Mismatch:
    path: str
    expected: object
    actual: object
    flags: tuple[str, ...]

    def message(self) -> str:
        return f"the checkpoint's {self.path} is {self.actual!r}, the flags give {self.expected!r}"


def _heads_kv(flags: dict) -> int:
    return flags["num_query_groups"] if flags.get("group_query_attention") else flags["num_attention_heads"]


def _rope_fields(flags: dict, model_type: str) -> list[Field]:
    """``rope_parameters``: the base and any scaling (Llama 3's, YaRN under multi-latent attention,
    linear interpolation)."""
    fields = [Field("rope_parameters.rope_theta", float(flags["rotary_base"]), ("--rotary-base",))]
    scaling = ("--use-rope-scaling", "--rotary-scaling-factor", "--rotary-seq-len-interpolation-factor")
    if flags.get("use_rope_scaling"):
        fields += [Field("rope_parameters.rope_type", "llama3", scaling),
                   Field("rope_parameters.factor", float(flags["rope_scaling_factor"]), ("--rope-scaling-factor",))]
        fields += [Field(f"rope_parameters.{key}", value, ("--use-rope-scaling",)) for key, value in LLAMA3_SCALING.items()]
    elif flags.get("multi_latent_attention") and (flags.get("rotary_scaling_factor") or 1.0) != 1.0:
        fields += [Field("rope_parameters.rope_type", "yarn", scaling),
                   Field("rope_parameters.factor", float(flags["rotary_scaling_factor"]), ("--rotary-scaling-factor",)),
                   Field("rope_parameters.mscale", float(flags["mscale"]), ("--mscale",)),
                   Field("rope_parameters.mscale_all_dim", float(flags["mscale_all_dim"]), ("--mscale-all-dim",))]
    elif flags.get("rotary_seq_len_interpolation_factor"):
        fields += [Field("rope_parameters.rope_type", "linear", scaling),
                   Field("rope_parameters.factor", float(flags["rotary_seq_len_interpolation_factor"]),
                         ("--rotary-seq-len-interpolation-factor",))]
    else:
        fields.append(Field("rope_parameters.rope_type", "default", scaling))
    if model_type == "glm4":
        fields.append(Field("rope_parameters.partial_rotary_factor", flags["rotary_percent"], ("--rotary-percent",)))
    return fields


def _moe_fields(flags: dict, model_type: str) -> list[Field]:
    pattern = moe_layer_pattern(flags["moe_layer_freq"], flags["num_layers"])
    experts = ("num_experts" if model_type == "qwen3_moe" else "n_routed_experts", flags["num_experts"])
    fields = [Field(experts[0], experts[1], ("--num-experts",)),
              Field("num_experts_per_tok", flags["moe_router_topk"], ("--moe-router-topk",)),
              Field("moe_intermediate_size", flags["moe_ffn_hidden_size"], ("--moe-ffn-hidden-size",)),
              Field("norm_topk_prob", True, (), compared=False)]
    shared = flags.get("moe_shared_expert_intermediate_size") or 0
    if model_type == "qwen3_moe":
        fields += [Field("mlp_only_layers", [i for i, moe in enumerate(pattern) if not moe], ("--moe-layer-freq",)),
                   Field("decoder_sparse_step", 1, ("--moe-layer-freq",)),
                   Field("shared_expert_intermediate_size", shared or None, ("--moe-shared-expert-intermediate-size",),
                         compared=bool(shared))]
    else:
        dense = pattern.index(1) if 1 in pattern else flags["num_layers"]
        fields += [Field("n_shared_experts", shared // flags["moe_ffn_hidden_size"],
                         ("--moe-shared-expert-intermediate-size", "--moe-ffn-hidden-size")),
                   Field("first_k_dense_replace", dense, ("--moe-layer-freq",)),
                   Field("n_group", flags.get("moe_router_num_groups") or 1, ("--moe-router-num-groups",)),
                   Field("topk_group", flags.get("moe_router_group_topk") or 1, ("--moe-router-group-topk",)),
                   Field("routed_scaling_factor", flags.get("moe_router_topk_scaling_factor") or 1.0,
                         ("--moe-router-topk-scaling-factor",))]
    return fields


def model_fields(flags: dict, model_type: str) -> list[Field]:
    """The config fields of ``model_type`` the flags (a ``vars(Namespace)``) decide."""
    if model_type not in FAMILIES:
        raise ValueError(f"model_type {model_type!r}: the flags are mapped for {', '.join(FAMILIES)}")
    mla = model_type == "deepseek_v3"
    head_dim = flags["qk_pos_emb_head_dim"] if mla else flags.get("kv_channels") or \
        flags["hidden_size"] // flags["num_attention_heads"]
    fields = [
        Field("vocab_size", flags["vocab_size"], ("--vocab-size",)),
        Field("hidden_size", flags["hidden_size"], ("--hidden-size",)),
        Field("intermediate_size", flags["ffn_hidden_size"], ("--ffn-hidden-size",)),
        Field("num_hidden_layers", flags["num_layers"], ("--num-layers",)),
        Field("num_attention_heads", flags["num_attention_heads"], ("--num-attention-heads",)),
        Field("num_key_value_heads", flags["num_attention_heads"] if mla else _heads_kv(flags),
              ("--num-query-groups", "--group-query-attention"), compared=not mla),
        Field("head_dim", head_dim, ("--qk-pos-emb-head-dim",) if mla else ("--kv-channels",), compared=not mla),
        Field("rms_norm_eps", flags["layernorm_epsilon"], ("--norm-epsilon",)),
        Field("tie_word_embeddings", not flags["untie_embeddings_and_output_weights"],
              ("--untie-embeddings-and-output-weights",)),
        Field("qk_norm", bool(flags.get("qk_layernorm")), ("--qk-layernorm",), fact=True),
        *_rope_fields(flags, model_type),
    ]
    qkv_bias = bool(flags.get("add_qkv_bias") or flags.get("add_bias_linear"))
    if model_type in ("llama", "glm4", "qwen3", "qwen3_moe"):
        fields.append(Field("attention_bias", qkv_bias, ("--add-qkv-bias", "--disable-bias-linear")))
    else:
        fields.append(Field("qkv_bias", qkv_bias, ("--add-qkv-bias", "--disable-bias-linear"), fact=True))
    if model_type == "llama":
        fields.append(Field("mlp_bias", bool(flags.get("add_bias_linear")), ("--disable-bias-linear",)))
    if model_type == "glm4":
        fields.append(Field("partial_rotary_factor", flags["rotary_percent"], ("--rotary-percent",)))
    if model_type in ("qwen3_moe", "deepseek_v3"):
        fields += _moe_fields(flags, model_type)
    if mla:
        fields += [Field("q_lora_rank", flags["q_lora_rank"], ("--q-lora-rank",)),
                   Field("kv_lora_rank", flags["kv_lora_rank"], ("--kv-lora-rank",)),
                   Field("qk_nope_head_dim", flags["qk_head_dim"], ("--qk-head-dim",)),
                   Field("qk_rope_head_dim", flags["qk_pos_emb_head_dim"], ("--qk-pos-emb-head-dim",)),
                   Field("v_head_dim", flags["v_head_dim"], ("--v-head-dim",)),
                   Field("rope_interleave", True, (), compared=False)]
    return fields


def hf_config_fields(flags: dict, model_type: str) -> dict:
    """transformers config fields of ``model_type`` for these flags (a ``vars(Namespace)``), nested."""
    config: dict = {}
    for field in model_fields(flags, model_type):
        if field.fact or field.value is None:
            continue
        *parents, leaf = field.path.split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = field.value
    return config


def _rope_of(config: dict) -> dict:
    """``rope_parameters`` as transformers 5 writes it, also from a transformers-4 config.json
    (``rope_theta`` beside ``rope_scaling``)."""
    if isinstance(config.get("rope_parameters"), dict):
        rope = dict(config["rope_parameters"])
    else:
        rope = {"rope_theta": config.get("rope_theta", 10000.0), **(config.get("rope_scaling") or {})}
    rope["rope_type"] = rope.get("rope_type") or rope.pop("type", None) or "default"
    if "partial_rotary_factor" in config and "partial_rotary_factor" not in rope:
        rope["partial_rotary_factor"] = config["partial_rotary_factor"]
    return rope


def _value_at(config: dict, path: str, model_type: str, tensors: list[str] | None):
    """The checkpoint's value of a field: config.json (with transformers' defaults and the tensor
    names for facts); ``KeyError`` when the checkpoint does not say."""
    if path in FAMILY_FACTS:
        if tensors is not None:
            return any(marker in name for name in tensors for marker in FACT_TENSORS[path])
        fact = FAMILY_FACTS[path][model_type]
        if fact is None:
            raise KeyError(path)
        return fact
    if path.startswith("rope_parameters."):
        rope = _rope_of(config)
        key = path.split(".", 1)[1]
        if key == "partial_rotary_factor" and key not in rope:
            return CONFIG_DEFAULTS["partial_rotary_factor"].get(model_type)
        return rope[key]
    if path in config:
        return config[path]
    if path == "head_dim":
        return config["hidden_size"] // config["num_attention_heads"]
    if path == "num_key_value_heads":
        return config["num_attention_heads"]
    default = CONFIG_DEFAULTS.get(path, KeyError)
    if isinstance(default, dict):
        default = default.get(model_type, False if path == "attention_bias" else KeyError)
    if default is KeyError:
        raise KeyError(path)
    return default


def _same(expected, actual) -> bool:
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return abs(float(expected) - float(actual)) <= 1e-9 * max(1.0, abs(float(expected)))
        except (TypeError, ValueError):
            return False
    return expected == actual


def checkpoint_mismatches(flags: dict, config: dict, tensors: list[str] | None = None) -> list[Mismatch]:
    """Every field where the flags and a checkpoint's ``config.json`` (its ``model_type`` names the
    family) disagree; ``tensors`` (the checkpoint's tensor names, when known) settle the facts. A
    field the flags leave unset (``None``) cannot disagree."""
    model_type = config.get("model_type")
    mismatches = []
    for field in model_fields(flags, model_type):
        if not field.compared or field.value is None:
            continue
        try:
            actual = _value_at(config, field.path, model_type, tensors)
        except KeyError:
            continue
        if field.fact and field.path == "qkv_bias" and model_type != "qwen2" and tensors is None:
            continue
        if not _same(field.value, actual):
            mismatches.append(Mismatch(field.path, field.value, actual, field.flags))
    return mismatches


def described_mismatches(args, folder) -> list[tuple[str, tuple[str, ...]]]:
    """(message, flags) for each field where the model flags (a Namespace) and the checkpoint in
    ``folder`` disagree; [] for a checkpoint of a family this table does not map, or model flags too
    incomplete to compare (the deep check says so)."""
    from slime.utils.hf_checkpoint import read_config, tensor_names
    from slime.model.parameters import padded_vocab

    config = read_config(folder)
    if config.get("model_type") not in FAMILIES:
        return []
    try:
        mismatches = checkpoint_mismatches(vars(args), config, tensor_names(folder))
    except (TypeError, KeyError):  # a model flag the table needs is unset
        return []
    described = []
    for mismatch in mismatches:
        message = f"{mismatch.message()} ({folder / 'config.json'})"
        if mismatch.path == "vocab_size":
            message += (f"; megatron pads the vocabulary to {padded_vocab(args):,} rows for tensor parallel "
                        f"{args.tensor_model_parallel_size}, but vocab_size must be the checkpoint's")
        described.append((message, mismatch.flags))
    return described
