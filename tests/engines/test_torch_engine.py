"""The torch engine speaks the pinned SGLang's HTTP protocol: the recorded request and response shapes
(tests/fixtures/sglang_protocol.json) are those of the installed SGLang's source, the torch engine
server answers every endpoint in those shapes, its weight updates (disk, tensor, distributed) change
the weights it serves, and SGLang's real router routes to it."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from slime.rollout.client import EngineError, http_get, http_json
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

PROTOCOL = json.loads((ROOT / "tests" / "fixtures" / "sglang_protocol.json").read_text())
ENDPOINTS = PROTOCOL["endpoints"]
NORM = "model.norm.weight"


def _sglang_source(relative: str) -> str:
    require_module("sglang")
    package = Path(importlib.util.find_spec("sglang").submodule_search_locations[0])
    return (package / "srt" / relative).read_text()


def test_the_recorded_routes_are_the_pinned_sglangs():
    """Every recorded endpoint is a route of SGLang's HTTP server with the recorded methods."""
    routes: dict[str, set[str]] = {}
    for node in ast.walk(ast.parse(_sglang_source("entrypoints/http_server.py"))):
        if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef):
            for decorator in node.decorator_list:
                if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") in ("get", "post", "api_route"):
                    first = decorator.args[0] if decorator.args else None
                    path = first.value if isinstance(first, ast.Constant) else None  # skip computed paths
                    methods = {decorator.func.attr.upper()} if decorator.func.attr != "api_route" else \
                        set(ast.literal_eval(next(k.value for k in decorator.keywords if k.arg == "methods")))
                    if isinstance(path, str):
                        routes.setdefault(path, set()).update(methods)
    for path, endpoint in ENDPOINTS.items():
        assert path in routes, f"{path} is no route of the installed SGLang"
        assert set(endpoint["methods"]) == routes[path], path
    import sglang

    assert sglang.__version__ == PROTOCOL["sglang_version"]


def test_the_recorded_requests_are_the_pinned_sglangs():
    """Field names, required fields and defaults of each request class, as io_struct.py declares them."""
    classes = {}
    for node in ast.parse(_sglang_source("managers/io_struct.py")).body:
        if isinstance(node, ast.ClassDef):
            classes[node.name] = [n for n in node.body if isinstance(n, ast.AnnAssign)]
    for path, endpoint in ENDPOINTS.items():
        if "required" not in endpoint:
            continue
        fields = classes[endpoint["request_class"]]
        required = [f.target.id for f in fields if f.value is None]
        optional = {f.target.id: ast.literal_eval(f.value) for f in fields if f.value is not None}
        assert (required, optional) == (endpoint["required"], endpoint["optional"]), path
    generate_fields = {f.target.id for f in classes["GenerateReqInput"]}
    assert set(ENDPOINTS["/generate"]["request_fields_used"]) <= generate_fields


@pytest.mark.parametrize("path", [p for p, e in ENDPOINTS.items() if "GET" in e["methods"]])
def test_each_get_endpoint_answers_in_sglangs_shape(torch_engine, path):
    endpoint = ENDPOINTS[path]
    expected = ENDPOINTS[endpoint["same_as"]] if "same_as" in endpoint else endpoint
    status, body = http_get(torch_engine, path, timeout=30)
    if path == "/get_weights_by_name":  # needs a name; SGLang answers 400 without one
        assert status == 400
        return
    assert status == expected["response"]["status"], body
    if "keys" in expected["response"]:
        assert set(expected["response"]["keys"]) <= set(json.loads(body)), path
    if "text_starts_with" in expected["response"]:
        assert body.decode().startswith(expected["response"]["text_starts_with"])


def test_generate_answers_in_sglangs_shape(torch_engine):
    spec = ENDPOINTS["/generate"]
    reply = http_json(torch_engine, "/generate", spec["example_request"], timeout=30)
    assert set(reply) == set(spec["response"]["keys"])
    meta = reply["meta_info"]
    assert set(spec["response"]["meta_info_keys"]) <= set(meta)
    finish = meta["finish_reason"]
    assert set(finish) == set(spec["response"]["finish_reason_types"][finish["type"]])
    assert [entry[1] for entry in meta["output_token_logprobs"]] == reply["output_ids"]
    assert all(len(entry) == 3 and entry[0] <= 0 for entry in meta["output_token_logprobs"])


def test_released_memory_refuses_generation_until_resumed(torch_engine):
    assert http_json(torch_engine, "/release_memory_occupation", {"tags": ["weights", "kv_cache"]}, timeout=10) is None
    try:
        with pytest.raises(EngineError, match="HTTP 503"):
            http_json(torch_engine, "/generate", {"input_ids": [1], "sampling_params": {"max_new_tokens": 1}}, timeout=10)
    finally:
        assert http_json(torch_engine, "/resume_memory_occupation", {}, timeout=10) is None
    http_json(torch_engine, "/generate", {"input_ids": [1], "sampling_params": {"max_new_tokens": 1}}, timeout=10)


@pytest.fixture
def served_weights(torch_engine, tiny_base):
    """The norm weight as served; afterwards the checkpoint's weights are served again."""
    def norm():
        return http_json(torch_engine, "/get_weights_by_name", {"name": NORM, "truncate_size": 100}, timeout=10)

    yield norm
    http_json(torch_engine, "/update_weights_from_disk", {"model_path": str(tiny_base / "tiny-cpu")}, timeout=60)


