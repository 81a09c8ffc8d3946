"""HF ↔ megatron-core weights: names, layouts and tensor-parallel shards.

A *full* megatron tensor is the unsharded parameter in megatron's own layout; the mapping turns it
into the HF checkpoint's tensors (the names ``save_pretrained`` writes, which SGLang loads) and back:

- ``linear_qkv``: HF's q, k, v projections interleaved per query group, megatron's GQA layout
  ``[group][q heads of the group, k, v]`` (weights and Qwen2's biases);
- ``linear_fc1`` of a SwiGLU MLP (dense, expert or shared expert): ``[gate; up]``;
- embeddings and the LM head: HF's vocabulary padded with zero rows to megatron's padded size;
- MLA (DeepSeek-V3): ``linear_kv_down_proj`` is HF's ``kv_a_proj_with_mqa``, its norm
  ``kv_a_layernorm``, the up-projections one to one;
- everything else one to one, including the transformer-engine spec's fused norm weights
  (``linear_qkv.layer_norm_weight`` is the input norm, ``linear_fc1.layer_norm_weight`` the pre-MLP
  norm) and GLM-4's sandwich norms.

Tensor-parallel shards follow megatron's own parameter attributes (``tensor_model_parallel``,
``partition_dim``): a rank's shard is its chunk of the full tensor along that dimension, except
SwiGLU's ``linear_fc1``, whose shard is ``[gate chunk; up chunk]``.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Callable

import torch

from slime.model.hf_config import FAMILIES

# each family of FAMILIES has a tiny model (tools/make_tiny_model.py) whose megatron logits are tested
# against HF's; FAMILIES lives with the light config checks, which name an unmapped model before the cluster
COPY, QKV, GATE_UP, VOCAB = "copy", "qkv", "gate_up", "vocab"
LAYER = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")


@dataclass(frozen=True)
class Rule:
    megatron: str  # regex over the name inside a layer (or the whole name outside layers)
    kind: str
    hf: tuple[str, ...]  # HF names; {layer} and {expert} are filled in


def _rules(*rows) -> list[Rule]:
    return [Rule(pattern, kind, tuple(hf)) for pattern, kind, hf in rows]


_EXPERT_FC1 = ["mlp.experts.{expert}.gate_proj.weight", "mlp.experts.{expert}.up_proj.weight"]
_EXPERT_FC2 = ["mlp.experts.{expert}.down_proj.weight"]

GLOBAL_RULES = _rules(
    (r"embedding\.word_embeddings\.weight", VOCAB, ["model.embed_tokens.weight"]),
    (r"decoder\.final_layernorm\.weight", COPY, ["model.norm.weight"]),
    (r"output_layer\.weight", VOCAB, ["lm_head.weight"]),
)

ATTENTION_RULES = _rules(
    (r"input_layernorm\.weight", COPY, ["input_layernorm.weight"]),
    (r"self_attention\.linear_qkv\.layer_norm_weight", COPY, ["input_layernorm.weight"]),
    (r"self_attention\.linear_qkv\.weight", QKV,
     ["self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"]),
    (r"self_attention\.linear_qkv\.bias", QKV, ["self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"]),
    (r"self_attention\.q_layernorm\.weight", COPY, ["self_attn.q_norm.weight"]),
    (r"self_attention\.k_layernorm\.weight", COPY, ["self_attn.k_norm.weight"]),
    (r"self_attention\.linear_proj\.weight", COPY, ["self_attn.o_proj.weight"]),
)

MLA_RULES = _rules(
    (r"input_layernorm\.weight", COPY, ["input_layernorm.weight"]),
    (r"self_attention\.linear_q_proj\.weight", COPY, ["self_attn.q_proj.weight"]),
    (r"self_attention\.linear_q_down_proj\.weight", COPY, ["self_attn.q_a_proj.weight"]),
    (r"self_attention\.q_layernorm\.weight", COPY, ["self_attn.q_a_layernorm.weight"]),
    (r"self_attention\.linear_q_up_proj\.layer_norm_weight", COPY, ["self_attn.q_a_layernorm.weight"]),
    (r"self_attention\.linear_q_up_proj\.weight", COPY, ["self_attn.q_b_proj.weight"]),
    (r"self_attention\.linear_kv_down_proj\.weight", COPY, ["self_attn.kv_a_proj_with_mqa.weight"]),
    (r"self_attention\.kv_layernorm\.weight", COPY, ["self_attn.kv_a_layernorm.weight"]),
    (r"self_attention\.linear_kv_up_proj\.layer_norm_weight", COPY, ["self_attn.kv_a_layernorm.weight"]),
    (r"self_attention\.linear_kv_up_proj\.weight", COPY, ["self_attn.kv_b_proj.weight"]),
    (r"self_attention\.linear_proj\.weight", COPY, ["self_attn.o_proj.weight"]),
)

MLP_RULES = _rules(
    (r"pre_mlp_layernorm\.weight", COPY, ["post_attention_layernorm.weight"]),
    (r"mlp\.linear_fc1\.layer_norm_weight", COPY, ["post_attention_layernorm.weight"]),
    (r"mlp\.linear_fc1\.weight", GATE_UP, ["mlp.gate_proj.weight", "mlp.up_proj.weight"]),
    (r"mlp\.linear_fc2\.weight", COPY, ["mlp.down_proj.weight"]),
    (r"mlp\.router\.weight", COPY, ["mlp.gate.weight"]),
    (r"mlp\.router\.expert_bias", COPY, ["mlp.gate.e_score_correction_bias"]),
    # SequentialMLP experts (local spec) and TEGroupedMLP experts (transformer-engine spec)
    (r"mlp\.experts\.local_experts\.(?P<expert>\d+)\.linear_fc1\.weight", GATE_UP, _EXPERT_FC1),
    (r"mlp\.experts\.linear_fc1\.weight(?P<expert>\d+)", GATE_UP, _EXPERT_FC1),
    (r"mlp\.experts\.local_experts\.(?P<expert>\d+)\.linear_fc2\.weight", COPY, _EXPERT_FC2),
    (r"mlp\.experts\.linear_fc2\.weight(?P<expert>\d+)", COPY, _EXPERT_FC2),
)

# DeepSeek-V3's shared experts (ungated, named in the plural)
SHARED_EXPERT_RULES = _rules(
    (r"mlp\.shared_experts\.linear_fc1\.weight", GATE_UP,
     ["mlp.shared_experts.gate_proj.weight", "mlp.shared_experts.up_proj.weight"]),
    (r"mlp\.shared_experts\.linear_fc2\.weight", COPY, ["mlp.shared_experts.down_proj.weight"]),
)

GLM4_RULES = _rules(
    (r"mlp\.linear_fc1\.weight", COPY, ["mlp.gate_up_proj.weight"]),  # HF keeps [gate; up] fused too
    (r"self_attention\.post_self_attn_layernorm\.weight", COPY, ["post_self_attn_layernorm.weight"]),
    (r"mlp\.post_mlp_layernorm\.weight", COPY, ["post_mlp_layernorm.weight"]),
)


def family_problem(model_type: str | None) -> str | None:
    """Why the megatron backend cannot map the weights of an HF model of ``model_type``; None if it can."""
    if model_type in FAMILIES:
        return None
    return (f"HF model_type {model_type!r} has no HF ↔ megatron weight mapping: the megatron backend maps "
            f"{', '.join(FAMILIES)} (slime/backends/megatron/hf_mapping.py)")


class UnmappedWeight(KeyError):
    """A megatron parameter (or HF tensor) the mapping of this model family does not cover."""


class HFMapping:
    """The mapping of one model: its family's rules and the shapes that the layouts need."""

    def __init__(self, args: argparse.Namespace, model_type: str):
        problem = family_problem(model_type)
        if problem:
            raise ValueError(problem)
        self.model_type = model_type
        self.heads = args.num_attention_heads
        self.groups = args.num_query_groups if args.group_query_attention else args.num_attention_heads
        self.head_dim = args.kv_channels or args.hidden_size // args.num_attention_heads
        self.vocab_size = args.vocab_size
        attention = MLA_RULES if args.multi_latent_attention else ATTENTION_RULES
        family = GLM4_RULES if model_type == "glm4" else []
        self.layer_rules = family + attention + MLP_RULES + SHARED_EXPERT_RULES  # the first match wins

    # -- names ----------------------------------------------------------------------------------
    def rule(self, name: str) -> tuple[Rule, list[str]]:
        """The rule of a global megatron parameter name and the HF names it maps to."""
        layer = LAYER.match(name)
        rules, inner, prefix = (self.layer_rules, layer.group(2), f"model.layers.{layer.group(1)}.") if layer else \
            (GLOBAL_RULES, name, "")
        for rule in rules:
            match = re.fullmatch(rule.megatron, inner)
            if match:
                fields = match.groupdict()
                return rule, [prefix + hf.format(**fields) for hf in rule.hf]
        raise UnmappedWeight(f"no HF name for megatron parameter {name!r} ({self.model_type})")

    # -- layouts --------------------------------------------------------------------------------
    def to_hf(self, name: str, full: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        rule, hf_names = self.rule(name)
        if rule.kind == COPY:
            return [(hf_names[0], full)]
        if rule.kind == VOCAB:
            return [(hf_names[0], full[:self.vocab_size])]
        if rule.kind == GATE_UP:
            gate, up = full.chunk(2, dim=0)
            return [(hf_names[0], gate), (hf_names[1], up)]
        q, k, v = self._split_qkv(full)
        return [(hf_names[0], q), (hf_names[1], k), (hf_names[2], v)]

    def from_hf(self, name: str, read: Callable[[str], torch.Tensor], padded_rows: int | None = None) -> torch.Tensor:
        """The full megatron tensor of ``name`` from HF tensors (``read(hf_name)``); ``padded_rows``
        is megatron's padded vocabulary for the VOCAB tensors."""
        rule, hf_names = self.rule(name)
        tensors = [read(hf) for hf in hf_names]
        if rule.kind == COPY:
            return tensors[0]
        if rule.kind == VOCAB:
            rows = tensors[0]
            if padded_rows is not None and padded_rows > rows.shape[0]:
                rows = torch.cat([rows, rows.new_zeros(padded_rows - rows.shape[0], *rows.shape[1:])])
            return rows
        if rule.kind == GATE_UP:
            return torch.cat(tensors, dim=0)
        return self._merge_qkv(*tensors)

    def _split_qkv(self, full: torch.Tensor):
        per_group = self.heads // self.groups
        grouped = full.reshape(self.groups, per_group + 2, self.head_dim, *full.shape[1:])
        q = grouped[:, :per_group].reshape(self.heads * self.head_dim, *full.shape[1:])
        k = grouped[:, per_group].reshape(self.groups * self.head_dim, *full.shape[1:])
        v = grouped[:, per_group + 1].reshape(self.groups * self.head_dim, *full.shape[1:])
        return q, k, v

    def _merge_qkv(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        per_group = self.heads // self.groups
        rest = q.shape[1:]
        q = q.reshape(self.groups, per_group, self.head_dim, *rest)
        k = k.reshape(self.groups, 1, self.head_dim, *rest)
        v = v.reshape(self.groups, 1, self.head_dim, *rest)
        return torch.cat([q, k, v], dim=1).reshape(-1, *rest)


# -- tensor-parallel shards -------------------------------------------------------------------
def is_sharded(param: torch.Tensor) -> bool:
    return bool(getattr(param, "tensor_model_parallel", False))


def _is_gated_fc1(name: str, gated: bool) -> bool:
    return gated and (name.endswith("linear_fc1.weight") or re.search(r"linear_fc1\.weight\d+$", name) is not None)


def shard(name: str, full: torch.Tensor, param: torch.Tensor, rank: int, size: int, gated: bool) -> torch.Tensor:
    """This rank's shard of a full megatron tensor, shaped like ``param``."""
    if not is_sharded(param) or size == 1:
        return full
    dim = param.partition_dim
    if _is_gated_fc1(name, gated):
        gate, up = full.chunk(2, dim=dim)
        return torch.cat([gate.chunk(size, dim=dim)[rank], up.chunk(size, dim=dim)[rank]], dim=dim)
    return full.chunk(size, dim=dim)[rank]


def unshard(name: str, pieces: list[torch.Tensor], param: torch.Tensor, gated: bool) -> torch.Tensor:
    """The full megatron tensor from every tensor-parallel rank's shard, in rank order."""
    if not is_sharded(param) or len(pieces) == 1:
        return pieces[0]
    dim = param.partition_dim
    if _is_gated_fc1(name, gated):
        halves = [piece.chunk(2, dim=dim) for piece in pieces]
        return torch.cat([h[0] for h in halves] + [h[1] for h in halves], dim=dim)
    return torch.cat(pieces, dim=dim)
