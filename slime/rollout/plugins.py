"""The rollout-function contract, upstream slime's: ``fn(args, rollout_id, data_source, evaluation=False)``.

Every rollout function (``--rollout-function-path``, and ``--eval-function-path``, which defaults to it)
is called with the run's ``RolloutContext`` as its ``data_source`` (upstream's data-source methods and
this project's client, tokenizer and prompt data), and with ``evaluation=True`` to evaluate when it
takes that keyword. A function of this project's older shape ``fn(args, rollout_id, context)`` is the
same call without the keyword. What it returns is checked and put in one shape here:

- training: ``RolloutFnTrainOutput(samples, metrics)``, or a bare list, flat or one list per prompt's
  group (flattened in order); each item a ``Sample`` with ``tokens`` (prompt + response), a
  ``response_length`` within them, a reward (unless the run trains ``--loss-type sft_loss``), and a
  ``loss_mask`` (None: every response token) and ``rollout_log_probs`` of the response's length;
- evaluation: ``RolloutFnEvalOutput(data, metrics)`` or a bare dict, ``{dataset: {"rewards": [...],
  "truncated": [...], "samples": [...]}}``.

A sample that fills a field the trainer does not use yet (multimodal inputs, routed experts for
routing replay, a teacher's log-probs) is refused by name rather than trained without it.
"""

from __future__ import annotations

import argparse

from slime.rollout.base_types import RolloutFnEvalOutput, RolloutFnTrainOutput
from slime.rollout.sample import Sample

UNUSED_FIELDS = {
    "multimodal_train_inputs": "multimodal training inputs (--multimodal-keys is not implemented)",
    "rollout_routed_experts": "the rollout's MoE routing (routing replay is not implemented)",
    "teacher_log_probs": "a teacher's log-probs (on-policy distillation, --use-opd, is not implemented)",
}


class RolloutContractError(ValueError):
    """A rollout function returned something the trainer cannot train on; the message names it."""


def takes_evaluation(function) -> bool:
    import inspect

    parameters = inspect.signature(function).parameters.values()
    return any(p.name == "evaluation" or p.kind is p.VAR_KEYWORD for p in parameters)


def call_rollout(function, args: argparse.Namespace, rollout_id: int, context, evaluation: bool = False):
    if evaluation:
        return function(args, rollout_id, context, evaluation=True)
    return function(args, rollout_id, context)


def _flat(samples, path: str) -> list:
    if not isinstance(samples, (list, tuple)):
        raise RolloutContractError(f"--rollout-function-path {path} returned {type(samples).__name__}; expected "
                                   "RolloutFnTrainOutput(samples=...) or a list of Samples")
    return [s for item in samples for s in (item if isinstance(item, (list, tuple)) else [item])]


def train_samples(result, args: argparse.Namespace, path: str) -> tuple[list[Sample], dict]:
    """The samples and metrics of a training rollout, each sample checked and its optional fields filled."""
    metrics = {}
    if isinstance(result, RolloutFnTrainOutput):
        result, metrics = result.samples, dict(result.metrics or {})
    samples = _flat(result, path)
    if not samples:
        raise RolloutContractError(f"--rollout-function-path {path} returned no samples")
    for i, sample in enumerate(samples):
        problem = _sample_problem(sample, args)
        if problem:
            raise RolloutContractError(f"--rollout-function-path {path}: sample {i} {problem}")
    return samples, metrics


def _sample_problem(sample, args: argparse.Namespace) -> str | None:
    if not isinstance(sample, Sample):
        return f"is a {type(sample).__name__}, not a Sample (slime.utils.types.Sample)"
    if not isinstance(sample.tokens, list) or not all(isinstance(t, int) for t in sample.tokens):
        return "needs tokens: a list of token ids, prompt and response"
    if not 0 <= sample.response_length <= len(sample.tokens):
        return f"has response_length {sample.response_length} for {len(sample.tokens)} tokens"
    if sample.loss_mask is None:
        sample.loss_mask = [1] * sample.response_length
    if sample.rollout_log_probs is None:
        sample.rollout_log_probs = []
    if len(sample.loss_mask) != sample.response_length:
        return f"has a loss mask of {len(sample.loss_mask)} for {sample.response_length} response tokens"
    if sample.rollout_log_probs and len(sample.rollout_log_probs) != sample.response_length:
        return f"has {len(sample.rollout_log_probs)} rollout log-probs for {sample.response_length} response tokens"
    if args.loss_type != "sft_loss":
        value = sample.get_reward_value(args)
        if value is None:
            return "has no reward"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return (f"has the reward {value!r}, not a number" +
                    (" (a dict reward is read at --reward-key)" if isinstance(sample.reward, dict) else ""))
    for name, what in UNUSED_FIELDS.items():
        if getattr(sample, name) is not None:
            return f"sets {name}, {what}: the trainer would ignore it"
    return None


def eval_results(result, path: str) -> tuple[dict[str, dict], dict]:
    """The per-dataset data and metrics of an evaluation rollout."""
    metrics = {}
    if isinstance(result, RolloutFnEvalOutput):
        result, metrics = result.data, dict(result.metrics or {})
    if not isinstance(result, dict) or not all(isinstance(d, dict) and "rewards" in d for d in result.values()):
        raise RolloutContractError(f"--eval-function-path {path} returned {type(result).__name__}; expected "
                                   "RolloutFnEvalOutput(data={dataset: {\"rewards\": [...], ...}})")
    return result, metrics


def trimmed(samples: list[Sample], global_batch_size: int, path: str) -> list[Sample]:
    """As upstream: a rollout of another size than planned trains on a whole number of global batches."""
    kept = len(samples) // global_batch_size * global_batch_size
    if not kept:
        raise RolloutContractError(f"--rollout-function-path {path} returned {len(samples)} samples, fewer than one "
                                   f"--global-batch-size ({global_batch_size})")
    return samples[:kept]
