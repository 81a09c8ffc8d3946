"""What every tool does first: find the main() of its ``slime.cli`` module in this checkout's package.

The tools are thin command lines over the installed package (``bash scripts/install-deps.sh`` installs
this checkout editable; without installing, ``PYTHONPATH=<checkout>`` does the same). A Python that
cannot import slime, or imports it from another checkout than this tool's, gets a message saying
which and what to run instead of a traceback, and nothing runs."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]


def main_of(module: str):
    """``module.main``, imported from the slime package of this tool's own checkout."""
    try:
        imported = importlib.import_module(module)
    except ModuleNotFoundError as err:
        if err.name != "slime":
            raise
        sys.exit(f"{sys.argv[0]}: this Python ({sys.executable}) cannot import slime: run "
                 f"bash {CHECKOUT}/scripts/install-deps.sh cpu (it installs this checkout), or set "
                 f"PYTHONPATH={CHECKOUT}")
    package = Path(sys.modules["slime"].__file__).resolve().parents[1]
    if package != CHECKOUT:
        sys.exit(f"{sys.argv[0]}: this Python imports slime from {package}, not from this tool's checkout "
                 f"{CHECKOUT}: set PYTHONPATH={CHECKOUT} (or install this checkout: pip install -e {CHECKOUT})")
    return imported.main
