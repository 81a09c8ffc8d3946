"""Advantages and returns per estimator. Inputs are per sample: a scalar reward, and per-token
tensors over the response (KL to the reference, values for PPO). Outputs are per-token tensors.

- grpo / gspo: group-normalized reward, (r - mean) / (std + eps) within each prompt's group
  (std division optional), the same for every token of the response.
- reinforce_plus_plus: token rewards (−kl_coef·KL per token, the reward on the last token),
  discounted returns with gamma, whitened over the batch.
- reinforce_plus_plus_baseline: reward minus the group mean, then whitened over the batch.
- ppo: GAE with gamma and lambda on token rewards and the critic's values; returns = A + V.
"""

from __future__ import annotations

import torch

EPS = 1e-6


def group_normalize(rewards: torch.Tensor, group_size: int, divide_by_std: bool = True) -> torch.Tensor:
    """Rewards of consecutive groups of ``group_size`` samples (one prompt each), centred per group."""
    grouped = rewards.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    if divide_by_std:
        centred = centred / (grouped.std(dim=1, keepdim=True, unbiased=False) + EPS)
    return centred.view(-1)


def whiten(values: list[torch.Tensor]) -> list[torch.Tensor]:
    """Normalize token values to zero mean and unit variance over the whole batch."""
    flat = torch.cat(values)
    mean, std = flat.mean(), flat.std(unbiased=False)
    return [(v - mean) / (std + EPS) for v in values]


def token_rewards(reward: float, kl: torch.Tensor, kl_coef: float) -> torch.Tensor:
    """−kl_coef·KL on every token, plus the sample's reward on its last token."""
    rewards = -kl_coef * kl
    rewards = rewards.clone()
    rewards[-1] += reward
    return rewards


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    returns = torch.zeros_like(rewards)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation; the value after the last token is 0."""
    advantages = torch.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(values) else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lambd * last
        advantages[t] = last
    return advantages, advantages + values


def compute_advantages(estimator: str, rewards: torch.Tensor, response_lengths: list[int], group_size: int, *,
                       kl: list[torch.Tensor] | None = None, kl_coef: float = 0.0,
                       values: list[torch.Tensor] | None = None, gamma: float = 1.0, lambd: float = 1.0,
                       divide_by_std: bool = True, normalize: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-sample token advantages and returns (returns equal advantages except for PPO)."""
    kl = kl if kl is not None else [torch.zeros(n) for n in response_lengths]
    if estimator in ("grpo", "gspo"):
        scalar = rewards - kl_coef * torch.stack([k.sum() for k in kl]) if kl_coef else rewards
        normalized = group_normalize(scalar, group_size, divide_by_std)
        advantages = [torch.full((n,), float(a)) for a, n in zip(normalized, response_lengths)]
        returns = advantages
    elif estimator == "reinforce_plus_plus":
        returns = [discounted_returns(token_rewards(float(r), k, kl_coef), gamma) for r, k in zip(rewards, kl)]
        advantages = whiten(returns)
    elif estimator == "reinforce_plus_plus_baseline":
        centred = group_normalize(rewards, group_size, divide_by_std=False)
        advantages = whiten([torch.full((n,), float(a)) - kl_coef * k for a, n, k in zip(centred, response_lengths, kl)])
        returns = advantages
    elif estimator == "ppo":
        if values is None:
            raise ValueError("the ppo estimator needs the critic's values")
        pairs = [gae(token_rewards(float(r), k, kl_coef), v, gamma, lambd) for r, k, v in zip(rewards, kl, values)]
        advantages, returns = [a for a, _ in pairs], [r for _, r in pairs]
    else:
        raise ValueError(f"unknown advantage estimator {estimator!r}")
    if normalize and estimator in ("grpo", "gspo", "ppo"):
        advantages = whiten(advantages)
    return advantages, returns
