"""The registry state read straight from a SQLite registry file equals what MLflow's client
reads, after every kind of write tether and a hand on the MLflow UI make; the reader
stands aside (None) wherever it was not checked: another schema revision, workspaces,
no file, not a database."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from tests.cli import runner, tether_json
from tests.conftest import use_trained
from tests.test_cli_imports import loaded_after
from tether.cli import app
from tether.errors import RegistryError
from tether.project import Project
from tether.registry import RegistryState, RolloutSpec, State
from tether.registry.sqlite_state import KNOWN_REVISIONS, read_sqlite_state


@pytest.fixture
def project(project_dir: Path, trained_template: Path) -> Project:
    use_trained(project_dir, trained_template)
    return Project.open(project_dir / "tether.yaml")


def _registry_file(project: Project) -> Path:
    path = project.registry.local_file
    assert path is not None
    return path


def _both(project: Project) -> tuple[RegistryState | None, RegistryState]:
    return (read_sqlite_state(_registry_file(project), project.model_name),
            project.registry.mlflow_state())


def test_the_installed_mlflow_writes_a_schema_the_reader_knows(mlflow_template: Path) -> None:
    """Fails when MLflow is upgraded to a release with a new schema: check the five tables
    `sqlite_state` reads, then add the revision to KNOWN_REVISIONS."""
    with sqlite3.connect(mlflow_template) as connection:
        (revision,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
    assert revision in KNOWN_REVISIONS


def test_every_write_reads_back_the_same_as_through_mlflow(project: Project) -> None:
    registry, client, name = project.registry, project.registry.client, project.model_name
    first = client.get_model_version(name, "1")
    folder = client.get_model_version_download_uri(name, "1")
    steps = [
        lambda: None,  # two candidates, no alias
        lambda: registry.promote(1, "first"),
        lambda: registry.set_gate(2, {"passed": True, "delta": 0.01}),
        lambda: registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.1,
                                                   started_at=5.0), "canary 10%"),
        lambda: registry.update_rollout(RolloutSpec(version=2, mode="canary", weight=0.5,
                                                    step=1, started_at=6.0), "step"),
        lambda: registry.promote(2, "canary passed"),
        # by hand: a third version, a tag, an alias of the user's own, a deleted version
        lambda: client.create_model_version(name, folder, run_id=first.run_id),
        lambda: client.set_model_version_tag(name, "3", "team", "risk"),
        lambda: client.set_registered_model_alias(name, "staging", "3"),
        lambda: client.create_model_version(name, folder, run_id=first.run_id),
        lambda: client.delete_model_version(name, "4"),
        lambda: registry.set_state(3, State.REJECTED, "by hand"),
        lambda: registry.rollback("bad v2"),
    ]
    # a model of the same name's neighbour in the same registry is not read
    client.create_registered_model(f"{name}-other")
    client.create_model_version(f"{name}-other", folder, run_id=first.run_id)
    client.set_registered_model_alias(f"{name}-other", "champion", "1")
    for number, step in enumerate(steps):
        step()
        fast, through_mlflow = _both(project)
        assert fast == through_mlflow, f"after step {number}"
        assert registry.state() == through_mlflow
    final = registry.state()
    assert (final.champion, final.previous) == (1, None)
    assert [v.version for v in final.versions] == [1, 2, 3]  # 4 was deleted
    assert final.version(3).aliases == ("staging",)


def test_a_model_not_registered_yet_has_no_versions(project: Project) -> None:
    fast = read_sqlite_state(_registry_file(project), "no-such-model")
    assert fast == RegistryState("no-such-model", None, None, None, None, ())


def test_the_reader_stands_aside_where_it_was_not_checked(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, name = _registry_file(project), project.model_name
    assert read_sqlite_state(path, name) is not None
    assert read_sqlite_state(tmp_path / "missing.db", name) is None
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    assert read_sqlite_state(tmp_path / "text.db", name) is None
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert read_sqlite_state(empty, name) is None
    assert not empty.stat().st_size  # read-only: nothing written to a file it opened
    upgraded = tmp_path / "upgraded.db"
    shutil.copyfile(path, upgraded)
    with sqlite3.connect(upgraded) as connection:
        connection.execute("UPDATE alembic_version SET version_num = 'newer'")
    assert read_sqlite_state(upgraded, name) is None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "false")
    assert read_sqlite_state(path, name) is not None
    monkeypatch.setenv("MLFLOW_ENABLE_WORKSPACES", "True")
    assert read_sqlite_state(path, name) is None
    monkeypatch.delenv("MLFLOW_ENABLE_WORKSPACES")
    monkeypatch.setenv("MLFLOW_WORKSPACE", "team-a")
    assert read_sqlite_state(path, name) is None


def test_status_reads_a_sqlite_registry_without_importing_mlflow(project: Project) -> None:
    project.registry.promote(1, "first")
    project.registry.start_rollout(RolloutSpec(version=2, mode="canary", weight=0.25), "c")
    folder = project.config.path.parent
    code, loaded = loaded_after("status", "--json", cwd=folder)
    assert code == 0 and "mlflow" not in loaded and "tether.registry" in loaded
    shown, expected = tether_json("status"), project.registry.mlflow_state().as_dict()
    assert {key: shown[key] for key in expected} == expected
    assert shown["rollout"]["weight"] == 0.25


def test_status_refuses_a_file_that_is_no_registry_and_leaves_it_as_it_was(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's client makes a registry of an empty file, or of another program's SQLite
    database, by writing its schema into it: a read must not."""
    store = project.config.path.parent / ".tether" / "store.db"
    (tmp_path / "text.db").write_text("not a database\n" * 100)
    (tmp_path / "empty.db").touch()
    (tmp_path / "folder.db").mkdir()
    cases = [(store, "is a SQLite database without MLflow's tables"),
             (tmp_path / "text.db", "is not a SQLite database"),
             (tmp_path / "empty.db", "is empty"), (tmp_path / "folder.db", "is a directory")]
    for path, problem in cases:
        before = path.read_bytes() if path.is_file() else None
        monkeypatch.setenv("TETHER_TRACKING_URI", f"sqlite:///{path}")
        result = runner.invoke(app, ["status"])
        assert result.exit_code == 4, result.output
        (line,) = result.output.strip().splitlines()
        assert f"the file {path} {problem}" in line, line
        assert (path.read_bytes() if path.is_file() else None) == before


