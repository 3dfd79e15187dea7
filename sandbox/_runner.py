"""The child side of a rerun: ``python -m tracemend.sandbox._runner SPEC.json RESULT.json``.

Runs with the worktree as working directory and its import roots first on ``sys.path`` (the parent puts
them on ``PYTHONPATH``; entries for the user's live checkout are removed here); calls the recorded entry
point with the recorded input and config through :mod:`tracemend.replay`; the call's trace goes to the
store named by ``TRACEMEND_RUN_DB`` (a temporary file the parent reads afterwards). The result file is
written only when the call returned or raised: if it is missing, the agent crashed the interpreter. A call
that cannot be made at all (entry point not importable, config rejected) is a ``setup_error``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any


class _FromWorktree(importlib.abc.MetaPathFinder):
    """Modules installed from the user's repository (e.g. an editable install) load from the worktree.

    Without this, an entry point whose package is installed in editable mode would import the user's
    files, not the patched copy.
    """

    def __init__(self, source_root: Path, worktree: Path) -> None:
        self.source = str(source_root.resolve()) + os.sep
        self.worktree = worktree.resolve()

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is None:
                continue
            origin = os.path.realpath(spec.origin) if spec.origin else ""
            if not origin.startswith(self.source):
                return spec
            mirrored = self.worktree / origin[len(self.source) :]
            if not mirrored.exists():
                return spec
            locations = [str(mirrored.parent)] if spec.submodule_search_locations is not None else None
            return importlib.util.spec_from_file_location(
                name, mirrored, submodule_search_locations=locations
            )
        return None


def main(spec_path: str, result_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    worktree = Path.cwd()
    from tracemend.project import import_roots, strip_live_roots

    for root in reversed(import_roots(worktree)):
        if str(root) not in sys.path:
            sys.path.insert(0, str(root))
    if spec.get("source_root") and Path(spec["source_root"]).resolve() != worktree.resolve():
        strip_live_roots(Path(spec["source_root"]), worktree)
        sys.meta_path.insert(0, _FromWorktree(Path(spec["source_root"]), worktree))

    import tracemend
    from tracemend import replay
    from tracemend.capture.errorinfo import FrameClassifier, error_info

    result: dict[str, Any]
    entry_point = spec["entry_point"]
    try:
        if entry_point.startswith("__main__:"):
            raise replay.ReplayError(
                f"{entry_point} was recorded from a script run as __main__, which cannot be imported again; "
                "move the function into a module and record it from there"
            )
        fn, args, kwargs = replay.prepare_call(
            entry_point,
            spec["input"],
            config=spec.get("config"),
            config_class=spec.get("config_class"),
            config_param=spec.get("config_param"),
            overrides=spec.get("overrides"),
        )
    except replay.ReplayError as exc:  # the harness could not make the call: not the code's result
        Path(result_path).write_text(
            json.dumps({"status": "setup_error", "error": {"type": "ReplayError", "message": str(exc)}})
        )
        return 0
    try:
        output = replay.call(fn, args, kwargs)
        result = {"status": "ok", "output": _jsonable(output)}
    except BaseException as exc:  # the agent's failure is the result being measured
        info = error_info(exc, FrameClassifier(worktree))
        result = {"status": "error", "error": info.model_dump(mode="json")}
    try:
        tracemend.flush()
    finally:
        Path(result_path).write_text(json.dumps(result, default=repr))
    return 0


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=repr))
    except (TypeError, ValueError):
        return repr(value)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
