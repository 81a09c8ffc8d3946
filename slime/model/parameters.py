"""How many parameters megatron-core's ``GPTModel`` holds on each rank, from the model flags and a topology.

Pure arithmetic over the Namespace (no torch), so the launch plan can show it; the formulas follow
the modules megatron-core 0.16 builds, which ``tests/model/test_parameters.py`` proves on tiny models by
building them with megatron on CPU and counting, at tensor parallel 1 and 2. docs/checks.md writes
the arithmetic out for Qwen3-4B and Qwen3-30B-A3B.

Per layer, with h the hidden size, a heads of dimension d, g key/value groups, f the FFN size,
t the tensor-parallel size:

- attention: the input norm (h, replicated), the fused QKV projection h·(a·d + 2·g·d)/t (with the
  output gate, --attention-output-gate, a·d more rows: h·(2·a·d + 2·g·d)/t), per-head query/key
  norms (d each, replicated), the output projection a·d·h/t; multi-latent attention instead has down
  projections (replicated under transformer-engine's spec, split by t under the local spec), their
  norms and up projections split by t;
- a Gated DeltaNet layer (linear attention: --experimental-attention-variant gated_delta_net, every
  layer but each --linear-attention-freq-th), in place of attention, with nk key heads of dk, nv
  value heads of dv and a convolution kernel K: the input norm h, the input projection
  h·(2·nk·dk + 2·nv·dv + 2·nv)/t (queries, keys, values, the output gate, β and the decay), the
  depth-wise convolution (2·nk·dk + nv·dv)·K/t, the decay's A_log and dt_bias nv/t each, the gated
  output norm dv (replicated), the output projection nv·dv·h/t;
- MLP: the pre-MLP norm (h), fc1 h·2f/t with SwiGLU (h·f/t without), fc2 f·h/t;
- MoE layer: the pre-MLP norm, the router E·h (replicated), E/ep local experts, each split by the
  expert tensor-parallel size, and the shared experts split by t;
- biases: a column-parallel bias is split by t, a row-parallel one (output size h) is not.

The first pipeline stage holds the vocabulary embedding (padded vocabulary/t rows), the last the
final norm and the output layer (also with tied embeddings when the stages differ: megatron keeps
a synchronised copy there).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from slime.arguments.arg_types import moe_layer_pattern
from slime.arguments.topology import Topology


@dataclass
class StageParameters:
    """The parameters one rank of a pipeline stage holds, by part; ``expert`` ones are sharded over
    expert parallelism and replicated over the expert data-parallel ranks, the rest over data-parallel."""

    stage: int
    layers: range
    parts: dict[str, int] = field(default_factory=dict)

    def add(self, part: str, count: int) -> None:
        self.parts[part] = self.parts.get(part, 0) + int(count)

    @property
    def expert(self) -> int:
        return self.parts.get("experts", 0)

    @property
    def dense(self) -> int:
        return self.total - self.expert

    @property
    def total(self) -> int:
        return sum(self.parts.values())


def padded_vocab(args: argparse.Namespace, tp: int | None = None) -> int:
    """Megatron-LM's padding: a multiple of --make-vocab-size-divisible-by × tensor-parallel size."""
    if args.padded_vocab_size:
        return args.padded_vocab_size
    multiple = args.make_vocab_size_divisible_by * (tp or args.tensor_model_parallel_size)
    return int(math.ceil(args.vocab_size / multiple) * multiple)


def head_dim(args: argparse.Namespace) -> int:
    return args.kv_channels or args.hidden_size // args.num_attention_heads


def query_groups(args: argparse.Namespace) -> int:
    return args.num_query_groups if args.group_query_attention else args.num_attention_heads


def _norm(args: argparse.Namespace, size: int) -> int:
    return size if args.normalization == "RMSNorm" else 2 * size


def _gate(args: argparse.Namespace) -> int:
    return 2 if args.swiglu else 1


