"""Failure → signature: the stable fingerprint that groups failures of one kind.

A signature is the exception type chain (causes included), the top in-app frame as ``module:function``
(never a line number, so an unrelated edit above it does not re-key it) and the message with its
parameters replaced by ``<*>``. Failures that are not exceptions (a failed assertion, an error status
set by the agent) get a signature from that failure.

Parameterization is one pass of a single compiled regular expression with a constant replacement (the
work stays in C, which is what makes it fast), followed by whitespace normalisation and the merging of
adjacent placeholders, so one slot gets one ``<*>`` whatever the shape of its value (``host:port``, an
IP, a URL). Messages are cut to a fixed length only after that, so two messages that differ only in
their parameters never differ in the cut.

``SIGNATURE_VERSION`` is stored with every signature: changing the algorithm bumps it, and stored
history is never silently re-keyed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tracemend.analyze.grouping import DEFAULT_GROUPING, generalize
from tracemend.analyze.masks import DEFAULT_MASKER, MAX_TEMPLATE_CHARS, PLACEHOLDER

if TYPE_CHECKING:  # records imports pydantic; keep this module cheap to import
    from tracemend.records import Signature, Trace

SIGNATURE_VERSION = 2
__all__ = [
    "ERROR_STATUS_TYPE",
    "FAILED_ASSERTION_TYPE",
    "MAX_TEMPLATE_CHARS",
    "PLACEHOLDER",
    "SIGNATURE_VERSION",
    "clear_caches",
    "merge_templates",
    "signature_from_dict",
    "signature_id",
    "signature_of",
    "signature_parts",
    "template",
    "template_uncached",
]
FAILED_ASSERTION_TYPE = "tracemend.FailedAssertion"
ERROR_STATUS_TYPE = "tracemend.ErrorStatus"

_MASKER = DEFAULT_MASKER


def template(message: str) -> str:
    """The message with its parameters replaced by ``<*>``: the per-message template.

    Deterministic and context-free (``masks``): the result depends on this message alone, so a
    signature keyed on it is stable across processes and over time. Equal outputs mean the same
    per-message group; the corpus pass (``grouping``) may join groups of one family further.
    """
    return _MASKER.template(message)


def template_uncached(message: str) -> str:
    """``template`` without the message cache (for benchmarks of the cold path)."""
    return _MASKER.template_uncached(message)


def clear_caches() -> None:
    _MASKER.clear()


def merge_templates(templates: Iterable[str], min_variants: int | None = None) -> dict[str, str]:
    """The corpus pass over one family's templates (``grouping.generalize``), template → group template."""
    rules = DEFAULT_GROUPING if min_variants is None else replace(DEFAULT_GROUPING, min_variants=min_variants)
    return generalize(templates, rules)


# --- signatures of traces -----------------------------------------------------------------------


def _module_from_file(path: str) -> str:
    stem = path.replace("\\", "/")
    if stem.endswith(".py"):
        stem = stem[:-3]
    if stem.endswith("/__init__"):
        stem = stem[: -len("/__init__")]
    return stem.strip("/").replace("/", ".")


def _digest(parts: list[str]) -> str:
    h = hashlib.blake2b(digest_size=8)
    h.update(f"v{SIGNATURE_VERSION}".encode())
    for part in parts:
        h.update(b"\x1f")
        h.update(part.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def signature_id(kind: str, types: list[str], frame: str | None, template_text: str) -> str:
    """The id of a signature: a digest of its parts and ``SIGNATURE_VERSION``.

    ``kind`` is "exception" for every raised error (an assertion that raised included), so the id
    depends on what failed, not on how the trace's status was set.
    """
    return _digest([kind, *types, frame or "", template_text])


def signature_of(trace: Trace) -> Signature:
    """The signature of a failing trace (an error, a failed assertion or an error status)."""
    from tracemend.records import Signature

    error = trace.error.model_dump(mode="json") if trace.error is not None else None
    sig_id, kind, types, frame, tmpl = signature_from_dict(
        error, trace.status, trace.entry_point, trace.metadata, trace.output
    )
    return Signature(
        signature_id=sig_id,
        signature_version=SIGNATURE_VERSION,
        kind=kind,  # type: ignore[arg-type]
        exception_types=types,
        frame=frame,
        template=tmpl,
    )


def signature_from_dict(
    error: dict[str, Any] | None,
    status: str,
    entry_point: str,
    metadata: dict[str, Any] | None = None,
    output: Any = None,
) -> tuple[str, str, list[str], str | None, str]:
    """Fast path for scans over raw stored JSON: (signature_id, kind, types, frame, template).

    Equal to ``signature_of`` on the parsed trace, without building pydantic models. The capture
    layer stores a failure that raised nothing as an error of type ``tracemend.FailedAssertion`` or
    ``tracemend.ErrorStatus`` without frames; that gets the same signature as the bare status.
    """
    id_kind, kind, types, frame, tmpl = signature_parts(
        error, status, entry_point, metadata, output, template
    )
    return signature_id(id_kind, types, frame, tmpl), kind, types, frame, tmpl


def signature_parts(
    error: dict[str, Any] | None,
    status: str,
    entry_point: str,
    metadata: dict[str, Any] | None,
    output: Any,
    template_of: Callable[[str], str],
) -> tuple[str, str, list[str], str | None, str]:
    """(kind the id is computed with, kind, types, frame, template) of a stored failure."""
    status_message = ""
    is_status = error and error.get("type") in (FAILED_ASSERTION_TYPE, ERROR_STATUS_TYPE)
    if is_status and not error.get("frames") and not error.get("cause"):  # type: ignore[union-attr]
        status = "failed_assertion" if error["type"] == FAILED_ASSERTION_TYPE else "error"  # type: ignore[index]
        status_message = error.get("message") or ""  # type: ignore[union-attr]
        error = None
    if error:
        chain: list[dict[str, Any]] = []
        err: dict[str, Any] | None = error
        while err is not None and len(chain) < 32:
            chain.append(err)
            err = err.get("cause")
        types = [e.get("type", "") for e in chain]
        frame = None
        for e in reversed(chain):
            for fr in reversed(e.get("frames") or ()):
                if fr.get("in_app"):
                    module = fr.get("module") or _module_from_file(fr.get("file", ""))
                    frame = f"{module}:{fr.get('function', '')}"
                    break
            if frame:
                break
        tmpl = ""
        for e in chain:
            msg = e.get("message") or ""
            if msg.strip():
                tmpl = template_of(msg)
                break
        # An assertion that raised is still an assertion failure, for display; the id is the error's.
        kind = "failed_assertion" if status == "failed_assertion" else "exception"
        return "exception", kind, types, frame, tmpl
    kind = "failed_assertion" if status == "failed_assertion" else "error_status"
    etype = FAILED_ASSERTION_TYPE if kind == "failed_assertion" else ERROR_STATUS_TYPE
    msg = status_message
    meta = {} if msg else (metadata or {})
    for key in ("assertion", "failed_assertion", "error", "error_message", "reason", "message"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            msg = value
            break
        if isinstance(value, dict):
            for sub in ("assertion", "message", "reason", "name"):
                if isinstance(value.get(sub), str):
                    msg = value[sub]
                    break
            if msg:
                break
    if not msg and isinstance(output, dict) and not status_message:
        for key in ("error", "reason", "message"):
            if isinstance(output.get(key), str):
                msg = output[key]
                break
    tmpl = template_of(msg) if msg else ""
    frame = entry_point or None
    return kind, kind, [etype], frame, tmpl
