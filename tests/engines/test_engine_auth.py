"""Issue 20, item 2: the rollout engines and the router answer only the holder of the run's API key.

SGLang's own mechanism: the server's ``--api-key`` (here in the YAML file of ``--config``, off the
command line), ``Authorization: Bearer <key>`` on every request, the health checks left open as
SGLang leaves them; the torch engine enforces the same, and sglang-router 0.3.2's ``--api-key`` (given
in its environment) protects its own endpoints and sends the key on to the engines."""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from slime.rollout.client import EngineKey, http_get, http_json
from tests.helpers.paths import ROOT
from tests.helpers.stack import require_module

PROTOCOL = json.loads((ROOT / "tests" / "fixtures" / "sglang_protocol.json").read_text())
KEY = "k-" + "x" * 40
OPEN = ("/health", "/health_generate")  # SGLang answers these without the key (its decide_request_auth)


@pytest.fixture(scope="module")
def keyed_engine(tiny_base):
    from tests.helpers.engines import serve_torch_engine

    started = []
    with serve_torch_engine(tiny_base / "tiny-cpu", key=KEY, started=started) as url:
        yield url, started[0], started[1]


def _status(url: str, path: str, method: str, authorization: str | None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": authorization} if authorization else {})}
    data = b"{}" if method == "POST" else None
    request = urllib.request.Request(url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status
    except urllib.error.HTTPError as err:
        return err.code


def _requests():
    for path, endpoint in PROTOCOL["endpoints"].items():
        for method in endpoint["methods"]:
            yield path, method
    yield "/no_such_endpoint", "GET"


@pytest.mark.slow
@pytest.mark.parametrize("path, method", list(_requests()))
def test_issue20_2_each_engine_endpoint_refuses_a_request_without_the_key_or_with_a_wrong_one(keyed_engine, path,
                                                                                              method):
    url = keyed_engine[0]
    if path in OPEN:
        assert _status(url, path, method, None) == 200
        return
    assert _status(url, path, method, None) == 401
    assert _status(url, path, method, "Bearer wrong-key") == 401
    assert _status(url, path, method, KEY) == 401  # the key without SGLang's "Bearer " scheme
    assert _status(url, path, method, f"Bearer {KEY}") != 401


@pytest.mark.slow
def test_issue20_2_the_engine_works_with_the_key_and_shows_it_nowhere(keyed_engine):
    url, process, log = keyed_engine
    key = EngineKey(KEY)
    http_json(url, "/resume_memory_occupation", {}, timeout=30, key=key)  # as the endpoint test may have left it
    reply = http_json(url, "/generate", PROTOCOL["endpoints"]["/generate"]["example_request"], timeout=30, key=key)
    assert set(reply) == {"text", "output_ids", "meta_info"}
    status, body = http_get(url, "/server_info", timeout=30, key=key)
    assert status == 200 and KEY not in body.decode()
    assert KEY not in Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
    assert KEY not in log.read_text()


@pytest.mark.slow
def test_issue20_2_the_router_refuses_requests_without_the_key_and_sends_it_to_the_engines(keyed_engine):
    require_module("sglang_router")
    from slime.engines.router import KEY_VARIABLE, router_command, wait_for_workers
    from slime.utils.ports import free_ports

    engine = keyed_engine[0]
    port, metrics_port = free_ports(2)
    router = subprocess.Popen(router_command("127.0.0.1", port, [engine], metrics_port=metrics_port),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              env={**os.environ, KEY_VARIABLE: KEY})
    try:
        url = f"http://127.0.0.1:{port}"
        assert wait_for_workers(url, [engine], router, timeout=60, key=EngineKey(KEY)) is None
        for path, method in (("/generate", "POST"), ("/workers", "GET"), ("/workers", "POST")):
            assert _status(url, path, method, None) == 401, path
            assert _status(url, path, method, "Bearer wrong-key") == 401, path
        # the router's information endpoints stay open, and pass the caller's header on: the engine refuses
        assert _status(url, "/get_model_info", "GET", None) == 401
        reply = http_json(url, "/generate", PROTOCOL["endpoints"]["/generate"]["example_request"], timeout=30,
                          key=EngineKey(KEY))  # through the router, which sent the key to the engine
        assert set(reply) == {"text", "output_ids", "meta_info"}
        assert KEY not in Path(f"/proc/{router.pid}/cmdline").read_bytes().decode()
    finally:
        router.terminate()
        router.wait(timeout=20)


def test_issue20_2_the_server_command_names_the_key_file_never_the_key():
    from slime.engines.command import EngineSlot, planned_commands, server_command
    from slime.config.compose import namespace_from_config

    for config in ("run_tiny_cpu", "run_qwen3_4B"):
        args = namespace_from_config(config, environ={"BASE_FOLDER": "/b"})
        command = server_command(args, EngineSlot(0, 0, "h", 1, 2, 0, None, "/run/engine_0.key.yaml"))
        assert command[command.index("--config") + 1] == "/run/engine_0.key.yaml"
        assert "--api-key" not in command
        assert all("--config" in c["command"] and "{ENGINE0_KEY_FILE}" in c["command"] or c["engine"] != 0
                   for c in planned_commands(args))


def test_issue20_2_the_torch_engine_checks_the_key_as_sglang_does():
    from slime.engines.torch_engine import OPEN_PREFIXES, authorized

    assert authorized(None, None) and authorized("anything", None)  # no key configured: open, as SGLang
    assert authorized(f"Bearer {KEY}", KEY) and authorized(f"bearer {KEY}", KEY)
    assert not any(authorized(header, KEY) for header in (None, "", KEY, f"Bearer {KEY}x", "Bearer wrong",
                                                          f"Basic {KEY}"))
    assert OPEN_PREFIXES == ("/health", "/ready", "/metrics")  # sglang.srt.utils.auth.decide_request_auth's


def test_issue20_2_the_key_is_never_printed():
    key = EngineKey.new()
    assert key.reveal() not in f"{key} {key!r} {[{'url': 'u', 'key': key}]}"
    assert key.header() == {"Authorization": f"Bearer {key.reveal()}"} and len(key.reveal()) == 64
    assert not key.reveal().startswith("-")  # SGLang reads its --config file back into flags


@pytest.mark.slow
def test_issue20_2_a_run_works_with_the_key_and_another_process_gets_401_everywhere(tiny_base, tmp_path):
    """End to end on a real local Ray: the engine group makes the key, every engine and the router refuse
    a request without it, no command line holds it, and the run trains."""
    from tests.helpers.runs import train_one_rank

    probe = tmp_path / "probe.json"
    result = train_one_rank(tiny_base, f"ckpt.save={tmp_path / 'ckpt'}", "rollout.num_rollout=1",
                   "+rollout.custom_generate_function_path=tests.helpers.training:probe_engines_then_generate",
                   env={"SLIME_TEST_PROBE_FILE": str(probe)})
    assert result.returncode == 0, result.stdout[-3000:]
    found = json.loads(probe.read_text())
    assert found["engines"] and all(code == 401 for codes in found["engines"].values() for code in codes.values())
    assert found["router"] == {"/generate": 401, "/workers": 401}
    assert found["cmdlines"] == []
    assert "Bearer" not in result.stdout and "api-key" not in result.stdout
