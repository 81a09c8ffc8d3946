"""The reward hub and its built-in rewards."""

from __future__ import annotations

import argparse
import pytest

from slime.rewards.hub import RewardFailure, f1_score, score
from slime.rewards.math_reward import answers_agree, extract_answer, last_boxed, math_correct
from slime.rollout.sample import Sample


def args(**kw):
    base = {"rm_type": None, "custom_rm_path": None, "reward_key": None, "rm_url": None}
    return argparse.Namespace(**{**base, **kw})


def samples(*pairs):
    return [Sample(group_index=i, index=i, prompt="q", response=r, label=label) for i, (r, label) in enumerate(pairs)]


def test_boxed_answers_nest():
    assert last_boxed(r"so \boxed{1} then \boxed{\frac{1}{2}}.") == r"\frac{1}{2}"
    assert extract_answer("the answer is 42.") is None  # no \boxed, no answer (upstream's rule)
    assert extract_answer("no number") is None


@pytest.mark.parametrize(("predicted", "label"), [
    ("0.5", "1/2"), (r"\frac{1}{2}", "0.5"), (r"\dfrac{3}{4}", "0.75"), ("1,000", "1000"),
    ("$12$", "12"), (r"\text{7}", "7"), ("3.", "3"), ("-2", "-2.0"),
])
def test_numeric_equivalence(predicted, label):
    assert answers_agree(predicted, label)


def test_math_correct_and_wrong():
    assert math_correct(r"We get \boxed{6}.", 6)
    assert not math_correct(r"We get \boxed{7}.", 6)
    assert not math_correct("I don't know", 6)


def test_hub_rewards():
    batch = samples((r"\boxed{2}", "2"), (r"\boxed{3}", "2"))
    score(args(rm_type="math"), batch)
    assert [s.reward for s in batch] == [1.0, 0.0]
    batch = samples(("<think>Answer: 9</think>\nAnswer: 2", "2"), (r"\boxed{2}", "2"))
    score(args(rm_type="dapo", reward_key="score"), batch)
    assert [s.reward for s in batch] == [1.0, -1.0]
    batch = samples((" 4 ", "4"), ("44", "4"))
    score(args(rm_type="exact_match"), batch)
    assert [s.reward for s in batch] == [1.0, 0.0]


def test_f1():
    assert f1_score("The cat sat", "cat sat")[0] == 1.0
    assert f1_score("a dog", "the cat")[0] == 0.0
    assert f1_score("cat dog", "cat")[0] == pytest.approx(2 / 3)


def flaky(args, sample):
    if sample.index == 0:
        raise ValueError("label missing")
    return 1.0


def broken(args, sample):
    raise KeyError("answer")


def returns_dict(args, sample):
    return {"acc": 0.25, "format": 1.0}


def test_a_failing_reward_is_reported_not_a_crash():
    batch = samples(("a", 1), ("b", 1))
    failed = score(args(custom_rm_path="tests.rewards.test_hub:flaky"), batch)
    assert failed == 1 and batch[0].reward == 0.0 and batch[1].reward == 1.0
    assert batch[0].metadata["reward_error"] == "ValueError: label missing"


def test_a_reward_failing_everywhere_stops_with_its_error():
    with pytest.raises(RewardFailure, match="tests.rewards.test_hub:broken.*KeyError: 'answer'"):
        score(args(custom_rm_path="tests.rewards.test_hub:broken"), samples(("a", 1), ("b", 1)))


def test_custom_reward_returning_a_dict_uses_the_reward_key():
    batch = samples(("a", 1))
    score(args(custom_rm_path="tests.rewards.test_hub.returns_dict", reward_key="acc"), batch)
    assert batch[0].reward == 0.25


def test_issue13_5_a_reward_call_past_its_timeout_is_abandoned_and_counted():
    batch = samples(*[("a", "a")] * 6)
    failed = score(args(custom_rm_path="tests.helpers.training:hang_on_odd_samples", reward_timeout=0.3), batch,
                   workers=2)
    assert failed == 3 and [s.reward for s in batch] == [1.0, 0.0] * 3
    assert batch[1].metadata["reward_error"] == "did not return within --reward-timeout 0.3 s (its process was killed)"
    with pytest.raises(RewardFailure, match=r"did not return within --reward-timeout 0\.3 s \(its process was killed\)"):
        score(args(custom_rm_path="tests.helpers.training:hanging_reward", reward_timeout=0.3), batch)


