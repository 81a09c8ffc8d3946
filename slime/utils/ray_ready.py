"""Whether the Ray head a launcher started takes job submissions and is that launcher's own, asked of its
dashboard over HTTP: one small process polling every few tenths of a second, where each ``ray`` CLI
call would import Ray (a second or more of CPU, taken from the head's own processes as they start).

    python -m slime.utils.ray_ready DASHBOARD MARKER [--within SECONDS]
    python -m slime.utils.ray_ready DASHBOARD --missing MARKER... [--within SECONDS]

Exit status: 0 when a node of the cluster has the resource MARKER and the job API answers; 1 when
that is not so yet after SECONDS (default 5; the launcher asks again while its head is alive); 2 when
the dashboard answers three times in a row for a cluster without MARKER (another cluster's).
With ``--missing`` (the worker hosts' markers, one per host, while they join): 0 once every MARKER is
on a live node; else 1 after SECONDS, the markers still missing printed one per line. With
token authentication (RAY_AUTH_MODE=token) the token is RAY_AUTH_TOKEN, or the file at
RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token, as Ray reads it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

POLL = 0.25


def auth_headers() -> dict[str, str]:
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return {}
    token = os.environ.get("RAY_AUTH_TOKEN")
    if not token:
        path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
        try:
            token = path.read_text().strip()
        except OSError:
            return {}
    return {"Authorization": f"Bearer {token}"}


def _get(url: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=auth_headers())
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, b""
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, b""


def node_resources(dashboard: str, alive_only: bool = False) -> list[dict] | None:
    """The total resources of every node (of every live one), or None while the state API does not answer."""
    status, body = _get(f"{dashboard}/api/v0/nodes?detail=1&limit=1000")
    if status != 200:
        return None
    try:
        nodes = json.loads(body)["data"]["result"]["result"]
    except (ValueError, KeyError, TypeError):
        return None
    return [node.get("resources_total") or {} for node in nodes if not alive_only or node.get("state") == "ALIVE"]


def missing_markers(dashboard: str, markers: list[str]) -> list[str]:
    """Those of ``markers`` that no live node has (all of them while the state API does not answer)."""
    nodes = node_resources(dashboard, alive_only=True)
    if nodes is None:
        return list(markers)
    return [marker for marker in markers if not any(marker in resources for resources in nodes)]


def check(dashboard: str, marker: str) -> str:
    """``ready``, ``waiting`` or ``foreign`` (a cluster that answers without ``marker``)."""
    nodes = node_resources(dashboard)
    if nodes is None:
        return "waiting"
    if not any(marker in resources for resources in nodes):
        return "foreign" if nodes else "waiting"
    return "ready" if _get(f"{dashboard}/api/jobs/")[0] == 200 else "waiting"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m slime.utils.ray_ready", description=__doc__.split("\n\n")[0])
    parser.add_argument("dashboard", help="http://host:port of the head's dashboard")
    parser.add_argument("marker", nargs="?", help="a custom resource only the launcher's head has")
    parser.add_argument("--missing", nargs="+", metavar="MARKER", help="print those of these markers no live node "
                        "has yet (the worker hosts joining); exit 0 once none is missing")
    parser.add_argument("--within", type=float, default=5.0, help="seconds to keep asking")
    opts = parser.parse_args(argv)
    if (opts.marker is None) == (opts.missing is None):
        parser.error("give either MARKER or --missing MARKER...")
    deadline, foreign = time.monotonic() + opts.within, 0
    while opts.missing:
        missing = missing_markers(opts.dashboard.rstrip("/"), opts.missing)
        if not missing:
            return 0
        if time.monotonic() >= deadline:
            print("\n".join(missing))
            return 1
        time.sleep(POLL)
    while True:
        state = check(opts.dashboard.rstrip("/"), opts.marker)
        if state == "ready":
            return 0
        # The head registers before its dashboard serves, so an answer without the marker is no
        # start-up delay; a few are awaited all the same before concluding.
        foreign = foreign + 1 if state == "foreign" else 0
        if foreign >= 3:
            return 2
        if time.monotonic() >= deadline:
            return 1
        time.sleep(POLL)


if __name__ == "__main__":
    sys.exit(main())
