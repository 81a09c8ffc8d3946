"""HF ↔ torch_dist conversion, the work of ``tools/convert_hf_to_torch_dist.py`` and
``tools/convert_torch_dist_to_hf.py``.

Conversion runs in ``tensor × pipeline`` CPU processes joined by gloo, each holding its shard of
megatron's local-spec model (the transformer-engine spec's checkpoints name their parameters the
same way: megatron maps the local spec's norms onto TE's fused names). A torch_dist checkpoint is
resharded on load, so the layout chosen here constrains nothing later.
"""

from __future__ import annotations

import argparse
import copy
import os

import torch

from slime.utils.hf_checkpoint import HFTensors, read_config, write_hf
from slime.arguments.topology import Topology

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def conversion_args(args: argparse.Namespace) -> argparse.Namespace:
    """``args`` with what CPU processes need: the local spec, no fused kernels, fp32."""
    args = copy.copy(args)
    args.transformer_impl = "local"
    args.apply_rope_fusion = args.gradient_accumulation_fusion = args.sequence_parallel = False
    args.bf16 = args.fp16 = False
    args.use_distributed_optimizer = False
    args.attention_dropout = args.hidden_dropout = 0.0
    if args.num_experts:
        args.moe_token_dispatcher_type, args.moe_grouped_gemm, args.moe_permute_fusion = "allgather", False, False
    return args


def _model(args: argparse.Namespace, rank: int, world_size: int, port: int):
    from slime.backends.megatron import cpu_compat
    from slime.backends.megatron.config import transformer_config
    from slime.backends.megatron.model import build_model
    from slime.backends.megatron.parallel import init_distributed
    from slime.backends.megatron.weights import ModelWeights

    cpu_compat.install()
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    init_distributed(args, Topology.of(args, world=world_size), rank, "127.0.0.1", port)
    config = transformer_config(args)
    module = build_model(args, config, "actor")
    return module, ModelWeights(module, config, args)


def hf_to_torch_dist(rank: int, world_size: int, port: int, args: argparse.Namespace) -> None:
    from slime.backends.megatron import checkpoint
    from slime.backends.megatron.parallel import destroy

    module, weights = _model(args, rank, world_size, port)
    weights.load_hf(args.hf_checkpoint)
    checkpoint.save(args.save, None, module)
    destroy()


def _hf_dtype(source: HFTensors, config: dict):
    """The dtype of each tensor in the source checkpoint; a dequantized FP8 weight is written in the
    config's dtype (bf16 for DeepSeek's), as is a tensor the source lacks."""
    from slime.backends.megatron.quantized import FP8

    default = _DTYPES.get(str(config.get("dtype") or config.get("torch_dtype")), torch.float32)

    def dtype(name: str):
        stored = source.get(name).dtype if name in source else default
        return default if stored in FP8 else stored

    return dtype


def _without_quantization(folder: str, config: dict) -> None:
    """The written config.json (the source's ``config``) without the source's quantization_config: the
    weights are not quantized."""
    import json
    from pathlib import Path

    if "quantization_config" in config:
        unquantized = {key: value for key, value in config.items() if key != "quantization_config"}
        (Path(folder) / "config.json").write_text(json.dumps(unquantized, indent=2) + "\n")


def torch_dist_to_hf(rank: int, world_size: int, port: int, args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from slime.backends.megatron import checkpoint
    from slime.backends.megatron.parallel import destroy

    module, weights = _model(args, rank, world_size, port)
    checkpoint.load(args.load, module)
    tensors = [pair for bucket in weights.hf_buckets(1 << 62) for pair in bucket]
    if dist.get_rank() == 0:
        config = read_config(args.hf_checkpoint)
        dtype = _hf_dtype(HFTensors(args.hf_checkpoint), config)
        write_hf(args.save, ((name, tensor.to(dtype(name))) for name, tensor in tensors), source=args.hf_checkpoint)
        _without_quantization(args.save, config)
    dist.barrier()
    destroy()


def run(work, args: argparse.Namespace) -> None:
    """``work`` on one CPU process per tensor- × pipeline-parallel rank (RankFailed if one fails)."""
    from slime.utils.local_ranks import run_ranks

    args = conversion_args(args)
    world_size = args.tensor_model_parallel_size * args.pipeline_model_parallel_size
    # CPU processes: gloo, and megatron's CPU mappings
    run_ranks(world_size, work, args, environ={"CUDA_VISIBLE_DEVICES": ""})
