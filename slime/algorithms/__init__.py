"""RL algorithms in pure torch: KL estimators, advantages and returns, policy and value losses.

May import: torch; no other slime package."""
