"""The diagnosing agent's tools: read-only, confined to the repository, bounded in what they return.

Every argument comes from the model and is untrusted. Paths are resolved and must stay inside the
repository root (``..``, absolute paths and symlinks that lead out are refused, as is ``.git``); files that
hold secrets or that ``.gitignore`` hides are not readable, only regular files are opened, and searches run
in linear time (:mod:`tracemend.diagnose.files`). Every output is redacted like recorded data before the
model sees it, and truncated so a tool call cannot flood the context. A refused call returns an error text
to the model rather than raising, so the model can correct itself.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracemend.capture.redact import Redactor, default_redactor
from tracemend.diagnose.files import Deadline, FilePolicy, Pattern, read_regular
from tracemend.errors import ToolRefused
from tracemend.records import ErrorInfo, Span, Trace

MAX_RESULT_CHARS = 12_000
MAX_READ_LINES = 400
MAX_SEARCH_HITS = 60
MAX_LIST = 300
_SKIP_DIRS = {
    ".git",
    "__pycache__",
    ".tracemend",
    "node_modules",
    ".venv",
    "venv",
    ".mypy_cache",
    ".ruff_cache",
}


def _fn(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


TOOL_SPECS: list[dict[str, Any]] = [
    _fn(
        "read_file",
        "Read a text file of the repository, with line numbers. Use start_line/end_line for long files.",
        {
            "path": {"type": "string", "description": "path relative to the repository root"},
            "start_line": {"type": "integer", "minimum": 1},
            "end_line": {"type": "integer", "minimum": 1},
        },
        ["path"],
    ),
    _fn(
        "search_repo",
        "Search the repository's text files for a regular expression; returns path:line: text hits.",
        {
            "pattern": {"type": "string"},
            "glob": {"type": "string", "description": "only files matching this glob, e.g. *.py"},
        },
        ["pattern"],
    ),
    _fn(
        "list_files",
        "List files under a folder of the repository (recursively).",
        {"path": {"type": "string", "description": "folder relative to the root; '.' for the root"}},
        [],
    ),
    _fn(
        "show_trace",
        "Show a recorded trace: its input, output, span tree and the error with its frames.",
        {"trace_id": {"type": "string"}},
        ["trace_id"],
    ),
    _fn("show_suspect_diff", "Show the diff of the change suspected of causing the failure.", {}, []),
    _fn(
        "propose_fix",
        "Finish: give the root cause and the fix as SEARCH/REPLACE edit blocks. Each block is: the file path "
        "on its own line, then '<<<<<<< SEARCH', the exact current lines, '=======', the new lines, "
        "'>>>>>>> REPLACE'.",
        {
            "root_cause": {"type": "string", "description": "short, pointing at files and lines"},
            "locations": {
                "type": "array",
                "items": {"type": "string"},
                "description": "path:line or path:a-b",
            },
            "edits": {"type": "string", "description": "SEARCH/REPLACE blocks"},
            "explanation": {"type": "string"},
            "assertions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "plain-English statements a correct output satisfies, for the regression case",
            },
        },
        ["root_cause", "edits"],
    ),
]


@dataclass
class RepoTools:
    """The tools bound to one repository root, the traces to show and the suspect diff."""

    root: Path
    traces: dict[str, Trace] = field(default_factory=dict)
    suspect_diff: str = ""
    extra_text: dict[str, str] = field(default_factory=dict)  # e.g. {"build_log": ...}
    # Fetch a trace not preloaded (by id or prefix), e.g. from the store; None: only preloaded traces.
    fetch_trace: Callable[[str], Trace | None] | None = None
    # Globs of files readable even though they look secret or are git-ignored; None: from the settings.
    allow_files: tuple[str, ...] | None = None
    # Redacts every output; None: the project's redaction settings.
    redactor: Redactor | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.allow_files is None:
            from tracemend.settings import get

            self.allow_files = tuple(get("diagnose_allow_files", root=self.root))
        self.policy = FilePolicy(self.root, self.allow_files)
        if self.redactor is None:
            self.redactor = default_redactor()

    # --- confinement ---------------------------------------------------------------------------------

    def resolve(self, rel: Any, *, must_exist: bool = True) -> Path:
        if not isinstance(rel, str) or not rel.strip():
            raise ToolRefused("path must be a non-empty string")
        rel = rel.strip()
        if "\x00" in rel:
            raise ToolRefused("path contains a NUL byte")
        if os.path.isabs(rel) or rel.startswith("~"):
            raise ToolRefused(
                f"{rel}: absolute paths are outside the repository; use a path relative to the root"
            )
        candidate = self.root / rel
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError) as exc:
            raise ToolRefused(f"{rel}: cannot resolve ({exc})") from None
        if resolved != self.root and self.root not in resolved.parents:
            raise ToolRefused(f"{rel}: outside the repository (refused)")
        inside = resolved.relative_to(self.root)
        if inside.parts and inside.parts[0] == ".git":
            raise ToolRefused(f"{rel}: .git is not readable")
        if must_exist and not resolved.exists():
            raise ToolRefused(f"{rel}: no such file or folder in the repository")
        return resolved

    def _rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _walk(self, base: Path) -> list[Path]:
        out: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(base, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info"))
            for name in sorted(filenames):
                p = Path(dirpath) / name
                # A symlink that leads out of the repository is neither listed nor searched.
                try:
                    real = p.resolve()
                except OSError:
                    continue
                if real != self.root and self.root not in real.parents:
                    continue
                out.append(p)
        return out

    # --- tools ---------------------------------------------------------------------------------------

    def read_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        target = self.resolve(path)
        if target.is_dir():
            raise ToolRefused(f"{path}: is a folder; use list_files")
        rel = self._rel(target)
        refusal = self.policy.refusal(rel)
        if refusal:
            raise ToolRefused(refusal)
        try:
            data = read_regular(target, 2_000_000)
        except ToolRefused as exc:
            raise ToolRefused(f"{path}: {exc}") from None
        if b"\x00" in data[:8192]:
            raise ToolRefused(f"{path}: binary file")
        lines = data.decode("utf-8", errors="replace").splitlines()
        start = max(1, int(start_line or 1))
        end = min(len(lines), int(end_line or start + MAX_READ_LINES - 1), start + MAX_READ_LINES - 1)
        if start > len(lines) and lines:
            raise ToolRefused(f"{path}: has {len(lines)} lines; start_line {start} is past the end")
        body = "\n".join(f"{n:5d}  {lines[n - 1]}" for n in range(start, end + 1))
        more = (
            f"\n… ({len(lines) - end} more lines; ask with start_line={end + 1})" if end < len(lines) else ""
        )
        return f"{rel} lines {start}-{end} of {len(lines)}:\n{body}{more}"

    def search_repo(self, pattern: str, glob: str | None = None) -> str:
        if not isinstance(pattern, str) or not pattern:
            raise ToolRefused("pattern must be a non-empty string")
        rx = Pattern(pattern[:500])
        note = rx.note
        deadline = Deadline()
        hits: list[str] = []
        for p in self._walk(self.root):
            if deadline.passed():
                note += f"(search stopped after {deadline.seconds:g} s; narrow the glob)\n"
                break
            rel = self._rel(p)
            if glob and not (fnmatch.fnmatch(rel, glob) or fnmatch.fnmatch(p.name, glob)):
                continue
            if self.policy.refusal(rel):
                continue
            try:
                data = read_regular(p, 1_000_000)
            except ToolRefused:
                continue
            if b"\x00" in data[:4096]:
                continue
            for n, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
                if rx.search(line):
                    hits.append(f"{rel}:{n}: {line.strip()[:200]}")
                    if len(hits) >= MAX_SEARCH_HITS:
                        return note + "\n".join(hits) + "\n… (more hits; narrow the pattern or glob)"
        return note + ("\n".join(hits) if hits else "no matches")

    def list_files(self, path: str = ".") -> str:
        base = self.resolve(path or ".")
        if base.is_file():
            return self._rel(base)
        files = []
        for p in self._walk(base):
            rel = self._rel(p)
            if rel in self.policy.ignored:
                continue
            files.append(rel + ("  (not readable)" if self.policy.refusal(rel) else ""))
        more = f"\n… ({len(files) - MAX_LIST} more)" if len(files) > MAX_LIST else ""
        return "\n".join(files[:MAX_LIST]) + more if files else "(empty)"

    def show_trace(self, trace_id: str) -> str:
        if not isinstance(trace_id, str) or not trace_id.strip():
            raise ToolRefused("trace_id must be a non-empty string")
        key = trace_id.strip().lower()
        trace = next((t for tid, t in self.traces.items() if tid.startswith(key)), None)
        if trace is None and self.fetch_trace is not None and re.fullmatch(r"[0-9a-f]{4,32}", key):
            trace = self.fetch_trace(key)
        if trace is None:
            raise ToolRefused(f"no trace {trace_id!r}; known: {', '.join(t[:12] for t in self.traces)}")
        return render_trace(trace)

    def show_suspect_diff(self) -> str:
        return self.suspect_diff or "(no suspect change: the failure is not attributed to a recent change)"

    # --- dispatch ------------------------------------------------------------------------------------

    def call(self, name: str, arguments: dict[str, Any]) -> str:
        """Run one tool; refusals and bad arguments come back as text for the model."""
        handlers: dict[str, Callable[..., str]] = {
            "read_file": self.read_file,
            "search_repo": self.search_repo,
            "list_files": self.list_files,
            "show_trace": self.show_trace,
            "show_suspect_diff": self.show_suspect_diff,
        }
        handler = handlers.get(name)
        if handler is None:
            return f"error: unknown tool {name!r}; tools: {', '.join(handlers)}, propose_fix"
        if not isinstance(arguments, dict):
            return "error: arguments must be a JSON object"
        allowed = {
            "read_file": {"path", "start_line", "end_line"},
            "search_repo": {"pattern", "glob"},
            "list_files": {"path"},
            "show_trace": {"trace_id"},
            "show_suspect_diff": set(),
        }[name]
        args = {k: v for k, v in arguments.items() if k in allowed}
        try:
            out = handler(**args)
        except ToolRefused as exc:
            out = f"error: {exc}"
        except (TypeError, ValueError) as exc:
            out = f"error: bad arguments for {name}: {exc}"
        if self.redactor is not None:
            out = self.redactor.scrub(out)
        if len(out) > MAX_RESULT_CHARS:
            out = out[:MAX_RESULT_CHARS] + "\n… (truncated)"
        return out


def _error_text(err: ErrorInfo, indent: str = "") -> list[str]:
    lines = [f"{indent}{err.type}: {err.message[:1000]}"]
    for f in err.frames[-12:]:
        lines.append(f"{indent}  at {f.file}:{f.line} in {f.function}{'' if f.in_app else ' (library)'}")
    if err.cause is not None:
        lines.append(f"{indent}caused by ({err.cause_kind or 'cause'}):")
        lines += _error_text(err.cause, indent + "  ")
    return lines


def _j(value: Any, limit: int = 1500) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def render_trace(trace: Trace) -> str:
    """A trace as text for the model (and for people): input, output, span tree, error frames."""
    out = [
        f"trace {trace.trace_id} entry {trace.entry_point} status {trace.status} revision {trace.code_version.short}",
        f"input: {_j(trace.input)}",
    ]
    if trace.config:
        out.append(f"config: {_j(trace.config, 800)}")
    if trace.output is not None:
        out.append(f"output: {_j(trace.output)}")

    def walk(span: Span, depth: int) -> None:
        status = f" ERROR {span.error.type}" if span.error else ""
        out.append(f"{'  ' * depth}- [{span.kind}] {span.name}{status}")
        out.append(f"{'  ' * depth}    input: {_j(span.input, 400)}")
        if span.output is not None:
            out.append(f"{'  ' * depth}    output: {_j(span.output, 400)}")
        for child in trace.children(span.span_id):
            walk(child, depth + 1)

    if trace.spans:
        out.append("spans:")
        for root in trace.children(None):
            walk(root, 1)
    if trace.error:
        out.append("error:")
        out += _error_text(trace.error, "  ")
    return "\n".join(out)
