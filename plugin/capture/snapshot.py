"""Copies of builtin containers taken on the hot path, so later mutation does not rewrite what was recorded.

Builtin containers (list, dict, set, tuple) are copied at call entry, up to ``FREEZE_BUDGET`` containers
and ``FREEZE_DEPTH`` levels; other objects (pydantic models, class instances) are kept by reference and
serialised by the writer shortly after the call ends.
"""

from __future__ import annotations

from typing import Any

FREEZE_BUDGET = 1000
FREEZE_DEPTH = 32
IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes, complex})


def freeze(value: Any, memo: dict[int, Any], depth: int = 0) -> Any:
    """A copy of builtin containers at call time.

    ``memo`` maps each container already copied (by id) to its copy, as ``copy.deepcopy`` does: shared
    and self-containing structures stay shared and cyclic in the copy (the encoder then marks the cycle).
    Bounded in nodes (``FREEZE_BUDGET``) and depth (``FREEZE_DEPTH``); beyond that, values are kept
    by reference rather than recursing towards the interpreter's limit.
    """
    cls = type(value)
    if cls in IMMUTABLE or depth >= FREEZE_DEPTH:
        return value
    if cls is not list and cls is not dict and cls is not tuple and cls is not set:
        return value
    key = id(value)
    copied = memo.get(key)
    if copied is not None:
        return copied
    if len(memo) >= FREEZE_BUDGET:
        return value
    depth += 1
    if cls is list:
        out_list: list[Any] = []
        memo[key] = out_list
        out_list.extend([freeze(v, memo, depth) for v in value])
        return out_list
    if cls is dict:
        out_dict: dict[Any, Any] = {}
        memo[key] = out_dict
        for k, v in value.items():
            out_dict[k] = freeze(v, memo, depth)
        return out_dict
    if cls is tuple:
        memo[key] = value  # a tuple cannot hold itself except through a list or dict copied above
        out_tuple = tuple([freeze(v, memo, depth) for v in value])
        memo[key] = out_tuple
        return out_tuple
    memo[key] = out_set = set(value)
    return out_set


def freeze_args(args: tuple[Any, ...]) -> tuple[Any, ...]:
    for a in args:
        if type(a) not in IMMUTABLE:
            memo: dict[int, Any] = {}
            return tuple([freeze(v, memo) for v in args])
    return args


def freeze_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    for v in kwargs.values():
        if type(v) not in IMMUTABLE:
            memo: dict[int, Any] = {}
            return {k: freeze(v, memo) for k, v in kwargs.items()}
    return kwargs
