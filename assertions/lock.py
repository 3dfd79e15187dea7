"""The lock step: a failure becomes a regression case that reruns its call and judges the output.

``tracemend lock`` locks a stored trace with the assertions and checks a person gives; ``tracemend heal``
locks the failure it fixed, with the assertions the diagnosis suggested and a check that the finding's
exception is not raised. Both build the case here; :mod:`tracemend.assertions.case` reads and writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tracemend.assertions.case import DEFAULT_DIR, write_case
from tracemend.records import (
    Check,
    CodeVersion,
    Finding,
    JudgedFailure,
    Proposal,
    Provenance,
    RegressionCase,
    Trace,
)

# For a fix whose diagnosis suggested no assertion.
DEFAULT_ASSERTION = "The reply answers the customer's request without reporting an internal error."


def case_from_trace(
    trace: Trace,
    *,
    assertions: Sequence[str] = (),
    checks: Sequence[Check] = (),
    finding: Finding | None = None,
    proposal: Proposal | None = None,
    name: str | None = None,
    fixed_in_commit: str | None = None,
    signature_id: str | None = None,
    locked_at: datetime | None = None,
    judged: JudgedFailure | None = None,
) -> RegressionCase:
    """A case that reruns a stored trace's call with its recorded input and config.

    With a ``finding`` (a failure being locked), the case guards its signature and, unless ``checks``
    are given, checks that its exception is not raised; with a ``proposal`` (its fix), the assertions
    default to the ones the diagnosis suggested. A failure that raised nothing (``judged``: the rule's
    failed verdict, or feedback) is guarded by its assertion instead, recorded in the provenance.
    """
    if not assertions and judged is not None:
        assertions = [judged.assertion]
    if not assertions and proposal is not None:
        assertions = proposal.suggested_assertions or [DEFAULT_ASSERTION]
    if not checks and finding is not None and judged is None:
        checks = [Check(kind="not_raises", value=t) for t in finding.signature.exception_types[:1]]
    if signature_id is None and finding is not None:
        signature_id = finding.signature.signature_id
    if name is None:
        name = (
            f"{trace.name} {signature_id[:8] if finding is not None and signature_id else trace.trace_id[:8]}"
        )
    return RegressionCase(
        name=name,
        entry_point=trace.entry_point,
        # The config is kept once, under ``config``; the runner passes it back as that parameter.
        input={k: v for k, v in trace.input.items() if not (trace.config_param and k == trace.config_param)},
        config=trace.config,
        config_class=trace.config_class,
        config_param=trace.config_param,
        assertions=list(assertions),
        checks=list(checks),
        provenance=Provenance(
            source_trace_id=trace.trace_id,
            signature_id=signature_id,
            fixed_in_commit=fixed_in_commit,
            locked_at=locked_at or datetime.now(UTC),
            judged=judged,
        ),
    )


def lock(
    trace: Trace, directory: Path | str = DEFAULT_DIR, *, overwrite: bool = False, **how: object
) -> tuple[RegressionCase, Path]:
    """Build the case (``how``: the keyword arguments of :func:`case_from_trace`) and write it in
    ``directory``; the case and the file written."""
    case = case_from_trace(trace, **how)  # type: ignore[arg-type]
    return case, write_case(case, directory, overwrite=overwrite)


def regressions_dir(root: Path) -> Path:
    """The project's regressions folder: the ``regressions`` setting (``[tool.tracemend]`` or
    ``TRACEMEND_REGRESSIONS``, default ``tests/regressions``) under ``root`` — what ``lock``, ``test``,
    ``heal`` and the pytest plugin all use."""
    from tracemend import settings

    return Path(root) / Path(settings.get("regressions", root=Path(root)))


def fixed_in(trace: Trace, head: CodeVersion) -> str | None:
    """The commit a case from ``trace`` is known to pass at, or None: only a passing trace recorded at the
    clean checked-out commit shows that. A failing trace's case fails until a fix lands, so it gets none
    (heal fills it in once the case is proven to fail before the fix and pass with it)."""
    version = trace.code_version
    if trace.status != "ok" or not head.commit or head.dirty or version.dirty:
        return None
    return head.commit if version.commit == head.commit else None
