"""Rollout: prompt data, samples, the generation client and the default rollout function."""
