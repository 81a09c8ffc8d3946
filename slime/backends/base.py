"""The interface of a train backend, which the training loop drives; megatron-core on GPUs and the
torch backend on CPUs implement the same methods, so the loop does not change.

A train backend holds one rank of a role (actor or critic). The rollout engines are no interface of
this package: they are server processes (SGLang's, or the torch engine) that the engine group
(``slime.ray.engines``) talks to over SGLang's HTTP API; a train backend pushes its weights to them
with ``update_weights`` (``slime.backends.weight_sync``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator


class TrainBackend(ABC):
    """Subclasses keep the run's Namespace as ``self.args``."""

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

    def holds_full_weights(self) -> bool:
        """Whether this rank's ``export_weights`` is the whole model (one of identical replicas sends)."""
        return True

    def hf_weight_buckets(self, bucket_bytes: int) -> Iterator[list[tuple[str, object]]]:
        """The model's full weights in HF naming, in buckets of about ``bucket_bytes``, for a weight
        push. A collective over the role's ranks: every rank iterates it (a sharded backend gathers
        each tensor from its shards); the ranks that hold no full tensors yield empty buckets."""
        if not self.holds_full_weights():
            return
        bucket, size = [], 0
        for name, tensor in self.export_weights().items():
            bucket.append((name, tensor))
            size += tensor.numel() * tensor.element_size()
            if size >= bucket_bytes:
                yield bucket
                bucket, size = [], 0
        if bucket:
            yield bucket


    def update_weights(self, engines: list[dict], version: int) -> None:
        """Push the current weights to the rollout engines (run on every rank of the role; see
        ``slime.backends.weight_sync`` for the transports)."""
        from slime.backends.weight_sync import push_weights

        push_weights(self, self.args, engines, version)

    def offload(self) -> None:
        """Free accelerator memory while the colocated engines generate (--offload-train)."""

    def onload(self) -> None:
        """Take it back before training."""
