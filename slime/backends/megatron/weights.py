"""The weights of one rank's megatron model in HF terms: loaded from an HF checkpoint shard by shard,
and gathered back into full HF tensors (for the rollout engines and the converters).

Local parameter names become global ones (layer numbers across pipeline stages, expert numbers
across expert-parallel ranks) before the HF mapping (``hf_mapping.py``) applies; tensor-parallel
shards are cut and joined along megatron's own partition attributes.
"""

from __future__ import annotations

import argparse
import re

import torch
import torch.distributed as dist

from slime.backends.megatron import parallel
from slime.backends.megatron.config import padded_vocab_size
from slime.backends.megatron.hf_mapping import HFMapping, shard, unshard
from slime.backends.megatron.quantized import HFReader
from slime.utils.hf_checkpoint import read_config

_LAYER = re.compile(r"decoder\.layers\.(\d+)\.(.*)")
_EXPERT = re.compile(r"(local_experts\.|linear_fc[12]\.weight)(\d+)")


def _all_gather(tensor: torch.Tensor, size: int, group) -> list[torch.Tensor]:
    pieces = [torch.empty_like(tensor) for _ in range(size)]
    dist.all_gather(pieces, tensor.contiguous(), group=group)
    return pieces


class ModelWeights:
    """HF ↔ megatron for ``module`` (this rank's GPTModel), the critic's value head excepted."""

    def __init__(self, module, config, args: argparse.Namespace, role: str = "actor"):
        self.module, self.config, self.args, self.role = module, config, args, role
        self.mapping = HFMapping(args, read_config(args.hf_checkpoint).get("model_type", ""))

    def state(self) -> dict[str, torch.Tensor]:
        """This rank's parameters and persistent buffers, under the model's local names."""
        return {name: tensor for name, tensor in self.module.state_dict(keep_vars=True).items()
                if not name.endswith("_extra_state") and not (self.role == "critic" and name.startswith("output_layer."))}

    def global_name(self, local: str, expert_rank: int | None = None) -> str:
        """The name in the whole model: layer numbers across pipeline stages, experts across the
        expert-parallel ranks (this rank's, or ``expert_rank``'s)."""
        from megatron.core import parallel_state as ps
        from megatron.core.transformer.transformer_layer import get_transformer_layer_offset

        match = _LAYER.match(local)
        if not match:
            return local
        layer = int(match.group(1)) + get_transformer_layer_offset(self.config)
        inner = match.group(2)
        expert = _EXPERT.search(inner)
        if expert and self.args.num_experts:
            per_rank = self.args.num_experts // ps.get_expert_model_parallel_world_size()
            rank = ps.get_expert_model_parallel_rank() if expert_rank is None else expert_rank
            inner = inner[:expert.start(2)] + str(int(expert.group(2)) + rank * per_rank) + inner[expert.end(2):]
        return f"decoder.layers.{layer}.{inner}"

    @staticmethod
    def shard_group(local: str):
        """(rank, size, group) of the tensor-parallel group that shards this parameter."""
        from megatron.core import parallel_state as ps

        if ".experts." in local:
            return (ps.get_expert_tensor_parallel_rank(), ps.get_expert_tensor_parallel_world_size(),
                    ps.get_expert_tensor_parallel_group())
        return (ps.get_tensor_model_parallel_rank(), ps.get_tensor_model_parallel_world_size(),
                ps.get_tensor_model_parallel_group())

    # -- HF → megatron -------------------------------------------------------------------------
    def load_hf(self, path: str) -> None:
        """Copy this rank's shard of every parameter from an HF checkpoint folder (block-wise FP8
        weights dequantized, other quantizations refused: ``quantized.py``)."""
        hf = HFReader(path)
        tied = not self.args.untie_embeddings_and_output_weights

        def read(name: str) -> torch.Tensor:
            if name == "lm_head.weight" and tied and name not in hf:
                name = "model.embed_tokens.weight"  # a tied model's last pipeline stage keeps its own copy
            return hf.get(name).float()

        padded = padded_vocab_size(self.args)
        for local, param in self.state().items():
            name = self.global_name(local)
            full = self.mapping.from_hf(name, read, padded_rows=padded)
            rank, size, _ = self.shard_group(local)
            piece = shard(name, full, param, rank, size, self.config.gated_linear_unit)
            if piece.shape != param.shape:
                raise ValueError(f"{path}: {name} has shape {tuple(piece.shape)} for this rank, but the model built "
                                 f"from the flags has {tuple(param.shape)}: the model flags and the HF config disagree")
            with torch.no_grad():
                param.copy_(piece.to(param.dtype))

    # -- megatron → HF -------------------------------------------------------------------------
    def _stage_entries(self) -> list[tuple[str, tuple[int, ...], torch.dtype]]:
        """(global name, full shape, dtype) of each full tensor of this pipeline stage, in the order
        ``_stage_tensors`` gathers them, without gathering anything."""
        from megatron.core import parallel_state as ps

        experts = ps.get_expert_model_parallel_world_size()
        entries = []
        for local, tensor in self.state().items():
            _, size, _ = self.shard_group(local)
            shape = list(tensor.shape)
            if size > 1 and getattr(tensor, "tensor_model_parallel", False):
                shape[tensor.partition_dim] *= size
            ranks = range(experts) if experts > 1 and ".experts." in local else [None]
            entries += [(self.global_name(local, rank), tuple(shape), tensor.dtype) for rank in ranks]
        return entries

    def _stage_tensors(self):
        """(global name, full tensor) of this pipeline stage's parameters, one tensor at a time:
        tensor-parallel shards joined, and each expert-parallel rank's copy of a local expert gathered.
        Every rank of the stage takes part in each gather."""
        from megatron.core import parallel_state as ps

        experts = ps.get_expert_model_parallel_world_size()
        for local, tensor in self.state().items():
            _, size, group = self.shard_group(local)
            full = unshard(local, _all_gather(tensor.detach(), size, group) if size > 1 and
                           getattr(tensor, "tensor_model_parallel", False) else [tensor.detach()], tensor,
                           self.config.gated_linear_unit)
            if experts > 1 and ".experts." in local:
                gathered = _all_gather(full, experts, ps.get_expert_model_parallel_group())
                del full
                for rank in range(experts):
                    yield self.global_name(local, rank), gathered[rank]
                    gathered[rank] = None  # let it go once the caller has
            else:
                yield self.global_name(local), full

    def full_tensors(self):
        """(global name, full tensor) of the whole model, one tensor at a time, in pipeline-stage order
        and on every rank: a stage gathers each tensor from its shards, then broadcasts it over the
        pipeline group. Nothing is gathered before the caller asks for it, so a caller that lets go of
        a tensor holds at most one at a time."""
        from megatron.core import parallel_state as ps

        if ps.get_pipeline_model_parallel_world_size() == 1:
            yield from self._stage_tensors()
            return
        group = ps.get_pipeline_model_parallel_group()
        ranks = dist.get_process_group_ranks(group)
        meta: list = [None] * len(ranks)
        dist.all_gather_object(meta, self._stage_entries(), group=group)
        own_stage, mine = ps.get_pipeline_model_parallel_rank(), self._stage_tensors()
        device = parallel.device()
        for stage, entries in enumerate(meta):
            for name, shape, dtype in entries:
                if stage == own_stage:
                    own_name, tensor = next(mine)
                    assert own_name == name, (own_name, name)
                    tensor = tensor.contiguous()
                else:
                    tensor = torch.empty(shape, dtype=dtype, device=device)
                dist.broadcast(tensor, src=ranks[stage], group=group)
                yield name, tensor

    def hf_buckets(self, bucket_bytes: int):
        """Full HF tensors in buckets of at most ``bucket_bytes`` (a tensor larger than that is a bucket
        of its own), on global rank 0; the other ranks take part in the gathers and yield as many
        empty buckets. Each tensor is gathered only when the bucket being filled needs it, so a rank
        holds about one bucket of full tensors at a time. Tensors may be views of the parameters."""
        leader = dist.get_rank() == 0
        bucket, size = [], 0
        for name, full in self.full_tensors():
            for hf_name, tensor in self.mapping.to_hf(name, full):
                nbytes = tensor.numel() * tensor.element_size()
                if size and size + nbytes > bucket_bytes:
                    yield bucket
                    bucket, size = [], 0
                if leader:
                    bucket.append((hf_name, tensor))
                size += nbytes
            del full
        if size:
            yield bucket
