"""The browser tools' speed, printed as one JSON object.

    uv run python benchmarks/browser.py [--runs N] [--calls N]

Against a form page served on 127.0.0.1, with the system Chromium headless:
  import_s        `import playwright.async_api` in a fresh interpreter (paid once per process)
  chromium_s      Chromium alone, started bare until its DevTools endpoint answers: the floor
                  under any way of driving it (raw CDP included)
  first_call_s    the first browser.navigate of a fresh process: importing Playwright, its
                  driver, Chromium's launch, the session's context and tab, the page load
  later calls     browser.navigate, browser.click, browser.type and browser.content once the
                  browser runs (medians over --calls calls in each of --runs browsers)
Each figure is the median, with min and max, over --runs runs; each run of the browser calls
is a process of its own (`--child URL`), so its first call is a process's real first call.
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
import sysconfig
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from openpista.core.tool import Tool, ToolContext
from openpista.tools.browser import SharedBrowser, browser_tools
from openpista.tools.browser.launch import QUIET_FLAGS, find_chromium

FORM = b"""<!doctype html><html><head><title>Form</title></head><body>
<h1>Order</h1><form action="/" method="get"><input id="name" name="name">
<button type="submit">Send</button></form>
<p id="count">0</p>
<button id="more" onclick="count.textContent = +count.textContent + 1">More</button>
</body></html>"""


class _Form(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(FORM)))
        self.end_headers()
        self.wfile.write(FORM)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve_form() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Form)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def summary(samples: list[float]) -> dict[str, float]:
    return {
        "median_s": round(statistics.median(samples), 4),
        "min_s": round(min(samples), 4),
        "max_s": round(max(samples), 4),
    }


def time_import() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import playwright.async_api"], check=True)
    bare = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    return (bare - start) - (time.perf_counter() - bare)


def time_bare_chromium(executable: str) -> float:
    """Chromium started with a DevTools port, until it says the port is open."""
    with tempfile.TemporaryDirectory() as profile:
        start = time.perf_counter()
        process = subprocess.Popen(
            [
                executable,
                "--headless",
                "--no-sandbox",
                f"--user-data-dir={profile}",
                "--remote-debugging-port=0",
                *QUIET_FLAGS,
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stderr is not None
        for line in process.stderr:
            if "DevTools listening on" in line:
                break
        elapsed = time.perf_counter() - start
        process.terminate()
        process.wait()
        return elapsed


async def one_browser(url: str, calls: int) -> dict[str, Any]:
    """One browser's life: the first call, then `calls` of each later call."""
    with tempfile.TemporaryDirectory() as home:
        shared = SharedBrowser(home=Path(home))
        tools: dict[str, Tool] = {tool.name: tool for tool in browser_tools(shared)}
        context = ToolContext(session_id="bench", channel_id="bench:1")

        def call(name: str, **arguments: Any) -> Callable[[], Awaitable[object]]:
            return lambda: tools[f"browser.{name}"].run(arguments, context)

        async def timed(action: Callable[[], Awaitable[object]]) -> float:
            start = time.perf_counter()
            await action()
            return time.perf_counter() - start

        try:
            first = await timed(call("navigate", url=url))
            later: dict[str, list[float]] = {"navigate": [], "click": [], "type": [], "content": []}
            for _ in range(calls):
                later["navigate"].append(await timed(call("navigate", url=url)))
                later["click"].append(await timed(call("click", selector="#more")))
                later["type"].append(await timed(call("type", selector="#name", text="Ada")))
                later["content"].append(await timed(call("content")))
        finally:
            await shared.aclose()
    return {"first": first, **{name: statistics.median(s) for name, s in later.items()}}


def run_child(url: str, calls: int) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", url, "--calls", str(calls)]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description="The browser tools' speed, as JSON.")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--child", metavar="URL", help="time one browser against URL")
    options = parser.parse_args()
    if options.child:
        print(json.dumps(asyncio.run(one_browser(options.child, options.calls))))
        return
    executable = find_chromium("", Path.home())
    # Measure as a pip install leaves things, byte-compiled (as benchmarks/bench.py does): with
    # PYTHONDONTWRITEBYTECODE set, Playwright would otherwise be compiled on every import.
    sources = [str(p) for p in (Path(__file__).resolve().parent.parent / "packages").glob("*/src")]
    sources.append(sysconfig.get_paths()["purelib"])
    subprocess.run([sys.executable, "-m", "compileall", "-q", *sources], check=True)

    import_s = [time_import() for _ in range(options.runs)]
    chromium_s = [time_bare_chromium(executable) for _ in range(options.runs)]
    with serve_form() as url:
        runs = [run_child(url, options.calls) for _ in range(options.runs)]

    version = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    print(
        json.dumps(
            {
                "machine": f"{platform.system()} {platform.machine()}, Python "
                f"{platform.python_version()}, {version.strip()}",
                "chromium": shutil.which(executable) or executable,
                "runs": options.runs,
                "calls_per_run": options.calls,
                "import_s": summary(import_s),
                "chromium_s": summary(chromium_s),
                "first_call_s": summary([run["first"] for run in runs]),
                "navigate_s": summary([run["navigate"] for run in runs]),
                "click_s": summary([run["click"] for run in runs]),
                "type_s": summary([run["type"] for run in runs]),
                "content_s": summary([run["content"] for run in runs]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
