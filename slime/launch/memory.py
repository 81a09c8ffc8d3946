"""Memory per GPU of a launch plan, estimated from the flags before a cluster is booked.

Pure arithmetic over the Namespace (no torch); docs/checks.md lays it out. Per GPU of a train role
(each pipeline stage; the plan shows the fullest):

- weights: the rank's parameters (``slime.model.parameters``) × 2 bytes in bf16 (4 in fp32);
- gradients: megatron's gradient buffer, the same count × 4 bytes with
  --accumulate-allreduce-grads-in-fp32 (else the parameters' dtype);
- optimizer: Adam's fp32 main parameters and two moments (their dtypes with the precision-aware
  optimizer), split over the data-parallel × context-parallel ranks (expert parameters over the
  expert data-parallel ranks) by the distributed optimizer, less the share
  --optimizer-cpu-offload moves to the CPU (--optimizer-offload-fraction);
- activations: what one micro-batch (--max-tokens-per-gpu tokens, or --micro-batch-size samples of
  the longest prompt and response) keeps for the backward pass, layer by layer (attention or Gated
  DeltaNet, MLP or MoE), under the recompute settings and sequence parallelism, times the
  micro-batches 1F1B keeps in flight on a pipeline stage; the actor's last stage adds the
  log-probability head over the vocabulary (the critic's value head is one number per token);
- --train-memory-margin-bytes, which slime keeps free.

Per GPU of a rollout engine, as SGLang sizes it: it takes --sglang-mem-fraction-static of the memory
free when it starts (--gpu-memory-gib less its own CUDA context and buffers, --gpu-context-gib:
colocated, the engines start before the trainers) for the weights (bf16, or one byte for the linear
layers' weights with an 8-bit --sglang-quantization such as DeepSeek-R1's block FP8) and the KV cache,
counted in tokens of the full-attention layers. Every process on a GPU keeps --gpu-context-gib
whatever it releases. Colocated, training and rollout take turns on the same GPUs: with both offloads
the peak is the larger of the two sides, each with what the other leaves behind; without one they add
up. A critic on the actor's GPUs (--critic-placement with-actor) trains beside the actor. A GPU
needing more than --gpu-memory-gib, or an engine whose weights leave no room for a KV cache, is
"over": the plan warns, and the deep check fails naming the role, the figure and the flags that lower it.

Not counted: allocator fragmentation, SGLang's CUDA graphs and activations (in the memory outside
its static fraction), Gated DeltaNet's per-request recurrent state.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field

from slime.arguments.role_overrides import role_args
from slime.arguments.topology import Topology, critic_with_actor
from slime.backends.megatron.defaults import gpu_defaults
from slime.engines.command import engine_tp_size
from slime.model.parameters import (active_parameters, head_dim, linear_attention_layers, model_parameters,
                                    moe_layers, padded_vocab, query_groups, stage_parameters)

GIB = 1024**3
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}
# bytes per vocabulary entry and token of the log-probability head (slime.backends.megatron.log_probs):
# the bf16 logits, then in fp32 the tempered logits, their shifted copy, its exponential and the
# entropy's product, alive together in the forward pass
HEAD_BYTES = 2 + 4 * 4
# SGLang's 8-bit weight formats: the linear layers' weights in one byte each (block-wise FP8 adds an fp32
# scale per 128 × 128 block); embeddings, norms, routers and the output layer stay in bf16
EIGHT_BIT = ("fp8", "mxfp8", "modelopt_fp8", "w8a8_fp8", "w8a8_int8")
QUANTIZED_PARTS = ("attention", "linear_attention", "mlp", "shared_experts", "experts")
FP8_BYTES = 1 + 4 / (128 * 128)


@dataclass
class TrainMemory:
    """Bytes on one GPU of a train role's pipeline stage."""

    role: str
    stage: int
    parameters: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    margin: int
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer + self.activations + self.margin

    @property
    def resident(self) -> int:
        """What stays on the GPU between steps (weights, gradients, optimizer)."""
        return self.weights + self.gradients + self.optimizer


@dataclass
class EngineMemory:
    """Bytes on one GPU of a rollout engine."""

    static: int | None  # --sglang-mem-fraction-static × the memory free at start: weights and KV cache
    weights: int
    kv_cache: int | None
    kv_token_bytes: int
    kv_tokens: int | None  # per KV pool (one per attention data-parallel group)
    free_at_start: int = 0  # --gpu-memory-gib less the engine's own CUDA context and buffers
    weight_format: str = "bf16"
    notes: list[str] = field(default_factory=list)


