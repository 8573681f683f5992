"""Turning pydantic's validation errors into `FILE:LINE: path: what is wrong, what is allowed`.

Pydantic's own messages ("Input should be greater than or equal to 0") name neither the key's purpose nor the full
allowed range, and its unknown-key error suggests nothing. Here each error type is reworded using the field's own
constraints, and an unknown key is compared with the keys valid at that place.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence
from typing import Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from agent.config.issues import ConfigIssue, format_path
from agent.config.secrets import SECRET_KEYS
from agent.config.yamlsource import LineMap

Loc = tuple[str | int, ...]


def issues_from_validation(
    exc: ValidationError, root: type[BaseModel], file: str, lines: LineMap
) -> list[ConfigIssue]:
    """Every pydantic error as a ConfigIssue, with cross-field errors expanded to the keys they name."""
    errors = exc.errors(include_url=False)
    deeper = {tuple(e["loc"][:n]) for e in errors for n in range(len(e["loc"]))}
    issues = []
    for error in errors:
        if error["type"] == "too_short" and tuple(error["loc"]) in deeper:
            continue  # pydantic counts only the valid items; the invalid item's own error says what is wrong
        for loc, message in _expand(error, root):
            issues.append(ConfigIssue(file, lines.line_for(loc), format_path(loc), message))
    return issues


def _expand(error: ErrorDetails, root: type[BaseModel]) -> Iterator[tuple[Loc, str]]:
    loc: Loc = tuple(p for p in error["loc"] if p != "[key]")
    ctx = error.get("ctx") or {}
    if error["type"] == "cross_field":
        for sub, message in ctx.get("issues", ()):
            yield (*loc, *sub), message
        return
    if error["type"] == "extra_forbidden":
        yield loc, _unknown_key(loc, root)
        return
    yield loc, _describe(error, loc, root)


def _unknown_key(loc: Loc, root: type[BaseModel]) -> str:
    key = str(loc[-1])
    model = _model_at(root, loc[:-1])
    allowed = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key '{key}', did you mean '{close[0]}'?"
    if allowed:
        return f"unknown key '{key}'; allowed keys here: {', '.join(allowed)}"
    return f"unknown key '{key}'"


def _describe(error: ErrorDetails, loc: Loc, root: type[BaseModel]) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    info = _field_at(root, loc)
    secret = bool(loc) and str(loc[-1]) in SECRET_KEYS
    got = "" if secret else f", got {_show(error.get('input'))}"
    in_polygon = "masks" in loc or "zones" in loc
    if kind == "missing":
        what = f" ({info.description})" if info is not None and info.description else ""
        return f"required key is missing{what}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"must be a whole number{_range(info, ctx)}{got}"
    if kind in ("float_type", "float_parsing", "finite_number"):
        return f"must be a number{_range(info, ctx)}{got}"
    if kind in ("bool_type", "bool_parsing"):
        return f"must be true or false{got}"
    if kind == "string_type":
        return f"must be text (quote it if it looks like a number or yes/no){got}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        if in_polygon:
            return f"point coordinates must be from 0 to 1 (fractions of the image width and height){got}"
        extra = info.json_schema_extra if info is not None else None
        if isinstance(extra, dict) and extra.get("type_name") == "size" and "ge" in ctx:
            return f"is too small; allowed: {_size(int(ctx['ge']))} or more{got}"
        return f"is out of range; allowed: {_range(info, ctx).removeprefix(' ') or 'see docs'}{got}"
    if kind in ("enum", "literal_error"):
        return f"{_show(error.get('input'))} is not allowed; allowed: {ctx.get('expected', '?')}"
    if kind == "too_short":
        if in_polygon:
            return f"a polygon needs at least 3 points [x, y], got {ctx.get('actual_length', '?')}"
        return f"needs at least {ctx.get('min_length')} item(s), got {ctx.get('actual_length', '?')}"
    if kind == "too_long":
        return f"has too many items; at most {ctx.get('max_length')}"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"is too long; at most {ctx.get('max_length')} characters"
    if kind in ("list_type", "tuple_type", "sequence_str", "set_type"):
        return f"must be a list (one item per line, each starting with '- '){got}"
    if kind in ("model_type", "model_attributes_type", "dict_type", "dataclass_type"):
        return f"must be a mapping (indented 'key: value' lines){got}"
    if kind in ("byte_size", "byte_size_unit"):
        return f"must be a size such as 256MiB, 500MB or 1GiB{got}"
    if kind == "invalid_key":
        return f"key {_show(error.get('input'))} is not text; keys are names such as site_id or a quoted 'name'"
    if kind == "none_required":
        return "must be empty"
    message = str(error.get("msg", "invalid value"))
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _size(count: int) -> str:
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= factor and count % factor == 0:
            return f"{count // factor}{unit}"
    return f"{count} bytes"


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if value is None:
        return "nothing (an empty value)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _range(info: FieldInfo | None, ctx: dict[str, Any]) -> str:
    bounds: dict[str, Any] = {k: ctx[k] for k in ("gt", "ge", "lt", "le") if k in ctx}
    for meta in info.metadata if info is not None else ():
        for key in ("gt", "ge", "lt", "le"):
            if isinstance(meta, getattr(annotated_types, key.capitalize())):
                bounds[key] = getattr(meta, key)
    low = f"more than {bounds['gt']:g}" if "gt" in bounds else (f"from {bounds['ge']:g}" if "ge" in bounds else "")
    high = f"below {bounds['lt']:g}" if "lt" in bounds else (f"up to {bounds['le']:g}" if "le" in bounds else "")
    if "ge" in bounds and "le" in bounds:
        return f" from {bounds['ge']:g} to {bounds['le']:g}"
    if low and high:
        return f" {low}, {high}"
    if "ge" in bounds:
        return f" {bounds['ge']:g} or more"
    return f" {low or high}" if low or high else ""


def _unwrap(annotation: Any, step: str | int | None) -> Any:
    """The type reached from `annotation` by one location step (a list index, a dict key, or nothing)."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            break
    if step is None:
        return annotation
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (tuple, list) and args:
        return _unwrap(args[0], None)
    if origin is dict and len(args) == 2:
        return _unwrap(args[1], None)
    return None


def _walk(root: type[BaseModel], loc: Sequence[str | int]) -> tuple[Any, FieldInfo | None]:
    current: Any = root
    info: FieldInfo | None = None
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel) and isinstance(part, str):
            info = current.model_fields.get(part)
            if info is None:
                return None, None
            current = _unwrap(info.annotation, None)
        else:
            info = None
            current = _unwrap(current, part)
            if current is None:
                return None, None
    return current, info


def _model_at(root: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    current, _ = _walk(root, loc)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_at(root: type[BaseModel], loc: Sequence[str | int]) -> FieldInfo | None:
    return _walk(root, loc)[1]
