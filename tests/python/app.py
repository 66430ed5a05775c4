"""The Python guest: `greet(name)` asks the registry's `demo:hello` (through
wippy:runtime/funcs) for a greeting and wraps it; `greet("")` makes the
callee fail, which comes back as an `err` the guest reports. `summarize`
returns a world-level record; `relay` passes another entry's answer (or
its error) back."""

import time

import wit_world
from componentize_py_types import Err
from wit_world.imports import funcs


class WitWorld(wit_world.WitWorld):
    def greet(self, name: str) -> str:
        target = "demo:hello" if name else "demo:missing"
        try:
            inner = funcs.call_string(target, name)
        except Err as e:
            return "error: " + e.value
        return "python says: " + inner

    def summarize(self, xs: list[int]) -> wit_world.Stats:
        return wit_world.Stats(
            count=len(xs),
            sum=sum(xs),
            min=min(xs) if xs else None,
            max=max(xs) if xs else None,
            mean=sum(xs) / len(xs) if xs else 0.0,
        )

    def relay(self, target: str, input: str) -> str:
        # An `err` from funcs raises `Err`; letting it propagate makes this
        # function's own result an `err` with the same value.
        return funcs.call_string(target, input)

    def flaky(self, counter: str, failures: int, seconds: float) -> str:
        start = int(funcs.call_string(counter, ""))
        if start <= failures:
            raise RuntimeError(f"start {start} fails on purpose")
        # Sleeps suspend the process (wasi:io/poll), holding no thread.
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.05)
        return f"start {start} ran for {seconds} s"