@pytest.mark.parametrize(("tag", "text", "reason"), [
    ("tether.gate", "{not json", "Expecting property name"),
    ("tether.gate", "true", "a JSON bool, not an object"),
    ("tether.rollout", '{"version": 2, "mode": "canary"}', "no 'weight'"),
    ("tether.rollout", '{"version": 2, "mode": "Canary", "weight": 0.1}',
     "mode 'Canary' is neither"),
    ("tether.rollout", '{"version": [2], "mode": "canary", "weight": 0.1}', "int()"),
])
def test_a_tag_edited_into_something_unreadable_is_one_clear_line_on_both_paths(
        project: Project, tag: str, text: str, reason: str) -> None:
    client, name = project.registry.client, project.model_name
    if tag == "tether.gate":
        client.set_model_version_tag(name, "2", tag, text)
        owner = "version 2"
    else:
        client.set_registered_model_tag(name, tag, text)
        owner = f"model {name}"
    with pytest.raises(RegistryError) as through_mlflow:
        project.registry.mlflow_state()
    with pytest.raises(RegistryError) as fast:
        read_sqlite_state(_registry_file(project), name)
    message = str(fast.value)
    assert message == str(through_mlflow.value)
    assert message.startswith(f"{owner}: the tag {tag} = {text!r} cannot be read (")
    assert reason in message
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 4, result.output
    assert result.output.strip() == f"error: {message}"


def test_a_registry_locked_by_a_writer_is_a_clear_line_once_both_paths_waited(
        project: Project) -> None:
    """A writer holding its lock past SQLite's busy timeout (a migration, a shell left in a
    transaction): the reader falls back to MLflow's client, whose error is tether's."""
    writer = sqlite3.connect(_registry_file(project), isolation_level=None)
    try:
        writer.execute("BEGIN EXCLUSIVE")
        result = runner.invoke(app, ["status"])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.exit_code == 4, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: read registry state: registry unavailable: ") and (
        "database is locked" in line), line
    assert tether_json("status")["champion"] is None  # and reads again once it is free


def test_more_versions_than_one_page_of_mlflows_search_are_all_read(project: Project) -> None:
    """MLflow's search answers 10,000 versions a page, the most recently updated: the
    oldest (a long-serving champion) fell off the end."""
    project.registry.promote(1, "first")
    with sqlite3.connect(_registry_file(project)) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(model_versions)")]
        copied = ", ".join("n.number" if column == "version" else column for column in columns)
        connection.execute(  # versions 3..10002 as copies of version 2
            "WITH RECURSIVE n(number) AS (SELECT 3 UNION ALL SELECT number + 1 FROM n "
            f"WHERE number < 10002) INSERT INTO model_versions ({', '.join(columns)}) "
            f"SELECT {copied} FROM model_versions, n WHERE version = 2")
    fast, through_mlflow = _both(project)
    assert fast == through_mlflow
    assert [v.version for v in through_mlflow.versions] == list(range(1, 10003))
    assert through_mlflow.problems == []


def test_a_write_committed_while_the_reader_reads_is_all_or_nothing(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollout's alias and routing tag committed together, between the reader's query of
    the aliases and its query of the model's tags (WAL: writers do not wait for readers):
    the reader shows both or neither, never the alias without its routing."""
    path, name = _registry_file(project), project.model_name
    project.registry.promote(1, "first")
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode=WAL").fetchone() == ("wal",)
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO registered_model_aliases (name, alias, version, workspace) "
                   "VALUES (?, 'challenger', 2, 'default')", (name,))
    writer.execute("INSERT INTO registered_model_tags (\"key\", value, name, workspace) "
                   "VALUES ('tether.rollout', ?, ?, 'default')",
                   (RolloutSpec(version=2, mode="canary", weight=0.1).to_json(), name))
    connect = sqlite3.connect

    def connect_and_commit_midway(*args: object, **kwargs: object) -> sqlite3.Connection:
        connection = connect(*args, **kwargs)  # type: ignore[arg-type]

        def on_statement(sql: str) -> None:
            if "FROM registered_model_tags" in sql and writer.in_transaction:
                writer.execute("COMMIT")

        connection.set_trace_callback(on_statement)
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_and_commit_midway)
    during = read_sqlite_state(path, name)
    assert not writer.in_transaction  # the write did land mid-read
    after = read_sqlite_state(path, name)
    writer.close()
    assert during is not None and after is not None
    assert (during.challenger, during.rollout) == (None, None)
    assert after.challenger == 2 and after.rollout is not None and after.rollout.version == 2
