"""The per-token definitions of advantages, returns and the micro-batch losses, written for clarity and
computed in float64: the oracle the batched code in ``advantages`` and ``micro_batch`` is tested
against, and the baseline ``benchmarks/algorithms.py`` times it against. Training never calls it.

Inputs are per sample: a scalar reward, per-token tensors over its response (KL to the reference,
the critic's values, the loss mask). The meaning is upstream slime's (``slime.algorithms.advantages``
says it in words): groups divide by their unbiased std; REINFORCE++ charges the KL on the loss-masked
tokens and puts the reward on the last loss-masked token; PPO and REINFORCE++-baseline charge the KL
on every token; whitening takes its statistics over the loss-masked tokens (Bessel-corrected
variance, + 1e-8) and applies them to every token.
"""

from __future__ import annotations

import argparse
import math

import torch

from slime.algorithms.kl import kl_estimate
from slime.algorithms.losses import aggregate, policy_loss, tis_weights, value_loss

EPS = 1e-6
WHITEN_EPS = 1e-8
F64 = torch.float64
GROUP_NORMALIZED = ("grpo", "gspo", "cispo")


def group_normalize(rewards: torch.Tensor, group_size: int, divide_by_std: bool = True) -> torch.Tensor:
    """Each reward minus its group's mean (divided by the group's unbiased std + EPS; a group of one sample
    is only centred)."""
    out = []
    for start in range(0, len(rewards), group_size):
        group = [float(r) for r in rewards[start:start + group_size]]
        mean = math.fsum(group) / len(group)
        if divide_by_std and len(group) > 1:
            std = math.sqrt(math.fsum((r - mean) ** 2 for r in group) / (len(group) - 1))
            out += [(r - mean) / (std + EPS) for r in group]
        else:
            out += [r - mean for r in group]
    return torch.tensor(out, dtype=F64)


def whiten(values: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """(v − mean) / sqrt(var + 1e-8) on every token, mean and variance over the tokens the masks keep (the
    variance divided by N − 1 from two tokens on). With no token kept the values come back unchanged."""
    kept = [float(v) for value, mask in zip(values, masks) for v, m in zip(value, mask) if m > 0]
    if not kept:
        return [v.to(F64) for v in values]
    mean = math.fsum(kept) / len(kept)
    variance = math.fsum((v - mean) ** 2 for v in kept) / (len(kept) - 1 if len(kept) > 1 else 1)
    return [(v.to(F64) - mean) / math.sqrt(variance + WHITEN_EPS) for v in values]


def token_rewards(reward: float, kl: torch.Tensor, charged: torch.Tensor, kl_coef: float, at: int) -> torch.Tensor:
    """−kl_coef·KL on the tokens ``charged`` marks, plus the sample's reward on token ``at``."""
    rewards = -kl_coef * kl.to(F64) * (charged > 0)
    if len(rewards):
        rewards[at] += reward
    return rewards


def last_kept(mask: torch.Tensor) -> int:
    """The last token the loss keeps; the last token when it keeps none."""
    kept = [t for t in range(len(mask)) if mask[t] > 0]
    return kept[-1] if kept else len(mask) - 1


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    returns = torch.zeros_like(rewards, dtype=F64)
    running = 0.0
    for t in reversed(range(len(rewards))):
        running = rewards[t] + gamma * running
        returns[t] = running
    return returns


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, returns) by generalised advantage estimation; the value after the last token is 0."""
    rewards, values = rewards.to(F64), values.to(F64)
    advantages = torch.zeros_like(rewards)
    last = 0.0
    for t in reversed(range(len(rewards))):
        next_value = values[t + 1] if t + 1 < len(values) else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        last = delta + gamma * lambd * last
        advantages[t] = last
    return advantages, advantages + values


def compute_advantages(estimator: str, rewards: torch.Tensor, response_lengths: list[int], group_size: int, *,
                       loss_masks: list[torch.Tensor] | None = None, kl: list[torch.Tensor] | None = None,
                       kl_coef: float = 0.0, values: list[torch.Tensor] | None = None, gamma: float = 1.0,
                       lambd: float = 1.0, divide_by_std: bool = True, normalize: bool = False,
                       normalize_rewards: bool = True,
                       kl_in_group_rewards: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-sample float64 token advantages and returns (the returns are the advantages before whitening,
    A + V for PPO)."""
    kl = kl if kl is not None else [torch.zeros(n, dtype=F64) for n in response_lengths]
    masks = loss_masks if loss_masks is not None else [torch.ones(n, dtype=F64) for n in response_lengths]
    everywhere = [torch.ones(n, dtype=F64) for n in response_lengths]
    if estimator in GROUP_NORMALIZED:
        scalar = rewards.to(F64)
        if kl_in_group_rewards:
            scalar = scalar - kl_coef * torch.tensor([float((k.to(F64) * (m > 0)).sum()) for k, m in zip(kl, masks)],
                                                     dtype=F64)
        normalized = group_normalize(scalar, group_size, divide_by_std) if normalize_rewards else scalar
        returns = [torch.full((n,), float(a), dtype=F64) for a, n in zip(normalized, response_lengths)]
    elif estimator == "reinforce_plus_plus":
        returns = [discounted_returns(token_rewards(float(r), k, m, kl_coef, last_kept(m)), gamma)
                   for r, k, m in zip(rewards, kl, masks)]
    elif estimator == "reinforce_plus_plus_baseline":
        centred = group_normalize(rewards, group_size, divide_by_std=False) if normalize_rewards else rewards.to(F64)
        returns = [torch.full((n,), float(c), dtype=F64) - kl_coef * k.to(F64)
                   for c, n, k in zip(centred, response_lengths, kl)]
    elif estimator == "ppo":
        if values is None:
            raise ValueError("the ppo estimator needs the critic's values")
        pairs = [gae(token_rewards(float(r), k, e, kl_coef, len(e) - 1), v, gamma, lambd)
                 for r, k, e, v in zip(rewards, kl, everywhere, values)]
        advantages, returns = [a for a, _ in pairs], [r for _, r in pairs]
        return (whiten(advantages, masks) if normalize else advantages), returns
    else:
        raise ValueError(f"unknown advantage estimator {estimator!r}")
    return (whiten(returns, masks) if normalize else returns), returns


