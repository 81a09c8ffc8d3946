"""The two interfaces the training loop drives; GPU backends (megatron-core, SGLang) and the CPU
pair (torch, the torch engine) implement the same methods, so the loop does not change.

A train backend holds one data-parallel rank of a role (actor or critic); a rollout engine serves
generation over SGLang's HTTP API and takes new weights from the trainer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class TrainBackend(ABC):
    @abstractmethod
    def init(self, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        """Join the role's process group and load weights (from --load when it holds a checkpoint,
        else from the HF checkpoint)."""

    @abstractmethod
    def loaded_rollout_id(self) -> int | None:
        """The rollout id of the checkpoint it resumed from, or None."""

    @abstractmethod
    def compute_log_probs(self, batch: list[dict], reference: bool = False) -> list[list[float]]:
        """Per-token log-probs of each sample's response (of the reference model when asked)."""

    @abstractmethod
    def train(self, batch: list[dict], step_sizes: list[int], global_tokens: list[int]) -> dict:
        """Optimizer steps on this rank's share; returns metrics."""

    @abstractmethod
    def save(self, directory: str, rollout_id: int) -> None:
        """Write model and optimizer state (rank 0 of the group)."""

    @abstractmethod
    def export_weights(self) -> dict:
        """The model's weights in HF naming, for the rollout engines."""

    def hf_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, object]]]:
        """The model's full weights in HF naming, in buckets of about ``bucket_bytes``, for a weight
        push. A collective over the role's ranks: every rank iterates it (a sharded backend gathers
        each tensor from its shards); the ranks that hold no full tensors yield empty buckets."""
        bucket, size = [], 0
        for name, tensor in self.export_weights().items():
            bucket.append((name, tensor))
            size += tensor.numel() * tensor.element_size()
            if size >= bucket_bytes:
                yield bucket
                bucket, size = [], 0
        if bucket:
            yield bucket


class RolloutEngine(ABC):
    @abstractmethod
    def url(self) -> str:
        """Where its HTTP API (SGLang's /generate) listens."""

    @abstractmethod
    def update_weights(self, state_dict: dict) -> None:
        """Replace the weights by the trainer's, in HF naming."""

    @abstractmethod
    def release_memory(self) -> None:
        """Give back accelerator memory while the colocated trainer runs."""

    @abstractmethod
    def resume_memory(self) -> None:
        """Take it back before generating."""
