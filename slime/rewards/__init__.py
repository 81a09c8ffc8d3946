"""Reward functions: a hub selected by --rm-type, custom functions, concurrent scoring."""
