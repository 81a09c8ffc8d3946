"""One generated sample, with upstream slime's fields and at upstream's import path
(``from slime.utils.types import Sample``; ``slime.rollout.sample`` re-exports it), so that rollout
plugins written for upstream read and write it unchanged:
``tokens`` holds prompt and response, the last ``response_length`` of them the response; ``loss_mask``
(None: every response token) and ``rollout_log_probs`` are per response token; ``status`` is a
``Sample.Status``. ``prompt_tokens`` and ``response_tokens`` are this project's views of ``tokens``
(settable). Fields the trainer does not use yet (multimodal inputs, routed experts, teacher log-probs)
are carried, and a rollout that fills them is refused by name (``slime.rollout.plugins``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from typing import ClassVar


class Status(str, Enum):
    PENDING = "pending"  # not generated yet
    COMPLETED = "completed"  # the engine stopped at a stop token or string
    TRUNCATED = "truncated"  # it hit the response length limit
    ABORTED = "aborted"  # the request was cancelled
    FAILED = "failed"  # the request failed


FINISH_REASONS = {"length": Status.TRUNCATED, "abort": Status.ABORTED, "stop": Status.COMPLETED}


@dataclass
class Sample:
    group_index: int | None = None  # which prompt of the rollout (samples of one prompt form a group)
    index: int | None = None  # position in the rollout
    prompt: str | list[dict] = ""
    tokens: list[int] = field(default_factory=list)  # prompt + response
    response: str = ""
    response_length: int = 0
    label: object = None
    reward: float | dict | None = None
    loss_mask: list[int] | None = None  # per response token; None: all of them
    rollout_log_probs: list[float] | None = None  # the engine's, per response token
    status: Status = Status.PENDING
    metadata: dict = field(default_factory=dict)
    remove_sample: bool = False  # kept in the rollout but out of the loss (--rollout-sample-filter-path)
    raw_prompt: object = None
    multimodal_inputs: object = None
    multimodal_train_inputs: object = None
    weight_versions: list[str] = field(default_factory=list)
    rollout_routed_experts: object = None
    teacher_log_probs: list[float] | None = None
    generate_function_path: str | None = None  # this sample's --custom-generate-function-path
    custom_rm_path: str | None = None  # this sample's --custom-rm-path (evaluation datasets set it)
    train_metadata: dict | None = None
    session_id: str | None = None
    non_generation_time: float = 0.0

    Status: ClassVar = Status

    @property
    def prompt_tokens(self) -> list[int]:
        return self.tokens[:len(self.tokens) - self.response_length]

    @prompt_tokens.setter
    def prompt_tokens(self, value: list[int]) -> None:
        self.tokens = list(value) + self.response_tokens

    @property
    def response_tokens(self) -> list[int]:
        return self.tokens[len(self.tokens) - self.response_length:]

    @response_tokens.setter
    def response_tokens(self, value: list[int]) -> None:
        self.tokens, self.response_length = self.prompt_tokens + list(value), len(value)

    @property
    def effective_response_length(self) -> int:
        return sum(self.loss_mask) if self.loss_mask is not None else self.response_length

    def get_reward_value(self, args):
        """The reward, or its ``--reward-key`` entry."""
        key = getattr(args, "reward_key", None)
        return self.reward[key] if key and isinstance(self.reward, dict) else self.reward

    def update_from_meta_info(self, args, meta_info: dict) -> None:
        """The status from SGLang's finish reason, and the engine's weight version."""
        reason = (meta_info.get("finish_reason") or {}).get("type")
        if reason in FINISH_REASONS:
            self.status = FINISH_REASONS[reason]
        if meta_info.get("weight_version") is not None:
            self.weight_versions.append(meta_info["weight_version"])

    @classmethod
    def from_example(cls, example: dict) -> "Sample":
        """A sample to generate for one data-source example (``{"prompt", "label", "metadata", …}``)."""
        known = {f.name for f in fields(cls)}
        sample = cls(**{key: value for key, value in example.items() if key in known})
        sample.metadata, sample.tokens = dict(sample.metadata or {}), list(sample.tokens)
        return sample

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update({key: value for key, value in vars(self).items() if key not in data})
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Sample":
        """A saved sample (``to_dict``), this project's older layout (prompt_tokens and response_tokens)
        included; keys it does not know are kept as attributes, as upstream's are."""
        data = dict(data)
        if "prompt_tokens" in data or "response_tokens" in data:
            prompt, response = data.pop("prompt_tokens", []), data.pop("response_tokens", [])
            data["tokens"], data["response_length"] = list(prompt) + list(response), len(response)
        known = {f.name for f in fields(cls)}
        sample = cls(**{key: value for key, value in data.items() if key in known and key != "status"})
        sample.status = Status(data.get("status", Status.COMPLETED))
        for key, value in data.items():
            if key not in known:
                setattr(sample, key, value)
        return sample
