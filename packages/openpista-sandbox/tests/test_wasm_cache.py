"""The compiled-module cache: what it writes, and that it never loads what it did not write."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
import wasmtime

from openpista.core.skills import SkillLoader
from openpista.core.tool import ToolContext
from openpista.sandbox.wasm import WasmSkillRunner
from openpista.sandbox.wasm.cache import SECRET_FILE, CompiledModuleCache
from openpista.sandbox.wasm.engine import new_engine
from openpista.sandbox.wasm.module_file import cache_key

from .wasm_skills import MODULES, install_wasm_skill

CONTEXT = ToolContext(session_id="s", channel_id="test:local")


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
    cache = CompiledModuleCache(tmp_path / "home" / "cache" / "wasm")
    _, cached = cache.load(new_engine(), skill / "skill.wasm")
    assert cached is False
    (saved,) = compiled_files(cache.folder)
    key = cache_key((skill / "skill.wasm").read_bytes())
    assert saved.name.endswith(f".{key}.cwasm")
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.folder.stat().st_mode) == 0o700
    secret = cache.folder / SECRET_FILE
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_bytes()) == 32
    assert not (skill / ".cache").exists(), "nothing is written into the skill's folder"

    module, cached = CompiledModuleCache(cache.folder).load(new_engine(), skill / "skill.wasm")
    assert cached is True
    assert isinstance(module, wasmtime.Module)
    assert secret.read_bytes() == (cache.folder / SECRET_FILE).read_bytes(), "made once"


def test_a_changed_module_is_compiled_again_and_the_old_compilation_dropped(
    skill: Path, tmp_path: Path
) -> None:
    cache = CompiledModuleCache(tmp_path / "cache")
    cache.load(new_engine(), skill / "skill.wasm")
    (old,) = compiled_files(cache.folder)
    shutil.copyfile(MODULES / "crash.wasm", skill / "skill.wasm")

    _, cached = cache.load(new_engine(), skill / "skill.wasm")

    assert cached is False
    (new,) = compiled_files(cache.folder)
    assert new != old


def saved_compilation(skill: Path, cache_folder: Path) -> Path:
    CompiledModuleCache(cache_folder).load(new_engine(), skill / "skill.wasm")
    (saved,) = compiled_files(cache_folder)
    return saved


async def run_echo(workspace: Path, cache_folder: Path) -> str:
    runner = WasmSkillRunner(workspace, cache_folder)
    (skill,) = SkillLoader(workspace).discover()
    return (await runner.run(skill, {"said": "the real echo"}, CONTEXT)).text


async def test_a_forged_compilation_with_a_valid_header_is_ignored_and_replaced(
    tmp_path: Path,
) -> None:
    # What an archive could carry: another module's native code under the name and header
    # the real one would get (both are computed from public facts).
    workspace = tmp_path / "workspace"
    install_wasm_skill(workspace, "echo")
    cache_folder = tmp_path / "home" / "cache" / "wasm"
    saved = saved_compilation(workspace / "skills" / "echo", cache_folder)
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(MODULES / "crash.wasm", other / "skill.wasm")
    compiled = wasmtime.Module(new_engine(), (other / "skill.wasm").read_bytes()).serialize()
    head = saved.read_bytes()[: saved.read_bytes().index(b"\n", 30) + 1]
    saved.write_bytes(head + b"\0" * 32 + compiled)
    saved.chmod(0o600)

    assert await run_echo(workspace, cache_folder) == '{"said": "the real echo"}'
    assert head + b"\0" * 32 not in saved.read_bytes()[: len(head) + 32], "replaced"


async def test_a_damaged_compilation_is_never_loaded(tmp_path: Path) -> None:
    # Loaded unchecked, bytes overwritten with 0xCC (int3) would kill the process (SIGTRAP).
    workspace = tmp_path / "workspace"
    install_wasm_skill(workspace, "echo")
    cache_folder = tmp_path / "cache"
    saved = saved_compilation(workspace / "skills" / "echo", cache_folder)
    content = bytearray(saved.read_bytes())
    middle = len(content) // 2
    content[middle : middle + 4096] = b"\xcc" * 4096
    saved.write_bytes(bytes(content))

    assert await run_echo(workspace, cache_folder) == '{"said": "the real echo"}'
    assert await run_echo(workspace, cache_folder) == '{"said": "the real echo"}'
    assert b"\xcc" * 4096 not in saved.read_bytes()


async def test_a_compilation_from_another_openpista_home_is_not_trusted(tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    install_wasm_skill(workspace, "echo")
    theirs = saved_compilation(workspace / "skills" / "echo", tmp_path / "their-home")
    mine = tmp_path / "my-home"
    mine.mkdir(mode=0o700)
    shutil.copy(theirs, mine / theirs.name)
    runner = WasmSkillRunner(workspace, mine)
    (skill,) = SkillLoader(workspace).discover()

    assert CompiledModuleCache(mine).load(new_engine(), skill.path / "skill.wasm")[1] is False
    assert (await runner.run(skill, {"n": 1}, CONTEXT)).text == '{"n": 1}'
    assert (mine / theirs.name).read_bytes() != theirs.read_bytes(), "replaced with our own"


def test_a_link_in_the_cache_is_not_followed(skill: Path, tmp_path: Path) -> None:
    saved = saved_compilation(skill, tmp_path / "cache")
    elsewhere = tmp_path / "elsewhere.cwasm"
    saved.rename(elsewhere)
    saved.symlink_to(elsewhere)
    _, cached = CompiledModuleCache(tmp_path / "cache").load(new_engine(), skill / "skill.wasm")
    assert cached is False
    assert not saved.is_symlink()


def test_a_key_file_others_can_read_turns_the_cache_off(skill: Path, tmp_path: Path) -> None:
    cache = CompiledModuleCache(tmp_path / "cache")
    cache.load(new_engine(), skill / "skill.wasm")
    (cache.folder / SECRET_FILE).chmod(0o644)

    _, first = cache.load(new_engine(), skill / "skill.wasm")
    _, second = cache.load(new_engine(), skill / "skill.wasm")

    assert (first, second) == (False, False)


def test_an_unchanged_module_is_not_read_again(skill: Path, tmp_path: Path) -> None:
    cache = CompiledModuleCache(tmp_path / "cache")
    key, data = cache.modules.key(skill / "skill.wasm")
    assert data == (skill / "skill.wasm").read_bytes()
    assert cache.modules.key(skill / "skill.wasm") == (key, None)
    shutil.copyfile(MODULES / "crash.wasm", skill / "skill.wasm")
    new_key, data = cache.modules.key(skill / "skill.wasm")
    assert (new_key != key, data) == (True, (MODULES / "crash.wasm").read_bytes())
