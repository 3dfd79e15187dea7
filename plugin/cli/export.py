"""`tracemend export otlp | opik | cases`: stored traces to an OTLP backend or Opik, locked cases to an
Opik test suite. Exit codes: 0 done, 1 some of it was refused or failed to send, 2 bad input."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer

from tracemend.cli._common import (
    DB_OPTION,
    FAILING,
    FAILING_OPTION,
    console,
    err_console,
    limit_option,
    parse_time,
    since_option,
)
from tracemend.cli.errors import reports_errors
from tracemend.cli.output import Progress
from tracemend.errors import ConfigError, TracemendError
from tracemend.store import Store

export_app = typer.Typer(
    name="export",
    help="Send stored traces to an OpenTelemetry backend or Opik; locked cases to an Opik test suite.",
    no_args_is_help=True,
)

SINCE = since_option("Only traces since: ISO time or a duration ago (2h, 7d).")
LIMIT = limit_option(None, "At most this many traces (oldest first).")
OPIK_URL = typer.Option(None, "--url", help="Opik API URL (default: OPIK_URL_OVERRIDE, else Opik Cloud).")
OPIK_WORKSPACE = typer.Option(None, "--workspace", help="Opik workspace (default: OPIK_WORKSPACE).")


def _query(since: str | None, limit: int | None, failing: bool) -> dict[str, Any]:
    """The export's ``TraceQuery`` from the command's options."""
    return {
        "since": parse_time(since) if since else None,
        "status": FAILING if failing else None,
        "limit": limit,
    }


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _progress(store: Store, label: str, query: dict[str, Any]) -> Progress:
    """Progress of an export on stderr: a bar in a terminal, a line a second at most in a log."""
    total = store.count(since=query["since"], status=query["status"])
    if query["limit"] is not None:
        total = min(total, query["limit"])
    return err_console.progress(label, total=total, every=1.0)


def _report_otlp(result, what: str) -> None:  # result: tracemend.export.otel.ExportResult
    where = result.endpoint or "the configured endpoint"
    batches = _plural(result.batches, "batch").replace("batchs", "batches")
    if result.ok:
        console.print(
            f"[green]✓[/] {what}: {_plural(result.traces, 'trace')} ({_plural(result.spans, 'span')}) "
            f"delivered to {where} in {batches} ({result.seconds:.2f} s)",
            soft_wrap=True,
        )
        return
    total_traces = result.traces + result.failed_traces
    total_spans = result.spans + result.failed_spans
    err_console.print(
        f"[red]✗[/] {what}: {result.traces} of {_plural(total_traces, 'trace')} ({result.spans} of "
        f"{_plural(total_spans, 'span')}) delivered to {where}; {result.failed_batches} of {batches} "
        f"failed ({result.seconds:.2f} s)",
        soft_wrap=True,
    )
    for error in result.errors[:5]:
        err_console.print(f"  {error}", soft_wrap=True)
    raise typer.Exit(1)


def _report_opik(result) -> None:  # result: tracemend.export.opik.OpikExportResult
    where = f"{result.url}, project {result.project}"
    if result.ok:
        console.print(
            f"[green]✓[/] Opik: {_plural(result.traces, 'trace')} ({_plural(result.spans, 'span')}) "
            f"acknowledged by {where} ({result.seconds:.2f} s)",
            soft_wrap=True,
        )
        return
    err_console.print(
        f"[red]✗[/] Opik: {result.traces} of {_plural(result.queued_traces, 'trace')} ({result.spans} of "
        f"{_plural(result.queued_spans, 'span')}) acknowledged by {where}; {result.failed_traces} traces "
        f"and {result.failed_spans} spans not delivered ({result.seconds:.2f} s)",
        soft_wrap=True,
    )
    for error in result.errors[:5]:
        err_console.print(f"  {error}", soft_wrap=True)
    raise typer.Exit(1)


def _opik_failed(exc: Exception) -> typer.Exit:
    # The SDK's own errors (auth, unreachable server) are the user's to fix: name them, exit 1.
    err_console.print(f"[red]✗[/] Opik export failed: {type(exc).__name__}: {exc}", soft_wrap=True)
    return typer.Exit(1)


@export_app.command("otlp")
@reports_errors
def otlp(
    endpoint: str | None = typer.Option(
        None,
        "--endpoint",
        help="OTLP/HTTP URL (a bare http://host:port gets /v1/traces). Default: OTEL_EXPORTER_OTLP_* variables.",
    ),
    since: str | None = SINCE,
    limit: int | None = LIMIT,
    failing: bool = FAILING_OPTION,
    db: Path | None = DB_OPTION,
) -> None:
    """Export stored traces as OpenTelemetry spans (OpenInference + GenAI attributes) over OTLP/HTTP."""
    from tracemend.export import otel

    try:
        exporter = otel.make_exporter(endpoint)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--endpoint") from None
    try:
        query = _query(since, limit, failing)
        with Store(db, create=False) as store, _progress(store, "exporting over OTLP", query) as bar:
            result = otel.export_store(
                store,
                exporter,
                progress=lambda r: bar.update(r.traces, f"{r.spans + r.failed_spans} spans"),
                **query,
            )
    finally:
        exporter.shutdown()
    result.endpoint = result.endpoint or endpoint or otel.configured_endpoint()
    _report_otlp(result, "OTLP")


@export_app.command("opik")
@reports_errors
def opik(
    project: str | None = typer.Option(
        None,
        "--project",
        help="Opik project, for the SDK and --otlp alike (default: OPIK_PROJECT_NAME, else tracemend's project name).",
    ),
    since: str | None = SINCE,
    limit: int | None = LIMIT,
    failing: bool = FAILING_OPTION,
    use_otlp: bool = typer.Option(
        False, "--otlp", help="Send through Opik's OTLP endpoint instead of the opik SDK."
    ),
    url: str | None = OPIK_URL,
    workspace: str | None = OPIK_WORKSPACE,
    db: Path | None = DB_OPTION,
) -> None:
    """Export stored traces to an Opik project (config, code version as metadata; errors as error_info)."""
    from tracemend.export import opik as opik_export

    query = _query(since, limit, failing)
    with Store(db, create=False) as store:
        if use_otlp:
            target = opik_export.opik_target(url=url, project=project, workspace=workspace)
            with _progress(store, "exporting to Opik over OTLP", query) as bar:
                sent = opik_export.export_store_to_opik_otlp(
                    store, target, progress=lambda r: bar.update(r.traces, f"{r.spans} spans"), **query
                )
            _report_otlp(sent, f"Opik OTLP (project {target.project})")
            return
        if url:
            os.environ["OPIK_URL_OVERRIDE"] = url
        if workspace:
            os.environ["OPIK_WORKSPACE"] = workspace
        try:
            with _progress(store, "exporting to Opik", query) as bar:
                result = opik_export.export_store_to_opik(
                    store,
                    project=project,
                    progress=lambda r: bar.update(r.queued_traces, f"{r.queued_spans} spans queued"),
                    **query,
                )
        except (TracemendError, ImportError):
            raise  # reports_errors names them (a missing extra, a bad setting)
        except Exception as exc:
            raise _opik_failed(exc) from None
    _report_opik(result)


@export_app.command("cases")
@reports_errors
def cases(
    directory: Path | None = typer.Option(
        None,
        "--dir",
        help="Folder (or file) of locked regression cases (default: the regressions setting, tests/regressions).",
    ),
    suite: str = typer.Option("tracemend-regressions", "--suite", help="Opik test suite name."),
    project: str | None = typer.Option(
        None, "--project", help="Opik project the suite belongs to (default: as for export opik)."
    ),
) -> None:
    """Export locked regression cases as Opik test suite items (input data + plain-English assertions)."""
    from tracemend import settings
    from tracemend.export.cases import export_cases, load_cases
    from tracemend.export.opik import opik_project

    directory = directory or settings.path("regressions")
    found = load_cases(directory)
    if not found:
        raise ConfigError(f"no regression cases under {directory}")
    try:
        result = export_cases(found, suite=suite, project=opik_project(project))
    except (TracemendError, ImportError):
        raise
    except Exception as exc:
        raise _opik_failed(exc) from None
    console.print(
        f"[green]✓[/] {result.items} cases from {result.files} files → Opik {result.kind.replace('_', ' ')} "
        f"{result.suite!r} ({result.seconds:.2f} s)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(export_app, name="export")
