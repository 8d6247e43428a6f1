"""Every command in docs/kubernetes.md and docs/github-actions.md is exercised: run for
real where it can run here (tether init, git, Helm rendering and linting through the Helm
SDK, kubectl with --dry-run=client, promtool, amtool, sed), and checked against the
shipped assets where it needs a cluster or GitHub (the objects, workflows, inputs,
secrets and endpoints it names must exist)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tether.cli import app

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
WORKFLOWS = REPO / "deploy" / "github" / "workflows"
CHART = REPO / "deploy" / "helm" / "tether"
# Commands of the CLI contract (the brief) that other parts of tether add.
CONTRACT_COMMANDS = {"serve", "controller", "up", "demo", "drift", "monitor", "backtest",
                     "trigger", "dashboard"}
HTTP_SURFACE = {"/invocations", "/ping", "/health", "/version", "/predict", "/feedback",
                "/ready", "/metrics", "/docs", "/openapi.json", "/admin/reload",
                "/hooks/alertmanager", "/hooks/github"}


def shell_commands(markdown: str) -> list[str]:
    """The commands in the ```bash blocks, continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
    return commands


def workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def workflow_references(kind: str) -> set[str]:
    text = "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))
    return set(re.findall(rf"\b{kind}\.([A-Za-z_][A-Za-z0-9_]*)", text))


def dispatch_types() -> set[str]:
    types: set[str] = set()
    for path in WORKFLOWS.glob("*.yml"):
        on = yaml.safe_load(path.read_text())[True]  # YAML 1.1 reads the key `on` as True
        types.update((on.get("repository_dispatch") or {}).get("types", []))
    return types


class Session:
    """Runs one document's commands in order in a scratch folder holding `deploy/`."""

    def __init__(self, folder: Path, render_chart: Any, which: Any) -> None:
        self.folder = folder
        self.render_chart = render_chart
        self.which = which
        self.releases: dict[str, dict[str, Any]] = {}
        self.docker_tags: set[str] = set()
        self.jobs: set[str] = set()
        (folder / "deploy").symlink_to(REPO / "deploy")
        (folder / "Dockerfile").symlink_to(REPO / "Dockerfile")

    def run(self, line: str) -> None:
        words = shlex.split(line.split(" < ")[0])
        handler = getattr(self, f"do_{words[0]}", None)
        assert handler is not None, f"no check for this documented command: {line}"
        handler(words[1:], line)

    def shell(self, line: str) -> str:
        result = subprocess.run(line, shell=True, cwd=self.folder, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        return result.stdout

    # tether ---------------------------------------------------------------------------
    def do_tether(self, args: list[str], line: str) -> None:
        commands = typer.main.get_command(app).commands  # type: ignore[attr-defined]
        name = args[0]
        if name not in commands:
            assert name in CONTRACT_COMMANDS, f"tether {name} is neither a command nor planned"
            return
        if name == "init":
            result = CliRunner().invoke(app, [name, str(self.folder / args[1])])
            assert result.exit_code == 0, result.output
            assert (self.folder / args[1] / "tether.yaml").exists()
            return
        # the arguments parse as the command defines them (unknown options fail here)
        commands[name].make_context(name, list(args[1:]))

    # git, mkdir, cp, sed: run ---------------------------------------------------------
    def do_git(self, args: list[str], line: str) -> None:
        self.shell(line)

    def do_mkdir(self, args: list[str], line: str) -> None:
        self.shell(line)

    def do_cp(self, args: list[str], line: str) -> None:
        self.shell(line)
        target = self.folder / args[-1]
        for source in args[:-1]:
            assert (target / Path(source).name).read_text() == (self.folder / source).read_text()

    def do_sed(self, args: list[str], line: str) -> None:
        self.shell(line)
        written = self.folder / line.rsplit(">", 1)[1].strip()
        source = self.folder / args[args.index(">") - 1]
        assert written.read_text() != source.read_text(), "the substitution matched"

    def do_promtool(self, args: list[str], line: str) -> None:
        self.shell(line.replace("promtool", self.which("promtool"), 1))

    def do_amtool(self, args: list[str], line: str) -> None:
        out = self.shell(line.replace("amtool", self.which("amtool"), 1))
        if args[:3] == ["config", "routes", "test"]:
            assert out.split() == ["tether"]

    # make: the target exists and its recipe expands (building an image here is the job
    # of `make image-test`, which CI runs) ----------------------------------------------
    def do_make(self, args: list[str], line: str) -> None:
        result = subprocess.run(["make", "--dry-run", "-C", str(REPO), *args],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"{line}\n{result.stdout}{result.stderr}"
        assert result.stdout.strip(), f"{line}: the target does nothing"

    # docker, mlflow -------------------------------------------------------------------
    def do_docker(self, args: list[str], line: str) -> None:
        if args[0] == "build":
            assert args[-1] == "." and (self.folder / "Dockerfile").exists()
            self.docker_tags.add(args[args.index("-t") + 1])
        elif args[0] == "push":
            assert args[1] in self.docker_tags, "push the tag that was built"
        elif args[0] == "run":
            assert args[-1] in self.docker_tags, "run the tag that was built"
            exposed = re.findall(r"^EXPOSE (\d+)", (REPO / "Dockerfile").read_text(), re.M)
            assert args[args.index("-p") + 1] == f"{exposed[0]}:{exposed[0]}"
        elif args[0] == "compose":
            # no Docker engine here: validate the file with docker-compose instead
            compose_file = args[args.index("-f") + 1]
            self.shell(f"{self.which('docker-compose')} -f {compose_file} config -q")
        else:
            pytest.fail(f"unchecked docker command: {line}")

    def do_mlflow(self, args: list[str], line: str) -> None:
        assert args[0] == "server"
        flags = {a for a in args if a.startswith("--")}
        help_text = self.shell(f"{self.which('mlflow')} server --help")
        assert all(flag in help_text for flag in flags)
        docs = self.render_chart({"mlflowServer": {"enabled": True}})
        (mlflow,) = [d for d in docs if d["metadata"]["name"] == "tether-mlflow"
                     and d["kind"] == "Deployment"]
        chart_args = mlflow["spec"]["template"]["spec"]["containers"][0]["args"]
        assert flags == {a for a in chart_args if a.startswith("--")}
        # the same values, except the secret backend URI the chart reads from env
        documented = dict(zip(args[1:], [*args[2:], ""], strict=True))
        rendered = dict(zip(chart_args[1:], [*chart_args[2:], ""], strict=True))
        for flag in flags - {"--backend-store-uri", "--serve-artifacts"}:
            assert documented[flag] == rendered[flag], flag
        assert documented["--backend-store-uri"].startswith("postgresql+psycopg://")

    # helm -----------------------------------------------------------------------------
    def values(self, args: list[str]) -> dict[str, Any]:
        helm = pytest.importorskip("helm_python")
        values: dict[str, Any] = {}

        def merge(into: dict[str, Any], new: dict[str, Any]) -> None:
            for key, value in new.items():
                if isinstance(value, dict) and isinstance(into.get(key), dict):
                    merge(into[key], value)
                else:
                    into[key] = value

        for flag, value in zip(args, [*args[1:], ""], strict=True):
            if flag == "--set":
                merge(values, helm.parse_set_string(value))
            elif flag == "--set-file":
                key, path = value.split("=", 1)
                parsed = helm.parse_set_string(f"{key}=__file__")
                node = parsed
                while isinstance(node, dict):
                    (leaf,) = node
                    if node[leaf] == "__file__":
                        node[leaf] = (self.folder / path).read_text()
                        break
                    node = node[leaf]
                merge(values, parsed)
        return values

    def do_helm(self, args: list[str], line: str) -> None:
        helm = pytest.importorskip("helm_python")
        command = args[0]
        if command in {"upgrade", "install"}:
            # an upgrade keeps the safety flags; a plain install is the no-values first look
            assert command == "install" or {"--install", "--atomic"} <= set(args)
            positional = [a for a in args[1:] if not a.startswith("-")]
            release, chart = positional[0], positional[1]
            assert (self.folder / chart).resolve() == CHART
            values = self.values(args)
            if "--reuse-values" in args:
                assert release in self.releases, "--reuse-values needs an earlier install"
                merged = json.loads(json.dumps(self.releases[release]))
                for key, value in values.items():
                    merged[key] = ({**merged[key], **value}
                                   if isinstance(value, dict) and key in merged else value)
                values = merged
            docs = self.render_chart(values, name=release,
                                     namespace=args[args.index("--namespace") + 1])
            assert any(d["kind"] == "Deployment" for d in docs)
            self.releases[release] = values
        elif command == "lint":
            report = helm.lint(str(self.folder / args[1]), self.values(args), strict=True)
            assert report["errors"] == []
            assert [m for m in report["messages"] if m["severity"] >= 2] == []
        elif command == "rollback":
            assert args[1] in self.releases, "roll back a release the doc installed"
            assert args[2] == "0"
        else:
            pytest.fail(f"unchecked helm command: {line}")

    # kubectl --------------------------------------------------------------------------
    def do_kubectl(self, args: list[str], line: str) -> None:
        kubectl = self.which("kubectl")
        kubernetes_validate = pytest.importorskip("kubernetes_validate")
        if args[0] == "create" and args[1] in {"namespace", "secret", "configmap"}:
            dry = line if "--dry-run" in line else f"{line} --dry-run=client -o yaml"
            out = self.shell(dry.replace("kubectl", kubectl, 1))
            kubernetes_validate.validate(yaml.safe_load(out), "1.30.0", strict=True)
            return
        # needs a cluster: every object it names must be one the chart creates
        release = next(iter(self.releases))
        names = {f"{d['kind'].lower()}/{d['metadata']['name']}"
                 for d in self.render_chart(self.releases[release], name=release)}
        names |= {n.replace("deployment/", "deploy/") for n in names}
        names |= {f"job/{job}" for job in self.jobs}
        if args[:2] == ["create", "job"] or args[2:4] == ["create", "job"]:
            self.jobs.add(next(a for a in args[args.index("job") + 1:]
                               if not a.startswith("-")))
        for ref in re.findall(r"(?:^|[\s=])((?:deploy|deployment|service|cronjob|job)/[\w.-]+)",
                              line):
            assert ref in names, f"{line}: {ref} is not an object the chart creates"
        exec_args = args[args.index("--") + 1:] if "--" in args else []
        if exec_args:
            self.run(shlex.join(exec_args))

    # curl, gh -------------------------------------------------------------------------
    def do_curl(self, args: list[str], line: str) -> None:
        url = next(a for a in args if a.startswith(("http", "localhost")))
        if url.startswith("https://api.github.com/repos/"):
            assert url.endswith("/dispatches")
            body = json.loads(args[args.index("-d") + 1])
            assert body["event_type"] in dispatch_types()
            read = set(re.findall(r"client_payload\.(\w+)",
                                  "".join(p.read_text() for p in WORKFLOWS.glob("*.yml"))))
            assert "trigger_reason" in body["client_payload"] and "trigger_reason" in read
        else:
            path = "/" + url.split("/", 1)[1] if "/" in url.split("//")[-1] else "/"
            assert path in HTTP_SURFACE, f"{url} is not a tether endpoint"

    def do_gh(self, args: list[str], line: str) -> None:
        if args[:2] == ["secret", "set"]:
            assert args[2] in workflow_references("secrets"), f"no workflow reads {args[2]}"
        elif args[:2] == ["variable", "set"]:
            assert args[2] in workflow_references("vars"), f"no workflow reads {args[2]}"
        elif args[:2] == ["workflow", "run"]:
            spec = workflow(args[2])
            inputs = spec[True]["workflow_dispatch"]["inputs"]
            for flag, value in zip(args, [*args[1:], ""], strict=True):
                if flag == "-f":
                    assert value.split("=", 1)[0] in inputs
        elif args[:2] != ["run", "watch"]:
            pytest.fail(f"unchecked gh command: {line}")


@pytest.mark.parametrize("document", ["docs/kubernetes.md", "docs/github-actions.md",
                                      "docs/alerting.md", "README.md"])
def test_every_documented_command_is_exercised(document: str, tmp_path: Path, render_chart,
                                               which, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    commands = shell_commands((REPO / document).read_text())
    assert len(commands) >= 3
    session = Session(tmp_path, render_chart, which)
    for line in commands:
        session.run(line)


def test_documented_install_is_the_one_the_workflow_runs() -> None:
    """The retrain workflow's helm step keeps the documented safety flags."""
    steps = workflow("retrain.yml")["jobs"]["deploy"]["steps"]
    (helm_step,) = [s for s in steps if "helm upgrade" in s.get("run", "")]
    script = helm_step["run"]
    for flag in ("--install", "--atomic", "--wait", "--set model.version="):
        assert flag in script


def test_monitoring_doc_lists_every_alert_with_its_action() -> None:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "tether.rules.yml")
                           .read_text())
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}
    rows = {}
    for line in (DOCS / "alerting.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| `Tether"):
            rows[cells[0].strip("`")] = cells
    assert set(rows) == set(alerts)
    for name, rule in alerts.items():
        assert rows[name][2] == rule["for"]
        assert rows[name][3] == rule["labels"].get("action", "-")


