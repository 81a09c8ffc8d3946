"""What a rollout function returns, by upstream slime's names (``slime.rollout.base_types`` there too):
``RolloutFnTrainOutput`` for a training rollout, ``RolloutFnEvalOutput`` for an evaluation. A bare list of
samples (flat, or one list per prompt's group) and a bare evaluation dict are accepted as well, as
upstream accepts them from older plugins."""

from __future__ import annotations

from dataclasses import dataclass

from slime.rollout.sample import Sample


@dataclass
class RolloutFnTrainOutput:
    samples: list[list[Sample]] | list[Sample]
    metrics: dict | None = None


@dataclass
class RolloutFnEvalOutput:
    data: dict[str, dict]  # dataset name → {"rewards": [...], "truncated": [...], "samples": [...]}
    metrics: dict | None = None
