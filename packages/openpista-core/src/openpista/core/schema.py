"""Checking tool arguments against a tool's JSON schema, with problems phrased for the LLM.

A deliberately small subset of JSON Schema, the part tool schemas use: `type` (one or a list),
`properties`, `required`, `additionalProperties` (a boolean), `enum`, `items`, `minimum`,
`maximum`, `minLength`, `maxLength`, `minItems`, `maxItems`. Other keywords are ignored, so a
richer schema is accepted and checked as far as this subset goes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, cast

_TYPE_ARTICLES = {
    "object": "an object",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "array": "an array",
    "null": "null",
}
_SHOWN_VALUE_CHARS = 40


def validate_arguments(schema: Mapping[str, Any], value: object) -> list[str]:
    """The problems with `value` under `schema`, one readable line each; empty when valid.

    Problems name where they are (`options.depth`, `paths[2]`), e.g.
    "command: expected a string, got number 5" or "missing required property 'command'".
    """
    problems: list[str] = []
    _check(schema, value, "", problems)
    return problems


def _check(schema: Mapping[str, Any], value: object, path: str, problems: list[str]) -> None:
    expected = schema.get("type")
    if expected is not None:
        types = cast("list[str]", expected if isinstance(expected, list) else [expected])
        if not any(_is_type(value, name) for name in types):
            wanted = " or ".join(_TYPE_ARTICLES.get(name, repr(name)) for name in types)
            problems.append(f"{_where(path)}expected {wanted}, got {_describe(value)}")
            # Deeper checks on a value of the wrong type would only repeat the same complaint.
            return

    enum = schema.get("enum")
    if isinstance(enum, list):
        options = cast("list[object]", enum)
        if not any(_json_equal(value, option) for option in options):
            shown = ", ".join(_show(option) for option in options)
            problems.append(f"{_where(path)}must be one of {shown}, got {_show(value)}")

    if isinstance(value, dict):
        _check_object(schema, cast("dict[str, object]", value), path, problems)
    elif isinstance(value, list):
        _check_array(schema, cast("list[object]", value), path, problems)
    elif isinstance(value, str):
        _check_string(schema, value, path, problems)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, path, problems)


def _check_object(
    schema: Mapping[str, Any], value: dict[str, object], path: str, problems: list[str]
) -> None:
    properties = cast("Mapping[str, Any]", schema.get("properties") or {})
    for name in cast("list[str]", schema.get("required") or []):
        if name not in value:
            problems.append(f"{_where(path)}missing required property '{name}'")
    for name, item in value.items():
        item_schema = properties.get(name)
        if isinstance(item_schema, Mapping):
            _check(cast("Mapping[str, Any]", item_schema), item, _join(path, name), problems)
        elif schema.get("additionalProperties") is False:
            allowed = ", ".join(properties) or "none"
            problems.append(
                f"{_where(path)}unexpected property '{name}' (allowed properties: {allowed})"
            )


def _check_array(
    schema: Mapping[str, Any], value: list[object], path: str, problems: list[str]
) -> None:
    min_items = schema.get("minItems")
    if isinstance(min_items, int) and len(value) < min_items:
        problems.append(f"{_where(path)}expected at least {min_items} items, got {len(value)}")
    max_items = schema.get("maxItems")
    if isinstance(max_items, int) and len(value) > max_items:
        problems.append(f"{_where(path)}expected at most {max_items} items, got {len(value)}")
    items = schema.get("items")
    if isinstance(items, Mapping):
        item_schema = cast("Mapping[str, Any]", items)
        for index, item in enumerate(value):
            _check(item_schema, item, f"{path or 'arguments'}[{index}]", problems)


def _check_string(schema: Mapping[str, Any], value: str, path: str, problems: list[str]) -> None:
    min_length = schema.get("minLength")
    if isinstance(min_length, int) and len(value) < min_length:
        problems.append(
            f"{_where(path)}expected at least {min_length} characters, got {len(value)}"
        )
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and len(value) > max_length:
        problems.append(f"{_where(path)}expected at most {max_length} characters, got {len(value)}")


def _check_number(schema: Mapping[str, Any], value: float, path: str, problems: list[str]) -> None:
    minimum = schema.get("minimum")
    if _is_number(minimum) and value < cast("float", minimum):
        problems.append(f"{_where(path)}must be at least {_show(minimum)}, got {_show(value)}")
    maximum = schema.get("maximum")
    if _is_number(maximum) and value > cast("float", maximum):
        problems.append(f"{_where(path)}must be at most {_show(maximum)}, got {_show(value)}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: object, name: str) -> bool:
    # bool is a subclass of int in Python; in JSON true is never a number.
    match name:
        case "object":
            return isinstance(value, dict)
        case "string":
            return isinstance(value, str)
        case "number":
            return _is_number(value)
        case "integer":
            if isinstance(value, bool):
                return False
            return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
        case "boolean":
            return isinstance(value, bool)
        case "array":
            return isinstance(value, list)
        case "null":
            return value is None
        case _:
            # An unknown type name in a tool's own schema is the tool's bug, not the LLM's.
            return True


def _json_equal(left: object, right: object) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return left == right


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {_show(value)}"
    if isinstance(value, int | float):
        return f"number {_show(value)}"
    if isinstance(value, str):
        return f"string {_show(value)}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        text = text[: _SHOWN_VALUE_CHARS - 3] + "..."
    return text


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _where(path: str) -> str:
    return f"{path}: " if path else ""
