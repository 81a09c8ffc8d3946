"""docs/arguments.md is generated from the parser and kept current."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers.paths import ROOT


def test_argument_reference_is_current():
    result = subprocess.run([sys.executable, "tools/generate_arguments_doc.py", "--check"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr


def test_argument_reference_lists_every_group():
    text = (ROOT / "docs" / "arguments.md").read_text()
    for heading in ("## Cluster and placement", "## Algorithm", "## Megatron: mixture of experts", "## SGLang server"):
        assert heading in text
