"""The OS tools and sandboxes cost nothing until used: registering them imports none of the
libraries they drive, for `--version` and for a run that calls no such tool; yet the model is
offered every one of them."""

from __future__ import annotations

from openpista.providers.testing import FakeChatCompletionsServer

from .conftest import Openpista

DRIVEN_LIBRARIES = {"playwright", "mss", "PIL", "jeepney", "aiodocker", "wasmtime"}
OFFERED = {
    "system_run",
    "skill_run",
    "screen_capture",
    "screen_ocr",
    "browser_navigate",
    "browser_click",
    "browser_type",
    "browser_screenshot",
    "browser_content",
    "browser_close",
    "system_notify",
    "container_run",
}


def test_no_tool_library_is_imported_before_a_call_needs_it(
    openpista: Openpista, llm: FakeChatCompletionsServer
) -> None:
    llm.queue_text("hello")
    for args in (["--version"], ["run", "-e", "hi"]):
        modules, done = openpista.modules_loaded(*args)
        assert done.returncode == 0, done.stderr
        assert not {m.split(".")[0] for m in modules} & DRIVEN_LIBRARIES, args
    offered = {tool["function"]["name"] for tool in llm.requests[0]["tools"]}
    assert offered >= OFFERED
