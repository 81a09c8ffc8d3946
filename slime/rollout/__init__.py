"""Rollout: prompt data, samples, the HTTP client of the engines' SGLang API, the rollout functions
(SGLang's default, SFT's), the loss masks and the hooks a run names.

May import: slime.rewards, slime.utils."""
