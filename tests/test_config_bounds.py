"""Issue 20, item 7: a config folder cannot make the generator fail with a RecursionError or run for
minutes: depth, size and node count of every YAML file and the nesting of defaults lists are bounded,
each with a clear exit 2 naming the file (slime.config.sources)."""

from __future__ import annotations

import pytest

from slime.config.sources import MAX_BYTES, MAX_DEPTH, MAX_NODES
from tests.generator_runner import run_generator

DEEP = 20_000


@pytest.mark.parametrize("style", ["flow", "block"])
def test_issue20_7_a_file_nested_20000_deep_anywhere_in_a_config_folder_is_a_clear_error(tmp_path, style):
    text = ("x: " + "[" * DEEP + "]" * DEEP + "\n" if style == "flow" else
            "x:\n  " + "- " * DEEP + "1\n")  # block sequences, one inside the other
    (tmp_path / "other.yaml").write_text(text)  # not the config asked for: the folder's every file is read
    for name in ("run_tiny_cpu", "nosuch"):
        result = run_generator("-cd", str(tmp_path), "--config-name", name)
        assert result.returncode == 2 and result.stdout == ""
        assert f"{tmp_path / 'other.yaml'}: nested more than {MAX_DEPTH} levels deep" in result.stderr
        assert "RecursionError" not in result.stderr and "Traceback" not in result.stderr


def test_issue20_7_a_defaults_cycle_is_named_file_by_file(tmp_path):
    (tmp_path / "a.yaml").write_text("defaults:\n  - b\n  - _self_\nx: 1\n")
    (tmp_path / "b.yaml").write_text("defaults:\n  - a\n  - _self_\ny: 1\n")
    result = run_generator("-cd", str(tmp_path), "--config-name", "a")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert (f"the defaults lists include each other without end: {tmp_path / 'a.yaml'} → {tmp_path / 'b.yaml'} → "
            f"{tmp_path / 'a.yaml'}") in result.stderr


def test_issue20_7_a_300000_key_file_is_refused_at_once(tmp_path):
    (tmp_path / "run_big.yaml").write_text("defaults:\n  - run_tiny_cpu\n  - _self_\nrun:\n" +
                                           "".join(f"  k{i}: {i}\n" for i in range(300_000)))
    result = run_generator("-cd", str(tmp_path), "--config-name", "run_big")
    assert result.returncode == 2
    assert f"{tmp_path / 'run_big.yaml'}: " in result.stderr and f"more than a config file may hold here ({MAX_BYTES:,})" \
        in result.stderr


def test_issue20_7_a_small_file_of_too_many_nodes_is_refused(tmp_path):
    (tmp_path / "many.yaml").write_text("x: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]\n")
    result = run_generator("-cd", str(tmp_path), "--config-name", "run_tiny_cpu")
    assert result.returncode == 2 and f"holds more than {MAX_NODES:,} keys and values" in result.stderr


def test_issue20_7_an_override_nested_20000_deep_is_a_clear_error():
    result = run_generator("--config-name", "run_tiny_cpu", "+run.x=" + "[" * DEEP + "]" * DEEP)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"nested more than {MAX_DEPTH} levels deep" in result.stderr
