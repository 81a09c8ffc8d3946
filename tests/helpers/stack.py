"""Which packages a test needs: skipped without them, except in CI (SLIME_REQUIRE_FULL_STACK=1), where they must
be there."""

from __future__ import annotations

import importlib.util
import os

import pytest

# CI sets this so a missing runtime package fails the run instead of skipping its tests.
FULL_STACK = os.environ.get("SLIME_REQUIRE_FULL_STACK") == "1"


def require_module(name: str):
    """Skip when ``name`` is not installed, except in CI where the full stack must be present."""
    if importlib.util.find_spec(name) is not None:
        return
    if FULL_STACK:
        pytest.fail(f"{name} is not installed, but SLIME_REQUIRE_FULL_STACK=1 requires it")
    pytest.skip(f"{name} is not installed")
