"""The sample of a rollout: ``slime.utils.types.Sample`` (upstream slime's path; defined there, a leaf
module, so that rollout plugins written for upstream import it unchanged), re-exported here."""

from slime.utils.types import FINISH_REASONS, Sample, Status

__all__ = ["FINISH_REASONS", "Sample", "Status"]
