"""WASM skills from the user's side: hello-wasm listed and run, an endless one stopped while
the agent goes on, and a `safe: true` skill running unasked under `ask`."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import wasmtime

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista

EXAMPLE = Path(__file__).resolve().parent.parent / "skills" / "hello-wasm"
# A real module that never ends: a loop branching to itself.
SPIN_WAT = '(module (memory (export "memory") 1) (func (export "_start") (loop (br 0))))'


def install_hello_wasm(openpista: Openpista, name: str = "hello-wasm", safe: bool = True) -> Path:
    folder = openpista.home / "workspace" / "examples" / name
    shutil.copytree(EXAMPLE, folder)
    skill_md = (folder / "SKILL.md").read_text().replace("name: hello-wasm", f"name: {name}")
    if not safe:
        skill_md = skill_md.replace("safe: true\n", "")
    (folder / "SKILL.md").write_text(skill_md)
    return folder


def install_spin(openpista: Openpista, timeout_s: float) -> None:
    folder = openpista.home / "workspace" / "spin"
    folder.mkdir(parents=True)
    (folder / "skill.wasm").write_bytes(wasmtime.wat2wasm(SPIN_WAT))
    (folder / "SKILL.md").write_text(f"---\nname: spin\nmode: wasm\ntimeout_s: {timeout_s}\n---\n")


def tool_messages(request: dict) -> list[str]:
    return [m["content"] for m in request["messages"] if m["role"] == "tool"]


def test_skills_list_shows_hello_wasm_ready(openpista: Openpista) -> None:
    install_hello_wasm(openpista)

    listed = openpista.run("skills", "list")
    as_json = openpista.run("skills", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("hello-wasm")]
    assert line.split()[:4] == ["hello-wasm", "wasm,", "safe", "ready"]
    (entry,) = json.loads(as_json.stdout)
    assert {key: entry[key] for key in ("name", "mode", "safe", "ready", "problem")} == {
        "name": "hello-wasm",
        "mode": "wasm",
        "safe": True,
        "ready": True,
        "problem": None,
    }


def test_run_calls_hello_wasm_and_gets_its_greeting(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    install_hello_wasm(openpista)
    llm.queue_tool_calls([("skill_run", {"name": "hello-wasm", "args": {"name": "Ada"}})])
    llm.queue_text("It greeted Ada.")

    result = openpista.run("run", "--json", "-e", "Greet Ada with hello-wasm")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tool_calls"][0]["ok"] is True
    assert "hello-wasm" in llm.requests[0]["messages"][0]["content"]
    (greeting,) = tool_messages(llm.requests[1])
    assert greeting.splitlines() == [
        "Hello, Ada! (from WebAssembly)",
        "/workspace (read-only) holds 1 entry: examples",
    ]


def test_an_endless_skill_times_out_while_the_agent_goes_on(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    install_hello_wasm(openpista)
    install_spin(openpista, timeout_s=3)
    # One round, two calls run side by side: the endless one first, then hello-wasm.
    llm.queue_tool_calls(
        [
            ("skill_run", {"name": "spin", "args": {}}),
            ("skill_run", {"name": "hello-wasm", "args": {"name": "Ada"}}),
        ]
    )
    llm.queue_text("One timed out, one greeted.")

    result = openpista.run("run", "-e", "spin, and greet Ada")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "One timed out, one greeted."
    spun, greeted = tool_messages(llm.requests[1])
    assert "skill spin timed out after 3 s" in spun
    assert greeted.startswith("Hello, Ada!")
    # Responsiveness: the audit trail (newest first, by finishing time) shows hello-wasm
    # finished before spin did, so the agent ran it while the guest spun; a guest blocking
    # the event loop would have made spin finish first.
    audit = json.loads(openpista.run("audit", "--json").stdout)
    assert [entry["arguments"]["name"] for entry in audit] == ["spin", "hello-wasm"]
    assert [entry["ok"] for entry in audit] == [False, True]


def test_under_ask_a_safe_wasm_skill_runs_unasked_and_another_is_denied(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    install_hello_wasm(openpista)
    install_hello_wasm(openpista, name="hello-wasm-unsafe", safe=False)
    openpista.write_config('[agent]\napproval = "ask"\n')
    llm.queue_tool_calls(
        [
            ("skill_run", {"name": "hello-wasm", "args": {"name": "Ada"}}),
            ("skill_run", {"name": "hello-wasm-unsafe", "args": {"name": "Bob"}}),
        ]
    )
    llm.queue_text("One ran.")

    result = openpista.run("run", "-e", "greet both")  # no terminal: nobody can be asked

    assert result.returncode == 0, result.stderr
    safe, unsafe = tool_messages(llm.requests[1])
    assert safe.startswith("Hello, Ada!")
    assert "not run" in unsafe and "nobody can be asked" in unsafe
    audit = json.loads(openpista.run("audit", "--json").stdout)
    decisions = {e["arguments"]["name"]: e["decision"] for e in audit}
    assert decisions == {"hello-wasm": "auto", "hello-wasm-unsafe": "denied"}


def test_skills_list_says_no_with_the_reason_for_skills_that_cannot_run(
    openpista: Openpista,
) -> None:
    workspace = openpista.home / "workspace"
    no_module = install_hello_wasm(openpista, name="no-module")
    (no_module / "skill.wasm").unlink()
    folder_module = install_hello_wasm(openpista, name="folder-module")
    (folder_module / "skill.wasm").unlink()
    (folder_module / "skill.wasm").mkdir()
    text_module = install_hello_wasm(openpista, name="text-module")
    (text_module / "skill.wasm").write_text('(module (func (export "_start")))')
    (workspace / "no-program").mkdir()
    (workspace / "no-program" / "SKILL.md").write_text("---\nname: no-program\n---\n")
    (workspace / "forever").mkdir()
    (workspace / "forever" / "SKILL.md").write_text("---\nmode: wasm\ntimeout_s: .inf\n---\n")

    listed = openpista.run("skills", "list")
    as_json = openpista.run("skills", "list", "--json")

    assert listed.returncode == 0, listed.stderr
    assert "ready" not in listed.stdout
    assert f"there is no skill.wasm in {no_module}" in listed.stdout
    assert f"{folder_module / 'skill.wasm'} is a directory, not a module file" in listed.stdout
    assert f"{text_module / 'skill.wasm'} is not a WebAssembly binary module" in listed.stdout
    assert f"has neither run.sh nor main.py in {workspace / 'no-program'}" in listed.stdout
    # A timeout of .inf is refused: the skill is not listed (nor run), with a warning.
    assert "forever" not in listed.stdout
    assert "'timeout_s' must be a positive number of seconds, at most 3600" in listed.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    entries = json.loads(as_json.stdout, parse_constant=refuse)
    assert {entry["name"]: entry["ready"] for entry in entries} == {
        "folder-module": False,
        "no-module": False,
        "no-program": False,
        "text-module": False,
    }


def test_a_compiled_module_shipped_inside_a_skill_archive_is_never_run(
    openpista: Openpista, llm: FakeChatCompletionsServer, tmp_path: Path
) -> None:
    # An archive carrying `.cache/skill.<key>.cwasm`: native code compiled from another
    # module (one that crashes), with the name and header an older openpista trusted. tar
    # keeps its 0600 and makes the user its owner. openpista must run skill.wasm itself.
    from openpista.sandbox.wasm.engine import new_engine
    from openpista.sandbox.wasm.module_file import cache_key

    packed = tmp_path / "packed" / "hello-wasm"
    shutil.copytree(EXAMPLE, packed)
    key = cache_key((packed / "skill.wasm").read_bytes())
    evil = wasmtime.Module(new_engine(), bytes(wasmtime.wat2wasm(SPIN_WAT))).serialize()
    (packed / ".cache").mkdir(mode=0o700)
    forged = packed / ".cache" / f"skill.{key}.cwasm"
    forged.write_bytes(b"openpista compiled wasm 1\n" + key.encode() + b"\n" + bytes(evil))
    forged.chmod(0o600)
    archive = tmp_path / "skill.tar"
    subprocess.run(["tar", "-cf", archive, "-C", packed.parent, "hello-wasm"], check=True)
    target = openpista.home / "workspace" / "downloaded"
    target.mkdir(parents=True)
    subprocess.run(["tar", "-xf", archive, "-C", target], check=True)
    llm.queue_tool_calls([("skill_run", {"name": "hello-wasm", "args": {"name": "Ada"}})])
    llm.queue_text("Done.")

    result = openpista.run("run", "-e", "greet Ada")

    assert result.returncode == 0, result.stderr
    (greeting,) = tool_messages(llm.requests[1])
    assert greeting.startswith("Hello, Ada! (from WebAssembly)")
    cached = list((openpista.home / "cache" / "wasm").glob("*.cwasm"))
    assert len(cached) == 1 and cached[0].read_bytes() != forged.read_bytes()