def curl_commands(markdown: str) -> list[str]:
    """Every curl command in a page: an inline `curl ...` span (across line breaks) or a
    line of a code block (continuations joined)."""
    text = markdown.replace("\\\n", " ")
    commands = []
    for match in re.finditer(r"\bcurl\s", text):
        start = match.start()
        if start and text[start - 1] == "`":
            end = text.index("`", start)
        else:
            end = text.find("\n", start) % (len(text) + 1)
        commands.append(" ".join(text[start:end].split()))
    return commands


def posts_json(command: str) -> bool:
    return bool(re.search(r"(?:-d|--data(?:-raw|-binary)?)\s+(?:['\"]\s*[\[{]|@\S+\.json)",
                          command))


def test_every_documented_curl_that_posts_json_says_so() -> None:
    """curl's -d sends a form content type, which the server (as MLflow's) refuses."""
    pages = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]
    posting = [(page.name, command) for page in pages
               for command in curl_commands(page.read_text()) if posts_json(command)]
    assert len(posting) >= 4  # /predict twice in serving.md, the two dispatches
    bare = [(name, command) for name, command in posting
            if not re.search(r"content-type:\s*application/json", command, re.I)
            and "--json " not in command]
    assert not bare, bare
    assert curl_commands("run `curl -X POST h -d\n'{\"a\": 1}'` now") == [
        "curl -X POST h -d '{\"a\": 1}'"]
    assert not posts_json("curl -s localhost:8000/ready")
