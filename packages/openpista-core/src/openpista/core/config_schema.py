"""Turns parsed TOML tables into typed dataclasses, naming the dotted key of every mistake.

Nothing here knows openpista's keys: `openpista.core.config` describes them as dataclasses
and hands this module the per-key checks. The same walk over the dataclasses lists the
documented keys, so the docs and the loader cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from openpista.core.errors import ConfigError

Check = Callable[[Any], str | None]
"""Looks at one converted value; returns what is wrong with it, or None when it is fine."""

T = TypeVar("T")

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")

_SCALAR_NAMES: dict[type, tuple[str, str, str]] = {
    # type: (with article for messages, plural for arrays, short name for the docs)
    str: ("a string", "strings", "string"),
    int: ("an integer", "integers", "integer"),
    float: ("a number", "numbers", "number"),
    bool: ("a boolean (true or false)", "booleans", "boolean"),
}


def toml_key(name: str) -> str:
    """`name` as TOML writes it in a dotted key: bare when it can be, quoted otherwise."""
    if _BARE_KEY.match(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_value(value: object) -> str:
    """A short TOML rendering of a default value, for messages and the docs."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        items = cast(list[object], value)
        return "[" + ", ".join(toml_value(item) for item in items) + "]"
    if isinstance(value, dict):
        return "{}"
    return str(value)


SECRET_KEYS = frozenset({"api_key", "token", "secret", "password"})
"""Keys whose values never appear in messages, whatever their type, in any section, also as
the end of a key (`bot_token`, `client_secret`); a library's settings declaration can name
more (`Schema.secrets`)."""
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")


def is_secret_key(pattern: str) -> bool:
    name = pattern.rsplit(".", 1)[-1].removesuffix("[]")
    return any(name == secret or name.endswith(f"_{secret}") for secret in SECRET_KEYS)


def describe_value(value: object, *, secret: bool = False) -> str:
    """What the user wrote, as a message shows it: `a string ('abc')`, `a table`.

    A `secret` value is described by its type alone, and passwords in URLs are masked:
    error messages end up in terminals, logs and bug reports.
    """
    if secret:
        kind = describe_value(value).split(" (", 1)[0]
        return f"{kind} (not shown: a secret)"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        masked = _URL_PASSWORD.sub(r"\1***@", value)
        shown = masked if len(masked) <= 60 else masked[:57] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    # tomllib also yields dates and times.
    return f"a {type(value).__name__} ({value})"


@dataclass(frozen=True, slots=True)
class KeyPath:
    """Where a value sits, twice: as the user wrote it and as the schema names it.

    `shown` is for messages (`providers.openai.api`, `cron[0].schedule`); `pattern` is for
    looking up checks (`providers.*.api`, `cron[].schedule`).
    """

    shown: str = ""
    pattern: str = ""

    def field(self, name: str) -> KeyPath:
        return KeyPath(_join(self.shown, toml_key(name)), _join(self.pattern, name))

    def entry(self, name: str) -> KeyPath:
        """A member of a table whose keys the user chooses (`[providers.NAME]`)."""
        return KeyPath(_join(self.shown, toml_key(name)), _join(self.pattern, "*"))

    def index(self, position: int) -> KeyPath:
        return KeyPath(f"{self.shown}[{position}]", f"{self.pattern}[]")


def _join(parent: str, child: str) -> str:
    return f"{parent}.{child}" if parent else child


@dataclass(frozen=True, slots=True)
class Schema:
    """What the dataclasses alone cannot say about the file."""

    checks: Mapping[str, Check] = dataclasses.field(default_factory=lambda: {})
    """Pattern (`agent.max_tool_rounds`, `cron[].schedule`) -> check run on the converted value."""
    not_keys: frozenset[str] = frozenset()
    """Patterns of dataclass fields that are not file keys (filled in by the loader)."""
    sections: Mapping[str, Mapping[str, type]] = dataclasses.field(default_factory=lambda: {})
    """Pattern of a table of sections (`channels`) -> section name -> the dataclass its settings
    are read into. The table's field is a `dict[str, object]`; a section no dataclass is given
    for is kept as a plain dict, unvalidated."""
    secrets: frozenset[str] = frozenset()
    """Patterns of further keys whose values never appear in messages."""


