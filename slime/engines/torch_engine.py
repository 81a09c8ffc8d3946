"""The CPU rollout engine: a server process that serves a transformers model with SGLang's HTTP API.

    python -m slime.engines.torch_engine --model-path DIR --host 127.0.0.1 --port 30000 [--random-seed N]

The engine group starts it exactly as it starts ``python -m sglang.launch_server`` (same flags, the
ones that matter on a CPU), and talks to it through the same endpoints with the request and
response shapes of the pinned SGLang (``tests/fixtures/sglang_protocol.json`` records them from
SGLang's source): ``/generate``, ``/health``, ``/health_generate``, ``/model_info``,
``/get_model_info``, ``/server_info``, ``/get_server_info``, ``/flush_cache``,
``/update_weights_from_disk``, ``/update_weights_from_tensor``, ``/init_weights_update_group``,
``/update_weights_from_distributed``, ``/destroy_weights_update_group``, ``/get_weights_by_name``,
``/release_memory_occupation`` and ``/resume_memory_occupation``. So the router, the health checks
and the weight push run the same code for both backends. Where SGLang takes CUDA IPC handles in
``serialized_named_tensors``, this engine takes each bucket's tensors by value (safetensors bytes,
base64); its weight-update group is gloo where SGLang's is NCCL.

Started with an API key (SGLang's ``--api-key``, or in the YAML file of SGLang's ``--config``, which
keeps it out of the command line), it answers every endpoint but the health checks (``/health…``,
``/ready…``, ``/metrics…``, which SGLang leaves open too) only with ``Authorization: Bearer <key>``,
and 401 otherwise.
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlparse

import torch

from slime.backends.weight_sync import decode_tensors

SGLANG_VERSION = "0.5.23"  # the protocol version it speaks: the SGLang release the project pins


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.softmax(sorted_logits, -1).cumsum(-1)
        drop = cumulative - torch.softmax(sorted_logits, -1) > top_p
        logits = logits.clone()
        logits[order[drop]] = float("-inf")
    return logits


def load_safetensors_dir(directory: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(Path(directory).glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{directory} holds no *.safetensors files")
    state = {}
    for file in files:
        state.update(load_file(file))
    return state


class TorchEngine:
    """One model; concurrent requests are sampled in batches (``Batcher``)."""

    def __init__(self, server_args: argparse.Namespace):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(1)
        self.args = server_args
        # A checkpoint's own Python code (auto_map) runs only with --trust-remote-code, as in SGLang.
        remote = server_args.trust_remote_code
        self.tokenizer = AutoTokenizer.from_pretrained(server_args.model_path, trust_remote_code=remote)
        self.model = AutoModelForCausalLM.from_pretrained(server_args.model_path, dtype=torch.float32,
                                                          trust_remote_code=remote).eval()
        self.model_path = server_args.model_path
        self.weight_version = "default"
        self.released = False
        self.update_groups: dict[str, object] = {}
        self.lock = threading.Lock()
        self.batcher = Batcher(self._sample_batch)
        self.started = time.time()

    # -- weights ------------------------------------------------------------------------------
    def load_weights(self, state: dict[str, torch.Tensor], complete: bool) -> None:
        """Copy ``state`` (HF names) into the model; ``complete``: it must cover every weight."""
        own = self.model.state_dict()
        unexpected = sorted(set(state) - set(own))
        missing = sorted(set(own) - set(state)) if complete else []
        if unexpected or missing:
            raise ValueError(f"weights do not fit the engine's model: unexpected {unexpected[:5]}, missing {missing[:5]}")
        wrong = [f"{n} {tuple(t.shape)} (the model's is {tuple(own[n].shape)})" for n, t in state.items()
                 if t.shape != own[n].shape]
        if wrong:
            raise ValueError(f"weights of the wrong shape: {wrong[:5]}")
        with torch.no_grad():
            for name, tensor in state.items():
                own[name].copy_(tensor)

    def update_from_disk(self, request: dict) -> dict:
        with self.lock:
            self.load_weights(load_safetensors_dir(request["model_path"]), complete=True)
            self.model_path = request["model_path"]
            self._new_version(request)
        return {"success": True, "message": "Succeeded to update model weights.", "num_paused_requests": 0}

    def update_from_tensor(self, request: dict) -> dict:
        entries = request["serialized_named_tensors"]
        if len(entries) != 1:
            raise ValueError(f"serialized_named_tensors has {len(entries)} entries; this engine has 1 TP rank")
        with self.lock:
            self.load_weights(decode_tensors(entries[0]), complete=False)
            self._new_version(request)
        return {"success": True, "message": "Succeeded to update parameter online."}

    def init_update_group(self, request: dict) -> dict:
        import torch.distributed as dist

        store = dist.TCPStore(request["master_address"], int(request["master_port"]), int(request["world_size"]),
                              is_master=False, timeout=timedelta(seconds=300))
        group = dist.ProcessGroupGloo(store, int(request["rank_offset"]), int(request["world_size"]),
                                      timedelta(seconds=300))
        self.update_groups[request.get("group_name", "weight_update_group")] = group
        return {"success": True, "message": "Succeeded to initialize custom process group."}

    def update_from_distributed(self, request: dict) -> dict:
        group = self.update_groups.get(request.get("group_name", "weight_update_group"))
        if group is None:
            raise ValueError(f"no weight-update group {request.get('group_name')!r}: call /init_weights_update_group")
        received = {}
        for name, dtype, shape in zip(request["names"], request["dtypes"], request["shapes"]):
            tensor = torch.empty(shape, dtype=getattr(torch, dtype.removeprefix("torch.")))
            group.broadcast(tensor, 0).wait()
            received[name] = tensor
        with self.lock:
            self.load_weights(received, complete=False)
            self._new_version(request)
        return {"success": True, "message": "Succeeded to update parameter online from distributed."}

    def destroy_update_group(self, request: dict) -> dict:
        self.update_groups.pop(request.get("group_name", "weight_update_group"), None)
        return {"success": True, "message": "Succeeded to destroy custom process group."}

    def _new_version(self, request: dict) -> None:
        if request.get("weight_version") is not None:
            self.weight_version = str(request["weight_version"])
        print(f"torch engine: weights updated (version {self.weight_version})", flush=True)

    # -- information --------------------------------------------------------------------------
    def model_info(self) -> dict:
        config = self.model.config
        return {"model_path": self.model_path, "served_model_name": self.args.model_path,
                "tokenizer_path": self.args.model_path, "is_generation": True, "preferred_sampling_params": None,
                "weight_version": self.weight_version, "load_format": "auto", "reasoning_parser": None,
                "tool_call_parser": None, "disaggregation_mode": "null", "has_image_understanding": False,
                "has_audio_understanding": False, "model_type": getattr(config, "model_type", None),
                "architectures": getattr(config, "architectures", None)}

    def server_info(self) -> dict:
        shown = {k: v for k, v in vars(self.args).items() if k != "api_key"}  # a secret is never echoed
        return {**shown, "dp_size": 1, "tokenizer_path": self.args.model_path,
                "launch_command": " ".join([sys.executable, "-m", "slime.engines.torch_engine", *sys.argv[1:]]),
                "served_model_name": self.args.model_path, "startup_time": self.started,
                "internal_states": [{"weight_version": self.weight_version, "memory_released": self.released}],
                "version": SGLANG_VERSION, "frontend": "python"}

    # -- generation ---------------------------------------------------------------------------
    def generate(self, request: dict) -> dict:
        """One /generate request, answered from the batch it joins (``Batcher``)."""
        params = request.get("sampling_params") or {}
        input_ids = request.get("input_ids")
        if input_ids is None:
            input_ids = self.tokenizer(request["text"], add_special_tokens=False)["input_ids"]
        # SGLang's bound: at most the context length minus the prompt and one; no max_new_tokens means that bound
        limit = max(0, self.model.config.max_position_embeddings - len(input_ids) - 1)
        requested = params.get("max_new_tokens", 128)
        stop_ids = set(params.get("stop_token_ids") or [])
        if not params.get("ignore_eos") and self.tokenizer.eos_token_id is not None:
            stop_ids.add(self.tokenizer.eos_token_id)
        stop_strings = params.get("stop") or []
        seed = params.get("sampling_seed")
        wanted = SampleRequest(
            input_ids=list(input_ids), max_new=limit if requested is None else min(int(requested), limit),
            temperature=float(params.get("temperature", 1.0)), top_p=float(params.get("top_p", 1.0)),
            top_k=int(params.get("top_k", -1)), stop_ids=stop_ids,
            stop_strings=[stop_strings] if isinstance(stop_strings, str) else list(stop_strings),
            generator=torch.Generator().manual_seed(int(self.args.random_seed if seed is None else seed)))
        start = time.time()
        output, logprobs, finish = self.batcher.submit(wanted)
        text = self.tokenizer.decode(output, skip_special_tokens=params.get("skip_special_tokens", True))
        meta = {"id": request.get("rid") or f"{time.time_ns():x}", "finish_reason": finish,
                "prompt_tokens": len(input_ids), "weight_version": self.weight_version, "num_retractions": 0,
                "reasoning_tokens": 0, "completion_tokens": len(output), "cached_tokens": 0,
                "e2e_latency": time.time() - start}
        if request.get("return_logprob"):
            meta["input_token_logprobs"] = [[None, input_ids[0], None]] + [[None, t, None] for t in input_ids[1:]]
            meta["output_token_logprobs"] = [[lp, tok, None] for lp, tok in zip(logprobs, output)]
        return {"text": text, "output_ids": output, "meta_info": meta}

    def _sample_batch(self, requests: list[SampleRequest]) -> list[tuple]:
        with self.lock:  # not while new weights are copied in
            return sample_batch(self.model, self.tokenizer, requests)


@dataclass
class SampleRequest:
    """What one request asks of the sampler."""

    input_ids: list[int]
    max_new: int
    temperature: float
    top_p: float
    top_k: int
    stop_ids: set
    stop_strings: list[str]
    generator: torch.Generator


@torch.no_grad()
def sample_batch(model, tokenizer, requests: list[SampleRequest]) -> list[tuple[list[int], list[float], dict]]:
    """(tokens, their log-probs, finish reason) of each request. Requests whose prompts are of one length
    share their forward passes (no padding, so a row's logits do not depend on the others'); each row is
    sampled with its own parameters and seeded generator, as it would be alone."""
    results: list = [None] * len(requests)
    by_length: dict[int, list[int]] = {}
    for i, request in enumerate(requests):
        by_length.setdefault(len(request.input_ids), []).append(i)
    for rows in by_length.values():
        for i, result in zip(rows, _sample_rows(model, tokenizer, [requests[i] for i in rows])):
            results[i] = result
    return results


def _sample_rows(model, tokenizer, requests: list[SampleRequest]) -> list[tuple]:
    ids = torch.tensor([r.input_ids for r in requests])
    outputs: list[list[int]] = [[] for _ in requests]
    logprobs: list[list[float]] = [[] for _ in requests]
    finish: list = [None if r.max_new > 0 else {"type": "length", "length": r.max_new} for r in requests]
    past, step = None, 0
    while any(f is None for f in finish):
        result = model(input_ids=ids, past_key_values=past, use_cache=True)
        past = result.past_key_values
        last = result.logits[:, -1].float()
        step += 1
        chosen = []
        for row, r in enumerate(requests):
            if finish[row] is not None:
                chosen.append(0)  # a finished row is carried along; what it draws is not kept
                continue
            logits = last[row] / max(r.temperature, 1e-6)
            probs = torch.softmax(_filter_logits(logits, r.top_k, r.top_p), -1)
            token = int(torch.multinomial(probs, 1, generator=r.generator))
            chosen.append(token)
            outputs[row].append(token)
            logprobs[row].append(float(torch.log_softmax(logits, -1)[token]))
            if token in r.stop_ids:
                finish[row] = {"type": "stop", "matched": token}
            elif r.stop_strings and (matched := next((s for s in r.stop_strings
                                                      if s in tokenizer.decode(outputs[row])), None)) is not None:
                finish[row] = {"type": "stop", "matched": matched}
            elif step >= r.max_new:
                finish[row] = {"type": "length", "length": r.max_new}
        ids = torch.tensor(chosen)[:, None]
    return [(outputs[row], logprobs[row], finish[row]) for row in range(len(requests))]


class Batcher:
    """Requests from many threads answered in batches: the first request waits ``gather`` seconds for
    others to join it (a rollout sends its requests at once), then one thread samples them together."""

    def __init__(self, sample: Callable[[list], list], gather: float = 0.001):
        self.sample, self.gather = sample, gather
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="sampler", daemon=True).start()

    def submit(self, request):
        done: Future = Future()
        self.queue.put((request, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            batch = [self.queue.get()]
            deadline = time.perf_counter() + self.gather
            while True:  # those that come within the gather time, and whatever is already waiting after it
                left = deadline - time.perf_counter()
                try:
                    batch.append(self.queue.get(timeout=left) if left > 0 else self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                results = self.sample([request for request, _ in batch])
            except Exception as err:  # each request's caller gets the failure
                for _, done in batch:
                    done.set_exception(err)
                continue
            for (_, done), result in zip(batch, results):
                done.set_result(result)


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a rollout sends its requests at once; the default backlog of 5 resets them
    daemon_threads = True


# What SGLang answers without the key even when it has one (sglang.srt.utils.auth.decide_request_auth).
OPEN_PREFIXES = ("/health", "/ready", "/metrics")


def authorized(authorization: str | None, api_key: str | None) -> bool:
    """SGLang's check: no key configured, or ``Bearer <key>`` compared in constant time."""
    if not api_key:
        return True
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.encode(), api_key.encode())


