"""megatron-core's own config objects, built from a validated Namespace through the Megatron registry.

Every flag of ``slime.arguments.megatron_flags`` that ``feeds`` a ``TransformerConfig``,
``MLATransformerConfig`` or ``ModelParallelConfig`` field lands in that field here; the flags that
feed ``GPTModel``, ``OptimizerConfig``, ``DistributedDataParallelConfig`` and
``OptimizerParamScheduler`` land in theirs. Building the objects runs megatron-core's own
``__post_init__`` checks, which is what ``tools/check_config.py`` relies on.

``with_slime_defaults(args)`` applies what slime sets for every megatron run on GPUs (bf16 unless
--fp16, the distributed optimizer for Adam); on a CPU the run stays in fp32 with megatron's plain
optimizer, the combination that trains and resumes there. ``unsupported_here(args)`` lists what this
machine cannot run (on CPU: the transformer-engine spec
and fusions, sequence parallel, the distributed optimizer, bf16/fp16, …), each with the flag to change.
"""

from __future__ import annotations

import argparse
import contextlib

import torch

from slime.backends.megatron.defaults import gpu_defaults
from slime.arguments.megatron_flags import MEGATRON_FLAGS
from slime.model.parameters import padded_vocab

TRANSFORMER_OWNERS = ("TransformerConfig", "ModelParallelConfig")
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16, "fp8": torch.uint8}


def with_slime_defaults(args: argparse.Namespace, gpu: bool | None = None) -> argparse.Namespace:
    """``args`` as slime trains them: on GPUs in bf16 (unless --fp16) with the distributed optimizer
    (for Adam); unchanged on a CPU, where what was asked for explicitly is refused by
    ``unsupported_here``."""
    gpu = torch.cuda.is_available() if gpu is None else gpu
    return gpu_defaults(args) if gpu else args


def _fed(owners: tuple[str, ...], args: argparse.Namespace) -> dict:
    """{field: value} of every flag that feeds a field of one of ``owners`` and is set."""
    fields = {}
    for flag in MEGATRON_FLAGS:
        if not flag.feeds:
            continue
        owner, field = flag.feeds.split(".", 1)
        value = getattr(args, flag.attr, None)
        if owner in owners and value is not None:
            fields[field] = value
    return fields


def _single(value):
    """Megatron-LM's nargs='+' flags take one value in the usual case; megatron-core wants it bare."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _have_transformer_engine() -> bool:
    import importlib.util

    return importlib.util.find_spec("transformer_engine") is not None


def params_dtype(args: argparse.Namespace) -> torch.dtype:
    return torch.bfloat16 if args.bf16 else torch.float16 if args.fp16 else torch.float32


def padded_vocab_size(args: argparse.Namespace) -> int:
    """Megatron-LM's padding: a multiple of --make-vocab-size-divisible-by × tensor-parallel size."""
    return padded_vocab(args)


def position_embedding_type(args: argparse.Namespace) -> str:
    if args.use_rotary_position_embeddings and args.position_embedding_type == "learned_absolute":
        return "rope"
    return args.position_embedding_type


def _activation(args: argparse.Namespace):
    if args.swiglu:
        return torch.nn.functional.silu
    if args.squared_relu:
        from megatron.core.activations import squared_relu

        return squared_relu
    return torch.nn.functional.gelu


