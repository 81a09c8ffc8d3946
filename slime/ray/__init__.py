"""Placement on a Ray cluster: placement groups from the plan, and the Ray actors of each role."""
