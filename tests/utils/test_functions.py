"""User functions loaded by path (slime.utils.functions): in either spelling (``module.function`` or
``module:function``, upstream's and this project's), an attribute of a class, and every bad path
saying what is wrong."""

from __future__ import annotations

import pytest

from slime.arguments.parser import parse_args
from slime.utils.functions import load_function
from tests.helpers.command_lines import MINIMAL


@pytest.mark.parametrize("path", [
    "slime.rollout.sglang_rollout.generate_rollout", "slime.rollout.sglang_rollout:generate_rollout"])
def test_function_paths_load_in_either_spelling(path):
    from slime.rollout.sglang_rollout import generate_rollout

    assert load_function(path) is generate_rollout
    parse_args([*MINIMAL, "--rollout-function-path", path, "--custom-rm-path", path.replace("generate", "x")])


def test_a_function_path_may_name_an_attribute_of_a_class():
    from slime.rollout.sample import Sample

    assert load_function("slime.rollout.sample.Sample.from_dict") == Sample.from_dict
    assert load_function("slime.rollout.sample:Sample.from_dict") == Sample.from_dict


@pytest.mark.parametrize(("path", "message"), [
    ("slime.rollout.nowhere.generate", "cannot import 'slime.rollout' for|has no 'nowhere'"),
    ("slime.rollout.sglang_rollout.missing", "has no 'missing'"),
    ("slime.rollout.sglang_rollout:", "expected module.path.function or module.path:function"),
    ("generate_rollout", "expected module.path.function"),
    ("no_such_package.generate", "no module named 'no_such_package'"),
])
def test_a_bad_function_path_says_what_is_wrong(path, message):
    with pytest.raises(ValueError, match=message):
        load_function(path)


def test_a_missing_dependency_of_the_module_is_named_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "needs_missing.py").write_text("import definitely_not_installed_pkg\ndef f(): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="definitely_not_installed_pkg"):
        load_function("needs_missing.f")
