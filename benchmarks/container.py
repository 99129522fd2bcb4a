"""container.run's speed, printed as one JSON object.

    uv run python benchmarks/container.py [--runs N]

Uses the Docker engine at DOCKER_HOST, or (as root, with Debian's docker.io and busybox-static)
starts a private dockerd as the tests do, importing the busybox test image. Then times:
  engine_start        starting that private dockerd until it answers (null with DOCKER_HOST)
  first_run           the first container.run in this process: importing aiodocker, opening
                      the connection, the stale-container check, and one run
  run                 container.run of `echo hi` on the busybox image: create, start, output,
                      wait, remove; min, median and max over the runs; the target is 1 s
  docker_cli_run      `docker run --rm` with the same limits, for comparison
  import_aiodocker    `python -c "import aiodocker"` in a fresh process, minus `python -c pass`
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
import time
from pathlib import Path

from openpista.core.tool import ToolContext
from openpista.sandbox.container_tool import ContainerRunTool
from openpista.sandbox.containers import ContainerEngine
from openpista.sandbox.testing import IMAGE, TestEngine

CONTEXT = ToolContext(session_id="bench", channel_id="bench")


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "min_s": round(min(samples), 4),
        "median_s": round(statistics.median(samples), 4),
        "max_s": round(max(samples), 4),
    }


async def time_tool(address: str, runs: int) -> tuple[float, list[float]]:
    tool = ContainerRunTool(ContainerEngine(address), image=IMAGE, workspace=Path("/nonexistent"))
    try:
        started = time.perf_counter()
        first = await tool.run({"command": "echo hi"}, CONTEXT)
        first_s = time.perf_counter() - started
        assert first.text.endswith("hi"), first.text
        samples: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            output = await tool.run({"command": "echo hi"}, CONTEXT)
            samples.append(time.perf_counter() - started)
            assert not output.is_error, output.text
    finally:
        await tool.aclose()
    return first_s, samples


def time_cli(address: str, runs: int) -> list[float]:
    argv = ["docker", "-H", address, "run", "--rm", "--network", "none", "--read-only"]
    argv += ["--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    argv += ["--pids-limit", "256", "-m", "512m", "--cpus", "1", IMAGE, "sh", "-c", "echo hi"]
    samples: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        samples.append(time.perf_counter() - started)
    return samples


def time_import(runs: int) -> float:
    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - started

    once("import aiodocker")  # warm the page cache
    bare = statistics.median(once("pass") for _ in range(runs))
    return statistics.median(once("import aiodocker") for _ in range(runs)) - bare


def main() -> None:
    parser = argparse.ArgumentParser(description="container.run's speed, as JSON")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with TestEngine() as engine:
        first_s, samples = asyncio.run(time_tool(engine.address, args.runs))
        cli = time_cli(engine.address, args.runs)
        print(
            json.dumps(
                {
                    "machine": {
                        "python": platform.python_version(),
                        "cpus": os.cpu_count(),
                        "load_average": [round(x, 2) for x in os.getloadavg()],
                        "engine": engine.docker(
                            "version", "--format", "{{.Server.Version}}"
                        ).strip(),
                    },
                    "runs": args.runs,
                    "engine_start_s": None
                    if engine.started_seconds is None
                    else round(engine.started_seconds, 3),
                    "first_run_s": round(first_s, 4),
                    "run": summary(samples),
                    "docker_cli_run": summary(cli),
                    "import_aiodocker_s": round(time_import(max(5, args.runs // 2)), 4),
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
