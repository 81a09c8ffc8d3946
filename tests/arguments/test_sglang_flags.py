"""The SGLang snapshot matches the installed SGLang; the prefixed flags keep SGLang's meaning."""

from __future__ import annotations

import pytest
import subprocess
import sys

from slime.arguments.flags import SGLANG
from slime.arguments.parser import parse_args
from slime.arguments.registry import flag_by_option
from slime.arguments.sglang_flags import RENAMED, SLIME_OWNED, load_snapshot, prefixed
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module


@pytest.mark.slow
def test_snapshot_matches_the_installed_sglang():
    require_module("sglang")
    result = subprocess.run([sys.executable, "tools/snapshot_sglang_args.py", "--check"],
                            capture_output=True, text=True, cwd=ROOT, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snapshot_is_the_pinned_version():
    pinned = (ROOT / "requirements-sglang.txt").read_text().split("sglang==")[1].split()[0]
    assert load_snapshot()["sglang_version"] == pinned


def test_every_snapshot_flag_is_registered_with_the_prefix_except_slime_owned():
    options = flag_by_option()
    for entry in load_snapshot()["flags"]:
        registered = [prefixed(o) in options and options[prefixed(o)].owner == SGLANG for o in entry["options"]]
        if entry["dest"] in SLIME_OWNED:
            assert not any(registered), entry["options"]
        else:
            assert all(registered), entry["options"]


def test_slime_owned_settings_and_renames_still_exist_in_sglang():
    dests = {e["dest"] for e in load_snapshot()["flags"]}
    options = {o for e in load_snapshot()["flags"] for o in e["options"]}
    assert set(SLIME_OWNED) - {"help"} <= dests
    assert set(RENAMED.values()) <= options
    assert not set(RENAMED) & options  # a rename that SGLang accepts again would shadow it


def test_prefixed_flags_keep_sglang_types():
    args = parse_args([
        "--sglang-mem-fraction-static", "0.7", "--sglang-context-length", "32k", "--sglang-enable-tf32-matmul",
        "--sglang-json-model-override-args", '{"a": 1}', "--sglang-lora-paths", "a=/x", '{"lora_name": "b", "lora_path": "/y"}',
        "--sglang-monokernel-backend", "amd",
    ], validate=False)
    assert args.sglang_mem_fraction_static == 0.7
    assert args.sglang_context_length == 32000
    assert args.sglang_enable_tf32_matmul is True
    assert args.sglang_json_model_override_args == '{"a": 1}'  # SGLang takes it as a JSON string
    assert args.sglang_lora_paths == ["a=/x", {"lora_name": "b", "lora_path": "/y"}]
    assert args.sglang_enable_amd_monokernel is True
    assert parse_args(["--sglang-no-enable-tf32-matmul"], validate=False).sglang_enable_tf32_matmul is False


@pytest.mark.slow
def test_flags_can_come_from_the_installed_sglang():
    require_module("sglang")
    code = ("from slime.arguments.parser import parse_args; import sys; "
            "a = parse_args(['--sglang-cuda-graph-bs', '1', '2'], validate=False); "
            "print(a.sglang_cuda_graph_bs_decode, 'sglang' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False,
                            env={**__import__("os").environ, "SLIME_SGLANG_FLAGS": "installed"})
    assert result.stdout.split() == ["[1,", "2]", "True"], result.stderr[-2000:]
