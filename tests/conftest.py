"""Shared fixtures: the reference data beside the project and a minimal valid command line."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference"

# CI sets this so a missing runtime package fails the run instead of skipping its tests.
FULL_STACK = os.environ.get("SLIME_REQUIRE_FULL_STACK") == "1"


def require_module(name: str):
    """Skip when ``name`` is not installed, except in CI where the full stack must be present."""
    if importlib.util.find_spec(name) is not None:
        return
    if FULL_STACK:
        pytest.fail(f"{name} is not installed, but SLIME_REQUIRE_FULL_STACK=1 requires it")
    pytest.skip(f"{name} is not installed")


@pytest.fixture(scope="session")
def model_args() -> dict[str, list[str]]:
    return json.loads((REFERENCE / "model_args.json").read_text())


@pytest.fixture(scope="session")
def launcher_flags() -> list[str]:
    return [line.strip() for line in (REFERENCE / "launcher_flags.txt").read_text().splitlines() if line.strip()]


# The smallest command line that validates: a tiny dense model on one 8-GPU node, colocated.
TINY_MODEL = ["--num-layers", "2", "--hidden-size", "64", "--num-attention-heads", "8"]
MINIMAL_RUN = [
    "--hf-checkpoint", "/models/tiny", "--prompt-data", "/data/train.jsonl",
    "--rollout-batch-size", "8", "--n-samples-per-prompt", "4", "--num-rollout", "10",
    "--lr", "1e-6", "--colocate",
]
MINIMAL = TINY_MODEL + MINIMAL_RUN


@pytest.fixture
def minimal() -> list[str]:
    return list(MINIMAL)