def test_issue13_5_sigterm_stops_a_process_waiting_on_a_hanging_reward():
    import signal
    import subprocess
    import sys
    import time

    from tests.helpers.paths import ROOT

    code = """
import argparse, signal, sys
from slime.trainer import _on_sigterm
from slime.rewards.hub import score
from slime.rollout.sample import Sample
signal.signal(signal.SIGTERM, _on_sigterm)
a = argparse.Namespace(rm_type=None, custom_rm_path="tests.helpers.training:hanging_reward", reward_key=None,
                       reward_timeout=None)
print("scoring", flush=True)
try:
    score(a, [Sample(group_index=0, index=0, prompt="q", response="r", label="l")])
except Exception as err:
    print(err, flush=True)
    sys.exit(1)
"""
    process = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "scoring\n"
    time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)  # one that ignored SIGTERM would hang here
    assert process.returncode == 1 and "stopped by SIGTERM" in out


def test_issue13_4_non_finite_rewards_name_their_samples_and_function():
    from slime.rewards.hub import reward_source
    from slime.utils.non_finite import reward_problem

    batch = samples(*[("a", "a")] * 8)
    assert score(args(custom_rm_path="tests.helpers.training:nan_for_the_first_sample"), batch) == 0
    nan_args = args(custom_rm_path="tests.helpers.training:nan_for_the_first_sample")
    message = reward_problem(reward_source(nan_args), batch, nan_args)
    assert message == ("the reward function (tests.helpers.training:nan_for_the_first_sample) returned a non-finite "
                       "reward for 1 of 8 samples: sample 0 (prompt group 0): nan")
    for s in batch[3:]:
        s.reward = float("inf")
    f1_args = args(rm_type="f1", custom_rm_path=None)
    many = reward_problem(reward_source(f1_args), batch, f1_args)
    assert many.startswith("the reward function (--rm-type f1) returned a non-finite reward for 6 of 8 samples")
    assert many.endswith(", and 1 more")


def test_issue13_4_non_finite_losses_and_gradient_norms_are_found_in_any_backends_metrics():
    from slime.utils.non_finite import metrics_problem

    assert metrics_problem({"actor/loss": 0.1, "actor/grad_norm": 2.0, "actor/lr": 1e-6, "kl": 0.0}) is None
    assert metrics_problem({"actor/pg_loss": float("nan"), "critic/grad_norm": float("inf"), "reward": float("nan"),
                            "actor/lr": float("nan")}) == "actor/pg_loss nan, critic/grad_norm inf"


def test_issue20_3_the_eleven_character_boxed_answer_is_checked_without_building_its_number():
    assert math_correct(r"\boxed{1e10000000}", "1e10000000") and not math_correct(r"\boxed{1e10000000}", "1")
    # Unbounded, this one answer took 9.6 s under Python's global lock: far past the timeout given here.
    batch = samples((r"\boxed{1e10000000}", "1"), (r"\boxed{1}", "1"))
    assert score(args(rm_type="math", reward_timeout=5.0), batch) == 0
    assert [s.reward for s in batch] == [0.0, 1.0]


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_issue20_3_a_reward_that_sleeps_forever_has_its_worker_killed_and_replaced(tmp_path):
    pid_file = tmp_path / "pid"
    reward = args(custom_rm_path="tests.helpers.training:pid_or_sleep_forever", reward_timeout=1.0)
    batch = [Sample(group_index=0, index=0, prompt=str(pid_file), label="sleep"),
             Sample(group_index=0, index=1, prompt="q", label="x")]
    assert score(reward, batch, workers=1) == 1
    stuck = int(pid_file.read_text())
    assert batch[0].metadata["reward_error"] == "did not return within --reward-timeout 1 s (its process was killed)"
    assert not _alive(stuck)
    assert batch[1].reward != float(stuck)  # scored by the worker that replaced it
    again = [Sample(group_index=0, index=0, prompt="q", label="x")]
    assert score(reward, again, workers=1) == 0 and again[0].reward == batch[1].reward  # the same, kept worker


def test_issue20_3_reward_timeout_holds_for_a_reward_holding_pythons_lock():
    batch = samples(("a", "a"), ("b", "b"))
    with pytest.raises(RewardFailure, match=r"did not return within --reward-timeout 1 s \(its process was killed\)"):
        score(args(custom_rm_path="tests.helpers.training:exact_power_of_ten", reward_timeout=1.0), batch)


def test_issue20_3_reward_workers_outlive_the_rollout_thread_that_started_them():
    """train_async.py generates each rollout in a thread of its own that then ends; the workers stay."""
    import threading
    import time

    reward = args(custom_rm_path="tests.helpers.training:pid_or_sleep_forever", reward_timeout=30.0)
    rewards = []
    for _ in range(2):
        batch = [Sample(group_index=0, index=0, prompt="q", label="x")]
        thread = threading.Thread(target=score, args=(reward, batch), kwargs={"workers": 1})
        thread.start()
        thread.join()
        time.sleep(0.2)  # a worker tied to the ended thread (PR_SET_PDEATHSIG) would be dead by now
        rewards.append(batch[0].reward)
    assert rewards[0] == rewards[1] and _alive(int(rewards[0]))
