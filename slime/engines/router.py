"""SGLang's router (``sglang-router``, a Rust binary on PyPI) in front of the rollout engines: the
command that starts it and the wait until it has taken every engine as a healthy worker.

    SLIME_ROUTER_API_KEY=KEY python -m slime.engines.router --host H --port P --worker-urls URL... [its flags]

starts the Rust router as ``python -m sglang_router.launch_router`` does, with the same flags, without
importing that module's Python load balancer (``mini_lb``, for debugging), which imports all of SGLang
and torch: about 10 s of start-up on a CPU, for a router that then does not use it.

The run's API key comes in ``SLIME_ROUTER_API_KEY`` rather than as ``--api-key`` (which ``ps`` would show):
the router then answers ``/generate`` and ``/workers`` only with ``Authorization: Bearer <key>`` and sends
the same header to every engine (sglang-router 0.3.2's ``--api-key``; its health and information
endpoints stay open, and pass a caller's own header on to the engines, which refuse it without the key)."""

from __future__ import annotations

import json
import os
import sys
import time

ROUTER_MODULE = "slime.engines.router"
KEY_VARIABLE = "SLIME_ROUTER_API_KEY"


def router_command(host: str, port: int, worker_urls: list[str], metrics_port: int,
                   python: str = sys.executable) -> list[str]:
    """Round robin over the engines; the router's own health checks and retries stay on (a request to
    an engine that just died is retried on another). Its Prometheus exporter gets a free port of its
    own (the default, 29000, may be another run's); it ends within seconds of SIGTERM (the default
    grace period, 180 s, waits for requests nobody waits for once the run ends)."""
    return [python, "-m", ROUTER_MODULE, "--host", host, "--port", str(port), "--worker-urls", *worker_urls,
            "--policy", "round_robin", "--prometheus-host", host, "--prometheus-port", str(metrics_port),
            "--shutdown-grace-period-secs", "5", "--log-level", "warn"]


def wait_for_workers(router_url: str, urls: list[str], process, timeout: float, key=None) -> str | None:
    """None once the router lists every one of ``urls`` as a healthy worker; else what went wrong."""
    from slime.rollout.client import EngineError, http_get

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            return f"exited with code {process.returncode} while starting"
        try:
            status, body = http_get(router_url, "/workers", timeout=5, key=key)
        except EngineError:
            status, body = 0, b""
        if status == 401:
            return "refused /workers (HTTP 401): it was started with an API key other than the run's"
        if status == 200:
            healthy = {w.get("url") for w in json.loads(body).get("workers", []) if w.get("is_healthy")}
            if set(urls) <= healthy:
                return None
        time.sleep(0.3)
    return f"did not take {', '.join(urls)} as healthy within {timeout:g} s"


def main(argv: list[str] | None = None) -> int:
    """The Rust router with ``sglang_router.launch_router``'s command line (its RouterArgs)."""
    import argparse

    from sglang_router.router import Router
    from sglang_router.router_args import RouterArgs

    parser = argparse.ArgumentParser(prog="python -m slime.engines.router",
                                     description="SGLang's Rust router in front of the rollout engines.")
    RouterArgs.add_cli_args(parser, use_router_prefix=False)
    router_args = RouterArgs.from_cli_args(parser.parse_args(sys.argv[1:] if argv is None else argv),
                                           use_router_prefix=False)
    router_args.api_key = os.environ.pop(KEY_VARIABLE, None) or router_args.api_key
    router_args._validate_router_args()  # what launch_router checks before starting the Rust router
    Router.from_args(router_args).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
