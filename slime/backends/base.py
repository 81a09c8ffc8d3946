"""The interface of a train backend, which the training loop drives; megatron-core on GPUs and the
torch backend on CPUs implement the same methods, so the loop does not change.

A train backend holds one rank of a role (actor or critic). The rollout engines are no interface of
this package: they are server processes (SGLang's, or the torch engine) that the engine group
(``slime.engines.group``) talks to over SGLang's HTTP API; a train backend pushes its weights to them
with ``update_weights`` (``slime.backends.weight_sync``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Where a train rank sits in its role: the loop sends each data-parallel rank its share of a
    rollout (every tensor- and pipeline-parallel rank of that share gets the same) and reads results
    from one rank per share."""

    rank: int
    world_size: int
    dp_rank: int
    dp_size: int
    tp_rank: int = 0
    pp_rank: int = 0
    is_result_rank: bool = True  # the rank whose results stand for its share


class TrainBackend(ABC):
    """Subclasses keep the run's Namespace as ``self.args``."""

    def address(self) -> tuple[str, int]:
        """Where rank 0 hosts the role's process group (this node's address once the cluster spans nodes)."""
        from slime.utils.addresses import free_address

        return free_address()

    @abstractmethod
    def init(self, rank: int, world_size: int, master_addr: str, master_port: int) -> None:
        """Join the role's process group and load weights (from --load when it holds a checkpoint,
        else from --ref-load or the HF checkpoint)."""

    @abstractmethod
    def layout(self) -> Layout:
        """This rank's place in the role (after ``init``)."""

    @abstractmethod
    def loaded_rollout_id(self) -> int | None:
        """The rollout id of the checkpoint it resumed from, or None."""

    @abstractmethod
    def compute_log_probs(self, batch: list[dict], reference: bool = False) -> list[list[float]] | None:
        """Per-token log-probs of each sample's response (of the reference model when asked), at the
        rollout temperature; None on ranks that are not their share's result rank."""

    @abstractmethod
    def update_reference(self) -> None:
        """Make the actor's current weights its reference model (--ref-update-interval)."""

    @abstractmethod
    def train(self, batch: list[dict], step_sizes: list[int], global_tokens: list[int]) -> dict:
        """Optimizer steps on this rank's share; returns metrics."""

    @abstractmethod
    def non_finite_parameters(self) -> str | None:
        """Which of the role's parameters hold NaN or infinite values (the same answer on every rank);
        None when all are finite. The loop asks before every save."""

    @abstractmethod
    def save(self, directory: str, rollout_id: int) -> None:
        """Write model and optimizer state; called on every rank (sharded backends write shards)."""

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
