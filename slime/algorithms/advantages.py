"""Advantages and returns of a whole rollout per estimator, on right-padded ``[B, L]`` tensors with
tensor operations only (packed data goes through ``slime.algorithms.layout.pad``/``unpad``), with
upstream slime's meaning of every estimator.

Inputs: one scalar reward per sample, each sample's response length, and per-token tensors (the loss
mask, the KL to the reference, the critic's values) valid up to each row's length; whatever lies past
it is ignored. Outputs are per-token, zero past each row's length, in the rewards' dtype; everything
in between is computed in float64.

- grpo / gspo / cispo: the group-normalized reward, (r − mean) / (std + 1e-6) within each prompt's
  group, std the unbiased (N − 1) one (the division optional; a one-sample group is only centred), the
  same for every token of the response. ``--kl-coef`` does not enter here (the KL reaches these
  estimators through the KL loss); ``kl_in_group_rewards`` (--kl-penalty-in-group-rewards, this
  project's) first charges each reward kl_coef × its summed KL over the loss-masked tokens.
- reinforce_plus_plus: token rewards −kl_coef·KL on the loss-masked tokens and the reward on the last
  loss-masked token; returns G_t = r_t + gamma·G_{t+1} over every response token.
- reinforce_plus_plus_baseline: the reward minus its group's mean, minus kl_coef·KL on every token.
- ppo: token rewards −kl_coef·KL on every response token, the reward on the last one; GAE with gamma
  and lambda on the critic's values (0 after the last token); returns = A + V.

``normalize`` (--normalize-advantages) whitens the advantages of every estimator: mean and variance
over the loss-masked tokens of the batch (the variance with Bessel's N/(N − 1) from two tokens on),
(A − mean) / sqrt(var + 1e-8) applied to every token. ``normalize_rewards`` False
(--disable-rewards-normalization, or a reward post-process hook) leaves the rewards as they are where
group normalization would apply.
``slime.algorithms.reference`` holds the same definitions token by token, the tests' oracle.
"""

from __future__ import annotations

import torch

from slime.algorithms.layout import as_lengths, valid_mask
from slime.algorithms.scan import reverse_discounted_cumsum

EPS = 1e-6  # added to a group's std
WHITEN_EPS = 1e-8  # added to the batch's variance
F64 = torch.float64
GROUP_NORMALIZED = ("grpo", "gspo", "cispo")  # one advantage per sample: its group-normalized reward
ESTIMATORS = ("grpo", "gspo", "cispo", "reinforce_plus_plus", "reinforce_plus_plus_baseline", "ppo")


def group_normalize(rewards: torch.Tensor, group_size: int, divide_by_std: bool = True) -> torch.Tensor:
    """Rewards of consecutive groups of ``group_size`` samples (one prompt each), centred per group
    (and divided by the group's unbiased std + EPS; a group of one has none and is only centred), in
    float64."""
    if len(rewards) % group_size:
        raise ValueError(f"{len(rewards)} samples do not form whole groups of {group_size} (--n-samples-per-prompt)")
    grouped = rewards.to(F64).view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if divide_by_std and group_size > 1:
        centred = centred / (centred.std(dim=1, keepdim=True) + EPS)
    return centred.view(-1)


def normalized_rewards(estimator: str, rewards: torch.Tensor, group_size: int, divide_by_std: bool = True,
                       normalize_rewards: bool = True) -> torch.Tensor:
    """The per-sample rewards after upstream's rollout-side normalization, in float64: grpo, gspo and
    cispo group-normalized (the std division optional), reinforce_plus_plus_baseline centred per group,
    the others (and all with ``normalize_rewards`` False) as they are."""
    if not normalize_rewards or estimator not in (*GROUP_NORMALIZED, "reinforce_plus_plus_baseline"):
        return rewards.to(F64)
    return group_normalize(rewards, group_size, divide_by_std and estimator in GROUP_NORMALIZED)


