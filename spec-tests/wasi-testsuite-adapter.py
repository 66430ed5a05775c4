"""Adapter for WebAssembly/wasi-testsuite's own test runner, driving
`wippy-wasm run`. Point WIPPY_WASM at the binary (default: `wippy-wasm` on
PATH), then from a wasi-testsuite checkout:

    python3 test-runner/wasi_test_runner.py \
        -t tests/assemblyscript/testsuite/wasm32-wasip1 \
           tests/c/testsuite/wasm32-wasip1 tests/rust/testsuite/wasm32-wasip1 \
        -r /path/to/wippy-wasm/spec-tests/wasi-testsuite-adapter.py

The runner wants Python >= 3.12 (it tests `str in SomeStrEnum`); on 3.11,
run a scratch copy of `test-runner/` whose four `x in EnumClass` checks read
`x in [e.value for e in EnumClass]`.
"""

import os
import shlex
import subprocess
from typing import Dict, List, Optional, Tuple

WIPPY_WASM = shlex.split(os.getenv("WIPPY_WASM", "wippy-wasm"), posix=os.name != "nt")


def get_name() -> str:
    return "wippy-wasm"


def get_version() -> str:
    result = subprocess.run(WIPPY_WASM[0:1] + ["--version"], encoding="UTF-8", capture_output=True, check=True)
    return result.stdout.split()[1]


def get_wasi_versions() -> List[str]:
    # wasip1 core modules run natively on wasi_snapshot_preview1.
    return ["wasm32-wasip1"]


def get_wasi_worlds() -> List[str]:
    return ["wasi:cli/command"]


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    args, env, root = args_env_root
    argv = WIPPY_WASM + ["run"]
    for k, v in env.items():
        argv += ["--env", f"{k}={v}"]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv += [test_path]
    argv += args
    return argv
