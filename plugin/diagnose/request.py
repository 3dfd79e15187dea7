"""What the diagnosing agent starts from: a Finding (and the TriageVerdict, when triage ran), or a failed
build's log.

The finding's example traces are the failing inputs, loaded once; its signature names the failure; the
suspect diff is the one triage judged (or, without triage, the diff that deployed the failing revision).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tracemend.diagnose.agent import DiagnoseError, DiagnoseRequest
from tracemend.diagnose.judged import judged_context, judged_passing
from tracemend.records import Finding, Signature, TriageVerdict

if TYPE_CHECKING:
    from tracemend.store import TraceSource


def signature_text(signature: Signature) -> str:
    """``KeyError: <template> in module:function``: how the agent and the CLI name the failure."""
    kind = signature.exception_types[0].rsplit(".", 1)[-1] if signature.exception_types else signature.kind
    where = f" in {signature.frame}" if signature.frame else ""
    return f"{kind}: {signature.template}{where}"


def request_for_finding(
    finding: Finding,
    store: TraceSource,
    repo: Path,
    *,
    verdict: TriageVerdict | None = None,
    passing: int = 3,
    timeout: float = 30.0,
) -> DiagnoseRequest:
    """The finding's example traces as the failing inputs, a sample of recent passing traces of the same
    entry points to catch collateral breakage, and the suspect diff."""
    from tracemend import vcs
    from tracemend.sandbox import sample_passing
    from tracemend.store import where
    from tracemend.triage import TriageError, load_examples, suspect_change

    failing = load_examples(store, finding)
    if not failing:
        raise DiagnoseError(f"none of the finding's example traces is in {where(store)}")
    prior: str | None = None
    if verdict is not None:
        diff = verdict.suspect_diff
        prior = verdict.base_revision
    else:
        try:
            change = suspect_change(vcs.open_repo(repo), store, finding, failing)
            diff, prior = change.diff, change.base
        except (vcs.VcsError, TriageError):
            diff = ""
    judged = judged_context(finding, store, failing, repo)
    sample = sample_passing(store, failing, per_entry_point=passing) if passing > 0 else []
    if judged is not None:
        sample = judged_passing(judged, store, sample)
    return DiagnoseRequest(
        prior_rev=prior,
        judged=judged,
        repo=repo,
        failing=failing,
        passing=sample,
        suspect_diff=diff,
        signature_id=finding.signature.signature_id,
        signature_text=signature_text(finding.signature),
        rerun_timeout=timeout,
    )


def request_for_build_log(repo: Path, log_path: Path) -> DiagnoseRequest:
    """A failed build or install: its log plus the last commit's diff, straight to diagnosis."""
    from tracemend import vcs

    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DiagnoseError(f"{log_path}: cannot read the build log ({exc.strerror})") from None
    r = vcs.open_repo(repo)
    parent = vcs.parent_of(r, "HEAD")
    diff = vcs.diff(r, parent, "HEAD") if parent else ""
    last_line = next((ln for ln in reversed(text.strip().splitlines()) if ln.strip()), "build failed")
    return DiagnoseRequest(
        repo=vcs.repo_root(r),
        build_log=text,
        suspect_diff=diff,
        signature_id=None,
        signature_text=f"build failure: {last_line.strip()[:200]}",
    )
