"""openpista's performance numbers, printed as one JSON object.

    uv run python benchmarks/bench.py [--runs N]

All in one run against an instant fake LLM (FakeChatCompletionsServer on 127.0.0.1):
  startup   median wall time of `openpista --version` and of `python -c pass`
  one_shot  median wall time and peak RSS of `openpista run -e` doing one system.run round,
            and of the floor: benchmarks/floor.py doing the same two requests and subprocess
            with bare httpx
  loop      the agent loop's own overhead per turn, in-process, with a provider that returns
            at once and in-memory storage (and with SQLite storage, for scale)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openpista.providers.testing import FakeChatCompletionsServer, run_command_responder

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
PROMPT = "run: echo benchmark"


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of one run of `argv`."""
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    out = process.stdout.read() if process.stdout else b""
    err = process.stderr.read() if process.stderr else b""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv} failed: {err.decode()}{out.decode()}")
    return elapsed, usage.ru_maxrss * 1024


def series(argv: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    measure(argv, env)  # warm the page cache (and create the database once)
    samples = [measure(argv, env) for _ in range(runs)]
    return {
        "median_s": round(statistics.median(s[0] for s in samples), 4),
        "peak_rss_mb": round(max(s[1] for s in samples) / 2**20, 1),
    }


async def loop_overhead(turns: int, sqlite_path: Path | None) -> float:
    """Median seconds per turn spent in openpista itself (the provider answers at once)."""
    from openpista.core.agent import Agent
    from openpista.core.memory import MemoryStore
    from openpista.core.registry import ToolRegistry
    from openpista.core.testing import InMemoryStore, ScriptedProvider, text_reply

    memory: MemoryStore
    if sqlite_path is None:
        memory = InMemoryStore()
    else:
        from openpista.core.store import open_store

        memory = await open_store(str(sqlite_path))
    provider = ScriptedProvider([text_reply("ok") for _ in range(turns + 10)])
    agent = Agent(provider, ToolRegistry(), memory)
    samples: list[float] = []
    session = await memory.create_session("bench:loop")
    for i in range(turns):
        # A fresh session every 20 turns keeps the history (and so the work) realistic.
        if i and i % 20 == 0:
            session = await memory.create_session("bench:loop")
        start = time.perf_counter()
        await agent.run_turn(session.id, "hello", channel_id="bench:loop")
        samples.append(time.perf_counter() - start)
    await memory.aclose()
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with (
        tempfile.TemporaryDirectory() as tmp,
        FakeChatCompletionsServer(responder=run_command_responder) as llm,
    ):
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPENPISTA_")},
            "OPENPISTA_HOME": tmp,
            "OPENPISTA_PROVIDER": "openai",
            "OPENPISTA_MODEL": "fake",
            "OPENPISTA_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": "k",
        }
        python = [sys.executable]
        startup = {
            "openpista_version": series([str(BIN / "openpista"), "--version"], env, args.runs),
            "python_pass": series([*python, "-c", "pass"], env, args.runs),
        }
        startup["ratio"] = round(
            startup["openpista_version"]["median_s"] / startup["python_pass"]["median_s"], 2
        )
        one_shot = {
            "openpista": series([str(BIN / "openpista"), "run", "-e", PROMPT], env, args.runs),
            "floor": series(
                [*python, str(HERE / "floor.py"), llm.base_url, PROMPT], env, args.runs
            ),
        }
        one_shot["ratio"] = round(
            one_shot["openpista"]["median_s"] / one_shot["floor"]["median_s"], 2
        )
        loop = {
            "in_memory_ms_per_turn": round(asyncio.run(loop_overhead(400, None)) * 1000, 3),
            "sqlite_ms_per_turn": round(
                asyncio.run(loop_overhead(200, Path(tmp) / "loop.db")) * 1000, 3
            ),
        }
    result = {
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "startup": startup,
        "one_shot": one_shot,
        "loop": loop,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
