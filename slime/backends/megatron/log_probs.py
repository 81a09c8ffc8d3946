"""Log-probabilities and entropies from tensor-parallel logits, without gathering the vocabulary: the
shared function (``slime.algorithms.log_probs.token_log_probs``, its docstring has the formulas) over
this rank's vocabulary slice, with megatron's reductions over the tensor-parallel group.

The sums are megatron's ``reduce_from_tensor_model_parallel_region`` (identity backward), so gradients
flow to every rank's slice; the loss is the same on every tensor-parallel rank.
"""

from __future__ import annotations

import torch

from slime.algorithms.log_probs import VocabShard, token_log_probs


def vocab_parallel_log_probs(logits: torch.Tensor, targets: torch.Tensor, *, temperature: float, vocab_size: int,
                             with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``logits`` [T, V/tp] of this rank's vocabulary slice, ``targets`` [T] global token ids."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    group = parallel_state.get_tensor_model_parallel_group()

    def all_max(tensor: torch.Tensor) -> torch.Tensor:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX, group=group)
        return tensor

    shard = VocabShard(start=parallel_state.get_tensor_model_parallel_rank() * logits.shape[-1], all_max=all_max,
                       all_sum=reduce_from_tensor_model_parallel_region)
    return token_log_probs(logits, targets, temperature=temperature, vocab_size=vocab_size,
                           with_entropy=with_entropy, shard=shard)
