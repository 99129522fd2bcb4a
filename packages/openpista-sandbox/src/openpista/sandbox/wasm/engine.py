"""The wasmtime engine a WASM skill runs on, and what identifies its compiled code.

Every run gets its own engine (creating one costs a fraction of a millisecond), so advancing
its epoch stops that run's guest and no other.
"""

from __future__ import annotations

import platform
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

ENGINE_SETTINGS = "epoch_interruption=on; multi_memory=off"
"""The engine options that change compiled code: part of every cache key, so a module compiled
under other settings is never loaded."""


def new_engine() -> wasmtime.Engine:
    """An engine whose guests check its epoch: `increment_epoch()` traps them (interrupt)."""
    import wasmtime

    config = wasmtime.Config()
    config.epoch_interruption = True
    # One linear memory per module: the store's memory cap is per memory, so a module with
    # many would get 64 MB each (the store's `memories` limit holds this too).
    config.wasm_multi_memory = False
    return wasmtime.Engine(config)


@cache
def runtime_identity() -> str:
    """The wasmtime version, this machine's architecture and the engine settings: compiled code
    is valid only for the same three."""
    from importlib.metadata import version

    return f"wasmtime {version('wasmtime')}; {platform.machine()}; {ENGINE_SETTINGS}"


def runtime_problem() -> str | None:
    """None when wasmtime loads here, else what is wrong, for `openpista skills list`."""
    try:
        import wasmtime  # noqa: F401  # pyright: ignore[reportUnusedImport]
    except (ImportError, OSError) as exc:
        return (
            f"the WASM runtime (the wasmtime Python package) cannot be loaded: {exc}; "
            "reinstall openpista-sandbox (pip install --force-reinstall openpista-sandbox)"
        )
    return None
