"""Issue 20, item 7: a config folder cannot make the generator fail with a RecursionError or run for
minutes: depth, size and node count of every YAML file and the nesting of defaults lists are bounded,
each with a clear exit 2 naming the file (slime.config.sources)."""

from __future__ import annotations

import pytest

from slime.config.sources import MAX_BYTES, MAX_DEPTH, MAX_NODES
from tests.helpers.generator import run_generator

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


def _depth(node) -> int:
    if isinstance(node, dict):
        return 1 + max(map(_depth, node.values()), default=0)
    if isinstance(node, list):
        return 1 + max(map(_depth, node), default=0)
    return 0


def test_issue20_7_the_quick_bound_never_lets_a_too_deep_file_through():
    """The scan is skipped for a file whose brackets, block indicators and indentation cannot reach the
    depth bound: for any nesting written in YAML's block or flow style, a skipped file is within it."""
    import yaml
    from hypothesis import given, settings, strategies as st

    from slime.config.sources import _shape_problem, _within_bounds_for_sure

    leaves = st.one_of(st.integers(), st.text(max_size=4), st.none())
    trees = st.recursive(leaves, lambda children: st.one_of(st.lists(children, min_size=1, max_size=2),
                                                            st.dictionaries(st.text(min_size=1, max_size=3), children,
                                                                            min_size=1, max_size=2)), max_leaves=90)


    def chain(kinds: list[str]):
        node = 1
        for kind in kinds:
            node = [node] if kind == "list" else {"k": node}
        return node

    chains = st.lists(st.sampled_from(["list", "dict"]), min_size=40, max_size=120).map(chain)  # around the bound

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(trees, chains), st.sampled_from([None, True, False]), st.integers(1, 4))
    def check(tree, flow, indent):
        text = yaml.safe_dump({"x": tree}, default_flow_style=flow, indent=max(2, indent), width=10**6)
        if _within_bounds_for_sure(text):
            assert _depth({"x": tree}) <= MAX_DEPTH and _shape_problem(text) is None

    check()
