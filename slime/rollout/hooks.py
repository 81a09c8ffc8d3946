"""The user's hooks between a rollout's scoring and its training, by upstream slime's flags and with
upstream's signatures: each is loaded by its path (``module.path.function`` or ``module.path:function``),
called with the documented arguments, and what it returns is checked, so a hook's mistake is an error
naming it.

- ``--custom-reward-post-process-path``: ``fn(args, samples)`` returns upstream's pair
  ``(raw_rewards, rewards)``, or the rewards alone, one number per sample: the rewards the advantages
  use as they are (they replace group normalization, as upstream's do). The logged reward stays each
  sample's own ``reward``.
- ``--rollout-sample-filter-path``: ``fn(args, groups)`` gets the rollout's groups (lists of samples,
  upstream's shape), sets ``sample.remove_sample`` on the ones not to train and returns None; or it
  returns one bool per sample, in the rollout's order (True trains). A removed sample stays in the
  rollout (its group's statistics, the logged reward) with a loss mask of zeros, so the batch
  arithmetic is unchanged.
- ``--custom-advantage-function-path``: upstream's ``fn(args, rollout_data)``, which sets
  ``rollout_data["advantages"]`` and ``["returns"]`` (per sample, a tensor per response token) from its
  lists: ``rewards`` (after the rollout side's normalization, as upstream's), ``kl`` (zeros without a
  reference model), ``values`` (None without a critic), ``loss_masks``, ``log_probs``,
  ``ref_log_probs``, ``rollout_log_probs``, ``response_lengths``, ``total_lengths``, ``tokens``; or this
  project's ``fn(args, samples, rewards, kl, values)`` returning ``(advantages, returns)``: per sample,
  one number per response token (lists, tensors, or a right-padded [B, L] tensor; returns may be None,
  meaning the advantages), with ``rewards`` the (post-processed) rewards as a float tensor [B] and ``kl``
  and ``values`` per-sample lists or None.
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
    """The rewards the advantages use: the hook's, or each sample's reward (its --reward-key entry)."""
    if not args.custom_reward_post_process_path:
        return [float(s.get_reward_value(args)) for s in samples]
    flag, path = "--custom-reward-post-process-path", args.custom_reward_post_process_path
    result = _call(flag, path, args, samples)
    if isinstance(result, tuple) and len(result) == 2:  # upstream's (raw_rewards, rewards)
        result = result[1]
    return _numbers(flag, path, result, len(samples), "rewards")


def groups_of(samples: list[Sample]) -> list[list[Sample]]:
    """The rollout's groups: runs of consecutive samples of one ``group_index``."""
    groups: list[list[Sample]] = []
    for sample in samples:
        if groups and groups[-1][0].group_index == sample.group_index:
            groups[-1].append(sample)
        else:
            groups.append([sample])
    return groups


def filter_samples(args: argparse.Namespace, samples: list[Sample]) -> int:
    """Apply the sample filter: the samples it removes get a loss mask of zeros. Returns how many."""
    if not args.rollout_sample_filter_path:
        return 0
    flag, path = "--rollout-sample-filter-path", args.rollout_sample_filter_path
    result = _call(flag, path, args, groups_of(samples))
    if result is None:
        keep = [not s.remove_sample for s in samples]
    else:
        keep = list(result)
        if len(keep) != len(samples) or not all(isinstance(k, bool) for k in keep):
            raise HookError(f"{flag} {path} must return None after setting sample.remove_sample, or one bool per "
                            f"sample ({len(samples)})")
    for sample, kept in zip(samples, keep):
        sample.remove_sample = not kept
        if not kept:
            sample.loss_mask = [0] * sample.response_length
    return keep.count(False)


def takes_rollout_data(function) -> bool:
    """Whether a custom advantage function has upstream's signature ``fn(args, rollout_data)``."""
    import inspect

    parameters = [p for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.default is p.empty]
    return len(parameters) == 2


def custom_advantages(args: argparse.Namespace, samples: list[Sample], rewards, kl: list[list[float]] | None,
                      values: list[list[float]] | None, rollout_data: dict | None = None
                      ) -> tuple[list[list[float]], list[list[float]]]:
    """(advantages, returns) per sample from the custom advantage function, their shapes checked.
    ``rollout_data``: what upstream's signature gets (``slime.trainer`` builds it)."""
    flag, path = "--custom-advantage-function-path", args.custom_advantage_function_path
    try:
        function = load_function(path)
    except ValueError as err:
        raise HookError(f"{flag} {path}: {err}") from None
    if takes_rollout_data(function):
        data = dict(rollout_data or {})
        function(args, data)
        missing = [key for key in ("advantages", "returns") if key not in data]
        if missing:
            raise HookError(f"{flag} {path} must set rollout_data[{missing[0]!r}] (upstream's signature "
                            "fn(args, rollout_data))")
        advantages, returns = data["advantages"], data["returns"]
    else:
        result = function(args, samples, rewards, kl, values)
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
