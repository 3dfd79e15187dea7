"""What ``@track`` learns about a function once, at decoration time: names, signature, where its config is."""

from __future__ import annotations

import inspect
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

from tracemend.capture.state import STATE, CallSpec, add_config_type

# Kept literal (not imported from records) so that importing tracemend does not import pydantic.
SPAN_KINDS = ("agent", "llm", "tool", "retrieval", "general")
# A keyword-only config parameter is never at a positional index.
KEYWORD_ONLY_INDEX = 10**6


def make_spec(
    fn: Callable[..., Any],
    *,
    name: str | None,
    kind: str,
    capture_input: bool,
    capture_output: bool,
    config: Any,
    tags: list[str] | tuple[str, ...] | None,
) -> CallSpec:
    if kind not in SPAN_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SPAN_KINDS)}; got {kind!r}")
    spec = CallSpec()
    # Callable objects and functools.partial have no __name__ / __qualname__ of their own.
    fn_name = getattr(fn, "__name__", None) or type(fn).__name__
    qualname = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    module = getattr(fn, "__module__", None) or type(fn).__module__
    spec.name = name or fn_name
    spec.kind = kind
    spec.entry_point = f"{module}:{qualname}"
    spec.capture_input = capture_input
    spec.capture_output = capture_output
    spec.config = config
    spec.tags = tuple(tags or ())
    _note_opik_config()
    spec.config_param = None
    spec.config_index = None
    try:
        spec.signature = inspect.signature(fn)
    except (TypeError, ValueError):
        spec.signature = None
    params = list(spec.signature.parameters.values()) if spec.signature else []
    spec.skip_first = bool(params) and params[0].name in ("self", "cls")
    if config is None and params:
        _find_config_param(fn, params, spec)
    return spec


def _find_config_param(fn: Callable[..., Any], params: list[inspect.Parameter], spec: CallSpec) -> None:
    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: fall back to scanning the arguments
        hints = {}
    for index, param in enumerate(params):
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue  # keyword-only parameters after *args may still be the config
        annotated = _is_config_annotation(hints.get(param.name), STATE.config_types)
        named = param.name in ("config", "agent_config") and _may_hold_config(hints.get(param.name, Any))
        if annotated or named:
            spec.config_param = param.name
            spec.config_index = index if param.kind != param.KEYWORD_ONLY else KEYWORD_ONLY_INDEX
            return


def _note_opik_config() -> None:
    opik = sys.modules.get("opik")  # only if the app already imported it: we never import opik here
    opik_config = getattr(opik, "Config", None) if opik is not None else None
    if isinstance(opik_config, type):
        add_config_type(opik_config)


def _is_config_annotation(annotation: Any, config_types: tuple[type, ...]) -> bool:
    candidates = typing.get_args(annotation) or (annotation,)
    return any(isinstance(c, type) and issubclass(c, config_types) for c in candidates)


def _may_hold_config(annotation: Any) -> bool:
    # A parameter named "config" counts unless its annotation rules a config out (``config: str``):
    # unannotated, Any, dicts, mappings and unions holding one of those are accepted.
    if annotation is Any:
        return True
    candidates = (
        typing.get_args(annotation)
        if typing.get_origin(annotation) in (typing.Union, types.UnionType)
        else (annotation,)
    )
    for c in candidates:
        origin = typing.get_origin(c) or c
        if c is Any or (
            isinstance(origin, type) and issubclass(origin, (dict, Mapping, *STATE.config_types))
        ):
            return True
    return False