def masked_whiten(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """(values − mean) / sqrt(var + 1e-8), mean and (Bessel-corrected) variance over the tokens
    ``keep`` marks, applied to every token, in float64. With no token kept there is nothing to
    normalize against: values come back unchanged."""
    return _masked_whiten_(values.to(F64, copy=True), keep)


def _masked_whiten_(values: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``masked_whiten`` in place on a float64 tensor of this module's own (fresh large tensors cost
    more in page faults than the arithmetic: the statistics reuse one mask buffer)."""
    count = int(keep.sum())
    if not count:
        return values
    kept = keep.to(F64)
    values.sub_(torch.dot(values.flatten(), kept.flatten()) / count)
    squares = torch.dot(kept.mul_(values).flatten(), values.flatten())  # two passes: no cancellation
    variance = squares / (count - 1) if count > 1 else squares / count
    return values.mul_(torch.rsqrt(variance + WHITEN_EPS))


def _kl_rewards(kl: torch.Tensor | None, where: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """A new float64 tensor: −kl_coef·KL on the tokens ``where`` marks, 0 elsewhere."""
    if kl is None or not kl_coef:
        return torch.zeros(where.shape, dtype=F64, device=where.device)
    return kl.to(F64, copy=True).masked_fill_(~where, 0.0).mul_(-kl_coef)


def last_kept_token(lengths: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Each row's last token the loss keeps; the last response token of a row that keeps none."""
    positions = torch.arange(keep.shape[1], device=keep.device).expand_as(keep)
    last = torch.where(keep, positions, -1).max(dim=1).values if keep.shape[1] else lengths - 1
    return torch.where(last >= 0, last, lengths - 1)


def _add_rewards_(token_rewards: torch.Tensor, rewards: torch.Tensor, lengths: torch.Tensor,
                  positions: torch.Tensor) -> torch.Tensor:
    """Each non-empty row's reward added at its ``positions`` entry, in place."""
    rows = torch.nonzero(lengths > 0).squeeze(1)
    return token_rewards.index_put_((rows, positions[rows]), rewards.to(F64)[rows], accumulate=True)


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
                       divide_by_std: bool = True, normalize: bool = False, normalize_rewards: bool = True,
                       kl_in_group_rewards: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Token advantages and returns ``[B, L]`` (L: the per-token inputs' width, else the longest
    response); returns equal the advantages before whitening (A + V for PPO)."""
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

    def whitened(per_token: torch.Tensor) -> torch.Tensor:
        return finish(_masked_whiten_(per_token, keep) if normalize else per_token)

    if estimator in GROUP_NORMALIZED:
        scalar = rewards.to(F64)
        if kl_in_group_rewards and kl is not None and kl_coef:
            scalar = scalar - kl_coef * torch.where(keep, kl, 0.0).sum(1, dtype=F64)
        per_sample = normalized_rewards(estimator, scalar, group_size, divide_by_std, normalize_rewards)
        returns = torch.where(valid, per_sample.to(dtype)[:, None], 0.0)
        if normalize:
            return finish(_masked_whiten_(per_sample[:, None].expand(valid.shape).contiguous(), keep)), returns
        return returns, returns
    if estimator == "reinforce_plus_plus_baseline":
        centred = normalized_rewards(estimator, rewards, group_size, normalize_rewards=normalize_rewards)
        per_token = _kl_rewards(kl, valid, kl_coef).add_(centred[:, None])
        returns = finish(per_token)
        return whitened(per_token), returns
    if estimator == "reinforce_plus_plus":
        token_rewards = _add_rewards_(_kl_rewards(kl, keep, kl_coef), rewards, lengths, last_kept_token(lengths, keep))
        returns = reverse_discounted_cumsum(token_rewards, gamma)
        token_returns = finish(returns)
        return whitened(returns), token_returns
    values = values.to(F64, copy=True).masked_fill_(~valid, 0.0)
    token_rewards = _add_rewards_(_kl_rewards(kl, valid, kl_coef), rewards, lengths, lengths - 1)
    advantages, returns = _gae_(token_rewards, values, gamma, lambd)
    token_returns = finish(returns)
    return whitened(advantages), token_returns
