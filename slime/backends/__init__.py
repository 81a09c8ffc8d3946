"""Training backends and rollout engines, behind the interfaces in ``base``."""
