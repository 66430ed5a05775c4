"""The Python guest: `greet(name)` asks the registry's `demo:hello` (through
wippy:runtime/funcs) for a greeting and wraps it; `greet("")` makes the
callee fail, which comes back as an `err` the guest reports."""

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
