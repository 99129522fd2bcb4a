"""WASM skills: `mode: wasm` skills run as WASI commands on wasmtime.

Importing this package loads no wasmtime: it is imported inside the run (and by
`availability()`), so registering the runner costs nothing.
"""

from openpista.sandbox.wasm.runner import WasmSkillRunner

__all__ = ["WasmSkillRunner"]
