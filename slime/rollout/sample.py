"""One generated sample: the prompt and response as text and tokens, what training needs (loss mask,
log-probs from the engine), the reward, its status and free-form metadata."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class Status(str, Enum):
    COMPLETED = "completed"  # the engine stopped at a stop token or string
    TRUNCATED = "truncated"  # it hit the response length limit
    ABORTED = "aborted"  # the request failed or was cancelled


@dataclass
class Sample:
    group_index: int  # which prompt of the rollout (samples of one prompt form a group)
    index: int  # position in the rollout
    prompt: str
    label: object = None
    prompt_tokens: list[int] = field(default_factory=list)
    response: str = ""
    response_tokens: list[int] = field(default_factory=list)
    rollout_log_probs: list[float] = field(default_factory=list)
    loss_mask: list[int] = field(default_factory=list)
    reward: float | None = None
    status: Status = Status.COMPLETED
    metadata: dict = field(default_factory=dict)
    remove_sample: bool = False  # kept in the rollout but out of the loss (--rollout-sample-filter-path)

    @property
    def tokens(self) -> list[int]:
        return self.prompt_tokens + self.response_tokens

    @property
    def response_length(self) -> int:
        return len(self.response_tokens)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Sample":
        return cls(**{**data, "status": Status(data["status"])})
