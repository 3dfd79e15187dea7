"""Call a recorded entry point again with its recorded input and config (used by reruns and regression cases).

A trace stores the root call's arguments by parameter name, the config snapshot, the config's class and
the parameter it was passed as. Here they become a call again: the entry point is imported, the config is
rebuilt as an instance of its class (with optional overrides), and the input is bound to the signature.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tracemend.errors import ReplayError

# Folders inside a project that hold installed code, not the project's own.
_NOT_THE_PROJECT = {
    ".venv", "venv", ".env", "env", "site-packages", "dist-packages", "node_modules", ".tox", ".nox",
    "__pypackages__", ".git", ".tracemend",
}  # fmt: skip


def _import_qualified(path: str) -> Any:
    """``package.module:Qual.name`` → the object."""
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ReplayError(f"{path!r} is not of the form module:qualname")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ReplayError(f"cannot import {module_name!r}: {exc}") from exc
    for part in qualname.split("."):
        if part == "<locals>":
            raise ReplayError(f"{path!r} is defined inside a function and cannot be imported")
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ReplayError(f"{module_name!r} has no attribute {qualname!r}") from exc
    return obj


def _inside(location: str | None, root: Path) -> bool:
    if not location or location in ("built-in", "frozen"):
        return False
    real = Path(os.path.realpath(location))
    try:
        rel = real.relative_to(root)
    except ValueError:
        return False
    return not any(part in _NOT_THE_PROJECT or part.endswith(".egg-info") for part in rel.parts)


def check_project_code(path: str, *, root: Path, allow: Iterable[str] = ()) -> None:
    """Refuse ``module:qualname`` unless its module is a file of the project under ``root`` (installed
    environments inside it excluded) or it matches a pattern of ``allow`` (``[tool.tracemend]
    allow_entry_points``, globs on ``module:qualname``).

    Modules are located, not run: each package on the way is checked before anything of it is imported.
    """
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in allow):
        return
    module_name, sep, qualname = path.partition(":")
    if not sep or not module_name or not qualname:
        raise ReplayError(f"{path!r} is not of the form module:qualname")
    root = Path(os.path.realpath(root))
    parts = module_name.split(".")
    for depth in range(1, len(parts) + 1):
        name = ".".join(parts[:depth])
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError) as exc:
            raise ReplayError(f"cannot import {name!r}: {exc}") from exc
        if spec is None:
            raise ReplayError(f"cannot import {module_name!r}: no module named {name!r}")
        places = [spec.origin] if spec.origin else list(spec.submodule_search_locations or [])
        if not places or not all(_inside(place, root) for place in places):
            where = spec.origin or ", ".join(places) or "nowhere on disk"
            raise ReplayError(
                f"{path!r} is not code of the project at {root} ({name} is {where}); refused. To run it "
                "anyway, list it in [tool.tracemend] allow_entry_points"
            )


def load_entry_point(entry_point: str) -> Callable[..., Any]:
    obj = _import_qualified(entry_point)
    if not callable(obj):
        raise ReplayError(f"{entry_point!r} is not callable")
    return obj


def apply_overrides(config: dict[str, Any] | None, overrides: dict[str, Any] | None) -> dict[str, Any] | None:
    """Config overrides as ``{"model": "x", "temperature": 0}``; dotted keys reach into nested dicts."""
    if not overrides:
        return config
    out: dict[str, Any] = dict(config or {})
    for key, value in overrides.items():
        target = out
        parts = key.split(".")
        for part in parts[:-1]:
            nested = target.get(part)
            target[part] = dict(nested) if isinstance(nested, dict) else {}
            target = target[part]
        target[parts[-1]] = value
    return out


def rebuild_config(config_class: str | None, snapshot: dict[str, Any] | None) -> Any:
    """The config object the call ran with: an instance of its recorded class, or the plain dict."""
    if snapshot is None:
        return None
    if not config_class:
        return snapshot
    cls = _import_qualified(config_class)
    validate = getattr(cls, "model_validate", None)
    try:
        return validate(snapshot) if callable(validate) else cls(**snapshot)
    except Exception as exc:
        raise ReplayError(f"cannot rebuild config {config_class} from the recorded snapshot: {exc}") from exc


def bind_input(fn: Callable[..., Any], recorded: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Positional and keyword arguments for ``fn`` from inputs recorded by parameter name."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return (), dict(recorded)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    remaining = dict(recorded)
    params = list(signature.parameters.values())
    # Extra positional values (*args) can only follow the named positional parameters given by
    # position; passing those by keyword as well would bind them twice.
    star = next((p for p in params if p.kind is p.VAR_POSITIONAL), None)
    by_position = star is not None and bool(remaining.get(star.name))
    for param in params:
        if param.name in ("self", "cls") and param.name not in remaining:
            continue
        positional = param.kind is param.POSITIONAL_ONLY or (
            by_position and param.kind is param.POSITIONAL_OR_KEYWORD
        )
        if param.name not in remaining:
            if by_position and positional:
                if param.default is param.empty:
                    raise ReplayError(f"recorded input lacks {param.name!r}, needed before *{star.name}")
                args.append(param.default)  # a gap before *args: fill it with the default
            continue
        value = remaining.pop(param.name)
        if param.kind is param.VAR_POSITIONAL:
            args.extend(value if isinstance(value, list | tuple) else [value])
        elif param.kind is param.VAR_KEYWORD:
            kwargs.update(value if isinstance(value, dict) else {})
        elif positional:
            args.append(value)
        else:
            kwargs[param.name] = value
    if remaining:
        raise ReplayError(f"recorded input has arguments the function no longer takes: {sorted(remaining)}")
    # Positional-only values must precede keywords; positional-or-keyword go as keywords (order-free).
    kwargs = _rebuild_models(fn, params, args, kwargs)
    return tuple(args), kwargs


def _model_class(annotation: Any) -> Any:
    """The pydantic model class an annotation names (``Model``, ``Model | None``), else None."""
    import typing

    for candidate in typing.get_args(annotation) or (annotation,):
        if isinstance(candidate, type) and callable(getattr(candidate, "model_validate", None)):
            return candidate
    return None


def _rebuild_models(
    fn: Callable[..., Any], params: list[inspect.Parameter], args: list[Any], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """Arguments annotated with a pydantic model were recorded as dicts: validate them back into the model
    (a shop's settings object, a request model), so the call gets what it got in production."""
    import typing

    try:
        hints = typing.get_type_hints(fn)
    except Exception:  # unresolvable forward references: pass the values as recorded
        return kwargs
    for name, value in list(kwargs.items()):
        cls = _model_class(hints.get(name)) if isinstance(value, dict) else None
        if cls is not None:
            try:
                kwargs[name] = cls.model_validate(value)
            except Exception as exc:
                raise ReplayError(f"cannot rebuild argument {name!r} as {cls.__name__}: {exc}") from exc
    positional = [p for p in params if p.kind is p.POSITIONAL_ONLY]
    for index, param in enumerate(positional[: len(args)]):
        cls = _model_class(hints.get(param.name)) if isinstance(args[index], dict) else None
        if cls is not None:
            args[index] = cls.model_validate(args[index])
    return kwargs


def prepare_call(
    entry_point: str,
    recorded_input: dict[str, Any],
    *,
    config: dict[str, Any] | None = None,
    config_class: str | None = None,
    config_param: str | None = None,
    overrides: dict[str, Any] | None = None,
    check: Callable[[str], None] | None = None,
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """Everything needed to call the entry point again: ``fn(*args, **kwargs)``.

    ``check`` is called with the entry point and the config class before either is imported, and raises
    :class:`ReplayError` to refuse one (see :func:`check_project_code`).
    """
    if check is not None:
        check(entry_point)
        if config_param and config_class:
            check(config_class)
    fn = load_entry_point(entry_point)
    recorded = dict(recorded_input)
    if config_param:
        snapshot = apply_overrides(config if config is not None else recorded.get(config_param), overrides)
        recorded[config_param] = rebuild_config(config_class, snapshot)
    elif overrides:
        raise ReplayError(
            "config overrides need the config to be passed as an argument; this entry point's config "
            "was set on the decorator"
        )
    args, kwargs = bind_input(fn, recorded)
    return fn, args, kwargs


def call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call sync or async entry points alike; generators are consumed into a list."""
    result = fn(*args, **kwargs)
    if inspect.isawaitable(result):
        import asyncio

        result = asyncio.run(_await(result))
    elif inspect.isgenerator(result):
        result = list(result)
    elif inspect.isasyncgen(result):
        import asyncio

        result = asyncio.run(_collect(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


async def _collect(agen: Any) -> list[Any]:
    return [item async for item in agen]