def _changed_norm(norm_values: list[float]):
    import torch

    return torch.tensor(norm_values) + 0.5


def test_update_from_tensor_changes_the_served_weights(torch_engine, served_weights):
    from slime.backends.weight_sync import serialize_entry

    new = _changed_norm(served_weights())
    request = {"serialized_named_tensors": [serialize_entry([(NORM, new)])], "flush_cache": False,
               "weight_version": "7"}
    reply = http_json(torch_engine, "/update_weights_from_tensor", request, timeout=30)
    assert set(reply) == set(ENDPOINTS["/update_weights_from_tensor"]["response"]["keys"]) and reply["success"]
    assert served_weights() == pytest.approx(new.tolist())
    assert json.loads(http_get(torch_engine, "/model_info", timeout=10)[1])["weight_version"] == "7"


def test_update_from_disk_changes_the_weights_and_refuses_an_incomplete_folder(torch_engine, served_weights, tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(next((Path(json.loads(http_get(torch_engine, "/model_info", timeout=10)[1])["tokenizer_path"]))
                           .glob("*.safetensors")))
    state[NORM] = _changed_norm(state[NORM].tolist())
    save_file(state, tmp_path / "model.safetensors")
    reply = http_json(torch_engine, "/update_weights_from_disk", {"model_path": str(tmp_path)}, timeout=60)
    assert set(reply) == set(ENDPOINTS["/update_weights_from_disk"]["response"]["keys"]) and reply["success"]
    assert served_weights() == pytest.approx(state[NORM].tolist())
    del state[NORM]
    save_file(state, tmp_path / "model.safetensors")
    with pytest.raises(EngineError, match=r"refused /update_weights_from_disk|HTTP 400.*missing \['model.norm.weight'\]"):
        http_json(torch_engine, "/update_weights_from_disk", {"model_path": str(tmp_path)}, timeout=60)


def test_update_from_distributed_broadcasts_into_the_served_weights(torch_engine, served_weights):
    import torch
    import torch.distributed as dist

    from slime.utils.ports import free_ports

    port = free_ports(1)[0]
    init = {"master_address": "127.0.0.1", "master_port": port, "rank_offset": 1, "world_size": 2,
            "group_name": "test_group", "backend": "gloo"}
    replies = []
    joining = threading.Thread(target=lambda: replies.append(
        http_json(torch_engine, "/init_weights_update_group", init, timeout=60)))
    joining.start()
    store = dist.TCPStore("127.0.0.1", port, 2, is_master=True, timeout=timedelta(seconds=60), wait_for_workers=False)
    group = dist.ProcessGroupGloo(store, 0, 2, timedelta(seconds=60))
    joining.join()
    assert replies[0]["success"]
    new = _changed_norm(served_weights())
    announce = {"names": [NORM], "dtypes": ["float32"], "shapes": [list(new.shape)], "group_name": "test_group"}
    updating = threading.Thread(target=lambda: replies.append(
        http_json(torch_engine, "/update_weights_from_distributed", announce, timeout=60)))
    updating.start()
    group.broadcast(new.to(torch.float32), 0).wait()
    updating.join()
    assert replies[1]["success"] and served_weights() == pytest.approx(new.tolist())
    assert http_json(torch_engine, "/destroy_weights_update_group", {"group_name": "test_group"}, timeout=10)["success"]


def test_the_engine_sends_its_replies_without_waiting_for_acks(tiny_base):
    """Headers and body are two writes: with Nagle's algorithm the body would wait for the client's
    delayed ACK, 40 ms per request through the router (measured: 64 requests 3.0 s, now 0.4 s)."""
    from slime.engines.torch_engine import TorchEngine, _handler, parse_server_args

    engine = TorchEngine(parse_server_args(["--model-path", str(tiny_base / "tiny-cpu")]))
    assert _handler(engine).disable_nagle_algorithm is True


def test_the_router_starts_without_importing_sglang():
    """``python -m slime.engines.router`` takes the flags of SGLang's own launch_router; that one imports
    all of SGLang and torch (for a Python load balancer it does not start), this one does not."""
    require_module("sglang_router")
    from slime.engines.router import router_command

    command = router_command("127.0.0.1", 1, ["http://127.0.0.1:2"], 3)
    assert command[1:3] == ["-m", "slime.engines.router"]
    result = subprocess.run([sys.executable, "-X", "importtime", *command[1:], "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0 and "--worker-urls" in result.stdout and "--policy" in result.stdout, result.stderr
    imported = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")}
    assert "sglang_router.router_args" in imported and not {"sglang", "torch"} & imported


@pytest.mark.slow
def test_sglangs_router_routes_generate_to_the_torch_engine(torch_engine):
    require_module("sglang_router")
    from slime.engines.router import router_command, wait_for_workers
    from slime.utils.ports import free_ports

    port, metrics_port = free_ports(2)
    router = subprocess.Popen(router_command("127.0.0.1", port, [torch_engine], metrics_port=metrics_port),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_workers(url, [torch_engine], router, timeout=60) is None
        reply = http_json(url, "/generate", ENDPOINTS["/generate"]["example_request"], timeout=30)
        assert set(reply) == {"text", "output_ids", "meta_info"}
    finally:
        router.terminate()
        router.wait(timeout=20)
