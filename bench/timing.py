"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable


def best_of(repeat: int, command: list[str] | Callable[[int], list[str]], cwd: str) -> float:
    """Best wall time of repeat runs of a fresh process (interpreter start included).

    command may be a function of the run number, for runs that each need their own arguments.
    A failing run stops the benchmark with its output.
    """
    best = float("inf")
    for number in range(repeat):
        argv = command(number) if callable(command) else command
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}:\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return best
