"""Advantages and returns of a whole rollout per estimator, on right-padded ``[B, L]`` tensors with
tensor operations only (packed data goes through ``slime.algorithms.layout.pad``/``unpad``).

Inputs: one scalar reward per sample, each sample's response length, and per-token tensors (the loss
mask, the KL to the reference, the critic's values) valid up to each row's length; whatever lies past
it is ignored. Outputs are per-token, zero past each row's length, in the rewards' dtype; everything
in between is computed in float64.

- grpo / gspo / cispo: group-normalized reward, (r − mean) / (std + eps) within each prompt's group (std
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

from slime.algorithms.layout import as_lengths, valid_mask
from slime.algorithms.scan import reverse_discounted_cumsum

EPS = 1e-6
F64 = torch.float64
GROUP_NORMALIZED = ("grpo", "gspo", "cispo")  # one advantage per sample: its group-normalized reward
ESTIMATORS = ("grpo", "gspo", "cispo", "reinforce_plus_plus", "reinforce_plus_plus_baseline", "ppo")


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
    return _masked_whiten_(values.to(F64, copy=True), keep)


def _masked_whiten_(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``masked_whiten`` in place on a float64 tensor of this module's own (fresh large tensors cost
    more in page faults than the arithmetic: the statistics reuse one mask buffer)."""
    count = int(keep.sum())
    if not count:
        return values
    kept = keep.to(F64)
    values.sub_(torch.dot(values.flatten(), kept.flatten()) / count)
    variance = torch.dot(kept.mul_(values).flatten(), values.flatten()) / count  # two passes: no cancellation
    return values.div_(variance.sqrt() + EPS)


def _kl_rewards(kl: torch.Tensor | None, keep: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """A new float64 tensor: −kl_coef·KL on every token the loss keeps, 0 elsewhere."""
    if kl is None or not kl_coef:
        return torch.zeros(keep.shape, dtype=F64, device=keep.device)
    return kl.to(F64, copy=True).masked_fill_(~keep, 0.0).mul_(-kl_coef)


def _token_rewards(rewards: torch.Tensor, lengths: torch.Tensor, kl: torch.Tensor | None, keep: torch.Tensor,
                   kl_coef: float) -> torch.Tensor:
    """A new float64 tensor: the KL rewards plus each sample's reward on its last token."""
    rows = torch.nonzero(lengths > 0).squeeze(1)
    return _kl_rewards(kl, keep, kl_coef).index_put_((rows, lengths[rows] - 1), rewards.to(F64)[rows], accumulate=True)


def _gae_(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation on zero-padded float64 rows (the value
    after each row's last token is the padding's 0), in place: ``rewards`` becomes the TD errors and
    ``values`` the returns."""
    deltas = rewards
    deltas[:, :-1].add_(values[:, 1:], alpha=gamma)
    advantages = reverse_discounted_cumsum(deltas.sub_(values), gamma * lambd)
    return advantages, values.add_(advantages)


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

    def finish(per_token: torch.Tensor) -> torch.Tensor:  # a copy even in float64: whitening works in place
        return per_token.to(dtype, copy=True).masked_fill_(~valid, 0.0)

    if estimator in GROUP_NORMALIZED:
        scalar = rewards.to(F64)
        if kl is not None and kl_coef:
            scalar = scalar - kl_coef * torch.where(keep, kl, 0.0).sum(1, dtype=F64)
        per_sample = group_normalize(scalar, group_size, divide_by_std)
        returns = torch.where(valid, per_sample.to(dtype)[:, None], 0.0)
        if normalize:
            return finish(_masked_whiten_(per_sample[:, None].expand(valid.shape).contiguous(), keep)), returns
        return returns, returns
    if estimator == "reinforce_plus_plus_baseline":
        centred = group_normalize(rewards, group_size, divide_by_std=False)[:, None]
        per_token = _kl_rewards(kl, keep, kl_coef).add_(centred)
        advantages = finish(_masked_whiten_(per_token, keep))
        return advantages, advantages
    if estimator == "reinforce_plus_plus":
        returns = reverse_discounted_cumsum(_token_rewards(rewards, lengths, kl, keep, kl_coef), gamma)
        token_returns = finish(returns)
        return finish(_masked_whiten_(returns, keep)), token_returns
    values = values.to(F64, copy=True).masked_fill_(~valid, 0.0)
    advantages, returns = _gae_(_token_rewards(rewards, lengths, kl, keep, kl_coef), values, gamma, lambd)
    token_returns = finish(returns)
    return finish(_masked_whiten_(advantages, keep) if normalize else advantages), token_returns
