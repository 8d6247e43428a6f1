"""The container image, run as the Helm chart runs it.

`make image` builds the repository's Dockerfile with podman (deploy/podman/build-image.sh);
this plays the chart's own server and controller Deployments and its policy ConfigMap,
rendered offline, with `podman kube play` on the host network: the image's user, a
read-only root filesystem, the chart's volumes, environment and secret references (a
podman secret holds the store URL and the admin token). Around them, real services on
127.0.0.1: `mlflow server` with the chart's command line on PostgreSQL with moto's S3,
and the store on PostgreSQL. The retraining CronJob's own command runs in the
controller's pod; the controller in its pod promotes the first version; a promotion and
a rollback by hand reach the server pod through the registry alone.

Runs when TETHER_TEST_IMAGE names a built image (`make image-test` sets it)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tether.example.loans import generate
from tether.net import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
CHART_VALUES = yaml.safe_load((REPO / "deploy" / "helm" / "tether" / "values.yaml").read_text())
IMAGE = os.environ.get("TETHER_TEST_IMAGE", "")
STORE_URL = os.environ.get("TETHER_TEST_POSTGRES_URL")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.skipif(not IMAGE, reason=(
        "TETHER_TEST_IMAGE is not set: `make image-test` builds the image with podman and "
        "runs this with it")),
    pytest.mark.skipif(not STORE_URL, reason=(
        "TETHER_TEST_POSTGRES_URL is not set: the pods share the store on PostgreSQL")),
]
# A pod is up within seconds; a retrain inside one takes longer on a busy machine.
START_TIMEOUT = 120
FOLLOW_TIMEOUT = 60
COMMAND_TIMEOUT = 300


def podman(*args: str, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    env.setdefault("CONTAINERS_CONF", str(REPO / "deploy" / "podman" / "containers.conf"))
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                            env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result


def for_podman_on_loopback(deployment: dict[str, Any]) -> dict[str, Any]:
    """The chart's Deployment as podman 4.3 plays it on the host network, on 127.0.0.1.

    The only changes: listen on 127.0.0.1, not 0.0.0.0; no `ports` list (podman 4.3
    publishes every containerPort, which the host network forbids), so probes name the
    port by number. Everything else (image, args, env, secrets, volumes, security
    context) is the chart's."""
    doc = json.loads(json.dumps(deployment))
    for container in doc["spec"]["template"]["spec"]["containers"]:
        args = container["args"]
        args[args.index("--host") + 1] = "127.0.0.1"
        port = container.pop("ports")[0]["containerPort"]
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for handler in ("httpGet", "tcpSocket"):
                if handler in container.get(probe, {}):
                    container[probe][handler]["port"] = port
    return doc


