"""The HTTP client of the rollout engines and the router, with SGLang's request and response shapes.
The same client talks to SGLang servers on GPUs and to the torch engines on CPUs; every failure is an
``EngineError`` that names the engine (its URL, host and log where known) and the cause."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable


class EngineError(RuntimeError):
    """A rollout engine (or the router) failed; the message names it and the cause."""


def _open(request: urllib.request.Request, timeout: float, who: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        raise EngineError(f"{who} did not answer {path}: {getattr(err, 'reason', err)}") from None


def http_get(url: str, path: str, timeout: float, engine: str | None = None) -> tuple[int, bytes]:
    return _open(urllib.request.Request(url + path), timeout, engine or f"rollout engine {url}", path)


def http_delete(url: str, path: str, timeout: float) -> tuple[int, bytes]:
    return _open(urllib.request.Request(url + path, method="DELETE"), timeout, f"router {url}", path)


def http_json(url: str, path: str, payload: dict, timeout: float, engine: str | None = None):
    """POST ``payload`` as JSON; the decoded reply, or an EngineError with the server's own message."""
    who = engine or f"rollout engine {url}"
    request = urllib.request.Request(url + path, data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
    status, body = _open(request, timeout, who, path)
    text = body.decode(errors="replace")
    if status >= 400:
        raise EngineError(f"{who} answered {path} with HTTP {status}: {text[:500]}")
    try:
        reply = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return text  # /flush_cache answers plain text
    if isinstance(reply, dict) and reply.get("success") is False:
        raise EngineError(f"{who} refused {path}: {reply.get('message')}")
    return reply


class GenerateClient:
    """/generate through the router (or straight to one engine); ``check`` raises the engine group's
    failure, so a dead engine stops the rollout at the next request; ``recover`` (--use-fault-tolerance)
    restarts a dead engine after a failed request and says whether to send it again."""

    RETRIES = 3

    def __init__(self, url: str, engine_urls: list[str] | None = None, timeout: float = 600,
                 check: Callable[[], None] | None = None, recover: Callable[[], bool] | None = None):
        self.url, self.timeout = url, timeout
        self.engine_urls = list(engine_urls or [url])
        self._check = check or (lambda: None)
        self._recover = recover or (lambda: False)

    def check(self) -> None:
        self._check()

    def post(self, path: str, payload: dict) -> dict:
        self._check()
        for attempt in range(1, self.RETRIES + 1):
            try:
                reply = http_json(self.url, path, payload, self.timeout,
                                  engine=f"the router {self.url} of the rollout engines")
                break
            except EngineError:
                self._check()  # a failed engine the group found explains this better than the router's answer
                if attempt == self.RETRIES or not self._recover():
                    raise
        self._check()
        return reply

    def generate(self, input_ids: list[int], sampling_params: dict, return_logprob: bool = True) -> dict:
        """One /generate call, SGLang's shape: ``{"text", "output_ids", "meta_info": {"finish_reason",
        "output_token_logprobs": [[logprob, token_id, text], ...], ...}}``."""
        payload = {"input_ids": input_ids, "sampling_params": sampling_params, "return_logprob": return_logprob}
        return self.post("/generate", payload)
