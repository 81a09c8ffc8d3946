"""The client of the rollout engines' HTTP API: SGLang's native ``/generate`` request and response.
The same client talks to SGLang servers on GPUs and to the torch engines on CPUs."""

from __future__ import annotations

import itertools
import json
import threading
import urllib.error
import urllib.request


class EngineError(RuntimeError):
    """A rollout engine did not answer a request; the message names the engine and the cause."""


class GenerateClient:
    def __init__(self, urls: list[str], timeout: float = 600):
        if not urls:
            raise ValueError("no rollout engines to send requests to")
        self.urls, self.timeout = list(urls), timeout
        self._next = itertools.cycle(self.urls)
        self._lock = threading.Lock()

    def _pick(self) -> str:
        with self._lock:
            return next(self._next)

    def post(self, url: str, path: str, payload: dict) -> dict:
        request = urllib.request.Request(url + path, data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as err:
            detail = err.read().decode(errors="replace")[:500]
            raise EngineError(f"rollout engine {url} answered {path} with HTTP {err.code}: {detail}") from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            raise EngineError(f"rollout engine {url} did not answer {path}: {getattr(err, 'reason', err)} "
                              "(did the engine process die? see its log above)") from None

    def generate(self, input_ids: list[int], sampling_params: dict, return_logprob: bool = True) -> dict:
        """One /generate call, SGLang's shape: ``{"text", "output_ids", "meta_info": {"finish_reason",
        "output_token_logprobs": [[logprob, token_id, text], ...], ...}}``."""
        payload = {"input_ids": input_ids, "sampling_params": sampling_params, "return_logprob": return_logprob}
        return self.post(self._pick(), "/generate", payload)