class Pods:
    """The played release: its names, ports and a way to run commands in its pods."""

    def __init__(self, release: str, server_port: int, controller_port: int,
                 cronjob: list[str], model_name: str) -> None:
        self.release = release
        self.server_url = f"http://127.0.0.1:{server_port}"
        self.controller_url = f"http://127.0.0.1:{controller_port}"
        self.cronjob = cronjob
        self.model_name = model_name
        # podman kube play names a Deployment's containers DEPLOYMENT-pod-N-CONTAINER
        self.server = f"{release}-server-pod-0-server"
        self.controller = f"{release}-controller-pod-0-controller"

    def exec(self, container: str, *command: str) -> str:
        started = time.monotonic()
        result = podman("exec", container, *command, check=False, timeout=COMMAND_TIMEOUT)
        print(f"{container}: {' '.join(command)[:80]}: {time.monotonic() - started:.1f} s")
        assert result.returncode == 0, (f"{' '.join(command)} in {container} exited "
                                        f"{result.returncode}:\n{result.stdout}{result.stderr}"
                                        f"{self.logs()}")
        return result.stdout

    def logs(self) -> str:
        out = []
        for container in (self.server, self.controller):
            result = podman("logs", "--tail", "40", container, check=False)
            out.append(f"\n--- {container}\n{result.stdout}{result.stderr}")
        return "".join(out)

    def serving(self, version: int, since: float) -> float:
        """Seconds from `since` (time.monotonic()) until the server pod answers
        predictions with `version`."""
        started = time.monotonic()
        rows = generate(3, seed=5).drop(columns=["default"])
        body = {"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}
        while True:
            answer = httpx.post(f"{self.server_url}/invocations", json=body, timeout=10)
            if answer.headers.get("X-Model-Version") == str(version):
                return time.monotonic() - since
            if time.monotonic() - started > FOLLOW_TIMEOUT:
                raise AssertionError(f"the server pod still serves "
                                     f"{answer.headers.get('X-Model-Version')}, not {version}, "
                                     f"after {FOLLOW_TIMEOUT} s: {answer.text}{self.logs()}")
            time.sleep(0.1)


def test_policy(model_name: str) -> str:
    """The chart's default policy on a smaller data set, under a name of its own (the
    registry outlives a run); the gate's latency budget is lifted: this is about the
    image, and the machine is shared."""
    policy = yaml.safe_load(CHART_VALUES["policy"])
    policy["model"]["name"] = model_name
    policy["data"]["params"] = {"n": 2000, "seed": 1}
    policy["trainer_params"] = {"max_iter": 60}
    policy["gate"]["max_latency_ms"] = 10_000
    return yaml.safe_dump(policy, sort_keys=False)


test_policy.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@pytest.fixture(scope="module")
def pods(render_chart, find, mlflow_server: dict[str, Any],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pods]:
    if not shutil.which("podman"):
        pytest.fail("TETHER_TEST_IMAGE is set but podman is not installed (.ci/run installs it)")
    podman("image", "exists", IMAGE)
    repository, _, tag = IMAGE.rpartition(":")
    release = f"tether-{uuid.uuid4().hex[:6]}"
    model_name = f"loan-default-{release[-6:]}"
    server_port, controller_port = free_port(), free_port()
    docs = render_chart({
        "image": {"repository": repository, "tag": tag},
        "mlflowServer": {"enabled": False},
        "mlflow": {"trackingUri": mlflow_server["url"]},
        "server": {"replicas": 1, "port": server_port},
        "controller": {"port": controller_port},
        "policy": test_policy(model_name),
    }, name=release)
    cron = find(docs, "CronJob", f"{release}-retrain")["spec"]["jobTemplate"]["spec"][
        "template"]["spec"]["containers"][0]
    played = [find(docs, "ConfigMap", f"{release}-policy"),
              for_podman_on_loopback(find(docs, "Deployment", f"{release}-controller")),
              for_podman_on_loopback(find(docs, "Deployment", f"{release}-server"))]
    folder = tmp_path_factory.mktemp("kube-play")
    manifest = folder / "release.yaml"
    manifest.write_text(yaml.safe_dump_all(played, sort_keys=False))
    # The Secret the chart references, in podman 4.3's form: a JSON map of base64 values.
    secret = folder / "secret.json"
    secret.write_text(json.dumps({key: base64.b64encode(value.encode()).decode() for key, value
                                  in {"store-url": str(STORE_URL),
                                      "admin-token": uuid.uuid4().hex}.items()}))
    secret_name = f"{release}-secrets"
    podman("secret", "create", secret_name, str(secret))
    try:
        podman("kube", "play", "--network", "host", str(manifest), timeout=300)
        yield Pods(release, server_port, controller_port,
                   [*cron["command"], *cron["args"]], model_name)
    finally:
        podman("kube", "down", str(manifest), check=False, timeout=120)
        podman("secret", "rm", secret_name, check=False)


def test_pods_run_as_the_charts_user_on_a_read_only_root(pods: Pods) -> None:
    wait_http(f"{pods.server_url}/health", timeout=START_TIMEOUT)
    for container in (pods.server, pods.controller):
        assert pods.exec(container, "id", "-u").strip() == str(
            CHART_VALUES["securityContext"]["runAsUser"])
        inspect = json.loads(podman("inspect", container).stdout)[0]
        assert inspect["HostConfig"]["ReadonlyRootfs"] is True
        # capabilities: drop ALL; allowPrivilegeEscalation: false
        status = pods.exec(container, "cat", "/proc/self/status")
        assert "CapEff:\t0000000000000000" in status and "NoNewPrivs:\t1" in status, status
        # HOME (MLflow's and matplotlib's files) is the chart's writable volume
        assert pods.exec(container, "sh", "-c", 'touch "$HOME/probe" && echo "$HOME"').strip() \
            == "/var/lib/tether"
        refused = podman("exec", container, "touch", "/opt/tether/probe", check=False)
        assert refused.returncode != 0 and "Read-only file system" in refused.stderr
        # matplotlib keeps its configuration and font cache there, not in a new temporary
        # folder per process (which it warns about, and which costs seconds at each start)
        assert pods.exec(container, "python", "-c", "import matplotlib; "
                         "print(matplotlib.get_configdir())").strip() == (
            "/var/lib/tether/.config/matplotlib")
    logs = pods.logs()
    assert "Traceback" not in logs, logs


def test_server_answers_at_once_and_is_not_ready_without_a_champion(pods: Pods) -> None:
    assert wait_http(f"{pods.server_url}/health", timeout=START_TIMEOUT).status_code == 200
    ready = httpx.get(f"{pods.server_url}/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["ready"] is False and ready.json()["champion"] is None
    assert ready.json()["registry_reachable"] is True
    assert ready.json()["reason"].startswith("no champion in the registry")


def test_scheduled_retrain_is_promoted_by_the_controller_and_served(pods: Pods) -> None:
    # the CronJob's own command line (`tether retrain --reason schedule && tether gate`)
    started = time.monotonic()
    pods.exec(pods.controller, *pods.cronjob)
    # the controller in its pod sees a candidate that passed and no champion: promotes it;
    # the server pod finds it in the registry at its next poll
    ready = wait_http(f"{pods.server_url}/ready", timeout=FOLLOW_TIMEOUT)
    print(f"retrain + gate + promotion by the controller + load: "
          f"{time.monotonic() - started:.1f} s")
    assert ready.json() == {"ready": True, "champion": 1, "registry_reachable": True,
                            "reason": None}
    metrics = httpx.get(f"{pods.controller_url}/metrics", timeout=10).text
    assert f'tether_promotions_total{{model="{pods.model_name}"}} 1.0' in metrics

    rows = generate(20, seed=3)
    features = rows.drop(columns=["default"])
    invocations = httpx.post(f"{pods.server_url}/invocations", timeout=30, json={
        "dataframe_split": json.loads(features.to_json(orient="split", index=False))})
    assert invocations.status_code == 200, invocations.text
    assert invocations.headers["X-Model-Version"] == "1"
    assert len(invocations.json()["predictions"]) == 20

    predict = httpx.post(f"{pods.server_url}/predict", timeout=30, json={
        "dataframe_records": json.loads(features.to_json(orient="records"))})
    assert predict.status_code == 200, predict.text
    ids = predict.json()["ids"]
    assert len(ids) == 20 and predict.json()["model_version"] == 1
    # labels go to the store on PostgreSQL once the prediction log has written the rows
    labels = [{"id": i, "label": int(y)} for i, y in zip(ids, rows["default"], strict=True)]
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    while True:
        feedback = httpx.post(f"{pods.server_url}/feedback", json={"labels": labels},
                              timeout=30)
        assert feedback.status_code == 200, feedback.text
        if feedback.json()["accepted"] == 20 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert feedback.json() == {"accepted": 20, "unknown_ids": []}


def test_promotion_and_rollback_by_hand_reach_the_server_pod(pods: Pods) -> None:
    wait_http(f"{pods.server_url}/ready", timeout=FOLLOW_TIMEOUT)
    pods.exec(pods.controller, "tether", "retrain", "--reason", "image test")
    # as docs/kubernetes.md does it: `kubectl exec deploy/tether-controller -- tether ...`
    timings = []
    for command, version in ((("promote", "--version", "2", "--reason", "by hand"), 2),
                             (("rollback", "--reason", "back to 1"), 1)):
        started = time.monotonic()
        pods.exec(pods.controller, "tether", *command)
        returned = time.monotonic() - started
        timings.append(f"tether {command[0]} returned after {returned:.1f} s, the server pod "
                       f"served version {version} {pods.serving(version, started):.1f} s "
                       "after it started")
    print(f"(the pod polls the registry every {CHART_VALUES['pollSeconds']} s): "
          + "; ".join(timings))
    status = json.loads(pods.exec(pods.controller, "tether", "status", "--json"))
    assert status["champion"] == 1
    assert {v["version"]: v["state"] for v in status["versions"]} == {
        1: "champion", 2: "rolled_back"}
    version = httpx.get(f"{pods.server_url}/version", timeout=10).json()
    assert version["model"] == pods.model_name
