"""The compiled-module cache: what it writes, and that it loads only what it wrote."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
import wasmtime

from openpista.sandbox.wasm.cache import CompiledModuleCache, cache_key
from openpista.sandbox.wasm.engine import new_engine

from .wasm_skills import MODULES


@pytest.fixture
def skill(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace" / "echo"
    folder.mkdir(parents=True)
    shutil.copyfile(MODULES / "echo.wasm", folder / "skill.wasm")
    return folder


def compiled_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.cwasm")) if folder.is_dir() else []


def test_the_first_load_compiles_and_saves_a_private_file_the_second_loads_it(
    skill: Path, tmp_path: Path
) -> None:
    cache = CompiledModuleCache(tmp_path / "home-cache")
    _, cached = cache.load(new_engine(), skill / "skill.wasm")
    assert cached is False
    (saved,) = compiled_files(skill / ".cache")
    key = cache_key((skill / "skill.wasm").read_bytes())
    assert saved.name == f"skill.{key}.cwasm"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert key.encode() in saved.read_bytes()[:200]

    module, cached = cache.load(new_engine(), skill / "skill.wasm")
    assert cached is True
    assert isinstance(module, wasmtime.Module)
    assert compiled_files(tmp_path / "home-cache") == []


def test_a_changed_module_is_compiled_again_and_the_old_compilation_dropped(
    skill: Path, tmp_path: Path
) -> None:
    cache = CompiledModuleCache(tmp_path / "home-cache")
    cache.load(new_engine(), skill / "skill.wasm")
    (old,) = compiled_files(skill / ".cache")
    shutil.copyfile(MODULES / "crash.wasm", skill / "skill.wasm")

    _, cached = cache.load(new_engine(), skill / "skill.wasm")

    assert cached is False
    (new,) = compiled_files(skill / ".cache")
    assert new != old


def tamper(skill: Path, tmp_path: Path) -> Path:
    CompiledModuleCache(tmp_path / "home-cache").load(new_engine(), skill / "skill.wasm")
    (saved,) = compiled_files(skill / ".cache")
    return saved


def test_a_file_holding_another_key_is_not_loaded(skill: Path, tmp_path: Path) -> None:
    saved = tamper(skill, tmp_path)
    key = saved.name.split(".")[1]
    other = ("0" if key[0] != "0" else "1") + key[1:]
    saved.write_bytes(saved.read_bytes().replace(key.encode(), other.encode(), 1))

    _, cached = CompiledModuleCache(tmp_path / "c").load(new_engine(), skill / "skill.wasm")

    assert cached is False
    assert key.encode() in saved.read_bytes()[:200], "rewritten with the right key"


def test_a_file_others_could_have_written_is_not_loaded(skill: Path, tmp_path: Path) -> None:
    saved = tamper(skill, tmp_path)
    saved.chmod(0o664)
    _, cached = CompiledModuleCache(tmp_path / "c").load(new_engine(), skill / "skill.wasm")
    assert cached is False
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600


def test_a_link_in_the_cache_is_not_followed(skill: Path, tmp_path: Path) -> None:
    saved = tamper(skill, tmp_path)
    elsewhere = tmp_path / "elsewhere.cwasm"
    saved.rename(elsewhere)
    saved.symlink_to(elsewhere)
    _, cached = CompiledModuleCache(tmp_path / "c").load(new_engine(), skill / "skill.wasm")
    assert cached is False
    assert not saved.is_symlink()


def test_a_corrupt_compilation_is_replaced(skill: Path, tmp_path: Path) -> None:
    saved = tamper(skill, tmp_path)
    content = saved.read_bytes()
    header_end = content.index(b"\n", content.index(b"\n") + 1) + 1
    saved.write_bytes(content[:header_end] + b"not native code at all")
    os.chmod(saved, 0o600)
    _, cached = CompiledModuleCache(tmp_path / "c").load(new_engine(), skill / "skill.wasm")
    assert cached is False
    _, cached = CompiledModuleCache(tmp_path / "c").load(new_engine(), skill / "skill.wasm")
    assert cached is True


def test_a_skill_folder_that_cannot_hold_the_cache_uses_the_home_one(
    skill: Path, tmp_path: Path
) -> None:
    (skill / ".cache").write_text("a file where the cache folder would go")
    cache = CompiledModuleCache(tmp_path / "home" / "cache" / "wasm")

    _, first = cache.load(new_engine(), skill / "skill.wasm")
    _, second = cache.load(new_engine(), skill / "skill.wasm")

    assert (first, second) == (False, True)
    (saved,) = compiled_files(tmp_path / "home" / "cache" / "wasm")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(saved.parent.stat().st_mode) == 0o700
