"""The Helm chart renders, lints and validates against the Kubernetes schemas, offline,
for every way of using it; and each rendered piece does what the docs say."""

from __future__ import annotations

import importlib
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from tether.config import load_config

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "tether"
EXAMPLE = REPO / "src" / "tether" / "example" / "project"
FEDERATED = REPO / "src" / "tether" / "example" / "federated"
KUBE_VERSION = "1.30.0"
# A registry of the user's own, instead of the bundled MLflow server.
TRACKING = {"mlflow": {"trackingUri": "http://mlflow.mlflow.svc:5000"},
            "mlflowServer": {"enabled": False}}

VALUE_SETS: dict[str, dict[str, Any]] = {
    # `helm install tether deploy/helm/tether`, nothing set
    "defaults": {},
    "own-mlflow": TRACKING,
    "pinned-version": {**TRACKING, "model": {"version": 7}, "controller": {"enabled": False}},
    "everything-on": {
        "mlflowServer": {"enabled": True, "s3EndpointUrl": "http://minio.minio.svc:9000",
                         "allowedHosts": ["mlflow.example.com"]},
        "autoscaling": {"enabled": True, "maxReplicas": 6},
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "prometheusRule": {"enabled": True},
        "retrain": {"promote": True, "schedule": "30 2 * * *"},
        "secrets": {"existingSecret": "my-tether"},
        "files": {"train.py": (EXAMPLE / "train.py").read_text()},
        "policy": (EXAMPLE / "tether.yaml").read_text(),
        "imagePullSecrets": [{"name": "registry"}],
        "extraEnv": [{"name": "TZ", "value": "UTC"}],
    },
    "federated": {
        **TRACKING,
        "policy": (FEDERATED / "tether.yaml").read_text(),
        "files": {"train.py": (FEDERATED / "train.py").read_text()},
        "flower": {"superlink": {"enabled": True, "tlsSecret": "flower-tls"},
                   "supernodes": {"enabled": True}},
    },
    "minimal": {**TRACKING, "controller": {"enabled": False}, "retrain": {"enabled": False},
                "serviceAccount": {"create": False}},
}

CUSTOM_RESOURCES = {"ServiceMonitor", "PrometheusRule"}


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec["template"]["spec"]
    return [*pod.get("initContainers", []), *pod["containers"]]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_manifest_is_valid_kubernetes(render_chart, value_set: str) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    docs = render_chart(VALUE_SETS[value_set])
    kinds = [d["kind"] for d in docs]
    assert {"Deployment", "Service", "ConfigMap"} <= set(kinds)
    for doc in docs:
        if doc["kind"] in CUSTOM_RESOURCES:
            continue  # checked by their own tests (promtool; service selection)
        # strict: unknown fields are errors, so a misspelled key fails here.
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_chart_lints_clean(value_set: str) -> None:
    helm = pytest.importorskip("helm_python")
    report = helm.lint(str(CHART), VALUE_SETS[value_set], strict=True,
                       kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], (report["errors"], problems)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_pods_run_as_non_root_with_limits(render_chart, value_set: str) -> None:
    for doc in render_chart(VALUE_SETS[value_set]):
        if doc["kind"] not in {"Deployment", "CronJob"}:
            continue
        pod = pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        assert pod["securityContext"]["runAsUser"] != 0
        for container in containers(doc):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            if container["name"] != "download-model":
                assert container["resources"]["limits"]["memory"]


