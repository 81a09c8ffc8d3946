"""The importer on the forms today's upstream slime launchers take (issue 24): arrays expanded but
never defined, variables computed from a stand-in command, a later array overriding the model file,
DeepSeek-R1's unquoted ``--moe-layer-freq``. Each fixture under tests/fixtures/launchers/ imports with
Namespace parity (tests/importer/test_importer.py checks every one reproduces its committed import);
these tests check what the import holds and says."""

from __future__ import annotations

import pytest

from slime.importer.importer import ImportTarget, import_launcher
from tests.helpers.paths import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "launchers"
INTO = ImportTarget(ROOT / "tests" / "fixtures" / "imported")
CONF = INTO.conf


def _config(result, name: str) -> str:
    return next(text for path, text in result.files.items() if path == INTO.config_file(name))


def test_arrays_commented_out_but_still_expanded_are_empty_with_a_note():
    result = import_launcher(FIXTURES / "run-imported-upstream-undefined-array.sh", target=INTO)
    for array in ("EVAL_ARGS", "WANDB_ARGS"):
        assert f'{array}: the script expands "${{{array}[@]}}" but never defines it, and bash expands an undefined ' \
               "array to nothing: it is taken as empty" in result.notes
    config = _config(result, "run_imported_upstream_undefined_array")
    assert "\neval:" not in config and "\nwandb:" not in config and "_ARGS" not in config
    assert "eval_interval" not in INTO.golden("run_imported_upstream_undefined_array").read_text()
