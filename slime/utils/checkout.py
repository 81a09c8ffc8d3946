"""The checkout this package runs from: the repository folder holding slime/, conf/, scripts/ and tests/.
The package is used from its checkout (installed editable, or on PYTHONPATH), so the configs, the
launchers and the goldens are always beside it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = ROOT / "conf"
