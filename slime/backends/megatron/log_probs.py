"""Log-probabilities and entropies from tensor-parallel logits, without gathering the vocabulary.

Each tensor-parallel rank holds the logits of its slice of the (padded) vocabulary. Logits are first
divided by the rollout temperature, as slime does, so that they are comparable with the engine's
sampling distribution; the padding rows beyond the real vocabulary are masked out, as the engine's
vocabulary does not have them. Then, per token, with ``m`` the global maximum:

    Z = Σ_ranks Σ_local exp(l − m)               (all-reduced)
    log p(target) = (l_target − m) − log Z        (l_target from the rank that owns the target)
    entropy = log Z − Σ p·(l − m)                 (Σ all-reduced)

The all-reduces are megatron's ``reduce_from_tensor_model_parallel_region`` (identity backward),
so gradients flow to every rank's slice; the loss is the same on every tensor-parallel rank.
"""

from __future__ import annotations

import torch

PADDING_LOGIT = -1e30


def vocab_parallel_log_probs(logits: torch.Tensor, targets: torch.Tensor, *, temperature: float, vocab_size: int,
                             with_entropy: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``logits`` [T, V/tp] of this rank's vocabulary slice, ``targets`` [T] global token ids."""
    from megatron.core import parallel_state
    from megatron.core.tensor_parallel import reduce_from_tensor_model_parallel_region

    group = parallel_state.get_tensor_model_parallel_group()
    rank = parallel_state.get_tensor_model_parallel_rank()
    local = logits.float() / temperature
    start = rank * local.shape[-1]
    padding = torch.arange(start, start + local.shape[-1], device=local.device) >= vocab_size
    if padding.any():
        # finite, so that exp() is exactly 0 there and 0 · logit stays 0 in the entropy's gradient
        local = local.masked_fill(padding, PADDING_LOGIT)

    maximum = local.detach().max(dim=-1).values
    torch.distributed.all_reduce(maximum, op=torch.distributed.ReduceOp.MAX, group=group)
    shifted = local - maximum[:, None]
    exp = shifted.exp()
    partition = reduce_from_tensor_model_parallel_region(exp.sum(-1))
    log_z = partition.log()

    owned = (targets >= start) & (targets < start + local.shape[-1])
    index = (targets - start).clamp(0, local.shape[-1] - 1)
    target_logit = shifted.gather(1, index[:, None]).squeeze(1) * owned
    log_probs = reduce_from_tensor_model_parallel_region(target_logit) - log_z
    if not with_entropy:
        return log_probs, None
    expected_shifted = reduce_from_tensor_model_parallel_region((exp * shifted).sum(-1)) / partition
    return log_probs, log_z - expected_shifted
