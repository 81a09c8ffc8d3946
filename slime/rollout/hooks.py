"""The user's hooks between a rollout's scoring and its training, by upstream slime's flags: each is
loaded by its path (``module.path.function`` or ``module.path:function``), called with the documented
arguments, and what it returns is checked, so a hook's mistake is an error naming it.

- ``--custom-reward-post-process-path``: ``fn(args, samples)`` returns the rewards the advantages use,
  one number per sample, or upstream's pair ``(raw_rewards, rewards)`` (the second is used). The logged
  reward stays each sample's own ``reward``.
- ``--rollout-sample-filter-path``: ``fn(args, samples)`` decides which samples train: it returns one
  bool per sample (True trains), or None after setting ``sample.remove_sample`` on the ones that do not.
  A removed sample stays in the rollout (its group's statistics, the logged reward) with a loss mask
  of zeros, so the batch arithmetic is unchanged.
- ``--custom-advantage-function-path``: ``fn(args, samples, rewards, kl, values)`` returns
  ``(advantages, returns)``: per sample, one number per response token (lists, tensors, or a
  right-padded [B, L] tensor; returns may be None, meaning the advantages). ``rewards`` are the (post-processed) rewards, a float tensor [B];
  ``kl`` and ``values`` are per-sample lists of per-token values, or None when the run has no
  reference model or no critic.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from slime.rollout.sample import Sample
from slime.utils.functions import load_function


class HookError(ValueError):
    """A hook returned something the loop cannot use; the message names the hook and what was expected."""


def _call(flag: str, path: str, *call_args):
    try:
        function = load_function(path)
    except ValueError as err:
        raise HookError(f"{flag} {path}: {err}") from None
    return function(*call_args)


def _numbers(flag: str, path: str, values, count: int, what: str) -> list[float]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != count:
        shown = len(values) if isinstance(values, Sequence) and not isinstance(values, str) else type(values).__name__
        raise HookError(f"{flag} {path} returned {shown} {what}, expected {count} numbers")
    bad = [i for i, v in enumerate(values) if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)]
    if bad:
        raise HookError(f"{flag} {path}: {what}[{bad[0]}] is {values[bad[0]]!r}, not a finite number")
    return [float(v) for v in values]


def post_processed_rewards(args: argparse.Namespace, samples: list[Sample]) -> list[float]:
    """The rewards the advantages use: the hook's, or each sample's reward."""
    if not args.custom_reward_post_process_path:
        return [float(s.reward) for s in samples]
    flag, path = "--custom-reward-post-process-path", args.custom_reward_post_process_path
    result = _call(flag, path, args, samples)
    if isinstance(result, tuple) and len(result) == 2:  # upstream's (raw_rewards, rewards)
        result = result[1]
    return _numbers(flag, path, result, len(samples), "rewards")


def filter_samples(args: argparse.Namespace, samples: list[Sample]) -> int:
    """Apply the sample filter: the samples it removes get a loss mask of zeros. Returns how many."""
    if not args.rollout_sample_filter_path:
        return 0
    flag, path = "--rollout-sample-filter-path", args.rollout_sample_filter_path
    result = _call(flag, path, args, samples)
    if result is None:
        keep = [not s.remove_sample for s in samples]
    else:
        keep = list(result)
        if len(keep) != len(samples) or not all(isinstance(k, bool) for k in keep):
            raise HookError(f"{flag} {path} must return one bool per sample ({len(samples)}), or None after setting "
                            "sample.remove_sample")
    for sample, kept in zip(samples, keep):
        sample.remove_sample = not kept
        if not kept:
            sample.loss_mask = [0] * sample.response_length
    return keep.count(False)


def custom_advantages(args: argparse.Namespace, samples: list[Sample], rewards, kl: list[list[float]] | None,
                      values: list[list[float]] | None) -> tuple[list[list[float]], list[list[float]]]:
    """(advantages, returns) per sample from the custom advantage function, their shapes checked."""
    flag, path = "--custom-advantage-function-path", args.custom_advantage_function_path
    result = _call(flag, path, args, samples, rewards, kl, values)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise HookError(f"{flag} {path} must return (advantages, returns), got {type(result).__name__}")
    advantages, returns = result
    advantages = _per_token(flag, path, advantages, samples, "advantages")
    returns = advantages if returns is None else _per_token(flag, path, returns, samples, "returns")
    return advantages, returns


def _per_token(flag: str, path: str, rows, samples: list[Sample], what: str) -> list[list[float]]:
    if getattr(rows, "dim", lambda: 0)() == 2:  # a right-padded [B, L] tensor
        rows = [row[:sample.response_length] for row, sample in zip(rows, samples)] if len(rows) == len(samples) else rows
    if not isinstance(rows, Sequence) or len(rows) != len(samples):
        raise HookError(f"{flag} {path}: {what} must hold one row per sample ({len(samples)})")
    return [_numbers(flag, path, row, sample.response_length, f"{what} of sample {i}")
            for i, (row, sample) in enumerate(zip(rows, samples))]
