"""Rollout: prompt data, samples, the HTTP client of the engines' SGLang API, the rollout functions
(SGLang's default, SFT's) and upstream's contract for them (``plugins``, ``base_types``, ``filter_hub``),
the loss masks and the hooks a run names.

May import: slime.rewards, slime.utils."""
