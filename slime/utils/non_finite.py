"""NaN and infinite values, caught where they appear, before they reach a checkpoint.

Three places: the rewards of a rollout (naming the samples and the reward function; the run stops,
or with ``--skip-non-finite-rewards`` the rollout is not trained on); the metrics a train
backend's ``train()`` returns (its losses and gradient norms: a non-finite one means the model
diverged, and the run stops before anything of that rollout is saved or pushed to the engines);
and, before every save, the parameters themselves (an update can overflow with finite gradients).
Backend-agnostic: every backend returns such a metrics dict and names its parameters.
"""

from __future__ import annotations

import math

SHOWN = 5


class NonFinite(RuntimeError):
    """A NaN or infinite value where training cannot go on; the message says which and where."""


def reward_problem(reward: str, samples, args) -> str | None:
    """Which samples got a non-finite reward (its ``--reward-key`` entry) from ``reward`` (the reward
    function as the user named it, ``slime.rewards.hub.reward_source``); None if none did."""
    bad = [s for s in samples if not math.isfinite(s.get_reward_value(args))]
    if not bad:
        return None
    shown = ", ".join(f"sample {s.index} (prompt group {s.group_index}): {s.get_reward_value(args)}"
                      for s in bad[:SHOWN])
    more = f", and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return (f"the reward function ({reward}) returned a non-finite reward for {len(bad)} of "
            f"{len(samples)} samples: {shown}{more}")


def is_loss_or_grad(key: str) -> bool:
    name = key.rsplit("/", 1)[-1]
    return "loss" in name or name == "grad_norm"


def metrics_problem(metrics: dict) -> str | None:
    """The losses and gradient norms among a train step's metrics that are NaN or infinite."""
    bad = [f"{key} {value}" for key, value in metrics.items()
           if is_loss_or_grad(key) and isinstance(value, (int, float)) and not math.isfinite(value)]
    return ", ".join(bad) or None


def parameters_problem(named_parameters) -> str | None:
    """The parameters among ``(name, tensor)`` pairs that hold a NaN or an infinity; None if none does."""
    import torch

    bad = [name for name, tensor in named_parameters if not bool(torch.isfinite(tensor.detach()).all())]
    if not bad:
        return None
    more = f", and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    return f"{len(bad)} parameter tensor(s) hold NaN or infinite values: {', '.join(bad[:SHOWN])}{more}"
