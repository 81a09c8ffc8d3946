"""Advantages and returns of a whole rollout per estimator, on right-padded ``[B, L]`` tensors with
tensor operations only (packed data goes through ``slime.algorithms.layout.pad``/``unpad``).

Inputs: one scalar reward per sample, each sample's response length, and per-token tensors (the loss
mask, the KL to the reference, the critic's values) valid up to each row's length; whatever lies past
it is ignored. Outputs are per-token, zero past each row's length, in the rewards' dtype; everything
in between is computed in float64.

- grpo / gspo: group-normalized reward, (r − mean) / (std + eps) within each prompt's group (std
  division optional), the same for every token of the response; with --kl-coef the reward first pays
  kl_coef × the sample's summed KL.
- reinforce_plus_plus: token rewards (−kl_coef·KL per token, the reward on the last token),
  discounted returns with gamma, whitened over the batch.
- reinforce_plus_plus_baseline: reward minus the group mean, minus kl_coef·KL per token, whitened.
- ppo: GAE with gamma and lambda on the token rewards and the critic's values; returns = A + V.

Tokens the loss mask drops carry no KL penalty and do not enter the whitening statistics.
``slime.algorithms.reference`` holds the same definitions token by token, the tests' oracle.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from slime.algorithms.layout import as_lengths, valid_mask
from slime.algorithms.scan import reverse_discounted_cumsum

EPS = 1e-6
F64 = torch.float64
ESTIMATORS = ("grpo", "gspo", "reinforce_plus_plus", "reinforce_plus_plus_baseline", "ppo")


def group_normalize(rewards: torch.Tensor, group_size: int, divide_by_std: bool = True) -> torch.Tensor:
    """Rewards of consecutive groups of ``group_size`` samples (one prompt each), centred per group
    (and divided by the group's population std + EPS), in float64."""
    if len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} samples do not form whole groups of {group_size} (--n-samples-per-prompt)")
    grouped = rewards.to(F64).view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if divide_by_std:
        centred = centred / (centred.square().mean(dim=1, keepdim=True).sqrt() + EPS)
    return centred.view(-1)


def masked_whiten(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Zero mean and unit (population) variance over the tokens ``keep`` marks, applied to every token,
    in float64. With no token kept there is nothing to normalize against: values come back unchanged."""
    values = values.to(F64)
    count = keep.sum()
    if not count:
        return values
    centred = values - torch.where(keep, values, 0.0).sum() / count
    std = (torch.where(keep, centred * centred, 0.0).sum() / count).sqrt()
    return centred.div_(std + EPS)


def kl_penalty(kl: torch.Tensor, keep: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """kl_coef·KL on every token the loss keeps, 0 elsewhere, float64."""
    return kl.to(F64, copy=True).masked_fill_(~keep, 0.0).mul_(kl_coef)


def token_rewards(rewards: torch.Tensor, lengths: torch.Tensor, penalty: torch.Tensor) -> torch.Tensor:
    """−penalty on every token, plus each sample's reward on its last token, float64."""
    per_token = -penalty
    rows = torch.nonzero(lengths > 0).squeeze(1)
    return per_token.index_put_((rows, lengths[rows] - 1), rewards.to(F64)[rows], accumulate=True)


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """``R[t] = r[t] + gamma·R[t+1]`` along each zero-padded row."""
    return reverse_discounted_cumsum(rewards.to(F64), gamma)


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation on zero-padded rows: the value after
    each row's last token is the padding's 0."""
    rewards, values = rewards.to(F64), values.to(F64)
    deltas = torch.add(rewards, F.pad(values[:, 1:], (0, 1)), alpha=gamma).sub_(values)
    advantages = reverse_discounted_cumsum(deltas, gamma * lambd)
    return advantages, advantages + values


def compute_advantages(estimator: str, rewards: torch.Tensor, lengths, group_size: int, *,
                       loss_mask: torch.Tensor | None = None, kl: torch.Tensor | None = None, kl_coef: float = 0.0,
                       values: torch.Tensor | None = None, gamma: float = 1.0, lambd: float = 1.0,
                       divide_by_std: bool = True, normalize: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token advantages and returns ``[B, L]`` (L: the per-token inputs' width, else the longest
    response); returns equal advantages except for PPO."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; expected one of {', '.join(ESTIMATORS)}")
    if estimator == "ppo" and values is None:
        raise ValueError("the ppo estimator needs the critic's values")
    given = [t for t in (loss_mask, kl, values) if t is not None]
    lengths = as_lengths(lengths).to(given[0].device if given else rewards.device)
    width = given[0].shape[1] if given else (int(lengths.max()) if len(lengths) else 0)
    valid = valid_mask(lengths, width)
    keep = valid if loss_mask is None else valid & (loss_mask > 0)
    dtype = rewards.dtype if rewards.is_floating_point() else torch.float32

    def finish(per_token: torch.Tensor) -> torch.Tensor:
        return per_token.to(dtype).masked_fill_(~valid, 0.0)

    if estimator in ("grpo", "gspo"):
        scalar = rewards.to(F64)
        if kl is not None and kl_coef:
            scalar = scalar - kl_coef * torch.where(keep, kl, 0.0).sum(1, dtype=F64)
        per_sample = group_normalize(scalar, group_size, divide_by_std)
        returns = torch.where(valid, per_sample.to(dtype)[:, None], 0.0)
        if normalize:
            return finish(masked_whiten(per_sample[:, None].expand(valid.shape), keep)), returns
        return returns, returns
    penalty = kl_penalty(kl, keep, kl_coef) if kl is not None and kl_coef else torch.zeros(valid.shape, dtype=F64,
                                                                                             device=valid.device)
    if estimator == "reinforce_plus_plus_baseline":
        centred = group_normalize(rewards, group_size, divide_by_std=False)[:, None]
        advantages = finish(masked_whiten(centred - penalty, keep))
        return advantages, advantages
    if estimator == "reinforce_plus_plus":
        returns = discounted_returns(token_rewards(rewards, lengths, penalty), gamma)
        return finish(masked_whiten(returns, keep)), finish(returns)
    values = values.to(F64).masked_fill(~valid, 0.0)
    advantages, returns = gae(token_rewards(rewards, lengths, penalty), values, gamma, lambd)
    return finish(masked_whiten(advantages, keep) if normalize else advantages), finish(returns)
