"""What a dynamic-sampling filter returns, by upstream slime's name: keep the group or not, and why not
(counted in the rollout's metrics as ``rollout/dynamic_filter/drop_<reason>``). A bare bool is accepted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DynamicFilterOutput:
    keep: bool
    reason: str | None = None