def _gib(value: float) -> str:
    return f"{value / GIB:.1f} GiB"


def on_gpus(args: argparse.Namespace) -> bool:
    """Whether the run is written for GPUs (SGLang engines) rather than the CPU path (the torch engine)."""
    return args.rollout_backend == "sglang"


def tokens_per_micro_batch(args: argparse.Namespace) -> tuple[int, list[str]]:
    """Tokens one GPU holds in one micro-batch, and what that assumes."""
    if args.use_dynamic_batch_size:
        return args.max_tokens_per_gpu, []
    notes = []
    longest = args.rollout_max_context_len
    if not longest:
        prompt = args.rollout_max_prompt_len
        if not prompt:
            notes.append("activations assume prompts of at most --rollout-max-response-len tokens "
                         "(set --rollout-max-prompt-len to bound them)")
        longest = (prompt or args.rollout_max_response_len or 0) + (args.rollout_max_response_len or 0)
    return max(1, args.micro_batch_size * longest // args.context_parallel_size), notes


def _attention_elements(args: argparse.Namespace, t: int, replicated: float) -> float:
    """Elements per token one attention block keeps for the backward pass on one tensor-parallel rank."""
    h, heads = args.hidden_size, args.num_attention_heads
    kept = 2 * h * replicated  # the input norm's input and the projections' input
    if args.multi_latent_attention:
        qk, rope, v = args.qk_head_dim, args.qk_pos_emb_head_dim, args.v_head_dim
        latent = (args.q_lora_rank or 0) + args.kv_lora_rank + rope
        kept += 2 * latent  # the down projections' outputs and their norms' outputs
        kept += heads * (2 * (qk + rope) + v) / t + heads * v / t  # q, k, v, then the attention output
    else:
        d, groups = head_dim(args), query_groups(args)
        q, kv = heads * d / t, 2 * d * max(groups / t, 1)
        kept += q + kv + q  # q, k, v, then the attention output
        if args.qk_layernorm:
            kept += q + kv / 2
        if args.attention_output_gate:
            kept += 2 * q  # the gate, and the gated output
    kept += 2 * heads / t  # flash attention's fp32 log-sum-exp, in 2-byte units
    return kept


def _linear_attention_elements(args: argparse.Namespace, t: int, replicated: float) -> float:
    """Elements per token one Gated DeltaNet block keeps for the backward pass on one tensor-parallel rank:
    the input projection's output, the convolution's, queries and keys repeated to the value heads, β and
    the decay in fp32, the delta rule's output and the gated norm's (the chunked kernel's states are
    recomputed)."""
    qk = args.linear_num_key_heads * args.linear_key_head_dim
    value_heads = args.linear_num_value_heads
    v = value_heads * args.linear_value_head_dim
    kept = 2 * args.hidden_size * replicated  # the input norm's input and the projection's input
    kept += (2 * qk + 2 * v + 2 * value_heads) / t + (2 * qk + v) / t
    kept += 2 * value_heads * args.linear_key_head_dim / t + 2 * 2 * value_heads / t + 2 * v / t
    return kept


def _mlp_elements(args: argparse.Namespace, ffn: int, t: int) -> float:
    gate = 2 if args.swiglu else 1
    return gate * ffn / t + ffn / t  # fc1's output (the activation's input) and fc2's input


def _feed_forward_elements(args: argparse.Namespace, topology: Topology, replicated: float, moe: bool) -> float:
    h = args.hidden_size
    kept = 2 * h * replicated  # the pre-MLP norm's input and fc1's (or the router's) input
    if not moe:
        return kept + _mlp_elements(args, args.ffn_hidden_size or 4 * h, topology.tp)
    topk, experts = args.moe_router_topk, args.num_experts
    expert_ffn = args.moe_ffn_hidden_size or args.ffn_hidden_size or 4 * h
    # each token's top-k copies: the experts' inputs, their MLPs, their outputs (for the weighted sum)
    kept += replicated * (2 * experts + topk * (2 * h + _mlp_elements(args, expert_ffn, topology.etp)))
    if args.moe_shared_expert_intermediate_size:
        kept += _mlp_elements(args, args.moe_shared_expert_intermediate_size, topology.tp)
    return kept


def layer_activation_bytes(args: argparse.Namespace, topology: Topology, moe: bool, linear: bool = False) -> float:
    """Bytes per token one transformer layer keeps for the backward pass on one GPU (bf16)."""
    replicated = 1 / topology.tp if args.sequence_parallel and topology.tp > 1 else 1
    mixer = _linear_attention_elements if linear else _attention_elements
    elements = mixer(args, topology.tp, replicated) + _feed_forward_elements(args, topology, replicated, moe)
    dropout_masks = 2 * args.hidden_size * replicated / 2 if args.hidden_dropout else 0  # two 1-byte masks
    return 2 * (elements + dropout_masks)


def activation_bytes(args: argparse.Namespace, topology: Topology, stage: int, tokens: int, role: str = "actor") -> int:
    """One GPU of pipeline stage ``stage``: the micro-batches in flight under 1F1B, each keeping its
    layers' activations (or, with full recompute, the checkpointed inputs and one recomputed chunk); the
    actor's last stage also its log-probability head (the critic has none: its head is one value)."""
    stage_info = stage_parameters(args, topology, stage)
    pattern, linear = moe_layers(args), linear_attention_layers(args)
    per_layer = [layer_activation_bytes(args, topology, pattern[i], linear[i]) for i in stage_info.layers]
    replicated = 1 / topology.tp if args.sequence_parallel and topology.tp > 1 else 1
    checkpoint = 2 * args.hidden_size * replicated  # a layer's input, the unit full recompute keeps
    n = args.recompute_num_layers or 1
    if args.recompute_granularity == "full" and args.recompute_method == "uniform":
        kept = math.ceil(len(per_layer) / n) * checkpoint
        recomputing = max((sum(per_layer[i:i + n]) for i in range(0, len(per_layer), n)), default=0)
    elif args.recompute_granularity == "full" and args.recompute_method == "block":
        kept = min(n, len(per_layer)) * checkpoint + sum(per_layer[n:])
        recomputing = max(per_layer[:n], default=0)
    else:  # none, or selective (attention's core, which flash attention does not keep anyway)
        kept, recomputing = sum(per_layer), 0
    in_flight = topology.pp - stage
    total = tokens * (kept * in_flight + recomputing)
    if stage == topology.pp - 1 and role != "critic":  # the log-probability head over this rank's vocabulary
        total += tokens * padded_vocab(args, topology.tp) // topology.tp * HEAD_BYTES
    return int(total)


def _optimizer_bytes_per_parameter(args: argparse.Namespace, weight_bytes: int) -> int:
    precise = args.use_precision_aware_optimizer
    main = BYTES[args.main_params_dtype] if precise else 4
    main = main if weight_bytes < 4 else 0  # fp32 training updates the weights themselves
    if args.optimizer == "sgd":
        return main + (4 if args.sgd_momentum else 0)
    moments = (BYTES[args.exp_avg_dtype] + BYTES[args.exp_avg_sq_dtype]) if precise else 8
    return main + moments


def train_memory(args: argparse.Namespace, role: str = "actor") -> list[TrainMemory]:
    """Per pipeline stage, the bytes on one GPU of ``role``."""
    a = role_args(args, role)
    if on_gpus(a):
        a = gpu_defaults(a)
    topology = Topology.of(a, role)
    dense_shards = topology.dp * topology.cp if a.use_distributed_optimizer else 1
    expert_shards = topology.expert_dp if a.use_distributed_optimizer else 1
    weight_bytes = 2 if (a.bf16 or a.fp16) else 4
    grad_bytes = 4 if a.accumulate_allreduce_grads_in_fp32 else weight_bytes
    per_parameter = _optimizer_bytes_per_parameter(a, weight_bytes)
    on_gpu_share = 1 - (a.optimizer_offload_fraction if a.optimizer_cpu_offload else 0)
    tokens, notes = tokens_per_micro_batch(a)
    result = []
    for stage in range(topology.pp):
        counts = stage_parameters(a, topology, stage, role)
        optimizer = per_parameter * (counts.dense / dense_shards + counts.expert / expert_shards) * on_gpu_share
        result.append(TrainMemory(role, stage, counts.total, counts.total * weight_bytes, counts.total * grad_bytes,
                                  int(optimizer), activation_bytes(a, topology, stage, tokens, role),
                                  a.train_memory_margin_bytes, list(notes)))
    return result


def engine_weight_format(args: argparse.Namespace) -> str:
    """The weights' format in the engine: 8-bit with an 8-bit --sglang-quantization (DeepSeek-R1's
    checkpoint: block-wise FP8, which SGLang serves as it is), else bf16."""
    return "fp8" if args.sglang_quantization in EIGHT_BIT else "bf16"


def engine_memory(args: argparse.Namespace) -> EngineMemory:
    """One GPU of one rollout engine: the weights split over its GPUs (dense ones over the attention
    tensor-parallel size, experts over all of an engine stage's GPUs, layers over its pipeline stages),
    the KV cache in what --sglang-mem-fraction-static of the memory free at its start leaves."""
    tp, pp = engine_tp_size(args), args.sglang_pp_size
    dp = args.sglang_dp_size if args.sglang_enable_dp_attention else 1
    attention_tp = max(1, tp // dp)
    whole = stage_parameters(args, Topology(), 0)
    fmt = engine_weight_format(args)
    weights = 0.0
    for part, count in whole.parts.items():
        per_parameter = FP8_BYTES if fmt == "fp8" and part in QUANTIZED_PARTS else 2
        weights += count * per_parameter / ((tp if part == "experts" else attention_tp) * pp)
    kv_bytes = 1 if "fp8" in str(args.sglang_kv_cache_dtype) else 2
    layers = -(-(args.num_layers - sum(linear_attention_layers(args))) // pp)  # full attention: the KV cache
    if args.multi_latent_attention:  # one compressed latent and the rotary key per token, on every GPU
        per_token = layers * (args.kv_lora_rank + args.qk_pos_emb_head_dim) * kv_bytes
    else:
        per_token = layers * 2 * max(query_groups(args) // attention_tp, 1) * head_dim(args) * kv_bytes
    free = int((args.gpu_memory_gib - args.gpu_context_gib) * GIB)
    fraction = args.sglang_mem_fraction_static
    if fraction is None:
        return EngineMemory(None, int(weights), None, per_token, None, free, fmt,
                            ["--sglang-mem-fraction-static is unset: SGLang sizes the KV cache at start-up"])
    static = fraction * free
    kv_cache = static - weights
    return EngineMemory(int(static), int(weights), int(kv_cache), per_token, max(0, int(kv_cache // per_token)),
                        free, fmt)


def _longest_request(args: argparse.Namespace) -> int:
    return args.rollout_max_context_len or (args.rollout_max_prompt_len or 0) + (args.rollout_max_response_len or 0)


# the model flags the estimate cannot do without (megatron can take the vocabulary from the tokenizer at
# run time, but the plan is made before)
NEEDED = ("num_layers", "hidden_size", "num_attention_heads", "vocab_size")


def missing_model_flags(args: argparse.Namespace) -> list[str]:
    return [f"--{name.replace('_', '-')}" for name in NEEDED if not getattr(args, name, None)]


# What lowers each part of a train GPU's memory, and the rollout engines' share of a GPU.
_LOWERS = {
    "activations": ("--max-tokens-per-gpu", "--recompute-granularity", "--context-parallel-size"),
    "optimizer": ("--use-distributed-optimizer", "--optimizer-cpu-offload"),
    "weights": ("--tensor-model-parallel-size", "--pipeline-model-parallel-size"),
    "gradients": ("--tensor-model-parallel-size", "--pipeline-model-parallel-size"),
}
_LOWERS_ENGINE = ("--sglang-mem-fraction-static", "--rollout-num-gpus-per-engine")
_LOWERS_SHARED = ("--offload-train", "--offload-rollout")


def _train_knobs(args: argparse.Namespace, role: str, memory: TrainMemory, shared: bool) -> list[str]:
    """The flags that lower a train GPU's need, those of its largest parts first; switches already on
    (full recompute, the distributed optimizer, an offload) are left out."""
    a = role_args(args, role)
    a = gpu_defaults(a) if on_gpus(a) else a
    parts = sorted(_LOWERS, key=lambda part: -getattr(memory, part))
    knobs = [flag for part in parts for flag in _LOWERS[part]]
    if not a.use_dynamic_batch_size:
        knobs[knobs.index("--max-tokens-per-gpu")] = "--micro-batch-size"
    if a.num_experts:
        knobs.insert(knobs.index("--tensor-model-parallel-size"), "--expert-model-parallel-size")
    if shared:
        knobs += [*_LOWERS_SHARED, "--sglang-mem-fraction-static"]
    if a.optimizer_cpu_offload:
        knobs[knobs.index("--optimizer-cpu-offload")] = "--optimizer-offload-fraction"
    on = {"--recompute-granularity": a.recompute_granularity == "full",
          "--use-distributed-optimizer": a.use_distributed_optimizer,
          "--optimizer-offload-fraction": a.optimizer_offload_fraction >= 1,
          "--offload-train": a.offload_train, "--offload-rollout": a.offload_rollout}
    return [flag for flag in dict.fromkeys(knobs) if not on.get(flag)]


def _over(what: str, needs: str, knobs) -> dict:
    """A GPU (or an engine) the estimate says cannot hold what it is given: the message and its knobs."""
    return {"message": f"{what} {needs}; lower it with {', '.join(knobs)}", "knobs": list(knobs)}


def _peaks(args: argparse.Namespace, worst: dict[str, TrainMemory], engine: EngineMemory | None) -> dict:
    """The most each kind of GPU holds at once, by its first role: the actor's GPUs (with the critic on them,
    --critic-placement with-actor, and the engines when colocated), a critic's own, a rollout GPU's. Every
    process on a GPU keeps --gpu-context-gib; a side offloaded while the other works leaves only that."""
    context = args.gpu_context_gib * GIB
    engine_static = (engine.static or engine.weights) if engine is not None else 0
    on_actor = [worst[role] for role in ("actor", "critic") if role in worst
                and (role == "actor" or critic_with_actor(args))]
    peaks = {}
    if on_actor:
        training = sum(m.total for m in on_actor) + context * len(on_actor)
        if args.colocate and engine is not None:
            rollout = context + engine_static + context * len(on_actor)
            rollout += 0 if args.offload_train else sum(m.resident for m in on_actor)
            training += context + (0 if args.offload_rollout else engine_static)
            peaks["actor"] = max(training, rollout)
        else:
            peaks["actor"] = training
    if "critic" in worst and not critic_with_actor(args):
        peaks["critic"] = worst["critic"].total + context
    if engine is not None and not args.colocate:
        peaks["rollout"] = context + engine_static
    return {role: int(peak) for role, peak in peaks.items()}


def _shared_with(args: argparse.Namespace, role: str, engine: EngineMemory | None) -> str:
    others = (["the critic"] if role == "actor" and critic_with_actor(args) else []) + \
        (["the engines"] if role == "actor" and args.colocate and engine is not None else [])
    return f"an actor GPU (shared with {' and '.join(others)})" if others else f"a {role} GPU"


def _stage_row(stages: list[TrainMemory]) -> dict:
    fullest = max(stages, key=lambda m: m.total)
    most = max(stages, key=lambda m: m.parameters)
    return {"fullest_stage": fullest.stage, "most_parameters_stage": most.stage,
            "most_parameters": most.parameters}


def memory_plan(args: argparse.Namespace) -> dict:
    """The memory section of the launch plan: per-GPU estimates, the peak of a GPU, what is over the GPU
    (``over``: each with its message and the flags that lower it) and warnings; only ``unknown`` (the
    model flags it lacks) when the model is not described enough to estimate."""
    budget = args.gpu_memory_gib * GIB
    missing = missing_model_flags(args)
    if missing:
        return {"gpu_memory_gib": args.gpu_memory_gib, "unknown": missing, "train": {}, "engine": None,
                "peak_per_gpu": {}, "stages": {}, "model_parameters": None, "active_parameters": None,
                "gpu_context_gib": args.gpu_context_gib, "warnings": [], "over": []}
    roles = ["actor"] + (["critic"] if args.use_critic else [])
    train = {role: train_memory(args, role) for role in roles} if args.train_backend == "megatron" else {}
    engine = engine_memory(args) if not args.debug_train_only and args.rollout_num_gpus else None
    warnings, over = [], []
    worst = {role: max(stages, key=lambda m: m.total) for role, stages in train.items()}
    if engine is not None and engine.kv_cache is not None:
        if engine.kv_cache <= 0:
            over.append(_over(f"an engine's weights ({_gib(engine.weights)} per GPU)",
                              f"do not fit in its static memory (--sglang-mem-fraction-static "
                              f"{args.sglang_mem_fraction_static} × the {_gib(engine.free_at_start)} free when it "
                              f"starts = {_gib(engine.static)}): no room for the KV cache", _LOWERS_ENGINE))
        elif engine.kv_tokens < _longest_request(args):
            warnings.append(f"an engine's KV cache holds {engine.kv_tokens:,} tokens, fewer than one request's "
                            f"{_longest_request(args):,} (prompt and response)")
    peaks = _peaks(args, worst, engine)
    for role, peak in peaks.items():
        if peak > budget:
            shared = role == "actor" and (args.colocate or critic_with_actor(args))
            knobs = _train_knobs(args, role, worst[role], shared and args.colocate and engine is not None) \
                if role in worst else _LOWERS_ENGINE
            over.append(_over(_shared_with(args, role, engine), f"needs about {_gib(peak)}, more than "
                              f"--gpu-memory-gib {args.gpu_memory_gib:g}", knobs))
    return {
        "gpu_memory_gib": args.gpu_memory_gib,
        "gpu_context_gib": args.gpu_context_gib,
        "train": {role: [vars(m) | {"total": m.total} for m in stages] for role, stages in train.items()},
        "stages": {role: _stage_row(stages) for role, stages in train.items()},
        "engine": vars(engine) if engine is not None else None,
        "peak_per_gpu": peaks,
        "model_parameters": model_parameters(args),
        "active_parameters": active_parameters(args),
        "warnings": warnings,
        "over": over,
        "unknown": [],
    }


def _billions(count: int) -> str:
    return f"{count:,} ({count / 1e9:.2f} B)"


def format_memory(memory: dict) -> list[tuple[str, str]]:
    """Rows of the launch plan's page (one label, so the page keeps its column)."""
    if memory["unknown"]:
        return [("Memory", f"not estimated: {', '.join(memory['unknown'])} unset")]
    total, active = memory["model_parameters"], memory["active_parameters"]
    rows = [("Model", f"{_billions(total)} parameters" + ("" if active == total else
                                                           f", {_billions(active)} active per token"))]
    for role, stages in memory["train"].items():
        worst = max(stages, key=lambda m: m["total"])
        where = ""
        if len(stages) > 1:
            most = memory["stages"][role]
            where = f" (stage {worst['stage']} of {len(stages)}, the fullest"
            if most["most_parameters_stage"] != worst["stage"]:
                where += (f"; stage {most['most_parameters_stage']} holds the most parameters, "
                          f"{most['most_parameters']:,}")
            where += ")"
        rows.append(("Memory", f"{role} {_gib(worst['total'])} per GPU{where}: {worst['parameters']:,} "
                     f"parameters → weights {_gib(worst['weights'])}, gradients {_gib(worst['gradients'])}, "
                     f"optimizer {_gib(worst['optimizer'])}, activations {_gib(worst['activations'])}, "
                     f"margin {_gib(worst['margin'])}"))
        rows += [("Note", note) for note in worst["notes"]]
    engine = memory["engine"]
    if engine is not None:
        weights = f"weights {_gib(engine['weights'])} ({engine['weight_format']})"
        if engine["static"] is None:
            rows.append(("Memory", f"each engine: {weights} per GPU; {engine['notes'][0]}"))
        else:
            rows.append(("Memory", f"each engine {_gib(engine['static'])} per GPU (--sglang-mem-fraction-static of "
                         f"the {_gib(engine['free_at_start'])} free when it starts): {weights}, KV cache "
                         f"{_gib(max(engine['kv_cache'], 0))} = {engine['kv_tokens']:,} tokens of "
                         f"{engine['kv_token_bytes']:,} bytes"))
    peaks = ", ".join(f"{role} {_gib(peak)}" for role, peak in memory["peak_per_gpu"].items())
    if peaks:
        rows.append(("Memory", f"peak per GPU {peaks} of {memory['gpu_memory_gib']:g} GiB, with "
                     f"{memory['gpu_context_gib']:g} GiB for each process on it (an estimate: docs/checks.md)"))
    rows += [("Warning", warning) for warning in [*(o["message"] for o in memory["over"]), *memory["warnings"]]]
    return rows
