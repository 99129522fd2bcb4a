"""openpista's performance numbers, printed as one JSON object.

    uv run python benchmarks/bench.py [--runs N]

All in one run against an instant fake LLM (FakeChatCompletionsServer on 127.0.0.1):
  startup   median wall time of `openpista --version` and of `python -c pass`
  one_shot  median wall time and peak RSS of `openpista run -e` doing one system.run round,
            and of the floor: benchmarks/floor.py doing the same two requests and subprocess
            with bare httpx
  loop      openpista's own overhead per turn, in-process: Gateway.handle with an observer, the
            session lock, one approved tool round, its audit entry and the context budget,
            with a provider that returns at once; on in-memory storage and on SQLite
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

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
    """Median seconds per turn spent in openpista itself (the provider answers at once).

    Each turn takes the path every turn takes: `Gateway.handle` with an observer, the session
    lock, one tool round under the `ask` policy (the observer allows the call at once), the
    audit entry, the context budget fitted to both requests, and the four stored messages.
    """
    from openpista.core.agent import Agent
    from openpista.core.approval import ApprovalAnswer, ApprovalDecision, ApprovalRequest
    from openpista.core.gateway import Gateway
    from openpista.core.memory import MemoryStore
    from openpista.core.models import ChannelEvent
    from openpista.core.observer import TurnObserver
    from openpista.core.registry import ToolRegistry
    from openpista.core.testing import (
        InMemoryStore,
        ScriptedProvider,
        ScriptItem,
        text_reply,
        tool_call_reply,
    )
    from openpista.core.tool import FunctionTool, ToolContext

    class Approver(TurnObserver):
        async def request_approval(self, request: ApprovalRequest) -> ApprovalAnswer:
            return ApprovalAnswer(ApprovalDecision.ALLOW, "bench")

    async def echo(arguments: dict[str, object], context: ToolContext) -> str:
        return "benchmark"

    memory: MemoryStore
    if sqlite_path is None:
        memory = InMemoryStore()
    else:
        from openpista.core.store import open_store

        memory = await open_store(str(sqlite_path))
    script: list[ScriptItem] = []
    for _ in range(turns):
        script += [tool_call_reply("bench.echo", {"text": "benchmark"}), text_reply("ok")]
    provider = ScriptedProvider(script)
    agent = Agent(provider, ToolRegistry([FunctionTool("bench.echo", echo)]), memory)
    gateway = Gateway(agent, memory, {})
    observer = Approver()
    samples: list[float] = []
    session = "bench-0"
    for i in range(turns):
        # A fresh session every 20 turns keeps the history (and so the work) realistic.
        if i % 20 == 0:
            session = f"bench-{i}"
        event = ChannelEvent("bench:loop", "run: echo benchmark", session_id=session)
        start = time.perf_counter()
        response = await gateway.handle(event, observer=observer, approval="ask")
        samples.append(time.perf_counter() - start)
        if response.is_error or response.tool_calls[0].ok is not True:
            raise SystemExit(f"the benchmark turn failed: {response.content}")
    audited = len(await memory.list_tool_calls(limit=None))
    if audited != turns:
        raise SystemExit(f"expected {turns} audit entries, found {audited}")
    await gateway.shutdown()
    await memory.aclose()
    return statistics.median(samples)


@contextlib.contextmanager
def fake_llm() -> Iterator[str]:
    """The instant fake LLM, in its own process: a child forked from a big parent reports
    the parent's memory in its peak RSS, so this process imports nothing heavy."""
    server = subprocess.Popen(
        [sys.executable, "-m", "openpista.providers.testing"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait()


def loop_overhead_in_child(turns: int, sqlite_path: Path | None) -> float:
    code = (
        "import asyncio, pathlib, sys; sys.path.insert(0, sys.argv[1]); "
        "from bench import loop_overhead; "
        "path = None if sys.argv[3] == '-' else pathlib.Path(sys.argv[3]); "
        "print(asyncio.run(loop_overhead(int(sys.argv[2]), path)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(HERE), str(turns), str(sqlite_path or "-")],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(done.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # Measure starts as a pip install leaves them, byte-compiled (`uv sync --compile-bytecode`
    # does it for the installed packages; the workspace's editable sources never are): with
    # PYTHONDONTWRITEBYTECODE set, every start would otherwise compile from source.
    sources = [str(p) for p in (HERE.parent / "packages").glob("*/src")]
    sources.append(sysconfig.get_paths()["purelib"])
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)

    with tempfile.TemporaryDirectory() as tmp, fake_llm() as base_url:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OPENPISTA_")},
            "OPENPISTA_HOME": tmp,
            "OPENPISTA_PROVIDER": "openai",
            "OPENPISTA_MODEL": "fake",
            "OPENPISTA_BASE_URL": base_url,
            "OPENAI_API_KEY": "k",
        }
        openpista = str(BIN / "openpista")
        python = sys.executable
        startup: dict[str, object] = {
            "openpista_version": series([openpista, "--version"], env, args.runs),
            "python_pass": series([python, "-c", "pass"], env, args.runs),
        }
        one_shot: dict[str, object] = {
            "openpista": series([openpista, "run", "-e", PROMPT], env, args.runs),
            "floor": series([python, str(HERE / "floor.py"), base_url, PROMPT], env, args.runs),
        }
        loop = {
            "in_memory_ms_per_turn": round(loop_overhead_in_child(400, None) * 1000, 3),
            "sqlite_ms_per_turn": round(
                loop_overhead_in_child(200, Path(tmp) / "loop.db") * 1000, 3
            ),
        }
    startup["ratio"] = _ratio(startup["openpista_version"], startup["python_pass"])
    one_shot["ratio"] = _ratio(one_shot["openpista"], one_shot["floor"])
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_model(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "startup": startup,
        "one_shot": one_shot,
        "loop": loop,
    }
    print(json.dumps(result, indent=2))


def _ratio(ours: object, base: object) -> float:
    assert isinstance(ours, dict) and isinstance(base, dict)
    return round(ours["median_s"] / base["median_s"], 2)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
