"""Per-token KL estimators between the policy and the reference, from log-probabilities.

With ``log_ratio = logp - ref_logp`` (samples drawn from the policy):
k1 = log_ratio; k2 = log_ratio² / 2; k3 = exp(-log_ratio) - 1 + log_ratio (unbiased, ≥ 0);
low_var_kl = k3 clamped to [-10, 10] for stability.
"""

from __future__ import annotations

import torch

KL_TYPES = ("k1", "k2", "k3", "low_var_kl")


def kl_estimate(logp: torch.Tensor, ref_logp: torch.Tensor, kind: str) -> torch.Tensor:
    log_ratio = logp - ref_logp
    if kind == "k1":
        return log_ratio
    if kind == "k2":
        return log_ratio.square() / 2
    if kind in ("k3", "low_var_kl"):
        k3 = torch.exp(-log_ratio) - 1 + log_ratio
        return k3.clamp(-10, 10) if kind == "low_var_kl" else k3
    raise ValueError(f"unknown KL estimator {kind!r}; expected one of {', '.join(KL_TYPES)}")
