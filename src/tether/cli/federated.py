"""sites: the federation's sites, their data summaries and their drift."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from tether.cli._common import JSON_OPTION, console, emit, err_console, project_of
from tether.errors import DataError

__all__ = ["register"]

DRIFTED = 1


def sites(
    ctx: typer.Context,
    collect: bool = typer.Option(True, "--collect/--stored",
                                 help="Ask the sites for new summaries (a Flower run), or "
                                      "judge the stored ones."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Each site's recent data, summarised at the site (counts per bin, no rows), against
    the champion's training profile. Exit code 1 when a site drifted."""
    from tether.federated.sites import champion_profile, collect_summaries, site_drift

    project = project_of(ctx)
    if collect:
        with err_console.status("asking the sites for summaries of their recent data"):
            collect_summaries(project)
    state = project.registry.state()
    if state.champion is None:
        raise DataError(f"{project.model_name} has no champion yet; train and promote one")
    summaries = [s for s in project.store.site_summaries(project.model_name)
                 if s.version == state.champion]
    if not summaries:
        raise DataError("no site has reported a summary for the champion yet; run "
                        "`tether sites` (it collects them)")
    profile = champion_profile(project, state.champion)
    monitoring = project.policy.monitoring
    reports = {s.site: (s, site_drift(profile, s, alpha=monitoring.drift_alpha,
                                      share_threshold=monitoring.drift_share_threshold))
               for s in summaries}
    payload = {site: {"rows": s.rows, "ts": s.ts, **report.as_dict()}
               for site, (s, report) in reports.items()}

    def render() -> None:
        table = Table(title=f"sites against version {state.champion}'s training profile")
        for column in ("site", "rows", "drift share", "drifted features", "verdict"):
            table.add_column(column)
        for site, (summary, report) in reports.items():
            share = "-" if report.share_drifted is None else f"{report.share_drifted:.0%}"
            verdict = ("[dim]" + (report.reason or "no verdict") + "[/dim]"
                       if not report.enough_data else
                       "[red]drift[/red]" if report.drifted else "[green]ok[/green]")
            table.add_row(site, str(summary.rows), share,
                          ", ".join(f.name for f in report.features if f.drifted) or "-",
                          verdict)
        console.print(table)

    emit(json.loads(json.dumps(payload, default=str)), as_json, render)
    if any(report.enough_data and report.drifted for _, report in reports.values()):
        raise typer.Exit(DRIFTED)


def register(app: typer.Typer) -> None:
    app.command()(sites)
