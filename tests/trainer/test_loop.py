"""The training loop's own rules, without a run: the rollout's log-probs standing for the old policy's
(--use-rollout-logprobs) and when the reference model is updated (--ref-update-interval)."""

from __future__ import annotations

import pytest

from slime.trainer import ref_update_due, rollout_old_log_probs
from tests.helpers.hooks import KL, args_with, samples

# -- rollout log-probs ---------------------------------------------------------------------------
def test_rollout_log_probs_stand_for_the_old_policys():
    assert rollout_old_log_probs(samples(2, 1)) == [[-1.0, -1.0], [-2.0]]
    assert args_with("--use-rollout-logprobs").use_rollout_logprobs


def test_missing_rollout_log_probs_are_named():
    batch = samples(3)
    batch[0].rollout_log_probs = []
    with pytest.raises(ValueError, match="sample 0 has 0 rollout log-probs for 3 response tokens"):
        rollout_old_log_probs(batch)


# -- reference updates ---------------------------------------------------------------------------
def test_the_reference_is_updated_every_interval():
    args = args_with(*KL, "--ref-update-interval", "3")
    assert [r for r in range(9) if ref_update_due(args, r)] == [2, 5, 8]
    assert not any(ref_update_due(args_with(*KL), r) for r in range(9))
