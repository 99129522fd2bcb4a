"""WASI `poll_oneoff` (what `sleep`, `nanosleep` and `poll` call) that the time limit can stop.

wasmtime's own `poll_oneoff` blocks its thread in the host, where epoch interruption never
looks: a guest in `sleep(100000)` would outlive its timeout, keeping its thread and its memory.
This one, put in place of wasmtime's (the linker shadows it), sleeps on an event that
`GuestRun.stop` sets, and then raises `GuestStopped`, which ends the guest at once.

The guest has no sockets or pipes: its descriptors are files (stdin, the read-only workspace)
and the captured stdout and stderr, which are always ready, as POSIX `poll` says of regular
files. So a subscription on a descriptor is answered at once; only clocks are waited for.
"""

from __future__ import annotations

import struct
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import wasmtime

WASI_MODULE = "wasi_snapshot_preview1"

# The WASI preview 1 layouts (wasi_snapshot_preview1.witx).
_SUBSCRIPTION = struct.Struct(
    "<QB7xIxxxxQQH6x"
)  # userdata, tag, clock id, timeout, precision, flags
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, nbytes, flags
_EVENTTYPE_CLOCK = 0
_SUBCLOCKFLAGS_ABSTIME = 1
_ERRNO_SUCCESS = 0
_ERRNO_FAULT = 21
_ERRNO_INVAL = 28
_MAX_SUBSCRIPTIONS = 4096
_CLOCKS = {
    0: time.CLOCK_REALTIME,
    1: time.CLOCK_MONOTONIC,
    2: time.CLOCK_PROCESS_CPUTIME_ID,
    3: time.CLOCK_THREAD_CPUTIME_ID,
}


class GuestStopped(Exception):
    """Raised in a host call when the guest's run was stopped: the guest ends there."""


def define_poll_oneoff(linker: wasmtime.Linker, stop: threading.Event) -> None:
    """Replace the `poll_oneoff` that `linker.define_wasi()` defined by one `stop` ends."""
    import wasmtime

    i32 = wasmtime.ValType.i32()
    func_type = wasmtime.FuncType([i32, i32, i32, i32], [i32])

    def poll_oneoff(
        caller: wasmtime.Caller, subscriptions: int, events: int, count: int, written: int
    ) -> int:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return _ERRNO_FAULT
        if count <= 0 or count > _MAX_SUBSCRIPTIONS:
            return _ERRNO_INVAL
        size = _SUBSCRIPTION.size * count
        if subscriptions < 0 or subscriptions + size > memory.data_len(caller):
            return _ERRNO_FAULT
        raw = bytes(memory.read(caller, subscriptions, subscriptions + size))
        waits = [_subscription(raw, index * _SUBSCRIPTION.size) for index in range(count)]
        started = time.monotonic()
        while True:
            elapsed = time.monotonic() - started
            ready = [event for event, wait_s in waits if wait_s <= elapsed]
            if ready:
                break
            first = min(wait_s for _, wait_s in waits)
            if stop.wait(min(first - elapsed, threading.TIMEOUT_MAX)):
                raise GuestStopped
        if stop.is_set():
            raise GuestStopped
        try:
            memory.write(caller, b"".join(ready), events)
            memory.write(caller, struct.pack("<I", len(ready)), written)
        except IndexError:
            return _ERRNO_FAULT
        return _ERRNO_SUCCESS

    linker.allow_shadowing = True
    linker.define_func(WASI_MODULE, "poll_oneoff", func_type, poll_oneoff, access_caller=True)


def _subscription(raw: bytes, offset: int) -> tuple[bytes, float]:
    """The event a subscription reports and how many seconds from now it is due: descriptors
    and bad clocks at once, a clock at its timeout (CPU-time clocks are taken as wall time)."""
    userdata, tag, clock_id, timeout_ns, _, flags = _SUBSCRIPTION.unpack_from(raw, offset)
    if tag != _EVENTTYPE_CLOCK:
        return _EVENT.pack(userdata, _ERRNO_SUCCESS, tag, 0, 0), 0.0
    clock = _CLOCKS.get(clock_id)
    if clock is None:
        return _EVENT.pack(userdata, _ERRNO_INVAL, tag, 0, 0), 0.0
    if flags & _SUBCLOCKFLAGS_ABSTIME:
        timeout_ns -= time.clock_gettime_ns(clock)
    return _EVENT.pack(userdata, _ERRNO_SUCCESS, tag, 0, 0), max(timeout_ns, 0) / 1e9
