"""Verify a proposed change: apply it in an isolated worktree and rerun the inputs in up to three trees.

- ``prior`` (optional): a clean worktree at the revision before the suspect change. An input that fails
  there too is a pre-existing failure: shown apart, neither counted as fixed nor held against the fix.
- ``before``: a clean worktree at the revision the change is applied to (head), with the recorded config.
- ``after``: a worktree with the change applied (and the config overrides, for a what-if).

Each input runs once per tree. When the agent shows it is not deterministic — a rerun at the revision an
input was recorded at disagrees with the recording (passes where it failed, or returns another output) —
that input runs ``runs`` times (the ``verify_runs`` setting) in every tree and the verdict compares pass
rates. All worktrees are removed whatever happens; the user's working tree and index are never touched.

A rerun the harness could not set up in a tree without the change (entry point not importable, a config
override the config class rejects) is a usage problem, raised as :class:`ReplayError`, never reported as
the change's fault.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tracemend.errors import ReplayError
from tracemend.records import ApplyResult, RerunResult, Trace, Verification
from tracemend.sandbox.changes import Edit, apply_change
from tracemend.sandbox.compare import Passed, compare, rerun_passed
from tracemend.sandbox.rerun import recorded_result, rerun_traces
from tracemend.sandbox.worktree import SandboxError, _git, isolated_worktree, worktree_commit

__all__ = ["Verification", "rerun_recorded", "verify_change"]


def _has_change(change: str | list[Edit] | None) -> bool:
    if change is None:
        return False
    return bool(change) if isinstance(change, list) else bool(change.strip())


def _runs_setting() -> int:
    from tracemend import settings

    return max(1, int(settings.get("verify_runs")))


def _harness_failures(results: Sequence[RerunResult], traces: dict[str, Trace], what: str) -> None:
    for result in results:
        if result.status == "setup_error":
            message = result.error.message if result.error is not None else "the call could not be set up"
            entry = traces[result.source_trace_id].entry_point if result.source_trace_id in traces else "?"
            raise ReplayError(f"cannot rerun {entry} {what}: {message}")


def _disagrees(trace: Trace, rerun: RerunResult, passed: Passed) -> bool:
    """Whether a rerun at the revision ``trace`` was recorded at came out otherwise (the agent varies)."""
    recorded = recorded_result(trace)
    if passed(recorded) != passed(rerun):
        return True
    return passed(rerun) and recorded.output != rerun.output


def _varying(traces: Sequence[Trace], runs: dict[str, list[RerunResult]], passed: Passed) -> set[str]:
    """Ids of the traces whose rerun at their own recorded revision disagrees with the recording."""
    out: set[str] = set()
    for commit, results in runs.items():
        by_id = {r.source_trace_id: r for r in results}
        for trace in traces:
            result = by_id.get(trace.trace_id)
            same_code = trace.code_version.commit == commit and not trace.code_version.dirty
            if result is not None and same_code and _disagrees(trace, result, passed):
                out.add(trace.trace_id)
    return out


def verify_change(
    repo: Path,
    change: str | list[Edit] | None,
    failing: Sequence[Trace],
    passing: Sequence[Trace] = (),
    *,
    rev: str = "HEAD",
    prior_rev: str | None = None,
    timeout: float = 30,
    config_overrides: dict[str, Any] | None = None,
    parallel: int = 2,
    pass_env: list[str] | None = None,
    progress: bool | Callable[[RerunResult], None] = False,
    runs: int | None = None,
    passed: Passed = rerun_passed,
    repeat_failing: bool = False,
) -> Verification:
    """Apply ``change`` (a unified diff, SEARCH/REPLACE text, or edits; None/empty for a what-if with
    ``config_overrides`` only) at ``rev`` and rerun ``failing`` and ``passing`` traces without and with it,
    and at ``prior_rev`` (the revision before the suspect change) when given.

    ``runs`` (default: the ``verify_runs`` setting) is how often an input that shows variation runs per
    tree; ``passed`` decides whether one run passed (default: it returned without raising). With
    ``repeat_failing`` every failing input runs ``runs`` times per tree whatever it showed (a judge's
    verdict is a rate over outputs, not one run's).

    Raises ChangeRejected for a hostile or invalid change (before anything runs), SandboxError when
    ``repo`` is not a git repository or a revision is unknown, and ReplayError when the inputs cannot be
    rerun at all. A change that does not apply or does not compile returns a Verification with
    ``apply.ok`` False and no comparison.
    """
    repo = Path(repo)
    if config_overrides:
        fixed_config = sorted({t.entry_point for t in [*failing, *passing] if not t.config_param})
        if fixed_config:
            raise SandboxError(
                "config overrides need the config passed as an argument; it is set on the decorator of "
                + ", ".join(fixed_config)
            )
    n_runs = runs if runs is not None else _runs_setting()
    source_root = Path(_git(repo).working_tree_dir or repo)
    traces = [*failing, *[t for t in passing if t.trace_id not in {f.trace_id for f in failing}]]
    by_id = {t.trace_id: t for t in traces}
    patched = _has_change(change)
    with contextlib.ExitStack() as stack:
        after_tree = stack.enter_context(isolated_worktree(repo, rev))
        base = worktree_commit(after_tree)
        applied = apply_change(after_tree, change) if patched else ApplyResult(ok=True)  # type: ignore[arg-type]
        if not applied.ok:
            return Verification(apply=applied, comparison=None, base_commit=base)
        before_tree = stack.enter_context(isolated_worktree(repo, base))
        prior_tree = prior = None
        if prior_rev is not None:
            prior_tree = stack.enter_context(isolated_worktree(repo, prior_rev))
            prior = worktree_commit(prior_tree)
            if prior == base:  # nothing between them: a before/after check
                prior_tree = prior = None
        common: dict[str, Any] = dict(
            timeout=timeout, parallel=parallel, pass_env=pass_env, progress=progress, source_root=source_root
        )
        trees: list[tuple[str, Path, str, dict[str, Any] | None]] = [
            ("before", before_tree, base, None),
            ("after", after_tree, base + "+patch" if patched else base, config_overrides),
        ]
        if prior_tree is not None and prior is not None:
            trees.insert(0, ("prior", prior_tree, prior, None))

        def run(selection: Sequence[Trace]) -> dict[str, list[RerunResult]]:
            return {
                name: rerun_traces(
                    selection, workdir=tree, code_version=version, config_overrides=overrides, **common
                )
                for name, tree, version, overrides in trees
            }

        results = run(traces)
        _harness_failures(results["before"], by_id, f"at {base[:10]}")
        if config_overrides:
            _harness_failures(results["after"], by_id, "with the config overrides")
        commits = {base: results["before"], **({prior: results["prior"]} if prior else {})}
        varying = _varying(traces, commits, passed)
        failing_ids = {t.trace_id for t in failing} if repeat_failing else set()
        again = [t for t in traces if t.trace_id in varying or t.trace_id in failing_ids]
        if again and n_runs > 1:
            # One batch per tree for all the repeats: the parallel slots stay busy between rounds.
            for name, more in run(again * (n_runs - 1)).items():
                results[name].extend(more)
    comparison = compare(
        results["before"],
        results["after"],
        {t.trace_id for t in failing},
        prior=results.get("prior"),
        passed=passed,
        prior_revision=prior,
        head_revision=base,
    )
    return Verification(apply=applied, comparison=comparison, base_commit=base, prior_commit=prior)


def rerun_recorded(
    repo: Path,
    failing: Sequence[Trace],
    passing: Sequence[Trace] = (),
    *,
    rev: str = "HEAD",
    timeout: float = 30,
    parallel: int = 2,
    pass_env: list[str] | None = None,
    progress: bool | Callable[[RerunResult], None] = False,
) -> Verification:
    """Rerun the traces at ``rev`` as they are and compare with what was recorded ("does it still fail?").

    The "before" side is the recorded trace itself, so nothing runs twice.
    """
    repo = Path(repo)
    source_root = Path(_git(repo).working_tree_dir or repo)
    traces = [*failing, *[t for t in passing if t.trace_id not in {f.trace_id for f in failing}]]
    with isolated_worktree(repo, rev) as tree:
        base = worktree_commit(tree)
        after = rerun_traces(
            traces,
            workdir=tree,
            timeout=timeout,
            parallel=parallel,
            pass_env=pass_env,
            progress=progress,
            code_version=base,
            source_root=source_root,
        )
    _harness_failures(after, {t.trace_id: t for t in traces}, f"at {base[:10]}")
    before = [recorded_result(t) for t in traces]
    comparison = compare(before, after, {t.trace_id for t in failing}, head_revision=base)
    return Verification(apply=ApplyResult(ok=True), comparison=comparison, base_commit=base)