def expected_type(hint: Any, key: KeyPath) -> str:
    """The type a message says was expected: `an integer`, `an array of tables ([[cron]])`."""
    if hint in _SCALAR_NAMES:
        return _SCALAR_NAMES[hint][0]
    origin = typing.get_origin(hint)
    if origin is list:
        (item,) = typing.get_args(hint)
        if item in _SCALAR_NAMES:
            return f"an array of {_SCALAR_NAMES[item][1]}"
        return f"an array of tables ([[{key.shown}]])"
    return f"a table ([{key.shown}])" if key.shown else "a table"


def type_name(hint: Any) -> str:
    """The type as the docs name it: `string`, `array of integers`, `table`."""
    if hint in _SCALAR_NAMES:
        return _SCALAR_NAMES[hint][2]
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if item in _SCALAR_NAMES:
            return f"array of {_SCALAR_NAMES[item][1]}"
        return "array of tables"
    return "table"


def _is_dataclass_type(hint: Any) -> bool:
    return isinstance(hint, type) and dataclasses.is_dataclass(hint)


def _field_has_default(field: dataclasses.Field[Any]) -> bool:
    return (
        field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
    )


def _field_default(field: dataclasses.Field[Any]) -> object:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING


class TableReader:
    """Converts one file's tables into dataclasses; raises ConfigError at the first mistake."""

    def __init__(self, file: str, schema: Schema) -> None:
        self.file = file
        self.schema = schema

    def read(self, cls: type[T], table: Mapping[str, Any]) -> T:
        """The dataclass `cls` built from the whole file's top-level table."""
        return cast(T, self._dataclass(cls, table, KeyPath()))

    def fail(self, key: KeyPath | str, problem: str) -> ConfigError:
        return ConfigError(self.file, key.shown if isinstance(key, KeyPath) else key, problem)

    def check(self, key: KeyPath, value: object) -> None:
        check = self.schema.checks.get(key.pattern)
        if check is None:
            return
        problem = check(value)
        if problem is not None:
            raise self.fail(key, problem)

    def is_secret(self, key: KeyPath) -> bool:
        return is_secret_key(key.pattern) or key.pattern in self.schema.secrets

    def _convert(self, hint: Any, value: object, key: KeyPath) -> object:
        sections = self.schema.sections.get(key.pattern)
        if sections is not None:
            result: object = self._sections(sections, value, key)
        elif _is_dataclass_type(hint):
            result = self._dataclass(hint, value, key)
        elif typing.get_origin(hint) is list:
            (item_hint,) = typing.get_args(hint)
            if not isinstance(value, list):
                raise self.fail(
                    key, f"expected {expected_type(hint, key)}, got {describe_value(value)}"
                )
            items = cast(list[object], value)
            result = [
                self._convert(item_hint, item, key.index(position))
                for position, item in enumerate(items)
            ]
        elif typing.get_origin(hint) is dict:
            _, item_hint = typing.get_args(hint)
            table = self._table(value, key)
            result = {
                name: self._convert(item_hint, item, key.entry(name))
                for name, item in table.items()
            }
        else:
            result = self._scalar(hint, value, key)
        self.check(key, result)
        return result

    def _scalar(self, hint: Any, value: object, key: KeyPath) -> object:
        # bool is an int in Python but never in a config file: `max_tool_rounds = true` is a slip.
        if hint is bool:
            ok = isinstance(value, bool)
        elif hint is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif hint is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            if ok:
                return float(cast(float, value))
        elif hint is str:
            ok = isinstance(value, str)
        else:
            raise TypeError(f"config schema: unsupported type {hint!r} at {key.pattern}")
        if not ok:
            shown = describe_value(value, secret=self.is_secret(key))
            raise self.fail(key, f"expected {expected_type(hint, key)}, got {shown}")
        return value

    def _table(self, value: object, key: KeyPath) -> dict[str, object]:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a table ([{key.shown}]), got {describe_value(value)}")
        return cast(dict[str, object], value)

    def _sections(
        self, sections: Mapping[str, type], value: object, key: KeyPath
    ) -> dict[str, object]:
        # A section is a field of the table, not an entry: its checks are found under its own
        # name (`channels.cli.approval`), not under `channels.*.approval`.
        result: dict[str, object] = {}
        for name, item in self._table(value, key).items():
            cls = sections.get(name)
            if cls is None:
                result[name] = dict(self._table(item, key.entry(name)))
            else:
                result[name] = self._dataclass(cls, item, key.field(name))
        return result

    def _dataclass(self, cls: Any, value: object, key: KeyPath) -> object:
        table = self._table(value, key)
        hints = typing.get_type_hints(cls)
        fields = [
            field
            for field in dataclasses.fields(cls)
            if key.field(field.name).pattern not in self.schema.not_keys
        ]
        by_name = {field.name: field for field in fields}
        values: dict[str, object] = {}
        for name, item in table.items():
            if name in by_name:
                values[name] = self._convert(hints[name], item, key.field(name))
            else:
                raise self.fail(key.field(name), _unknown_key_problem(name, list(by_name)))
        required = [field.name for field in fields if not _field_has_default(field)]
        for name in required:
            if name not in values:
                raise self.fail(
                    key.field(name),
                    f"missing; this table needs {_listing(required)}",
                )
        return cls(**values)

    def parse_text(self, hint: Any, text: str, key: KeyPath, variable: str) -> object:
        """An environment variable's text converted to `hint`, checked like the file's key."""
        if hint is str:
            value: object = text
        elif hint is int:
            try:
                value = int(text.strip())
            except ValueError:
                raise self.fail(variable, f"expected an integer, got {text!r}") from None
        elif hint is float:
            try:
                value = float(text.strip())
            except ValueError:
                raise self.fail(variable, f"expected a number, got {text!r}") from None
        elif typing.get_origin(hint) is list and typing.get_args(hint) == (int,):
            value = []
            for part in (piece.strip() for piece in text.split(",")):
                if not part:
                    continue
                try:
                    number = int(part)
                except ValueError:
                    raise self.fail(
                        variable, f"expected comma-separated integers, got {part!r} in {text!r}"
                    ) from None
                self._check_text(key.index(0), number, variable)
                cast(list[int], value).append(number)
        else:
            raise TypeError(f"config schema: no text form for {hint!r} at {key.pattern}")
        self._check_text(key, value, variable)
        return value

    def _check_text(self, key: KeyPath, value: object, variable: str) -> None:
        check = self.schema.checks.get(key.pattern)
        problem = None if check is None else check(value)
        if problem is not None:
            raise self.fail(variable, problem)


