"""How a run ends when its inputs are bad, end to end through train.py on a real local Ray: a NaN
reward stops it before anything is trained or saved (or skips that rollout by a flag), and SIGTERM
ends a run waiting on a reward that hangs. (--reward-timeout itself: tests/rewards/test_hub.py.)"""

from __future__ import annotations

import signal
import time

import pytest

from tests.helpers.runs import train_one_rank

pytestmark = pytest.mark.slow


def test_issue13_4_a_nan_reward_stops_the_run_before_training_or_saving(tiny_base, tmp_path):
    save = tmp_path / "ckpt"
    result = train_one_rank(tiny_base, f"ckpt.save={save}", "ckpt.save_interval=1", "~rollout.rm_type",
                   "+rollout.custom_rm_path=tests.helpers.training:nan_for_the_first_sample")
    assert result.returncode == 1, result.stdout[-3000:]
    assert ("train.py: rollout 0: the reward function (tests.helpers.training:nan_for_the_first_sample) returned a "
            "non-finite reward for 1 of 16 samples: sample 0 (prompt group 0): nan") in result.stdout
    assert "actor/loss" not in result.stdout and not save.exists()


def test_issue13_4_skip_non_finite_rewards_skips_the_rollout(tiny_base, tmp_path):
    result = train_one_rank(tiny_base, f"ckpt.save={tmp_path / 'ckpt'}", "rollout.num_rollout=2", "~rollout.rm_type",
                   "+rollout.custom_rm_path=tests.helpers.training:nan_for_the_first_sample",
                   "+rollout.skip_non_finite_rewards=true")
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.stdout.count("not trained on (--skip-non-finite-rewards)") == 2
    assert "actor/loss" not in result.stdout


def test_issue13_5_sigterm_ends_a_run_waiting_on_a_hanging_reward_within_seconds(tiny_base, tmp_path):
    marker = tmp_path / "inside-the-reward"
    process = train_one_rank(tiny_base, f"ckpt.save={tmp_path / 'ckpt'}", "~rollout.rm_type",
                    "+rollout.custom_rm_path=tests.helpers.training:hanging_reward", wait=False,
                    env={"SLIME_TEST_HANG_MARKER": str(marker)})
    try:
        deadline = time.time() + 300
        while not marker.exists():
            assert process.poll() is None and time.time() < deadline, process.communicate()[0][-3000:]
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        out = process.communicate(timeout=60)[0]  # a run that ignored SIGTERM would hang here
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1 and "train.py: stopped by SIGTERM" in out, out[-3000:]


def test_issue15_11_rerunning_a_complete_run_says_so_and_how_to_start_over(tiny_base, tmp_path):
    save = tmp_path / "ckpt"
    first = train_one_rank(tiny_base, f"ckpt.save={save}", "rollout.num_rollout=1", "ckpt.save_interval=1")
    assert first.returncode == 0, first.stdout[-3000:]
    again = train_one_rank(tiny_base, f"ckpt.save={save}", "rollout.num_rollout=1", "ckpt.save_interval=1")
    assert again.returncode == 0
    assert (f"slime: the run is complete: {save} holds rollout 1 of 1, so there is nothing to train. To train "
            "further, raise --num-rollout") in again.stdout
    assert "rollout 1/1" not in again.stdout  # nothing trained, no Ray started
