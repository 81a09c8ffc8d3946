"""Loading user functions named on the command line: ``module.path:function`` (or ``module.path.function``)."""

from __future__ import annotations

import importlib
from typing import Callable


def load_function(path: str) -> Callable:
    module_name, sep, name = path.partition(":")
    if not sep:
        module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"expected module.path:function, got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"cannot import {module_name!r} for {path!r}: {err}") from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise ValueError(f"{module_name!r} has no {name!r} (from {path!r})") from None
