"""The HTTP client of the rollout engines and the router, with SGLang's request and response shapes.
The same client talks to SGLang servers on GPUs and to the torch engines on CPUs; every failure is an
``EngineError`` that names the engine (its URL, host and log where known) and the cause. Every request
carries the run's ``EngineKey`` as SGLang's ``Authorization: Bearer`` header, when one is given."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from collections.abc import Callable


class EngineError(RuntimeError):
    """A rollout engine (or the router) failed; the message names it and the cause."""


class EngineKey:
    """The run's secret for the engines' and the router's HTTP API (SGLang's ``--api-key``): made by the
    trainer for each run, sent as ``Authorization: Bearer``. Printing it, in a message, a log line or a
    repr of the dicts that carry it, shows ``EngineKey(hidden)``; only ``reveal`` gives the text."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    @classmethod
    def new(cls) -> EngineKey:
        # Hex: a key starting with "-" would read as an option where SGLang turns its --config file into flags.
        return cls(secrets.token_hex(32))

    def reveal(self) -> str:
        return self._value

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._value}"}

    def __repr__(self) -> str:
        return "EngineKey(hidden)"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return isinstance(other, EngineKey) and secrets.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


def _headers(key: EngineKey | None, **more: str) -> dict[str, str]:
    return {**more, **(key.header() if key is not None else {})}


def _open(request: urllib.request.Request, timeout: float, who: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
        raise EngineError(f"{who} did not answer {path}: {getattr(err, 'reason', err)}") from None


def http_get(url: str, path: str, timeout: float, engine: str | None = None,
             key: EngineKey | None = None) -> tuple[int, bytes]:
    return _open(urllib.request.Request(url + path, headers=_headers(key)), timeout, engine or f"rollout engine {url}",
                 path)


def http_delete(url: str, path: str, timeout: float, key: EngineKey | None = None) -> tuple[int, bytes]:
    return _open(urllib.request.Request(url + path, method="DELETE", headers=_headers(key)), timeout, f"router {url}",
                 path)


def http_json(url: str, path: str, payload: dict, timeout: float, engine: str | None = None,
              key: EngineKey | None = None):
    """POST ``payload`` as JSON; the decoded reply, or an EngineError with the server's own message."""
    who = engine or f"rollout engine {url}"
    request = urllib.request.Request(url + path, data=json.dumps(payload).encode(),
                                     headers=_headers(key, **{"Content-Type": "application/json"}))
    status, body = _open(request, timeout, who, path)
    return _reply(who, path, status, body)


def _reply(who: str, path: str, status: int, body: bytes):
    """The decoded reply to a POST, or an EngineError with the server's own message."""
    text = body.decode(errors="replace")
    if status == 401:
        raise EngineError(f"{who} refused {path} (HTTP 401): the request lacks the API key it was started with")
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
                 check: Callable[[], None] | None = None, recover: Callable[[], bool] | None = None,
                 key: EngineKey | None = None):
        self.url, self.timeout, self.key = url, timeout, key
        self.engine_urls = list(engine_urls or [url])
        self._check = check or (lambda: None)
        self._recover = recover or (lambda: False)
        self._pool = None

    def _post_kept(self, path: str, payload: dict):
        """``http_json``'s request and answers over connections kept open between requests (a rollout
        sends thousands: a new TCP connection each costs more than a tiny model's forward pass)."""
        import urllib3  # here, not at the top: the config path imports this module without needing it

        if self._pool is None:
            self._pool = urllib3.PoolManager(maxsize=64, block=False, retries=False)
        who = f"the router {self.url} of the rollout engines"
        try:
            reply = self._pool.request("POST", self.url + path, body=json.dumps(payload).encode(),
                                       headers=_headers(self.key, **{"Content-Type": "application/json"}),
                                       timeout=self.timeout)
        except urllib3.exceptions.HTTPError as err:
            raise EngineError(f"{who} did not answer {path}: {getattr(err, 'reason', None) or err}") from None
        return _reply(who, path, reply.status, reply.data)

    def check(self) -> None:
        self._check()

    def post(self, path: str, payload: dict) -> dict:
        self._check()
        for attempt in range(1, self.RETRIES + 1):
            try:
                reply = self._post_kept(path, payload)
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
