"""Tool argument checking: what the LLM is told when its arguments do not fit the schema."""

from __future__ import annotations

from typing import Any

import pytest

from openpista.core.schema import validate_arguments

RUN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {"type": "string", "minLength": 1},
        "cwd": {"type": "string"},
        "timeout_s": {"type": "number", "minimum": 1, "maximum": 600},
    },
    "required": ["command"],
    "additionalProperties": False,
}


def test_valid_arguments_have_no_problems() -> None:
    assert validate_arguments(RUN_SCHEMA, {"command": "ls", "timeout_s": 5}) == []
    assert validate_arguments(RUN_SCHEMA, {"command": "ls", "cwd": "/tmp", "timeout_s": 2.5}) == []


def test_wrong_type_names_the_property_and_the_value() -> None:
    assert validate_arguments(RUN_SCHEMA, {"command": 5}) == [
        "command: expected a string, got number 5"
    ]


def test_missing_required_property() -> None:
    assert validate_arguments(RUN_SCHEMA, {}) == ["missing required property 'command'"]


def test_unexpected_property_lists_the_allowed_ones() -> None:
    assert validate_arguments(RUN_SCHEMA, {"command": "ls", "shell": "zsh"}) == [
        "unexpected property 'shell' (allowed properties: command, cwd, timeout_s)"
    ]


def test_additional_properties_are_allowed_unless_refused() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert validate_arguments(schema, {"a": "x", "b": 1}) == []


def test_several_problems_are_all_reported() -> None:
    problems = validate_arguments(RUN_SCHEMA, {"cwd": 1, "timeout_s": 1000})
    assert problems == [
        "missing required property 'command'",
        "cwd: expected a string, got number 1",
        "timeout_s: must be at most 600, got 1000",
    ]


@pytest.mark.parametrize(
    ("schema_type", "value"),
    [("integer", True), ("number", False), ("integer", 1.5), ("string", None), ("null", 0)],
)
def test_values_of_the_wrong_type_are_refused(schema_type: str, value: object) -> None:
    assert validate_arguments({"type": schema_type}, value) != []


def test_booleans_are_not_numbers() -> None:
    assert validate_arguments({"type": "integer"}, True) == [
        "expected an integer, got boolean true"
    ]
    assert validate_arguments({"type": "number"}, False) == ["expected a number, got boolean false"]


@pytest.mark.parametrize(
    ("schema_type", "value"),
    [
        ("integer", 3),
        ("integer", 3.0),
        ("number", 3),
        ("number", 2.5),
        ("boolean", True),
        ("null", None),
        ("array", []),
        ("object", {}),
        ("string", ""),
    ],
)
def test_values_of_the_right_type_are_accepted(schema_type: str, value: object) -> None:
    assert validate_arguments({"type": schema_type}, value) == []


def test_a_list_of_types_accepts_any_of_them() -> None:
    schema = {"type": ["string", "null"]}
    assert validate_arguments(schema, None) == []
    assert validate_arguments(schema, "x") == []
    assert validate_arguments(schema, 1) == ["expected a string or null, got number 1"]


def test_enum() -> None:
    schema = {"type": "string", "enum": ["allow", "deny"]}
    assert validate_arguments(schema, "deny") == []
    assert validate_arguments(schema, "maybe") == ['must be one of "allow", "deny", got "maybe"']


def test_enum_does_not_confuse_true_with_one() -> None:
    assert validate_arguments({"enum": [1, 2]}, True) == ["must be one of 1, 2, got true"]
    assert validate_arguments({"enum": [True]}, 1) == ["must be one of true, got 1"]


def test_string_length_limits() -> None:
    schema = {"type": "string", "minLength": 2, "maxLength": 3}
    assert validate_arguments(schema, "ab") == []
    assert validate_arguments(schema, "a") == ["expected at least 2 characters, got 1"]
    assert validate_arguments(schema, "abcd") == ["expected at most 3 characters, got 4"]


def test_number_limits() -> None:
    schema = {"type": "integer", "minimum": 0, "maximum": 10}
    assert validate_arguments(schema, 0) == []
    assert validate_arguments(schema, 10) == []
    assert validate_arguments(schema, -1) == ["must be at least 0, got -1"]


def test_array_items_are_checked_with_their_index() -> None:
    schema = {
        "type": "object",
        "properties": {"paths": {"type": "array", "items": {"type": "string"}}},
    }
    assert validate_arguments(schema, {"paths": ["a", 2, "c", None]}) == [
        "paths[1]: expected a string, got number 2",
        "paths[3]: expected a string, got null",
    ]


def test_nested_objects_report_the_full_path() -> None:
    schema = {
        "type": "object",
        "properties": {
            "options": {
                "type": "object",
                "properties": {"depth": {"type": "integer"}},
                "required": ["depth"],
            }
        },
    }
    assert validate_arguments(schema, {"options": {"depth": "deep"}}) == [
        'options.depth: expected an integer, got string "deep"'
    ]
    assert validate_arguments(schema, {"options": {}}) == [
        "options: missing required property 'depth'"
    ]


def test_top_level_value_of_the_wrong_type() -> None:
    assert validate_arguments(RUN_SCHEMA, ["ls"]) == ["expected an object, got an array"]


def test_long_values_are_shortened_in_messages() -> None:
    (problem,) = validate_arguments({"type": "integer"}, "x" * 500)
    assert problem.startswith('expected an integer, got string "xxx')
    assert problem.endswith("...")
    assert len(problem) < 100


def test_unknown_keywords_and_an_empty_schema_accept_anything() -> None:
    assert validate_arguments({}, {"anything": [1, 2]}) == []
    assert validate_arguments({"type": "string", "format": "uri", "pattern": "^x"}, "y") == []
