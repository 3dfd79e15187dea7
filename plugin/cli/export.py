"""`tracemend export otlp | opik | cases`: stored traces to an OTLP backend or Opik, locked cases to an
Opik test suite. Exit codes: 0 done, 1 some of it was refused or failed to send, 2 bad input."""

from __future__ import annotations

from pathlib import Path

import typer

from tracemend.cli._common import DB_OPTION, console, err_console, open_store_or_exit, parse_time

export_app = typer.Typer(
    name="export",
    help="Send stored traces to an OpenTelemetry backend or Opik; locked cases to an Opik test suite.",
    no_args_is_help=True,
)

SINCE = typer.Option(None, "--since", help="Only traces since: ISO time or a duration ago (2h, 7d).")
LIMIT = typer.Option(None, "--limit", min=1, help="At most this many traces (oldest first).")
FAILING = typer.Option(False, "--failing", help="Only traces that failed (error or failed assertion).")


def _report_otlp(result, what: str) -> None:  # result: tracemend.export.otel.ExportResult
    line = (
        f"{what}: {result.spans} spans of {result.traces} traces sent to {result.endpoint or 'the configured endpoint'} "
        f"in {result.batches} batches ({result.seconds:.2f} s)"
    )
    if result.ok:
        console.print(f"[green]✓[/] {line}")
        return
    err_console.print(
        f"[red]✗[/] {line}; {result.failed_batches} batches ({result.failed_spans} spans) failed"
    )
    for error in result.errors[:5]:
        err_console.print(f"  {error}")
    raise typer.Exit(1)


@export_app.command("otlp")
def otlp(
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="OTLP/HTTP URL (a bare http://host:port gets /v1/traces). Default: OTEL_EXPORTER_OTLP_* variables.",
    ),
    since: str | None = SINCE,
    limit: int | None = LIMIT,
    failing: bool = FAILING,
    db: Path | None = DB_OPTION,
) -> None:
    """Export stored traces as OpenTelemetry spans (OpenInference + GenAI attributes) over OTLP/HTTP."""
    from tracemend.export import otel

    try:
        exporter = otel.make_exporter(endpoint)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--endpoint") from None
    store = open_store_or_exit(db)
    try:
        with console.status("Exporting…") as status:
            result = otel.export_store(
                store,
                exporter,
                since=parse_time(since) if since else None,
                status=("error", "failed_assertion") if failing else None,
                limit=limit,
                progress=lambda r: status.update(
                    f"Exporting… {r.spans + r.failed_spans} spans, {r.traces} traces"
                ),
            )
    finally:
        exporter.shutdown()
    result.endpoint = result.endpoint or endpoint or otel.configured_endpoint()
    _report_otlp(result, "OTLP")


@export_app.command("opik")
def opik(
    project: str | None = typer.Option(
        None, "--project", help="Opik project (default: OPIK_PROJECT_NAME, else each trace's own project)."
    ),
    since: str | None = SINCE,
    limit: int | None = LIMIT,
    failing: bool = FAILING,
    use_otlp: bool = typer.Option(
        False, "--otlp", help="Send through Opik's OTLP endpoint instead of the opik SDK."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Opik API URL (default: OPIK_URL_OVERRIDE, else Opik Cloud)."
    ),
    workspace: str | None = typer.Option(
        None, "--workspace", help="Opik workspace (default: OPIK_WORKSPACE)."
    ),
    db: Path | None = DB_OPTION,
) -> None:
    """Export stored traces to an Opik project (config, code version as metadata; errors as error_info)."""
    store = open_store_or_exit(db)
    since_time = parse_time(since) if since else None
    status_filter = ("error", "failed_assertion") if failing else None
    if use_otlp:
        from tracemend.export import opik as opik_export
        from tracemend.export.otel import export_traces

        target = opik_export.opik_target(url=url, project=project, workspace=workspace)
        exporter = opik_export.opik_otlp_exporter(target)
        try:
            traces = store.iter_traces(since=since_time, status=status_filter, limit=limit, with_spans=True)
            with console.status("Exporting to Opik over OTLP…"):
                result = export_traces(traces, exporter)
        finally:
            exporter.shutdown()
        result.endpoint = target.otlp_endpoint
        _report_otlp(result, f"Opik OTLP (project {target.project or 'Default Project'})")
        return

    import os

    if url:
        os.environ["OPIK_URL_OVERRIDE"] = url
    if workspace:
        os.environ["OPIK_WORKSPACE"] = workspace
    from tracemend.export.opik import export_store_to_opik

    try:
        with console.status("Exporting to Opik…") as status:
            result = export_store_to_opik(
                store,
                project=project or os.environ.get("OPIK_PROJECT_NAME"),
                since=since_time,
                status=status_filter,
                limit=limit,
                progress=lambda r: status.update(f"Exporting to Opik… {r.traces} traces, {r.spans} spans"),
            )
    except Exception as exc:  # the SDK's own errors (auth, unreachable server) are the user's to fix
        err_console.print(f"[red]✗[/] Opik export failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]✓[/] Opik: {result.traces} traces, {result.spans} spans logged"
        f"{' to project ' + result.project if result.project else ''} ({result.seconds:.2f} s)"
    )


@export_app.command("cases")
def cases(
    directory: Path = typer.Option(
        Path("tests/regressions"), "--dir", help="Folder (or file) of locked regression cases (YAML)."
    ),
    suite: str = typer.Option("tracemend-regressions", "--suite", help="Opik test suite name."),
    project: str | None = typer.Option(None, "--project", help="Opik project the suite belongs to."),
) -> None:
    """Export locked regression cases as Opik test suite items (input data + plain-English assertions)."""
    from tracemend.export.cases import CaseFileError, export_cases, load_cases

    try:
        found = load_cases(directory)
    except CaseFileError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    if not found:
        err_console.print(f"[red]error:[/] no regression cases under {directory}")
        raise typer.Exit(2)
    try:
        result = export_cases(found, suite=suite, project=project)
    except Exception as exc:
        err_console.print(f"[red]✗[/] Opik export failed: {type(exc).__name__}: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"[green]✓[/] {result.items} cases from {result.files} files → Opik {result.kind.replace('_', ' ')} "
        f"{result.suite!r} ({result.seconds:.2f} s)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
