"""A CPU rollout engine: a transformers model behind SGLang's native HTTP API on loopback.

``POST /generate`` takes SGLang's request (``input_ids``, ``sampling_params`` with temperature,
top_p, top_k, max_new_tokens, stop, stop_token_ids, skip_special_tokens, sampling_seed;
``return_logprob``) and answers SGLang's response (``text``, ``output_ids``, ``meta_info`` with
``finish_reason`` and ``output_token_logprobs``), so the rollout client is the one that talks to
SGLang. ``GET /health`` answers once the model is loaded. Weights are replaced in place from a
state dict in HF naming (``update_weights``), as the trainer exports them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from slime.backends.base import RolloutEngine


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


class TorchEngine(RolloutEngine):
    """Serves one model; requests are answered one at a time (a tiny model is fast)."""

    def __init__(self, hf_checkpoint: str, seed: int = 0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(1)
        self.tokenizer = AutoTokenizer.from_pretrained(hf_checkpoint)
        self.model = AutoModelForCausalLM.from_pretrained(hf_checkpoint, dtype=torch.float32).eval()
        self.seed = seed
        self.released = False
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # -- RolloutEngine -----------------------------------------------------------------------
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def update_weights(self, state_dict: dict) -> None:
        with self._lock:
            missing, unexpected = self.model.load_state_dict(state_dict, strict=False)
            if missing or unexpected:
                raise ValueError(f"weights do not fit the engine's model: missing {missing[:5]}, unexpected {unexpected[:5]}")

    def release_memory(self) -> None:
        self.released = True  # CPU memory stays: nothing to give back, but requests are refused meanwhile

    def resume_memory(self) -> None:
        self.released = False

    def shutdown(self) -> None:
        self._server.shutdown()

    # -- generation --------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, request: dict) -> dict:
        params = request.get("sampling_params", {})
        input_ids = request.get("input_ids")
        if input_ids is None:
            input_ids = self.tokenizer(request["text"], add_special_tokens=False)["input_ids"]
        temperature = float(params.get("temperature", 1.0))
        top_p, top_k = float(params.get("top_p", 1.0)), int(params.get("top_k", -1))
        max_new = int(params.get("max_new_tokens", 128))
        stop_ids = set(params.get("stop_token_ids") or [])
        if not params.get("ignore_eos") and self.tokenizer.eos_token_id is not None:
            stop_ids.add(self.tokenizer.eos_token_id)
        stop_strings = params.get("stop") or []
        stop_strings = [stop_strings] if isinstance(stop_strings, str) else list(stop_strings)
        generator = torch.Generator().manual_seed(int(params.get("sampling_seed", self.seed)))
        with self._lock:
            output, logprobs, finish = self._sample(input_ids, max_new, temperature, top_p, top_k, stop_ids,
                                                    stop_strings, generator)
        text = self.tokenizer.decode(output, skip_special_tokens=params.get("skip_special_tokens", True))
        meta = {"prompt_tokens": len(input_ids), "completion_tokens": len(output), "finish_reason": finish}
        if request.get("return_logprob"):
            meta["output_token_logprobs"] = [[lp, tok, None] for lp, tok in zip(logprobs, output)]
        return {"text": text, "output_ids": output, "meta_info": meta}

    def _sample(self, input_ids, max_new, temperature, top_p, top_k, stop_ids, stop_strings, generator):
        ids = torch.tensor([input_ids])
        past, output, logprobs = None, [], []
        for _ in range(max_new):
            result = self.model(input_ids=ids if past is None else ids[:, -1:], past_key_values=past, use_cache=True)
            past = result.past_key_values
            logits = result.logits[0, -1].float() / max(temperature, 1e-6)
            log_probs = torch.log_softmax(logits, -1)
            probs = torch.softmax(_filter_logits(logits, top_k, top_p), -1)
            token = int(torch.multinomial(probs, 1, generator=generator))
            output.append(token)
            logprobs.append(float(log_probs[token]))
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)
            if token in stop_ids:
                return output, logprobs, {"type": "stop", "matched": token}
            if stop_strings:
                text = self.tokenizer.decode(output)
                matched = next((stop for stop in stop_strings if stop in text), None)
                if matched is not None:
                    return output, logprobs, {"type": "stop", "matched": matched}
        return output, logprobs, {"type": "length", "length": max_new}


class _Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a rollout sends its requests at once; the default backlog of 5 resets them
    daemon_threads = True


def _handler(engine: TorchEngine):
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802 (http.server's naming)
            if self.path in ("/health", "/health_generate"):
                self._reply(200, {"status": "ok"})
            else:
                self._reply(404, {"error": f"no route {self.path}"})

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("Content-Length", 0))
            try:
                request = json.loads(self.rfile.read(length) or b"{}")
            except json.JSONDecodeError as err:
                self._reply(400, {"error": f"request is not JSON: {err.msg}"})
                return
            if self.path == "/flush_cache":
                self._reply(200, {"status": "ok"})
            elif self.path != "/generate":
                self._reply(404, {"error": f"no route {self.path}"})
            elif engine.released:
                self._reply(503, {"error": "memory released for training; resume it before generating"})
            else:
                try:
                    self._reply(200, engine.generate(request))
                except Exception as err:  # report the failure to the client instead of dropping the connection
                    self._reply(500, {"error": f"{type(err).__name__}: {err}"})

        def log_message(self, *args):  # keep the job log to slime's own lines
            pass

    return Handler