def test_default_server_follows_the_registry(render_chart, find) -> None:
    docs = render_chart(TRACKING)
    server = find(docs, "Deployment", "tether-server")
    assert server["spec"]["replicas"] == 2
    (container,) = containers(server)
    assert container["args"][:1] == ["serve"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    env = env_of(container)
    assert "MODEL_PATH" not in env
    assert env["TETHER_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
    assert env["TETHER_CONFIG"] == "/etc/tether/tether.yaml"
    # secrets are references, each optional, never values
    for name in ("TETHER_ADMIN_TOKEN", "TETHER_ALERTMANAGER_TOKEN", "TETHER_FEEDBACK_TOKEN",
                 "TETHER_GITHUB_WEBHOOK_SECRET", "TETHER_GITHUB_TOKEN", "TETHER_STORE_URL",
                 "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        ref = env[name]["secretKeyRef"]
        assert ref["name"] == "tether-secrets" and ref["optional"] is True
    # /trigger on a server is forwarded to the controller's Service
    assert env["TETHER_CONTROLLER_URL"] == "http://tether-controller:8001"


def test_controller_is_a_single_replica_with_its_webhook_service(render_chart, find) -> None:
    docs = render_chart(TRACKING)
    controller = find(docs, "Deployment", "tether-controller")
    assert controller["spec"]["replicas"] == 1
    assert controller["spec"]["strategy"]["type"] == "Recreate"
    (container,) = containers(controller)
    assert container["args"][0] == "controller"
    port = container["ports"][0]["containerPort"]
    service = find(docs, "Service", "tether-controller")
    assert service["spec"]["ports"][0]["port"] == port
    labels = controller["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()


def test_services_select_their_pods(render_chart, find) -> None:
    docs = render_chart(TRACKING)
    server_labels = find(docs, "Deployment", "tether-server")["spec"]["template"]["metadata"][
        "labels"]
    controller_labels = find(docs, "Deployment", "tether-controller")["spec"]["template"][
        "metadata"]["labels"]
    for name in ("tether", "tether-server-headless"):
        selector = find(docs, "Service", name)["spec"]["selector"]
        assert selector.items() <= server_labels.items()
        assert not selector.items() <= controller_labels.items()


def test_pinned_version_downloads_the_model_in_an_init_container(render_chart, find) -> None:
    docs = render_chart(VALUE_SETS["pinned-version"])
    server = find(docs, "Deployment", "tether-server")
    init, main = containers(server)
    script = init["args"][0]
    words = shlex.split(script.split("&&", 1)[1])
    assert words == ["mlflow", "artifacts", "download", "--artifact-uri",
                     "models:/loan-default/7", "--dst-path", "/shared-data/model"]
    assert env_of(init)["MLFLOW_TRACKING_URI"] == "http://mlflow.mlflow.svc:5000"
    assert env_of(main)["MODEL_PATH"] == "/shared-data/model"
    assert env_of(main)["MODEL_VERSION"] == "7"  # predictions and gauges name the version
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts["shared-data"] == "/shared-data"
    assert {m["name"] for m in init["volumeMounts"]} >= {"shared-data"}
    volumes = {v["name"]: v for v in pod_spec(server)["volumes"]}
    assert "emptyDir" in volumes["shared-data"]
    # a new version is a new pod template, so `helm upgrade` rolls the pods
    labels = server["spec"]["template"]["metadata"]["labels"]
    assert labels["tether.dev/model-version"] == "7"
    assert not [d for d in docs if d["metadata"]["name"] == "tether-controller"]


def test_pinned_model_name_can_differ_from_the_policy(render_chart, find) -> None:
    docs = render_chart({**TRACKING, "model": {"version": "2", "name": "fraud"}})
    init = containers(find(docs, "Deployment", "tether-server"))[0]
    assert '"models:/fraud/2"' in init["args"][0]


def test_policy_configmap_is_a_loadable_tether_yaml(render_chart, find, tmp_path) -> None:
    docs = render_chart(VALUE_SETS["everything-on"])
    data = find(docs, "ConfigMap", "tether-policy")["data"]
    assert data["train.py"] == (EXAMPLE / "train.py").read_text()
    assert data["tether.yaml"] == (EXAMPLE / "tether.yaml").read_text()
    # the chart's own default policy is valid too
    default = find(render_chart(TRACKING), "ConfigMap", "tether-policy")["data"]["tether.yaml"]
    (tmp_path / "tether.yaml").write_text(default)
    config = load_config(tmp_path / "tether.yaml", environ={})
    assert config.policy.model.name == "loan-default"
    assert config.policy.metric.primary == "roc_auc"


def test_policy_change_restarts_the_pods(render_chart, find) -> None:
    def checksum(values: dict[str, Any]) -> str:
        server = find(render_chart(values), "Deployment", "tether-server")
        return str(server["spec"]["template"]["metadata"]["annotations"]["checksum/policy"])

    changed = yaml.safe_load(VALUE_SETS["everything-on"]["policy"])
    changed["rollout"]["steps"] = [0.1, 0.5]
    assert checksum(TRACKING) != checksum({**TRACKING, "policy": yaml.safe_dump(changed)})


@pytest.mark.parametrize(("promote", "expected"), [
    (False, ["tether retrain --reason schedule", "tether gate"]),
    (True, ["tether retrain --reason schedule", "tether gate",
            'tether promote --reason "scheduled retrain passed its gate"']),
])
def test_cronjob_retrains_then_gates(render_chart, find, promote: bool,
                                     expected: list[str]) -> None:
    docs = render_chart({**TRACKING, "retrain": {"promote": promote}})
    job = find(docs, "CronJob", "tether-retrain")
    assert job["spec"]["schedule"] == "0 3 * * 1"
    assert job["spec"]["concurrencyPolicy"] == "Forbid"
    (container,) = containers(job)
    assert container["command"] == ["/bin/sh", "-c"]
    steps = [part.strip() for part in container["args"][0].split("&&")]
    assert steps == expected
    assert pod_spec(job)["restartPolicy"] == "Never"


def test_autoscaler_owns_the_replica_count(render_chart, find) -> None:
    docs = render_chart(VALUE_SETS["everything-on"])
    hpa = find(docs, "HorizontalPodAutoscaler")
    server = find(docs, "Deployment", "tether-server")
    assert "replicas" not in server["spec"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == server["metadata"]["name"]
    assert hpa["spec"]["maxReplicas"] == 6


def test_service_monitor_scrapes_servers_and_controller(render_chart, find) -> None:
    docs = render_chart(VALUE_SETS["everything-on"])
    monitor = find(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    scraped = {
        d["metadata"]["name"] for d in docs
        if d["kind"] == "Service" and selector.items() <= d["metadata"]["labels"].items()
        and endpoint["port"] in {p["name"] for p in d["spec"]["ports"]}
    }
    # servers once (not also through the headless Service), the controller, not MLflow
    assert scraped == {"tether", "tether-controller"}
    assert endpoint["path"] == "/metrics"


def test_bundled_mlflow_server_runs_on_postgres_and_s3(render_chart, find) -> None:
    docs = render_chart(VALUE_SETS["everything-on"])
    mlflow = find(docs, "Deployment", "tether-mlflow")
    (container,) = containers(mlflow)
    args = container["args"]
    flags = dict(zip(args[1::2], args[2::2], strict=False)) if args[0] == "server" else {}
    assert container["command"] == ["mlflow"] and args[0] == "server"
    assert flags["--backend-store-uri"] == "$(MLFLOW_BACKEND_STORE_URI)"
    assert flags["--artifacts-destination"] == "s3://mlflow/artifacts"
    assert "--serve-artifacts" in args
    hosts = args[args.index("--allowed-hosts") + 1].split(",")
    assert {"tether-mlflow:5000", "tether-mlflow.tether.svc:5000", "mlflow.example.com"} <= set(
        hosts)
    env = env_of(container)
    assert env["MLFLOW_BACKEND_STORE_URI"]["secretKeyRef"] == {"name": "mlflow-backend",
                                                             "key": "uri"}
    assert env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio.minio.svc:9000"
    # tether points at it when no tracking URI is given
    server = find(docs, "Deployment", "tether-server")
    assert env_of(containers(server)[0])["TETHER_TRACKING_URI"] == "http://tether-mlflow:5000"
    assert env_of(containers(server)[0])["TETHER_ADMIN_TOKEN"]["secretKeyRef"]["name"] == (
        "my-tether")


def test_defaults_install_the_bundled_mlflow_server_and_the_example(render_chart,
                                                                     find) -> None:
    docs = render_chart({})
    mlflow = find(docs, "Deployment", "tether-mlflow")
    (container,) = containers(mlflow)
    assert container["image"] == containers(find(docs, "Deployment", "tether-server"))[0][
        "image"] == "tether:0.1.0"
    for name in ("tether-server", "tether-controller"):
        env = env_of(containers(find(docs, "Deployment", name))[0])
        assert env["TETHER_TRACKING_URI"] == "http://tether-mlflow:5000"
    service = find(docs, "Service", "tether-mlflow")
    assert service["spec"]["selector"].items() <= mlflow["spec"]["template"]["metadata"][
        "labels"].items()
    # the default policy's trainer ships in the image: the CronJob can train with no files
    policy = yaml.safe_load(find(docs, "ConfigMap", "tether-policy")["data"]["tether.yaml"])
    module, _, function = policy["trainer"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_missing_registry_is_a_clear_render_error(render_chart) -> None:
    helm = pytest.importorskip("helm_python")
    with pytest.raises(helm.HelmError, match=r"set mlflow\.trackingUri"):
        render_chart({"mlflowServer": {"enabled": False}})


def test_release_name_prefixes_every_object(render_chart) -> None:
    docs = render_chart({**TRACKING, "prometheusRule": {"enabled": True}}, name="fraud")
    assert all(d["metadata"]["name"].startswith("fraud-tether") for d in docs)


def test_federated_superlink_keeps_its_state_and_serves_tls(render_chart, find) -> None:
    docs = render_chart(VALUE_SETS["federated"])
    superlink = find(docs, "Deployment", "tether-superlink")
    assert superlink["spec"]["replicas"] == 1
    (container,) = containers(superlink)
    assert "--insecure" not in container["args"]
    assert {"--ssl-ca-certfile=/etc/flower/tls/ca.crt", "--ssl-certfile=/etc/flower/tls/tls.crt",
            "--ssl-keyfile=/etc/flower/tls/tls.key", "--port=9093",
            "--database=/var/lib/flower/superlink.db"} <= set(container["args"])
    volumes = {v["name"]: v for v in pod_spec(superlink)["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "tether-superlink"
    assert volumes["tls"]["secret"]["secretName"] == "flower-tls"
    find(docs, "PersistentVolumeClaim", "tether-superlink")
    service = find(docs, "Service", "tether-superlink")
    assert service["spec"]["selector"].items() <= \
        superlink["spec"]["template"]["metadata"]["labels"].items()

    sites = find(docs, "StatefulSet", "tether-site")
    (node,) = sites["spec"]["template"]["spec"]["containers"]
    assert "--superlink=tether-superlink:9093" in node["args"]
    assert "--root-certificates=/etc/flower/tls/ca.crt" in node["args"]
    assert any(a.startswith('--node-config=site="$(SITE)" data-path="/data/') for a in node["args"])
    assert sites["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"

    # the weekly CronJob drives the run and is where the ServerApp reports back
    cron = find(docs, "CronJob")
    assert cron["spec"]["schedule"] == "0 3 * * 1"
    env = env_of(containers(cron)[0])
    assert env["TETHER_FLOWER_SUPERLINK"] == "tether-superlink:9093"
    assert env["TETHER_FEDERATED_REPORT_HOST"] == {"fieldRef": {"fieldPath": "status.podIP"}}


def test_federated_parts_are_off_by_default(render_chart) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in render_chart(TRACKING)}
    assert not any("superlink" in name or "site" in name for _, name in kinds)
