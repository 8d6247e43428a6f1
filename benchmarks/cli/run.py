"""Start-up of the `tether` command beside Python's own and MLflow's import, one run.

Run by hand from the repository root (needs hyperfine):

    .venv/bin/python benchmarks/cli/run.py [--runs 10]

Every command is a fresh process timed by hyperfine (one warm-up run, then --runs), in a
scratch project made by `tether init` + `tether retrain` (one registered version), so
`tether status` reads a real SQLite registry. Baselines in the same run:
`python -c pass` (the interpreter), `python -c "import mlflow"` (what any command that
reads the registry must pay), and MLflow reading the same registry itself: import, an
`MlflowClient` on the project's SQLite registry, one `search_model_versions` (MLflow's
SQLAlchemy store, its import and its table mappings, is paid by every SQLite registry
read, whoever makes it). Goals: `tether --help` and `tether drift --help` under 0.5 s; a
registry command no more than MLflow's import plus 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


MLFLOW_READ = ("from mlflow import MlflowClient; "
               "MlflowClient('sqlite:///.tether/mlflow.db').search_model_versions()")


def commands() -> dict[str, str]:
    python, tether = shlex.quote(sys.executable), shlex.quote(str(BIN / "tether"))
    return {
        "python -c pass": f"{python} -c pass",
        "python -c 'import mlflow'": f"{python} -c 'import mlflow'",
        "MLflow reading the registry": f"{python} -c {shlex.quote(MLFLOW_READ)}",
        "python -c 'import tether.cli'": f"{python} -c 'import tether.cli'",
        "tether --help": f"{tether} --help",
        "tether drift --help": f"{tether} drift --help",
        "tether status": f"{tether} status",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true",
           "COLUMNS": "100"}
    env.pop("TETHER_CONFIG", None)
    env.pop("TETHER_HOME", None)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tether-cli-bench-") as scratch:
        project = Path(scratch) / "project"
        for step in (["init", str(project)], ["retrain"]):
            subprocess.run([str(BIN / "tether"), *step], cwd=project if step[0] != "init"
                           else scratch, env=env, check=True, capture_output=True)
        export = Path(scratch) / "hyperfine.json"
        named = commands()
        argv = ["hyperfine", "--warmup", "1", "--runs", str(args.runs), "--style", "none",
                "--export-json", str(export)]
        for name, command in named.items():
            argv += ["--command-name", name, command]
        subprocess.run(argv, cwd=project, env=env, check=True, stdout=subprocess.DEVNULL)
        results = {r["command"]: r for r in json.loads(export.read_text())["results"]}
    mlflow = results["python -c 'import mlflow'"]["median"]
    reading = results["MLflow reading the registry"]["median"]
    print("\n| command | median s | min s | max s | vs `import mlflow` | vs MLflow reading "
          "the registry |")
    print("|---|---|---|---|---|---|")
    for name in named:
        r = results[name]
        print(f"| `{name}` | {r['median']:.3f} | {r['min']:.3f} | {r['max']:.3f} | "
              f"{r['median'] - mlflow:+.3f} s | {r['median'] - reading:+.3f} s |")
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
