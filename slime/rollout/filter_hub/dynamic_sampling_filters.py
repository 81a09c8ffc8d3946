"""Built-in dynamic-sampling filters, by upstream slime's path:
``--dynamic-sampling-filter-path slime.rollout.filter_hub.dynamic_sampling_filters.check_reward_nonzero_std``."""

from __future__ import annotations

import statistics

from slime.rollout.filter_hub.base_types import DynamicFilterOutput


def check_reward_nonzero_std(args, samples, **kwargs) -> DynamicFilterOutput:
    """Keep a group whose rewards differ (their unbiased std above 1e-6): a group of equal rewards has no
    advantage to learn from."""
    rewards = [float(s.get_reward_value(args)) for s in samples]
    keep = len(rewards) > 1 and statistics.stdev(rewards) > 1e-6
    return DynamicFilterOutput(keep=keep, reason=None if keep else f"zero_std_{round(rewards[0], 1)}")
