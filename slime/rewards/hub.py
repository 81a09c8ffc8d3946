"""The reward hub, dispatching each sample as upstream slime's ``async_rm`` does: the sample's own
``custom_rm_path`` first (evaluation datasets set it), then ``--custom-rm-path``, then the built-in reward
named by the sample's ``metadata["rm_type"]``, else by ``--rm-type``. A type ``boxed_<type>`` grades
the content of the response's last ``\\boxed{}`` (or "") by ``<type>``.

A custom reward is ``fn(args, sample, **kwargs)``, upstream's ``async def`` or a plain function, and
returns a number or a dict (read at ``--reward-key``). Samples are scored concurrently in worker
processes (``slime.rewards.pool``), each call within ``--reward-timeout`` seconds (a late call's process
is killed and replaced, whatever the function does); a reward that raises or is late is reported on its
sample (``metadata["reward_error"]``, reward 0) and counted, not a crash of the run, unless every sample
of a batch fails, which is a bug worth stopping for. A NaN or infinite reward is kept as it is, for the
trainer to stop on (``slime.utils.non_finite``)."""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import random
import re
import string
import time
import urllib.error
import urllib.request
from collections import Counter
from typing import TYPE_CHECKING

from slime.rewards.dapo import dapo_score
from slime.rewards.gpqa import gpqa_reward
from slime.rewards.math_reward import deepscaler_correct, extract_answer, math_correct
from slime.utils.functions import load_function

if TYPE_CHECKING:  # samples are duck-typed here: the rollout layer sits above the rewards
    from slime.rollout.sample import Sample

BOXED = "boxed_"


class RewardFailure(RuntimeError):
    """Every sample's reward raised: the reward function is broken."""


def normalize_answer(text: str) -> str:
    """SQuAD/HotpotQA's answer normalization: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    return " ".join(re.sub(r"\b(a|an|the)\b", " ", text).split())


def f1_score(prediction: str | None, label) -> tuple[float, float, float]:
    """(F1, precision, recall) of the prediction's words against the label's, HotpotQA's way: a None
    prediction, a yes/no/noanswer that differs from the other side, or no common word scores 0."""
    if prediction is None:
        return 0.0, 0.0, 0.0
    predicted, truth = normalize_answer(prediction), normalize_answer(str(label))
    special = ("yes", "no", "noanswer")
    if (predicted in special or truth in special) and predicted != truth:
        return 0.0, 0.0, 0.0
    common = sum((Counter(predicted.split()) & Counter(truth.split())).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / len(predicted.split()), common / len(truth.split())
    return 2 * precision * recall / (precision + recall), precision, recall


def remote_reward(args: argparse.Namespace, sample: Sample, attempts: int = 10):
    """POST {prompt, response, label} to --rm-url; the JSON reply as it is (a dict is read at
    --reward-key). Retried with exponential backoff (at most 30 s) up to ``attempts`` times."""
    body = json.dumps({"prompt": sample.prompt, "response": sample.response, "label": sample.label}).encode()
    for attempt in range(attempts):
        request = urllib.request.Request(args.rm_url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as reply:
                return json.loads(reply.read())
        except (urllib.error.URLError, OSError, json.JSONDecodeError):
            if attempt + 1 == attempts:
                raise
            time.sleep(min(2 ** attempt, 30) + random.random())


# Built-in rewards by --rm-type: fn(args, sample, response) with the response to grade.
BUILT_IN = {
    "math": lambda args, s, response: 1 if math_correct(response, s.label) else 0,
    "deepscaler": lambda args, s, response: 1 if deepscaler_correct(response, s.label) else 0,
    "dapo": lambda args, s, response: dapo_score(response, s.label),
    "f1": lambda args, s, response: f1_score(response, s.label)[0],
    "gpqa": lambda args, s, response: gpqa_reward(response, s.label, metadata=s.metadata),
    "random": lambda args, s, response: random.randint(0, 1),
    "exact_match": lambda args, s, response: float(response.strip() == str(s.label).strip()),  # this project's
    "remote_rm": lambda args, s, response: remote_reward(args, s),
}


def rm_type_of(args: argparse.Namespace, sample: Sample) -> str:
    metadata = sample.metadata if isinstance(sample.metadata, dict) else {}
    return (metadata.get("rm_type") or args.rm_type or "").strip()


def built_in_reward(args: argparse.Namespace, sample: Sample):
    kind, response = rm_type_of(args, sample), sample.response
    if kind.startswith(BOXED):
        response, kind = extract_answer(response or "") or "", kind[len(BOXED):]
    if not kind:
        raise NotImplementedError("no reward: set --rm-type or --custom-rm-path (or the sample's metadata rm_type)")
    if kind not in BUILT_IN:
        raise NotImplementedError(f"the built-in reward {kind!r} is not implemented here; the built-in rewards are "
                                  f"{', '.join(BUILT_IN)} (or give your own with --custom-rm-path)")
    return BUILT_IN[kind](args, sample, response)


def call_reward(function, args: argparse.Namespace, sample: Sample):
    """A custom reward's value: upstream's coroutine functions are run to their end."""
    value = function(args, sample)
    return asyncio.run(value) if inspect.isawaitable(value) else value


class RewardDispatch:
    """The reward of one sample by upstream's order of precedence; the functions named by path are loaded
    once (``--custom-rm-path`` when this is made, so a bad path is an error before any sample)."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self._loaded: dict[str, object] = {}
        if args.custom_rm_path:
            self.function(args.custom_rm_path)

    def function(self, path: str):
        if path not in self._loaded:
            self._loaded[path] = load_function(path)
        return self._loaded[path]

    def __call__(self, sample: Sample):
        path = getattr(sample, "custom_rm_path", None) or self.args.custom_rm_path
        if path:
            return call_reward(self.function(path), self.args, sample)
        return built_in_reward(self.args, sample)


def reward_value(value, reward_key: str | None) -> float:
    """A reward as the trainer uses it: a dict's ``reward_key`` entry, or the number itself."""
    if isinstance(value, dict):
        if reward_key is None:
            raise ValueError(f"the reward is a dict ({', '.join(map(str, value))}): say which entry is the reward "
                             "with --reward-key")
        value = value[reward_key]
    return float(value)


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