FLUSHED = ("Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, "
           "the operation will not be performed.)\n")


def _handler(engine: TorchEngine):
    # path -> (method taking the JSON request, status on a failed update); SGLang answers failed
    # weight updates with 400 and {"success": false, "message": ...}.
    updates = {
        "/update_weights_from_disk": engine.update_from_disk,
        "/update_weights_from_tensor": engine.update_from_tensor,
        "/init_weights_update_group": engine.init_update_group,
        "/update_weights_from_distributed": engine.update_from_distributed,
        "/destroy_weights_update_group": engine.destroy_update_group,
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the router's HTTP client expects
        # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for the ACK
        # of the headers, which a keep-alive client (the router) delays by 40 ms — per request.
        disable_nagle_algorithm = True

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _json(self, status: int, body) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _request(self) -> dict | None:
            length = int(self.headers.get("Content-Length", 0))
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as err:
                self._json(400, {"error": {"message": f"request is not JSON: {err.msg}"}})
                return None
            return body if isinstance(body, dict) else {}

        def _route(self, method: str) -> None:
            path = urlparse(self.path).path
            if not path.startswith(OPEN_PREFIXES) and not authorized(self.headers.get("Authorization"),
                                                                      engine.args.api_key):
                self.close_connection = True  # its body is not read
                self._json(401, {"error": "Unauthorized"})
                return
            request = self._request() if method == "POST" or self.headers.get("Content-Length") else {}
            if request is None:
                return
            if path in ("/health", "/health_generate"):
                if path == "/health_generate" and not engine.released:
                    engine.generate({"input_ids": [0], "sampling_params": {"max_new_tokens": 1, "temperature": 0.0}})
                self._send(200, b"", "text/plain")
            elif path in ("/model_info", "/get_model_info"):
                self._json(200, engine.model_info())
            elif path in ("/server_info", "/get_server_info"):
                self._json(200, engine.server_info())
            elif path == "/get_weights_by_name":
                tensor = engine.model.state_dict().get(request.get("name"))
                if tensor is None:
                    self._json(400, {"error": {"message": f"Get parameter by name failed: no {request.get('name')!r}"}})
                else:
                    self._json(200, tensor.float().tolist()[:int(request.get("truncate_size", 100))])
            elif path == "/flush_cache":
                self._send(200, FLUSHED.encode(), "text/plain")
            elif path == "/release_memory_occupation":
                engine.released = True  # CPU memory stays; generation is refused until resumed, as on a GPU
                self._json(200, None)
            elif path == "/resume_memory_occupation":
                engine.released = False
                self._json(200, None)
            elif path in updates and method == "POST":
                try:
                    self._json(200, updates[path](request))
                except Exception as err:  # SGLang's answer to a failed update
                    print(f"torch engine: {path} failed: {type(err).__name__}: {err}", flush=True)
                    self._json(400, {"success": False, "message": f"{type(err).__name__}: {err}"})
            elif path == "/generate" and method == "POST":
                if engine.released:
                    self._json(503, {"error": {"message": "memory released for training; resume it before generating"}})
                    return
                try:
                    self._json(200, engine.generate(request))
                except Exception as err:  # report the failure to the client instead of dropping the connection
                    self._json(400, {"error": {"message": f"{type(err).__name__}: {err}"}})
            else:
                self._json(404, {"detail": "Not Found"})

        def do_GET(self):  # noqa: N802 (http.server's naming)
            self._route("GET")

        def do_POST(self):  # noqa: N802
            self._route("POST")

        def do_PUT(self):  # noqa: N802 (SGLang takes /generate by PUT too)
            self._route("POST")

        def log_message(self, *args):  # requests are not logged, as SGLang's default
            pass

    return Handler


def parse_server_args(argv: list[str]) -> argparse.Namespace:
    """The SGLang server flags this engine honours, spelled as SGLang spells them."""
    parser = argparse.ArgumentParser(prog="python -m slime.engines.torch_engine", allow_abbrev=False,
                                     description="A CPU engine serving SGLang's HTTP API.")
    parser.add_argument("--model-path", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=30000)
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--tp-size", type=int, default=1, choices=(1,), help="one CPU process per engine")
    parser.add_argument("--trust-remote-code", action="store_true")
    parser.add_argument("--skip-server-warmup", action="store_true")
    parser.add_argument("--enable-memory-saver", action="store_true")
    parser.add_argument("--api-key", help="answer only requests with Authorization: Bearer <key> (SGLang's)")
    parser.add_argument("--config", help="a YAML file of these flags (SGLang's --config): keeps a key off the command "
                                         "line")
    return parser.parse_args(_with_config_file(argv))


def _with_config_file(argv: list[str]) -> list[str]:
    """``--config FILE`` replaced by the flags the YAML file holds, before the others (SGLang's order, so the
    command line wins)."""
    if "--config" not in argv:
        return argv
    import yaml

    at = argv.index("--config")
    if at + 1 >= len(argv):
        raise SystemExit("torch engine: --config needs a file")
    with open(argv[at + 1], encoding="utf-8") as handle:
        values = yaml.safe_load(handle) or {}
    if not isinstance(values, dict):
        raise SystemExit(f"torch engine: {argv[at + 1]} must hold a mapping of flags")
    flags = []
    for name, value in values.items():
        option = "--" + str(name).replace("_", "-")
        flags += ([option] if value is True else []) if isinstance(value, bool) else [f"{option}={value}"]
    return [*flags, *argv[:at], *argv[at + 2:]]


def main(argv: list[str] | None = None) -> int:
    args = parse_server_args(sys.argv[1:] if argv is None else argv)
    engine = TorchEngine(args)
    server = _Server((args.host, args.port), _handler(engine))
    print(f"torch engine: serving {args.model_path} at http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
