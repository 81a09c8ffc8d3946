"""The losses of one micro-batch on flat tensors: every sample's response tokens concatenated.

Both train backends produce the policy's per-token log-probs (and entropies, or the critic's
values) for the concatenated responses of a micro-batch and call ``actor_loss`` or
``critic_loss`` here, so the algorithm is written once and runs without per-sample Python loops.
A sample's tokens are the segment ``offsets[i]:offsets[i + 1]`` of every flat tensor.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import torch

from slime.algorithms.kl import kl_estimate
from slime.algorithms.losses import cispo_loss, clipped_policy_loss, tis_weights, value_loss


@dataclass
class MicroBatch:
    lengths: torch.Tensor  # response tokens of each sample, long [S]
    loss_mask: torch.Tensor  # float [T]
    advantages: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    old_log_probs: torch.Tensor | None = None
    ref_log_probs: torch.Tensor | None = None
    rollout_log_probs: torch.Tensor | None = None
    old_values: torch.Tensor | None = None

    @property
    def sample_ids(self) -> torch.Tensor:
        """The sample each token belongs to, long [T]."""
        return torch.repeat_interleave(torch.arange(len(self.lengths)), self.lengths)

    @classmethod
    def from_dicts(cls, samples: list[dict], device: torch.device | str | None = None) -> "MicroBatch":
        def flat(key: str) -> torch.Tensor | None:
            """The field of every sample concatenated, or None where a sample lacks it (an empty
            response's empty list counts as present)."""
            if any(s.get(key) is None or len(s[key]) != len(s["response_tokens"]) for s in samples):
                return None
            return torch.tensor([x for s in samples for x in s[key]], dtype=torch.float32, device=device)

        lengths = torch.tensor([len(s["response_tokens"]) for s in samples], dtype=torch.long)
        return cls(lengths=lengths, loss_mask=flat("loss_mask"), advantages=flat("advantages"),
                   returns=flat("returns"), old_log_probs=flat("old_log_probs"), ref_log_probs=flat("ref_log_probs"),
                   rollout_log_probs=flat("rollout_log_probs"), old_values=flat("old_values"))


def _sums_per_sample(values: torch.Tensor, batch: MicroBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(each sample's sum of ``values`` [S], the sample of each token [T]), on ``values``' device."""
    ids = batch.sample_ids.to(values.device)
    sums = torch.zeros(len(batch.lengths), dtype=values.dtype, device=values.device).index_add_(0, ids, values)
    return sums, ids


def segment_mean(values: torch.Tensor, batch: MicroBatch) -> torch.Tensor:
    """Each sample's mean of ``values`` over all its tokens (unmasked), broadcast back to its tokens."""
    sums, ids = _sums_per_sample(values, batch)
    return (sums / batch.lengths.to(values.device).clamp(min=1).to(values.dtype))[ids]


def aggregate_flat(per_token: torch.Tensor, batch: MicroBatch, per_token_mean: bool, total_tokens: float,
                   total_samples: int) -> torch.Tensor:
    """The micro-batch's share of the global batch's mean: over tokens (``per_token_mean``), or over
    samples of each sample's masked token mean."""
    masked = per_token * batch.loss_mask
    if per_token_mean:
        return masked.sum() / max(total_tokens, 1.0)
    sums, _ = _sums_per_sample(masked, batch)
    counts, _ = _sums_per_sample(batch.loss_mask.to(masked.dtype), batch)
    return (sums / counts.clamp(min=1)).sum() / max(total_samples, 1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> float:
    return float((values * mask).sum() / mask.sum().clamp(min=1))


def sft_loss(args: argparse.Namespace, log_probs: torch.Tensor, entropy: torch.Tensor, batch: MicroBatch,
             total_tokens: float, total_samples: int) -> tuple[torch.Tensor, dict]:
    """--loss-type sft_loss: the negative log-likelihood of the loss-masked tokens, averaged as the policy
    loss is (per token with --calculate-per-token-loss, else per sample)."""
    loss = aggregate_flat(-log_probs, batch, args.calculate_per_token_loss, total_tokens, total_samples)
    return loss, {"entropy": _masked_mean(entropy.detach(), batch.loss_mask)}


def actor_loss(args: argparse.Namespace, log_probs: torch.Tensor, entropy: torch.Tensor, batch: MicroBatch,
               total_tokens: float, total_samples: int) -> tuple[torch.Tensor, dict]:
    """PPO-clip policy loss (GSPO's sequence ratio, dual clip, TIS) or CISPO's, the KL loss and the entropy
    bonus; or the SFT loss (--loss-type sft_loss)."""
    if getattr(args, "loss_type", "policy_loss") == "sft_loss":
        return sft_loss(args, log_probs, entropy, batch, total_tokens, total_samples)
    old = batch.old_log_probs
    log_ratio = log_probs - old
    if args.advantage_estimator == "gspo":
        log_ratio = segment_mean(log_ratio, batch)
    weights = None
    if args.use_tis and batch.rollout_log_probs is not None:
        weights = tis_weights(old, batch.rollout_log_probs, args.tis_clip_low, args.tis_clip)
    if args.advantage_estimator == "cispo":
        per_token, clipped = cispo_loss(log_ratio, log_probs, batch.advantages, eps_clip=args.eps_clip,
                                        eps_clip_high=args.eps_clip_high, tis_weights=weights)
    else:
        per_token, clipped = clipped_policy_loss(log_ratio, batch.advantages, eps_clip=args.eps_clip,
                                                 eps_clip_high=args.eps_clip_high, eps_clip_c=args.eps_clip_c,
                                                 tis_weights=weights)
    metrics = {"pg_clipfrac": _masked_mean(clipped, batch.loss_mask),
               "entropy": _masked_mean(entropy.detach(), batch.loss_mask)}
    if args.use_kl_loss and args.kl_loss_coef:  # a KL of weight 0 has no reference log-probs to use
        kl = kl_estimate(log_probs, batch.ref_log_probs, args.kl_loss_type)
        per_token = per_token + args.kl_loss_coef * kl
        metrics["kl_loss"] = _masked_mean(kl.detach(), batch.loss_mask)
    if args.entropy_coef:
        per_token = per_token - args.entropy_coef * entropy
    loss = aggregate_flat(per_token, batch, args.calculate_per_token_loss, total_tokens, total_samples)
    return loss, metrics


def critic_loss(args: argparse.Namespace, values: torch.Tensor, batch: MicroBatch, total_tokens: float,
                total_samples: int) -> tuple[torch.Tensor, dict]:
    """The clipped value loss against the returns."""
    per_token = value_loss(values, batch.old_values, batch.returns, args.value_clip)
    loss = aggregate_flat(per_token, batch, args.calculate_per_token_loss, total_tokens, total_samples)
    return loss, {"value_mean": _masked_mean(values.detach(), batch.loss_mask)}