def stage_layers(args: argparse.Namespace, pp: int) -> list[range]:
    """The decoder layers of each pipeline stage, as megatron's ``get_num_layers_to_build`` splits
    them (uneven first/last stages, the embedding or loss counted as a layer)."""
    layers, first, last = args.num_layers, args.decoder_first_pipeline_num_layers, args.decoder_last_pipeline_num_layers
    if pp == 1:
        return [range(layers)]
    if first is not None or last is not None:
        middle_stages = pp - (first is not None) - (last is not None)
        rest = layers - (first or 0) - (last or 0)
        per = rest // middle_stages if middle_stages > 0 else 0
        counts = [per] * pp
        if first is not None:
            counts[0] = first
        if last is not None:
            counts[-1] = last
    else:
        total = layers + bool(args.account_for_embedding_in_pipeline_split) + bool(args.account_for_loss_in_pipeline_split)
        counts = [total // pp] * pp
        if args.account_for_embedding_in_pipeline_split:
            counts[0] -= 1
        if args.account_for_loss_in_pipeline_split:
            counts[-1] -= 1
    starts = [sum(counts[:i]) for i in range(pp)]
    return [range(start, start + count) for start, count in zip(starts, counts)]


def _attention(args: argparse.Namespace, stage: StageParameters, topology: Topology) -> None:
    h, heads, t = args.hidden_size, args.num_attention_heads, topology.tp
    bias = bool(args.add_bias_linear)
    stage.add("norms", _norm(args, h))  # input_layernorm (transformer-engine fuses it into linear_qkv)
    if args.multi_latent_attention:
        qk, rope, v = args.qk_head_dim, args.qk_pos_emb_head_dim, args.v_head_dim
        # transformer-engine's spec keeps the down projections whole on every rank; the local spec splits them
        down = 1 if args.transformer_impl == "transformer_engine" else t
        if args.q_lora_rank is None:
            stage.add("attention", h * heads * (qk + rope) // t)
        else:
            stage.add("attention", h * args.q_lora_rank // down + args.q_lora_rank * heads * (qk + rope) // t)
            if args.qk_layernorm:
                stage.add("norms", _norm(args, args.q_lora_rank))
        stage.add("attention", h * (args.kv_lora_rank + rope) // down + args.kv_lora_rank * heads * (qk + v) // t)
        if args.qk_layernorm:
            stage.add("norms", _norm(args, args.kv_lora_rank))
        stage.add("attention", heads * v * h // t + (h if bias else 0))
    else:
        d, groups = head_dim(args), query_groups(args)
        qkv = heads * d * (2 if args.attention_output_gate else 1) + 2 * groups * d
        stage.add("attention", h * qkv // t + (qkv // t if bias or args.add_qkv_bias else 0))
        if args.qk_layernorm:
            stage.add("norms", 2 * _norm(args, d))
        stage.add("attention", heads * d * h // t + (h if bias else 0))
    if args.post_self_attn_layernorm:
        stage.add("norms", _norm(args, h))


def _linear_attention(args: argparse.Namespace, stage: StageParameters, topology: Topology) -> None:
    """megatron-core's GatedDeltaNet (``megatron.core.ssm.gated_delta_net``) and its layer's input norm."""
    h, t = args.hidden_size, topology.tp
    qk = args.linear_num_key_heads * args.linear_key_head_dim
    v, value_heads = args.linear_num_value_heads * args.linear_value_head_dim, args.linear_num_value_heads
    stage.add("norms", _norm(args, h) + args.linear_value_head_dim)  # the input norm, the gated output norm
    stage.add("linear_attention", h * (2 * qk + 2 * v + 2 * value_heads) // t)  # in_proj
    stage.add("linear_attention", (2 * qk + v) * args.linear_conv_kernel_dim // t)  # conv1d, no bias
    stage.add("linear_attention", 2 * value_heads // t)  # A_log, dt_bias
    stage.add("linear_attention", v * h // t)  # out_proj


def linear_attention_layers(args: argparse.Namespace) -> list[bool]:
    """Which layers are Gated DeltaNet layers, as megatron-core reads --linear-attention-freq: N makes
    every Nth layer (the 4th, 8th, … for 4) full attention and the others linear; a list gives 1 for linear."""
    freq = args.linear_attention_freq
    if args.experimental_attention_variant != "gated_delta_net" or freq is None:
        return [False] * args.num_layers
    if isinstance(freq, list):
        return [bool(x) for x in freq]
    return [(layer + 1) % freq != 0 for layer in range(args.num_layers)]


def _mlp(args: argparse.Namespace, ffn: int, t: int) -> int:
    """fc1 and fc2 of one MLP of hidden size ``ffn`` split ``t`` ways, with their biases."""
    h, gate = args.hidden_size, _gate(args)
    weights = h * gate * ffn // t + ffn * h // t
    return weights + (gate * ffn // t + h if args.add_bias_linear else 0)


def _feed_forward(args: argparse.Namespace, stage: StageParameters, topology: Topology, moe: bool) -> None:
    h = args.hidden_size
    stage.add("norms", _norm(args, h))  # pre_mlp_layernorm
    if moe:
        experts = args.num_experts
        stage.add("router", experts * h + (experts if args.add_bias_linear else 0))
        expert_ffn = args.moe_ffn_hidden_size or args.ffn_hidden_size or 4 * h
        stage.add("experts", experts // topology.ep * _mlp(args, expert_ffn, topology.etp))
        if args.moe_shared_expert_intermediate_size:
            stage.add("shared_experts", _mlp(args, args.moe_shared_expert_intermediate_size, topology.tp))
            if args.moe_shared_expert_gate:
                stage.add("shared_experts", h)
    else:
        stage.add("mlp", _mlp(args, args.ffn_hidden_size or 4 * h, topology.tp))
    if args.post_mlp_layernorm:
        stage.add("norms", _norm(args, h))


def moe_layers(args: argparse.Namespace) -> list[bool]:
    if not args.num_experts:
        return [False] * args.num_layers
    return [bool(x) for x in moe_layer_pattern(args.moe_layer_freq, args.num_layers)]


def stage_parameters(args: argparse.Namespace, topology: Topology, stage: int, role: str = "actor") -> StageParameters:
    """The parameters one rank of pipeline stage ``stage`` holds under ``topology``; the critic has a
    value head (h + 1, replicated) in place of the output layer."""
    layers = stage_layers(args, topology.pp)[stage]
    result = StageParameters(stage, layers)
    h, first, last = args.hidden_size, stage == 0, stage == topology.pp - 1
    vocab_rows = padded_vocab(args, topology.tp) // topology.tp
    tied = not args.untie_embeddings_and_output_weights and role != "critic"
    if first:
        result.add("embedding", vocab_rows * h)
        if args.position_embedding_type == "learned_absolute" and not args.use_rotary_position_embeddings:
            result.add("embedding", (args.max_position_embeddings or args.seq_length) * h)
    pattern, linear = moe_layers(args), linear_attention_layers(args)
    for layer in layers:
        (_linear_attention if linear[layer] else _attention)(args, result, topology)
        _feed_forward(args, result, topology, pattern[layer])
    if last:
        result.add("norms", _norm(args, h))  # final_layernorm
        if role == "critic":
            result.add("output_layer", h + 1)
        elif not tied or not first:
            result.add("output_layer", vocab_rows * h)
    return result


def rank_parameters(args: argparse.Namespace, role: str = "actor") -> list[StageParameters]:
    """One entry per pipeline stage: what each of its ranks holds at the Namespace's topology."""
    topology = Topology.of(args, role)
    return [stage_parameters(args, topology, stage, role) for stage in range(topology.pp)]


def model_parameters(args: argparse.Namespace) -> int:
    """The whole model's parameters (one rank, no parallelism; the vocabulary padded as for TP 1)."""
    return stage_parameters(args, Topology(), 0).total


def active_parameters(args: argparse.Namespace) -> int:
    """Parameters one token passes through: the routed experts count for top-k of them."""
    total = stage_parameters(args, Topology(), 0)
    if not args.num_experts:
        return total.total
    per_expert = total.expert // (args.num_experts * sum(moe_layers(args)))
    return total.total - total.expert + per_expert * args.moe_router_topk * sum(moe_layers(args))
