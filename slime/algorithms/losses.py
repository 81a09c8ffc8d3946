"""Policy and value losses on per-token tensors, with masks, and their aggregation.

Policy loss (PPO-clip): ratio = exp(logp − old_logp) per token (GSPO: one ratio per sequence,
exp of the mean log-ratio, for every token); loss = max(−A·ratio, −A·clip(ratio, 1−eps_clip,
1+eps_clip_high)); with dual clip (eps_clip_c > 1) the loss of negative-advantage tokens is at most
−A·eps_clip_c. Truncated importance sampling multiplies the loss by clamp(exp(old_logp −
rollout_logp), tis_clip_low, tis_clip). Value loss: ½·max((V−R)², (clip(V, V_old ± value_clip)−R)²).

CISPO (MiniMax-M1, as upstream slime computes it): the importance weight is clipped,
r̂ = clamp(ratio, 1 − eps_clip, 1 + eps_clip_high), and held constant (no gradient through it); the
loss is −sg(r̂)·A·logp, so every token keeps the gradient −A·r̂·∇logp, where PPO-clip's is zero for
clipped tokens. Its clip fraction is the share of tokens whose weight was clipped at either bound.
``--eps-clip 1.0`` leaves the lower bound at 0 (the paper's upper truncation alone).
"""

from __future__ import annotations

import torch


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, *, eps_clip: float,
                eps_clip_high: float, eps_clip_c: float | None = None, sequence_level: bool = False,
                tis_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-token loss, per-token clipped indicator) of one sample."""
    log_ratio = logp - old_logp
    if sequence_level:
        log_ratio = log_ratio.mean().expand_as(logp)
    return clipped_policy_loss(log_ratio, advantages, eps_clip=eps_clip, eps_clip_high=eps_clip_high,
                               eps_clip_c=eps_clip_c, tis_weights=tis_weights)


def clipped_policy_loss(log_ratio: torch.Tensor, advantages: torch.Tensor, *, eps_clip: float, eps_clip_high: float,
                        eps_clip_c: float | None = None,
                        tis_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The PPO-clip loss per token from log-ratios of any shape (one sample's or a whole micro-batch's)."""
    ratio = torch.exp(log_ratio)
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1 - eps_clip, 1 + eps_clip_high)
    loss = torch.maximum(unclipped, clipped)
    was_clipped = (clipped > unclipped).float()
    if eps_clip_c is not None:
        bound = -advantages * eps_clip_c
        loss = torch.where(advantages < 0, torch.minimum(loss, bound), loss)
    if tis_weights is not None:
        loss = loss * tis_weights
    return loss, was_clipped


def cispo_loss(log_ratio: torch.Tensor, logp: torch.Tensor, advantages: torch.Tensor, *, eps_clip: float,
               eps_clip_high: float, tis_weights: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The CISPO loss per token from log-ratios and the policy's log-probs (any one shape), and where the
    weight was clipped."""
    ratio = torch.exp(log_ratio.detach())
    weight = ratio.clamp(1 - eps_clip, 1 + eps_clip_high)
    loss = -weight * advantages * logp
    if tis_weights is not None:
        loss = loss * tis_weights
    return loss, (weight != ratio).to(loss.dtype)


def tis_weights(old_logp: torch.Tensor, rollout_logp: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Truncated importance weights between the training and the rollout engine's log-probs."""
    return torch.exp(old_logp - rollout_logp).clamp(low, high).detach()


def value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, value_clip: float) -> torch.Tensor:
    clipped = old_values + (values - old_values).clamp(-value_clip, value_clip)
    return 0.5 * torch.maximum((values - returns).square(), (clipped - returns).square())


def aggregate(per_token: list[torch.Tensor], masks: list[torch.Tensor], per_token_mean: bool,
              total_tokens: float | None = None, total_samples: int | None = None) -> torch.Tensor:
    """Mean over tokens of the whole batch (``per_token_mean``) or mean over samples of each sample's
    token mean. ``total_*`` let each micro-batch contribute its share of the global batch's mean."""
    if per_token_mean:
        tokens = total_tokens if total_tokens is not None else float(sum(m.sum() for m in masks))
        return sum((loss * mask).sum() for loss, mask in zip(per_token, masks)) / max(tokens, 1.0)
    samples = total_samples if total_samples is not None else len(per_token)
    per_sample = [(loss * mask).sum() / mask.sum().clamp(min=1) for loss, mask in zip(per_token, masks)]
    return sum(per_sample) / max(samples, 1)