def transformer_config(args: argparse.Namespace, checking: bool = False):
    """``TransformerConfig`` (``MLATransformerConfig`` with --multi-latent-attention) of the model.

    ``checking`` builds a cluster's config on a machine without transformer-engine (a laptop): the
    fused kernels whose presence megatron checks at construction are left off, so that every other
    check of megatron's runs."""
    from megatron.core.transformer import MLATransformerConfig, TransformerConfig
    from megatron.core.transformer.enums import AttnBackend

    owners = TRANSFORMER_OWNERS + (("MLATransformerConfig",) if args.multi_latent_attention else ())
    fields = _fed(owners, args)
    for key in ("moe_router_load_balancing_type", "moe_aux_loss_coeff", "cp_comm_type"):
        if key in fields:
            fields[key] = _single(fields[key])
    if not args.group_query_attention:
        fields.pop("num_query_groups", None)
    if "attention_backend" in fields:
        fields["attention_backend"] = AttnBackend[fields["attention_backend"]]
    dtype = params_dtype(args)
    on_cpu = not torch.cuda.is_available()
    fields.update(
        activation_func=_activation(args),
        gated_linear_unit=bool(args.swiglu),
        params_dtype=dtype,
        pipeline_dtype=dtype,
        # slime's losses are normalised by the step's global token (or sample) count, which the loss
        # function returns as its count; megatron then scales the gradients by 1 / that count.
        calculate_per_token_loss=True,
        # micro-batches differ in shape; only pipeline stages need to tell each other
        variable_seq_lengths=args.pipeline_model_parallel_size > 1,
        use_cpu_initialization=on_cpu,
        persist_layer_norm=False if on_cpu else fields.get("persist_layer_norm", False),
    )
    if args.pipeline_model_parallel_size > 1 and not args.num_experts:
        # megatron-core refuses variable lengths with its default (allgather) MoE dispatcher even for a
        # dense model, which has no dispatcher at all
        fields["moe_token_dispatcher_type"] = "alltoall"
    if checking and not _have_transformer_engine():
        fields.update(apply_rope_fusion=False, moe_permute_fusion=False, moe_router_fusion=False)
    if args.num_layers_per_virtual_pipeline_stage:
        fields["virtual_pipeline_model_parallel_size"] = (
            args.num_layers // args.pipeline_model_parallel_size // args.num_layers_per_virtual_pipeline_stage)
    if args.multi_latent_attention:
        fields.update(rotary_base=args.rotary_base, rotary_percent=args.rotary_percent)
        if args.rotary_scaling_factor and args.rotary_scaling_factor != 1.0:
            fields.setdefault("rope_type", "yarn")
        else:
            fields.setdefault("rope_type", "rope")
        return MLATransformerConfig(**fields)
    return TransformerConfig(**fields)


def gpt_model_kwargs(args: argparse.Namespace) -> dict:
    """The ``GPTModel`` constructor arguments the registry's ``GPTModel.*`` flags feed."""
    max_positions = args.max_position_embeddings or args.seq_length
    if max_positions is None:
        max_positions = 4096 if position_embedding_type(args) != "learned_absolute" else None
    return {
        "vocab_size": padded_vocab_size(args),
        "max_sequence_length": max_positions,
        "position_embedding_type": position_embedding_type(args),
        "rotary_percent": args.rotary_percent,
        "rotary_base": args.rotary_base,
        "rope_scaling": bool(args.use_rope_scaling),
        "rope_scaling_factor": args.rope_scaling_factor,
        "seq_len_interpolation_factor": args.rotary_seq_len_interpolation_factor,
        "share_embeddings_and_output_weights": not args.untie_embeddings_and_output_weights,
    }


def optimizer_config(args: argparse.Namespace, checking: bool = False):
    """megatron's ``OptimizerConfig``; ``checking`` as for ``transformer_config`` (the precision-aware
    optimizer's dependence on transformer-engine's FusedAdam is checked only where TE is installed)."""
    from megatron.core.optimizer import OptimizerConfig

    fields = _fed(("OptimizerConfig",), args)
    version_check = contextlib.nullcontext()
    if checking and not _have_transformer_engine():
        if fields.get("optimizer_cpu_offload"):
            # the precision-aware optimizer's checks ask transformer-engine's version before returning
            # for the CPU-offloaded HybridDeviceOptimizer: answer as an old transformer-engine would
            from unittest import mock

            from megatron.core.optimizer import optimizer_config as module

            version_check = mock.patch.object(module, "is_te_min_version", lambda *_, **__: False)
        else:  # otherwise they import transformer-engine's FusedAdam
            fields["use_precision_aware_optimizer"] = False
    for key in ("main_grads_dtype", "main_params_dtype", "exp_avg_dtype", "exp_avg_sq_dtype"):
        if key in fields:
            fields[key] = DTYPES[fields[key]]
    fields.update(bf16=bool(args.bf16), fp16=bool(args.fp16), params_dtype=params_dtype(args),
                  use_distributed_optimizer=bool(args.use_distributed_optimizer))
    with version_check:
        return OptimizerConfig(**fields)


def ddp_config(args: argparse.Namespace):
    from megatron.core.distributed import DistributedDataParallelConfig

    fields = _fed(("DistributedDataParallelConfig",), args)
    return DistributedDataParallelConfig(**fields)


def unsupported_here(args: argparse.Namespace) -> list[tuple[str, list[str]]]:
    """What this machine cannot run, as (message, flags): empty on a machine with CUDA."""
    if torch.cuda.is_available():
        return []
    needs_gpu = "needs a GPU"
    problems = []

    def refuse(condition, message, *flags):
        if condition:
            problems.append((f"{message}: {needs_gpu} (this machine has no CUDA)", list(flags)))

    refuse(args.transformer_impl == "transformer_engine",
           "--transformer-impl transformer_engine (the transformer-engine layer spec); use --transformer-impl local "
           "on CPU", "--transformer-impl")
    refuse(args.apply_rope_fusion and position_embedding_type(args) in ("rope", "yarn", "mrope"),
           "the fused rotary embedding (transformer-engine); pass --no-rope-fusion on CPU", "--no-rope-fusion")
    refuse(args.gradient_accumulation_fusion,
           "gradient-accumulation fusion (Apex); pass --no-gradient-accumulation-fusion on CPU",
           "--no-gradient-accumulation-fusion")
    refuse(args.sequence_parallel, "--sequence-parallel", "--sequence-parallel")
    refuse(args.use_distributed_optimizer, "--use-distributed-optimizer (its resume needs transformer-engine or Apex)",
           "--use-distributed-optimizer")
    refuse(args.bf16 or args.fp16, "--bf16/--fp16 training", "--bf16", "--fp16")
    refuse(args.fp8 is not None, "--fp8-format", "--fp8-format")
    refuse(args.context_parallel_size > 1, "--context-parallel-size > 1 (transformer-engine attention)",
           "--context-parallel-size")
    refuse(args.moe_grouped_gemm, "--moe-grouped-gemm (grouped GEMM kernels)", "--moe-grouped-gemm")
    refuse(args.moe_permute_fusion, "--moe-permute-fusion (transformer-engine)", "--moe-permute-fusion")
    refuse(args.moe_router_fusion, "--moe-router-fusion (transformer-engine)", "--moe-router-fusion")
    refuse(args.num_experts and args.moe_token_dispatcher_type != "allgather",
           f"--moe-token-dispatcher-type {args.moe_token_dispatcher_type} (all-to-all, which gloo lacks); use allgather "
           "on CPU", "--moe-token-dispatcher-type")
    refuse(args.optimizer_cpu_offload, "--optimizer-cpu-offload (HybridDeviceOptimizer)", "--optimizer-cpu-offload")
    refuse(args.use_precision_aware_optimizer, "--use-precision-aware-optimizer (transformer-engine's FusedAdam)",
           "--use-precision-aware-optimizer")
    return problems
