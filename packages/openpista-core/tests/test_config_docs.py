"""docs/configuration.md and config.example.toml say exactly what the config dataclasses hold:
core's own and those of every section an installed distribution declares."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, cast

from openpista.core.config import config_keys, environment_variables, load_config
from openpista.core.settings import declared_sections

REPO = Path(__file__).resolve().parents[3]
DOCS = REPO / "docs" / "configuration.md"
EXAMPLE = REPO / "config.example.toml"

# A reference row: | `agent.model` | string | `"gpt-4.1-mini"` | meaning |
KEY_ROW = re.compile(r"^\| `([a-z_]+(?:\.|\[\])[^`]*)` \| ([^|]+?) \| (.+?) \| .+\|$")
VARIABLE_ROW = re.compile(r"^\| `([A-Za-z_]+)` \| ")
# A commented-out setting or table header in the example (prose comments never look like one).
COMMENTED_SETTING = re.compile(r"^# (\[\[?[A-Za-z0-9_.-]+\]\]?(\s+#.*)?|[a-z_]+ = .*)$")


def documented_keys() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        match = KEY_ROW.match(line)
        if match:
            rows.append((match[1], match[2], match[3].strip("`")))
    return rows


def test_every_key_is_documented_with_its_type_and_default() -> None:
    documented = documented_keys()
    keys = config_keys()
    missing = [row for row in keys if row not in documented]
    unknown = [row for row in documented if row not in keys]
    assert missing == [], f"keys of the dataclasses not (or wrongly) in {DOCS}"
    assert unknown == [], f"keys in {DOCS} that the dataclasses do not have"
    assert len(documented) == len(set(documented)), "a key is documented twice"


def test_every_environment_variable_is_documented() -> None:
    documented = [
        match[1]
        for line in DOCS.read_text(encoding="utf-8").splitlines()
        if (match := VARIABLE_ROW.match(line)) and match[1].isupper()
    ]
    assert sorted(documented) == sorted(environment_variables())


def test_every_declared_section_has_its_own_heading_and_keys() -> None:
    text = DOCS.read_text(encoding="utf-8")
    keys = {key for key, _, _ in config_keys()}
    sections = declared_sections()
    # Ours at least; a third-party distribution installed here would be held to this page too.
    assert {"channels.cli", "channels.telegram", "channels.web", "channels.whatsapp"} <= set(
        sections
    )
    assert {"tools.shell", "tools.browser"} <= set(sections)
    for section in sections:
        assert f"### `[{section}]`" in text, f"{DOCS} has no heading for [{section}]"
        assert any(key.startswith(f"{section}.") for key in keys)


def test_the_example_loads_and_changes_nothing(tmp_path: Path) -> None:
    env = {"OPENPISTA_HOME": str(tmp_path)}
    example = load_config(EXAMPLE, env)
    defaults = load_config(tmp_path / "absent.toml", env)
    assert example.source == EXAMPLE
    example.source = None
    assert example == defaults


def uncommented_example() -> str:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()
    return "\n".join(line[2:] if COMMENTED_SETTING.match(line) else line for line in lines)


# Tables whose member names the user chooses: `providers`, `channels.whatsapp.accounts`, ...
CHOSEN_NAMES = {key.split(".NAME.")[0] for key, _, _ in config_keys() if ".NAME." in key}


def key_patterns(table: dict[str, Any], prefix: str = "") -> set[str]:
    """Leaf keys of a parsed file in config_keys() form: NAME for chosen names, [] for arrays."""
    keys: set[str] = set()
    for name, value in table.items():
        key = f"{prefix}.{name}" if prefix else name
        if prefix in CHOSEN_NAMES:
            key = f"{prefix}.NAME"
        if isinstance(value, dict):
            keys |= key_patterns(cast(dict[str, Any], value), key)
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            for entry in cast(list[dict[str, Any]], value):
                keys |= key_patterns(entry, f"{key}[]")
        else:
            keys.add(key)
    return keys


def test_the_example_shows_every_key_with_a_valid_value(tmp_path: Path) -> None:
    text = uncommented_example()
    assert key_patterns(tomllib.loads(text)) == {key for key, _, _ in config_keys()}
    uncommented = tmp_path / "uncommented.toml"
    uncommented.write_text(text, encoding="utf-8")
    config = load_config(uncommented, {"OPENPISTA_HOME": str(tmp_path)})
    assert config.cron[0].channel_id == "telegram:12345"
    assert set(config.mcp.servers) == {"files", "search"}
