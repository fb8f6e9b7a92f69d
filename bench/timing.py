"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable


def best_of(repeat: int, command: list[str] | Callable[[int], list[str]], cwd: str,
            env: dict[str, str] | None = None) -> float:
    """Best wall time of repeat runs of a fresh process (interpreter start included).

    command may be a function of the run number, for runs that each need their own arguments.
    A failing run stops the benchmark with its output.
    """
    best = float("inf")
    for number in range(repeat):
        argv = command(number) if callable(command) else command
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False,
                              env=env)
        best = min(best, time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}:\n"
                             f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return best


def apply_from(checkout: str, root: str, database: str) -> tuple[float, dict[str, object]]:
    """`reconciler apply --format json` of root into a SQLite database, run from the source
    tree checkout with this interpreter: wall seconds (start-up included) and its report."""
    env = {**os.environ, "PYTHONPATH": checkout, "DVC_NO_ANALYTICS": "1"}
    env.pop("CI", None)  # the embedded database is what is measured
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "reconciler", "apply", "--repo", root, "--db",
                           f"sqlite:///{database}", "--format", "json"],
                          cwd=root,  # not a checkout: `python -m` puts the folder first
                          capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"apply failed in {checkout}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    report: dict[str, object] = json.loads(done.stdout)
    return elapsed, report
