"""The model servers tether is compared with, each in a virtualenv of its own.

MLServer 1.7 (`mlserver-mlflow` runtime) and BentoML 1.4 are never tether dependencies:
`ensure_venv(name)` creates `benchmarks/.venv-<name>` on first use with the peer pinned,
plus the model libraries pinned to the versions of the venv that runs the benchmark, so
every server loads the same model folder with the same scikit-learn / LightGBM.

Each peer is configured for throughput as its own docs say:
- MLServer: adaptive batching (`max_batch_size`, `max_batch_time` in
  model-settings.json; off by default, "found through experimentation"), and its
  inference pool (`parallel_workers`; 0 runs inference in the server process, which on
  one pinned core saves the inter-process hop: both are measured, the better is kept).
  MLServer batches only its V2 inference protocol (`/v2/models/NAME/infer`); its MLflow
  `/invocations` route calls the model once per request.
- BentoML: `@bentoml.api(batchable=True)` (adaptive batching, `max_batch_size`,
  `max_latency_ms`), one worker, the model loaded with `bentoml.mlflow.load_model` from
  the same MLflow folder (bento_service.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

PEERS = {
    "mlserver": ["mlserver==1.7.1", "mlserver-mlflow==1.7.1"],
    "bentoml": ["bentoml==1.4.40"],
}
# Same versions as the benchmark's own venv: the model folders are cloudpickled.
SHARED = ["mlflow", "scikit-learn", "lightgbm", "numpy", "scipy", "cloudpickle"]


def venv_python(name: str) -> Path:
    return ROOT / "benchmarks" / f".venv-{name}" / "bin" / "python"


def _pins() -> list[str]:
    pins = []
    for package in SHARED:
        try:
            pins.append(f"{package}=={metadata.version(package)}")
        except metadata.PackageNotFoundError:
            continue
    return pins


def ensure_venv(name: str) -> Path:
    """The peer's venv, created (a few minutes, once) when missing; its python."""
    python = venv_python(name)
    stamp = python.parent.parent / ".installed"
    wanted = json.dumps(PEERS[name] + _pins())
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(python.parent.parent)],
                   check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *json.loads(wanted)], check=True)
    stamp.write_text(wanted)
    return python


def version_of(name: str, package: str) -> str:
    return subprocess.run(
        [str(venv_python(name)), "-c",
         f"from importlib.metadata import version; print(version({package!r}))"],
        capture_output=True, text=True, check=True).stdout.strip()


if __name__ == "__main__":
    for peer in sys.argv[1:] or list(PEERS):
        print(peer, ensure_venv(peer), flush=True)


# --------------------------------------------------------------------------- servers

TOKEN = "bench-token"
POLICY = """model: {name: bench, task: binary_classification, target: target}
trainer: train:train
data: {generator: tether.example.loans:generate, params: {n: 100}}
"""
# MLServer: requests per batch and seconds to wait for them (model-settings.json).
MLSERVER_MAX_BATCH_SIZE = 32
MLSERVER_MAX_BATCH_TIME = 0.002
MLSERVER_PARALLEL_WORKERS = 0
SERVERS = ("tether", "mlflow", "minimal", "mlserver", "bentoml")
PEER_SERVERS = ("mlflow", "mlserver", "bentoml")


@dataclass(frozen=True)
class Spec:
    """How to start one server on one model and what to send it."""

    command: list[str]
    env: dict[str, str]
    url: str              # where the benchmark POSTs
    protocol: str         # which body: workloads.PROTOCOLS
    ready_url: str        # GET answers 200 once the model can serve


def spec(server: str, model_dir: Path, port: int, folder: Path, env: dict[str, str],
         mlserver_batch_time: float = MLSERVER_MAX_BATCH_TIME,
         mlserver_workers: int = MLSERVER_PARALLEL_WORKERS) -> Spec:
    base = f"http://127.0.0.1:{port}"
    python = Path(sys.executable)
    if server == "tether":
        config = folder / f"project-{port}" / "tether.yaml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(POLICY)
        return Spec([str(python), "-m", "tether", "--config", str(config), "serve", "--port",
                     str(port), "--no-poll", "--model-path", str(model_dir)],
                    {**env, "TETHER_HOME": str(config.parent / ".tether")},
                    f"{base}/invocations", "split", f"{base}/ready")
    if server == "mlflow":
        return Spec([str(python.parent / "mlflow"), "models", "serve", "-m", str(model_dir),
                     "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1", "-w", "1"],
                    env, f"{base}/invocations", "split", f"{base}/ping")
    if server == "minimal":
        return Spec([str(python), str(HERE / "minimal_server.py"), str(model_dir), str(port)],
                    env, f"{base}/invocations", "split", f"{base}/invocations")
    if server == "mlserver":
        root = folder / f"mlserver-{port}"
        (root / "bench").mkdir(parents=True, exist_ok=True)
        from tether.net import free_port

        (root / "settings.json").write_text(json.dumps({
            "host": "127.0.0.1", "http_port": port, "grpc_port": free_port(),
            "metrics_port": free_port(), "debug": False, "parallel_workers": mlserver_workers,
            "metrics_dir": str(root / ".metrics")}))
        (root / "bench" / "model-settings.json").write_text(json.dumps({
            "name": "bench", "implementation": "mlserver_mlflow.MLflowRuntime",
            "parameters": {"uri": str(model_dir)},
            "max_batch_size": MLSERVER_MAX_BATCH_SIZE, "max_batch_time": mlserver_batch_time}))
        return Spec([str(venv_python("mlserver").parent / "mlserver"), "start", str(root)],
                    {**env, "PYTHONPATH": ""}, f"{base}/v2/models/bench/infer", "v2",
                    f"{base}/v2/models/bench/ready")
    if server == "bentoml":
        home = folder / f"bentoml-{port}"
        bento_env = {**env, "PYTHONPATH": "", "BENTOML_HOME": str(home),
                     "BENTOML_DO_NOT_TRACK": "true"}
        if not (home / "models").exists():
            subprocess.run([str(venv_python("bentoml")), "-c",
                            "import sys, bentoml; "
                            "bentoml.mlflow.import_model('bench', sys.argv[1])",
                            str(model_dir)], env=bento_env, check=True, capture_output=True)
        return Spec([str(venv_python("bentoml").parent / "bentoml"), "serve",
                     "bento_service:Model", "--host", "127.0.0.1", "--port", str(port),
                     "--working-dir", str(HERE)],
                    bento_env, f"{base}/predict", "rows", f"{base}/readyz")
    raise SystemExit(f"unknown server {server!r}; choose from {', '.join(SERVERS)}")
