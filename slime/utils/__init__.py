"""Utilities shared by the trainer and the config toolchain (argument parsing, launch plan)."""