def field_type(root: type, dotted: str) -> Any:
    """The type hint of the field at a plain dotted path (`agent.timeout_s`)."""
    hint: Any = root
    for name in dotted.split("."):
        hint = typing.get_type_hints(hint)[name]
    return hint


def schema_keys(root: type, schema: Schema) -> list[tuple[str, str, str]]:
    """Every file key the dataclasses define: (dotted key, type, default), in declaration order.

    Tables whose names the user chooses show as NAME (`providers.NAME.api_key`), arrays of
    tables as `[]` (`cron[].schedule`); a key without a default shows `required`.
    """
    rows: list[tuple[str, str, str]] = []
    _collect_keys(root, KeyPath(), schema, rows)
    return rows


def _collect_keys(cls: Any, key: KeyPath, schema: Schema, rows: list[tuple[str, str, str]]) -> None:
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        child = key.field(field.name)
        if child.pattern in schema.not_keys:
            continue
        hint = hints[field.name]
        origin = typing.get_origin(hint)
        args = typing.get_args(hint)
        sections = schema.sections.get(child.pattern)
        if sections is not None:
            for name in sorted(sections):
                _collect_keys(sections[name], child.field(name), schema, rows)
        elif _is_dataclass_type(hint):
            _collect_keys(hint, child, schema, rows)
        elif origin is dict and _is_dataclass_type(args[1]):
            _collect_keys(args[1], child.entry("NAME"), schema, rows)
        elif origin is list and _is_dataclass_type(args[0]):
            _collect_keys(args[0], child.index(0), schema, rows)
        else:
            default = _field_default(field)
            shown = "required" if default is dataclasses.MISSING else toml_value(default)
            rows.append((child.pattern.replace("*", "NAME"), type_name(hint), shown))


def _unknown_key_problem(name: str, known: list[str]) -> str:
    problem = f"unknown key; expected one of: {', '.join(known)}"
    close = closest(name, known)
    if close is not None:
        problem += f" (did you mean {close}?)"
    return problem


def closest(name: str, known: Iterable[str]) -> str | None:
    """The one of `known` that `name` is most likely a misspelling of, if any is close."""
    import difflib  # only on error paths

    close = difflib.get_close_matches(name, list(known), n=1)
    return close[0] if close else None


def _listing(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]
