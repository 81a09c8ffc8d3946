"""The reward hub: ``--rm-type`` selects a built-in reward, ``--custom-rm-path`` a function of
``(args, sample) -> float``. Samples are scored concurrently; a reward that raises is reported on
its sample (``metadata["reward_error"]``, reward 0) and counted, not a crash of the run, unless
every sample of a batch fails, which is a bug worth stopping for."""

from __future__ import annotations

import argparse
import json
import re
import string
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from slime.rewards.math_reward import math_correct
from slime.rollout.sample import Sample
from slime.utils.functions import load_function


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


def score(args: argparse.Namespace, samples: list[Sample], workers: int = 8) -> int:
    """Set ``sample.reward`` on every sample; return how many rewards failed."""
    function = reward_function(args)

    def one(sample: Sample) -> None:
        try:
            value = function(args, sample)
            if isinstance(value, dict):
                value = value[args.reward_key]
            sample.reward = float(value)
        except Exception as err:  # a user's reward function may raise anything
            sample.reward = 0.0
            sample.metadata["reward_error"] = f"{type(err).__name__}: {err}"

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, samples))
    failed = [s for s in samples if "reward_error" in s.metadata]
    if samples and len(failed) == len(samples):
        source = args.custom_rm_path or f"--rm-type {args.rm_type}"
        raise RewardFailure(f"the reward function ({source}) failed on every sample of the batch; "
                            f"the first error: {failed[0].metadata['reward_error']}")
    return len(failed)
