"""Reward functions: a hub selected by --rm-type, custom functions, concurrent scoring in worker
processes.

May import: slime.utils (samples are duck-typed; slime.rollout.sample only for type checking)."""
