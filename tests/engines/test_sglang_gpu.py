"""On a GPU: the real SGLang server started with the engine group's command, and the two weight pushes
that only exist on GPUs — CUDA IPC handles to /update_weights_from_tensor and a NCCL weight-update
group with /update_weights_from_distributed — the server holding the run's API key as the engine group
gives it (a YAML file read through SGLang's --config). Skipped, with the reason, where there is no
CUDA or no runnable SGLang (its server needs CUDA and sgl-kernel)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types

import pytest

from slime.engines.command import EngineSlot, server_command
from slime.rollout.client import EngineKey, http_get, http_json
from slime.utils.ports import free_ports
from tests.helpers.paths import ROOT

pytestmark = pytest.mark.slow
KEY = EngineKey.new()


def _require_gpu_sglang() -> None:
    try:
        import torch
    except ImportError:
        pytest.skip("needs torch")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU: SGLang's server, CUDA IPC handles and NCCL do not run on a CPU")
    if importlib.util.find_spec("sgl_kernel") is None:
        pytest.skip("needs SGLang's GPU kernels (sgl-kernel), which the CPU install leaves out")


@pytest.fixture(scope="module")
def sglang_server(request, tmp_path_factory):
    _require_gpu_sglang()  # before building anything
    tiny_base = request.getfixturevalue("tiny_base")
    from slime.config.compose import namespace_from_config
    from tests.helpers.engines import wait_healthy

    args = namespace_from_config("run_tiny_cpu", ["rollout.rollout_backend=sglang", "+sglang.sglang_mem_fraction_static=0.2"],
                                 environ={"BASE_FOLDER": str(tiny_base)})
    port, nccl_port = free_ports(2)
    folder = tmp_path_factory.mktemp("sglang")
    key_file = folder / "engine_0.key.yaml"
    key_file.write_text(f"api-key: {json.dumps(KEY.reveal())}\n")
    command = server_command(args, EngineSlot(0, 0, "127.0.0.1", port, nccl_port, 0, None, str(key_file)),
                             python=sys.executable)
    log = folder / "engine_0.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, timeout=600)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_the_real_server_answers_in_the_recorded_shapes(sglang_server):
    protocol = json.loads((ROOT / "tests" / "fixtures" / "sglang_protocol.json").read_text())["endpoints"]
    reply = http_json(sglang_server, "/generate", protocol["/generate"]["example_request"], timeout=120, key=KEY)
    assert set(protocol["/generate"]["response"]["meta_info_keys"]) <= set(reply["meta_info"])
    status, body = http_get(sglang_server, "/model_info", timeout=30, key=KEY)
    assert status == 200 and set(protocol["/model_info"]["response"]["keys"]) <= set(json.loads(body))


def test_issue20_2_the_real_server_refuses_requests_without_the_runs_key(sglang_server):
    protocol = json.loads((ROOT / "tests" / "fixtures" / "sglang_protocol.json").read_text())["endpoints"]
    for path in ("/server_info", "/model_info", "/get_weights_by_name", "/release_memory_occupation",
                 "/init_weights_update_group", "/generate"):
        for key in (None, EngineKey("wrong")):
            if "GET" in protocol[path]["methods"]:
                assert http_get(sglang_server, path, timeout=30, key=key)[0] == 401, path
            else:
                with pytest.raises(Exception, match="401"):
                    http_json(sglang_server, path, {}, timeout=30, key=key)
    assert http_get(sglang_server, "/health", timeout=30)[0] == 200  # open, as SGLang leaves it


def _norm(url: str) -> list[float]:
    return http_json(url, "/get_weights_by_name", {"name": "model.norm.weight", "truncate_size": 100}, timeout=60,
                     key=KEY)


def test_cuda_ipc_handles_update_the_served_weights(sglang_server):
    import torch

    from slime.backends.weight_sync import serialize_entry

    new = torch.tensor(_norm(sglang_server), device="cuda") + 0.5
    reply = http_json(sglang_server, "/update_weights_from_tensor",
                      {"serialized_named_tensors": [serialize_entry([("model.norm.weight", new)])], "flush_cache": True},
                      timeout=120, key=KEY)
    assert reply["success"]
    assert _norm(sglang_server) == pytest.approx(new.cpu().tolist(), rel=1e-2)


def test_a_nccl_weight_update_group_updates_the_served_weights(sglang_server):
    import torch

    from slime.backends.weight_sync import _push_distributed

    new = torch.tensor(_norm(sglang_server), device="cuda") + 0.25
    backend = types.SimpleNamespace()
    engine = {"index": 0, "url": sglang_server, "host": "127.0.0.1", "log": "-", "tp_size": 1, "key": KEY}
    _push_distributed(backend, [[("model.norm.weight", new)]], [engine], version=1, rank=0)
    assert _norm(sglang_server) == pytest.approx(new.cpu().tolist(), rel=1e-2)
