"""Helpers for the WASM tests: real modules built from the C sources in wasm/."""

from __future__ import annotations

import shutil
from pathlib import Path

MODULES = Path(__file__).resolve().parent / "wasm"


def install_wasm_skill(
    workspace: Path, module: str, *, name: str | None = None, front_matter: str = ""
) -> Path:
    """A wasm skill folder under `workspace` running the test module `module` (wasm/NAME.wasm)."""
    name = name or module
    folder = workspace / "skills" / name
    folder.mkdir(parents=True)
    shutil.copyfile(MODULES / f"{module}.wasm", folder / "skill.wasm")
    (folder / "SKILL.md").write_text(f"---\nname: {name}\nmode: wasm\n{front_matter}---\n")
    return folder


def install_wat_skill(workspace: Path, name: str, wat: str, *, front_matter: str = "") -> Path:
    """A wasm skill folder whose skill.wasm is `wat` (WebAssembly text) turned into a binary
    module by wasmtime: for modules C cannot express (several memories, huge tables)."""
    import wasmtime

    folder = workspace / "skills" / name
    folder.mkdir(parents=True)
    (folder / "skill.wasm").write_bytes(wasmtime.wat2wasm(wat))
    (folder / "SKILL.md").write_text(f"---\nname: {name}\nmode: wasm\n{front_matter}---\n")
    return folder
