"""The suspect change: the diff between the finding's code version and the one deployed before it, its
changed lines, and the changed lines the failures' frames run through."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tracemend.errors import TriageError
from tracemend.records import Finding, Trace

if TYPE_CHECKING:
    import git

    from tracemend.store import TraceSource


@dataclass
class SuspectChange:
    base: str
    head: str
    diff: str
    files: list[str]
    commits: list[str] = field(default_factory=list)


def load_examples(store: TraceSource, finding: Finding, limit: int = 5) -> list[Trace]:
    """The finding's example traces (with spans), in its order; ids the source no longer holds are skipped."""
    traces = []
    for tid in finding.example_trace_ids[:limit]:
        trace = store.get_trace(tid)
        if trace is not None:
            traces.append(trace)
    return traces


def finding_revision(finding: Finding, traces: list[Trace]) -> str | None:
    """The code version the finding's failures ran on: the most common one among its example traces."""
    commits = Counter(t.code_version.commit for t in traces if t.code_version.commit)
    if commits:
        return commits.most_common(1)[0][0]
    return finding.first_revision


def previous_deployed(store: TraceSource, revision: str) -> str | None:
    """The code version that served traffic before ``revision`` (from the store's code versions)."""
    versions = [c for c, _first, _last, _n in store.code_versions()]
    matches = [i for i, c in enumerate(versions) if c == revision or c.startswith(revision)]
    if not matches or matches[0] == 0:
        return None
    return versions[matches[0] - 1]


def suspect_change(
    repo: git.Repo,
    store: TraceSource,
    finding: Finding,
    traces: list[Trace],
    *,
    wide: bool = False,
    base: str | None = None,
    head: str | None = None,
) -> SuspectChange:
    """By default the diff between the finding's code version and the one deployed before it.

    ``wide``: from the version deployed before the signature first appeared, so every revision since then
    is included. ``base``/``head`` override either end.
    """
    from tracemend import vcs

    head = head or finding_revision(finding, traces)
    if not head:
        raise TriageError("the finding's traces carry no code version; pass --base and --head")
    if base is None:
        anchor = finding.first_revision if wide and finding.first_revision else head
        base = previous_deployed(store, anchor)
        if base is None:
            raise TriageError(
                f"no code version was deployed before {anchor[:10]} in the store; pass --base REV to compare"
            )
    for rev in (base, head):
        if not vcs.has_revision(repo, rev):
            raise TriageError(
                f"revision {rev[:10]} (from the traces) is not in the repository {vcs.repo_root(repo)}"
            )
    base, head = vcs.resolve(repo, base), vcs.resolve(repo, head)
    return SuspectChange(
        base=base,
        head=head,
        diff=vcs.diff(repo, base, head),
        files=[c.path for c in vcs.changed_files(repo, base, head)],
        commits=[f"{c.short} {c.summary}" for c in vcs.commits_between(repo, base, head)],
    )


def deploy_diff(repo: git.Repo, store: TraceSource, finding: Finding, traces: list[Trace]) -> str:
    """The suspect change's diff, or "" when there is none to be had (no earlier deploy, unknown revision).

    For a diagnosis that did not go through triage: a TriageVerdict carries the diff it judged."""
    from tracemend import vcs

    try:
        return suspect_change(repo, store, finding, traces).diff
    except (TriageError, vcs.VcsError):
        return ""


def files_diff(diff_text: str, paths: list[str]) -> str:
    """The parts of a unified diff that touch ``paths``."""
    chunks = re.split(r"(?m)^(?=diff --git )", diff_text)
    keep = [c for c in chunks if any(f" b/{p}" in c.split("\n", 1)[0] for p in paths)]
    return "".join(keep)


def changed_lines(diff_text: str) -> dict[str, list[tuple[int, str]]]:
    """Added/changed lines per file in the new version: {path: [(line_no, text)]}."""
    from unidiff import PatchSet

    out: dict[str, list[tuple[int, str]]] = {}
    try:
        patch = PatchSet(diff_text)
    except Exception:
        return out
    for pf in patch:
        path = pf.path
        for hunk in pf:
            for line in hunk:
                if line.is_added and line.target_line_no is not None:
                    out.setdefault(path, []).append((line.target_line_no, line.value.rstrip("\n")))
    return out


def link_frames(diff_text: str, traces: list[Trace], *, window: int = 3) -> list[str]:
    """Changed lines near an in-app frame of the finding's errors, as ``path:line: code (frame fn)``."""
    lines = changed_lines(diff_text)
    linked: list[str] = []
    for trace in traces:
        errors = [trace.error] if trace.error else []
        errors += [s.error for s in trace.spans if s.error]
        for err in errors:
            for e in err.chain():
                for frame in e.frames:
                    if not frame.in_app:
                        continue
                    for path, changed in lines.items():
                        if not (frame.file == path or frame.file.endswith("/" + path)):
                            continue
                        for no, text in changed:
                            if abs(no - frame.line) <= window:
                                item = f"{path}:{no}: {text.strip()}  (frame {frame.function}:{frame.line})"
                                if item not in linked:
                                    linked.append(item)
    return linked[:20]
