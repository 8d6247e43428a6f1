"""How long a registry call takes to fail when MLflow's server is unreachable: tether's
HTTP defaults against MLflow's own, in one run.

Two outages on loopback: a port where nothing listens (connection refused: a server that
is down) and a listener that accepts connections and never answers (a hung server, a
black-holing proxy). Each call is `Registry.state()`, the read every command and server
poll starts with. MLflow's own defaults on a silent server take minutes per call: that
case stops waiting after `--limit` seconds and reports a lower bound.

    PYTHONPATH=src python benchmarks/registry/outage.py [--limit 300]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

from tether.net import free_port
from tether.registry.environment import HTTP_DEFAULTS

MLFLOW_DEFAULTS = {"MLFLOW_HTTP_REQUEST_TIMEOUT": "120",
                   "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "7",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "2",
                   "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "1.0"}

# a fresh interpreter per call: MLflow caches its HTTP session per retry setting
CALL = """
import sys, time
from tether.errors import RegistryUnavailable
from tether.registry import Registry
started = time.monotonic()
try:
    Registry("m", sys.argv[1]).state()
    print("answered")
except RegistryUnavailable:
    print(f"{time.monotonic() - started:.1f}")
"""


def silent_listener() -> str:
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}"


def time_to_fail(url: str, settings: dict[str, str], limit: float) -> str:
    env = {**os.environ, **settings}
    try:
        done = subprocess.run([sys.executable, "-c", CALL, url], env=env, timeout=limit,
                              capture_output=True, text=True, check=True)
    except subprocess.TimeoutExpired:
        return f">{limit:.0f}"
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=300.0,
                        help="stop waiting for a call after this many seconds")
    args = parser.parse_args()
    outages = {"refused": f"http://127.0.0.1:{free_port()}", "silent": silent_listener()}
    print("| outage | tether defaults s | MLflow defaults s | ratio |")
    print("|---|---|---|---|")
    for name, url in outages.items():
        ours = time_to_fail(url, HTTP_DEFAULTS, args.limit)
        theirs = time_to_fail(url, MLFLOW_DEFAULTS, args.limit)
        ratio = float(theirs.lstrip(">")) / float(ours)
        print(f"| {name} | {ours} | {theirs} | "
              f"{'>' if theirs.startswith('>') else ''}{ratio:.0f}x |", flush=True)
    print(f"\nmeasured {time.strftime('%Y-%m-%d')}; load average "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
