"""Per-token log-probabilities and entropies of the distribution the rollout engine sampled from, for
both train backends: the logits are divided by the rollout temperature (as the engine's sampler does),
then, per token, with ``m`` the maximum logit:

    Z = Σ exp(l − m)
    log p(target) = (l_target − m) − log Z
    entropy = log Z − Σ p·(l − m)

A vocabulary split over tensor-parallel ranks (megatron's) is a ``VocabShard``: each rank holds the
logits of its slice, the maximum and the sums are reduced over the ranks, and the target's logit comes
from the rank that owns it, so the vocabulary is never gathered. Columns at or past the real vocabulary
(megatron's padding) are left out: the engine's vocabulary does not have them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

# finite, so that exp() is exactly 0 there and 0 · logit stays 0 in the entropy's gradient
PADDING_LOGIT = -1e30


@dataclass(frozen=True)
class VocabShard:
    """This rank's slice of a vocabulary split over ranks, and the reductions over those ranks."""

    start: int  # the token id of this rank's first column
    all_max: Callable[[torch.Tensor], torch.Tensor]  # element-wise maximum over the ranks (no gradient)
    all_sum: Callable[[torch.Tensor], torch.Tensor]  # sum over the ranks, gradient passed to every rank


def token_log_probs(logits: torch.Tensor, targets: torch.Tensor, *, temperature: float,
                    vocab_size: int | None = None, with_entropy: bool = False,
                    shard: VocabShard | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log p(target) per token and, ``with_entropy``, the entropy of softmax(logits / temperature).

    ``logits`` [T, V] (with a ``shard``, this rank's columns [T, V/tp]), ``targets`` [T] global token ids;
    columns of token ids ``vocab_size`` and above are padding."""
    local = logits.float() / temperature
    start = shard.start if shard else 0
    width = local.shape[-1]
    if vocab_size is not None:
        padding = torch.arange(start, start + width, device=local.device) >= vocab_size
        if padding.any():
            local = local.masked_fill(padding, PADDING_LOGIT)

    maximum = local.detach().max(dim=-1).values
    if shard:
        maximum = shard.all_max(maximum)
    shifted = local - maximum[:, None]
    exp = shifted.exp()
    partition = exp.sum(-1)
    if shard:
        partition = shard.all_sum(partition)
    log_z = partition.log()

    owned = (targets >= start) & (targets < start + width)
    index = (targets - start).clamp(0, width - 1)
    target_logit = shifted.gather(1, index[:, None]).squeeze(1) * owned
    log_probs = (shard.all_sum(target_logit) if shard else target_logit) - log_z
    if not with_entropy:
        return log_probs, None
    expected = (exp * shifted).sum(-1)
    expected_shifted = (shard.all_sum(expected) if shard else expected) / partition
    return log_probs, log_z - expected_shifted
