"""The WASM skill runner's speed on skills/hello-wasm, printed as one JSON object.

    uv run python benchmarks/wasm.py [--runs N]

Times in this process, through `WasmSkillRunner.run` as `skill.run` calls it (a thread of its
own, a fresh engine, WASI set up, the module instantiated and run to its exit):
  cold        no compiled module anywhere (a fresh copy of the skill and an empty compiled-module
              cache): compile, save the compiled module, run; the target is 500 ms
  warm        the compiled module in the cache (HMAC checked): load it, run; the target is 20 ms
  compile     wasmtime.Module(engine, bytes) alone
  deserialize wasmtime.Module.deserialize of the cached code alone
and in a fresh child process:
  import_wasmtime   `import wasmtime`, paid once per process by the first wasm skill call
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import wasmtime

from openpista.core.skills import SkillLoader
from openpista.core.tool import ToolContext
from openpista.sandbox.wasm import WasmSkillRunner
from openpista.sandbox.wasm.engine import new_engine

EXAMPLE = Path(__file__).resolve().parent.parent / "skills" / "hello-wasm"
CONTEXT = ToolContext(session_id="bench", channel_id="bench")
ARGS = {"name": "Ada"}


def summary(samples: list[float]) -> dict[str, Any]:
    return {
        "runs": len(samples),
        "min_ms": round(min(samples) * 1000, 2),
        "median_ms": round(statistics.median(samples) * 1000, 2),
        "max_ms": round(max(samples) * 1000, 2),
    }


async def timed_call(runner: WasmSkillRunner, workspace: Path) -> float:
    (skill,) = SkillLoader(workspace).discover()
    started = time.perf_counter()
    output = await runner.run(skill, ARGS, CONTEXT)
    elapsed = time.perf_counter() - started
    assert output.text.startswith("Hello, Ada!"), output.text
    return elapsed


async def cold_and_warm(runs: int, scratch: Path) -> tuple[list[float], list[float]]:
    cold: list[float] = []
    warm: list[float] = []
    await timed_call(*fresh_runner(scratch / "warm-up"))  # the first call's one-off costs
    for run in range(runs):
        runner, workspace = fresh_runner(scratch / f"run-{run}")
        cold.append(await timed_call(runner, workspace))
        warm.append(await timed_call(runner, workspace))
    return cold, warm


def fresh_runner(folder: Path) -> tuple[WasmSkillRunner, Path]:
    workspace = folder / "workspace"
    shutil.copytree(EXAMPLE, workspace / "hello-wasm")
    return WasmSkillRunner(workspace, folder / "home-cache"), workspace


def repeat(runs: int, work: Callable[[], object]) -> list[float]:
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return samples


def import_time(runs: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import wasmtime; print(time.perf_counter() - t)"
    return [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
        for _ in range(runs)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    module = (EXAMPLE / "skill.wasm").read_bytes()
    serialized = wasmtime.Module(new_engine(), module).serialize()
    with tempfile.TemporaryDirectory() as scratch:
        cold, warm = asyncio.run(cold_and_warm(runs, Path(scratch)))
    from importlib.metadata import version

    result = {
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "wasmtime": version("wasmtime"),
        "module_bytes": len(module),
        "compiled_bytes": len(serialized),
        "cold": summary(cold),
        "warm": summary(warm),
        "compile": summary(repeat(runs, lambda: wasmtime.Module(new_engine(), module))),
        "deserialize": summary(
            repeat(runs, lambda: wasmtime.Module.deserialize(new_engine(), serialized))
        ),
        "import_wasmtime": summary(import_time(max(3, runs // 4))),
        "targets_ms": {"warm": 20, "cold": 500},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
