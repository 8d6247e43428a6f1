"""What one access-log record costs the server, in CPU time (robust to a busy machine).

Run by hand from the repository root:

    PYTHONPATH=src .venv/bin/python benchmarks/serving/access_log.py [--records 50000]

For each setting (off, text, JSON) it writes `--records` access records of a /predict
request through tether's logging setup to /dev/null and reports, per record: the CPU
time of the request's own thread (what the request path pays: building the record and
queueing it) and the CPU time of the whole process (adding the writer thread, which
formats and writes). Each is printed beside the figure with the access log off.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

from tether.logs import configure_logging, flush_logs, log_access, reset_logging

SCOPE = {"type": "http", "method": "POST", "path": "/predict", "client": ("10.0.0.7", 51234)}


def measure(setting: str, records: int) -> tuple[float, float]:
    with open(os.devnull, "w") as sink:
        configure_logging("json" if setting == "json" else "text", access_log=setting != "off",
                          stream=sink)
        thread_start, process_start = time.thread_time(), time.process_time()
        for _ in range(records):
            log_access(SCOPE, 200, 0.00231, "3", "champion")
        thread_cpu = time.thread_time() - thread_start
        flush_logs()  # the writer thread finishes formatting and writing
        process_cpu = time.process_time() - process_start
        reset_logging()
    return thread_cpu / records * 1e6, process_cpu / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("tether").propagate = True
    figures = {setting: min(measure(setting, args.records) for _ in range(args.repeat))
               for setting in ("off", "text", "json")}
    print("| access log | request thread us/request | process CPU us/request | "
          "vs off (process) |\n|---|---|---|---|")
    base = figures["off"][1]
    for setting, (thread_us, process_us) in figures.items():
        print(f"| {setting} | {thread_us:.2f} | {process_us:.2f} | "
              f"+{process_us - base:.2f} us |")


if __name__ == "__main__":
    main()