def actor_loss(args: argparse.Namespace, log_probs: list[torch.Tensor], entropy: list[torch.Tensor],
               samples: list[dict], total_tokens: float, total_samples: int) -> tuple[torch.Tensor, dict]:
    """The actor's loss of one micro-batch, sample by sample in float64 (``samples`` are the training
    dicts: advantages, old/ref/rollout log-probs and loss mask per token)."""
    def field(sample: dict, key: str) -> torch.Tensor:
        return torch.tensor(sample[key], dtype=F64)

    losses, clipped, kls, masks = [], [], [], []
    for logp, ent, sample in zip(log_probs, entropy, samples):
        logp, ent, old = logp.to(F64), ent.to(F64), field(sample, "old_log_probs")
        weights = None
        if args.use_tis and sample.get("rollout_log_probs"):
            weights = tis_weights(old, field(sample, "rollout_log_probs"), args.tis_clip_low, args.tis_clip)
        if args.advantage_estimator == "cispo":
            loss, was_clipped = cispo_loss(logp, old, field(sample, "advantages"), args.eps_clip, args.eps_clip_high,
                                           weights)
        else:
            loss, was_clipped = policy_loss(logp, old, field(sample, "advantages"), eps_clip=args.eps_clip,
                                            eps_clip_high=args.eps_clip_high, eps_clip_c=args.eps_clip_c,
                                            sequence_level=args.advantage_estimator == "gspo", tis_weights=weights)
        if args.use_kl_loss and args.kl_loss_coef:
            kls.append(kl_estimate(logp, field(sample, "ref_log_probs"), args.kl_loss_type))
            loss = loss + args.kl_loss_coef * kls[-1]
        losses.append(loss - args.entropy_coef * ent if args.entropy_coef else loss)
        clipped.append(was_clipped)
        masks.append(field(sample, "loss_mask"))
    metrics = {"pg_clipfrac": _masked_mean(clipped, masks), "entropy": _masked_mean(entropy, masks)}
    if args.use_kl_loss and args.kl_loss_coef:
        metrics["kl_loss"] = _masked_mean(kls, masks)
    return aggregate(losses, masks, args.calculate_per_token_loss, total_tokens, total_samples), metrics


def cispo_loss(logp: torch.Tensor, old: torch.Tensor, advantages: torch.Tensor, eps_clip: float,
               eps_clip_high: float, weights: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """CISPO token by token: the clipped weight min(max(ratio, 1 − eps_clip), 1 + eps_clip_high) is a
    constant, and the token's loss is −weight·A·logp."""
    losses, clipped = [], []
    for t in range(len(logp)):
        ratio = float(torch.exp((logp[t] - old[t]).detach()))  # inf where it overflows, clipped like any other
        weight = min(max(ratio, 1 - eps_clip), 1 + eps_clip_high)
        loss = -weight * advantages[t] * logp[t]
        losses.append(loss * weights[t] if weights is not None else loss)
        clipped.append(float(weight != ratio))
    # an empty response's loss stays on the graph (zero tokens, zero gradient), as the batched one does
    return (torch.stack(losses) if losses else (logp - old) * 0), torch.tensor(clipped, dtype=F64)


def critic_loss(args: argparse.Namespace, values: list[torch.Tensor], samples: list[dict], total_tokens: float,
                total_samples: int) -> tuple[torch.Tensor, dict]:
    """The critic's clipped value loss of one micro-batch, sample by sample in float64."""
    losses, masks = [], []
    for value, sample in zip(values, samples):
        old, returns = (torch.tensor(sample[k], dtype=F64) for k in ("old_values", "returns"))
        losses.append(value_loss(value.to(F64), old, returns, args.value_clip))
        masks.append(torch.tensor(sample["loss_mask"], dtype=F64))
    loss = aggregate(losses, masks, args.calculate_per_token_loss, total_tokens, total_samples)
    return loss, {"value_mean": _masked_mean(values, masks)}


def _masked_mean(per_sample: list[torch.Tensor], masks: list[torch.Tensor]) -> float:
    kept = math.fsum(float((v.detach().to(F64) * m).sum()) for v, m in zip(per_sample, masks))
    return kept / max(math.fsum(float(m.sum()) for m in masks), 1.0)
