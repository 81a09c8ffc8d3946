"""The process group of a role and megatron-core's parallel state from the launch plan's layout.

Every rank of a role joins one torch.distributed group (NCCL on GPUs, gloo on CPU), then
``initialize_model_parallel`` carves it into tensor-, pipeline-, context-, expert- and data-parallel
groups; the model-parallel RNG is seeded as Megatron-LM does.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Layout:
    """Where this rank sits: the trainer uses it to send each data-parallel rank its share and to
    read results from one rank per share."""

    rank: int
    world_size: int
    dp_rank: int
    dp_size: int
    tp_rank: int
    pp_rank: int
    is_result_rank: bool  # the first tensor-parallel rank of the last pipeline stage of its share


def device():
    """Where this rank's tensors and collectives live: its GPU (NCCL reduces GPU tensors), else the CPU."""
    return torch.cuda.current_device() if torch.cuda.is_available() else "cpu"


def init_distributed(args: argparse.Namespace, rank: int, world_size: int, master_addr: str, master_port: int) -> Layout:
    from megatron.core import parallel_state, tensor_parallel

    backend = args.distributed_backend if torch.cuda.is_available() else "gloo"  # CPU collectives: gloo
    if torch.cuda.is_available():
        torch.cuda.set_device(0)  # Ray gives each train actor one GPU of its bundle
    dist.init_process_group(backend, init_method=f"tcp://{master_addr}:{master_port}", rank=rank,
                            world_size=world_size, timeout=timedelta(minutes=args.distributed_timeout_minutes))
    parallel_state.initialize_model_parallel(
        tensor_model_parallel_size=args.tensor_model_parallel_size,
        pipeline_model_parallel_size=args.pipeline_model_parallel_size,
        virtual_pipeline_model_parallel_size=None,
        context_parallel_size=args.context_parallel_size,
        expert_model_parallel_size=args.expert_model_parallel_size,
        expert_tensor_parallel_size=args.expert_tensor_parallel_size,
        distributed_timeout_minutes=args.distributed_timeout_minutes,
    )
    tensor_parallel.model_parallel_cuda_manual_seed(args.seed)
    return current_layout()


def current_layout() -> Layout:
    from megatron.core import parallel_state as ps

    tp_rank = ps.get_tensor_model_parallel_rank()
    return Layout(rank=dist.get_rank(), world_size=dist.get_world_size(), dp_rank=ps.get_data_parallel_rank(),
                  dp_size=ps.get_data_parallel_world_size(), tp_rank=tp_rank,
                  pp_rank=ps.get_pipeline_model_parallel_rank(),
                  is_result_rank=tp_rank == 0 and ps.is_pipeline_last_stage() and ps.get_context_parallel_rank() == 0)


def destroy() -> None:
    from megatron.core import parallel_state

    parallel_state.destroy_model_parallel()
    if dist.is_initialized():
        dist.destroy_process_group()
