"""The reward hub: ``--rm-type`` selects a built-in reward, ``--custom-rm-path`` a function of
``(args, sample) -> float``. Samples are scored concurrently in worker processes
(``slime.rewards.pool``), each call within ``--reward-timeout`` seconds (a late call's process is
killed and replaced, whatever the function does); a reward that raises or is late is
reported on its sample (``metadata["reward_error"]``, reward 0) and counted, not a crash of the
run, unless every sample of a batch fails, which is a bug worth stopping for. A NaN or infinite
reward is kept as it is, for the trainer to stop on (``slime.utils.non_finite``)."""

from __future__ import annotations

import argparse
import json
import re
import string
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING

from slime.rewards.math_reward import math_correct
from slime.utils.functions import load_function

if TYPE_CHECKING:  # samples are duck-typed here: the rollout layer sits above the rewards
    from slime.rollout.sample import Sample


class RewardFailure(RuntimeError):
    """Every sample's reward raised: the reward function is broken."""


def _after_thinking(text: str) -> str:
    return text.split("</think>")[-1]


def _normalize_words(text: str) -> list[str]:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return text.split()


def f1_score(prediction: str, label: str) -> float:
    predicted, truth = _normalize_words(prediction), _normalize_words(label)
    common = sum((Counter(predicted) & Counter(truth)).values())
    if not predicted or not truth or not common:
        return float(predicted == truth)
    precision, recall = common / len(predicted), common / len(truth)
    return 2 * precision * recall / (precision + recall)


def _remote(args: argparse.Namespace, sample: Sample) -> float:
    body = json.dumps({"prompt": sample.prompt, "response": sample.response, "label": sample.label}).encode()
    request = urllib.request.Request(args.rm_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as reply:
        result = json.loads(reply.read())
    return float(result["reward"] if isinstance(result, dict) else result)


BUILT_IN = {
    "math": lambda args, s: float(math_correct(s.response, s.label)),
    "deepscaler": lambda args, s: float(math_correct(_after_thinking(s.response), s.label)),
    "dapo": lambda args, s: 1.0 if math_correct(_after_thinking(s.response), s.label) else -1.0,
    "exact_match": lambda args, s: float(s.response.strip() == str(s.label).strip()),
    "f1": lambda args, s: f1_score(s.response, str(s.label)),
    "remote_rm": _remote,
}


def reward_function(args: argparse.Namespace):
    if args.custom_rm_path:
        return load_function(args.custom_rm_path)
    if args.rm_type is None:
        raise ValueError("no reward: set --rm-type or --custom-rm-path")
    return BUILT_IN[args.rm_type]


def reward_source(args: argparse.Namespace) -> str:
    """The reward function as the user named it, for messages."""
    return args.custom_rm_path or f"--rm-type {args.rm_type}"


def score(args: argparse.Namespace, samples: list[Sample], workers: int = 8, reward_key: str | None = None) -> int:
    """Set ``sample.reward`` on every sample; return how many rewards failed. A dict reward is read at
    ``reward_key`` (--reward-key by default)."""
    from slime.rewards.pool import ERROR, TIMEOUT, pool_for

    timeout = getattr(args, "reward_timeout", None)
    outcomes = pool_for(args, workers).score(samples, reward_key or args.reward_key, timeout)
    for sample, outcome in zip(samples, outcomes):
        sample.reward = 0.0 if outcome.kind in (ERROR, TIMEOUT) else outcome.value
        if outcome.kind == ERROR:
            sample.metadata["reward_error"] = outcome.value
        elif outcome.kind == TIMEOUT:
            sample.metadata["reward_error"] = (f"did not return within --reward-timeout {timeout:g} s (its process "
                                               "was killed)")
    failed = [s for s in samples if "reward_error" in s.metadata]
    if samples and len(failed) == len(samples):
        raise RewardFailure(f"the reward function ({reward_source(args)}) failed on every sample of the batch; "
                            f"the first error: {failed[0].metadata['reward_error']}")
    return len(failed)
