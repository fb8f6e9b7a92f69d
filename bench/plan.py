"""Benchmark `reconciler plan` on the 1,000-model bench registry: a PR that moves the stages of
50 models, and one that moves a single model's. Prints best-of-N wall times (start-up included)
and the floor under them: a process that only imports what plan imports.

With --compare DIR (another checkout of reconciler, an older commit say), its plan runs
interleaved with this one's (A B A B) and the ratio is printed: absolute times drift 2x
between days here, ratios measured in one run do not.

    python bench/plan.py [--models 1000] [--touched 50] [--repeat 3] [--compare DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate
from timing import best_of

IMPORTS = ("import reconciler.api, reconciler.plan, reconciler.report.plan, "
           "reconciler.render.engine, reconciler.catalog, reconciler.rules, reconciler.diff, "
           "jsonschema, jinja2")


def _git(root: str, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com",
                    *args], cwd=root, check=True, capture_output=True)


def _branch(root: str, name: str, models: list[str]) -> None:
    """A branch off main that rolls each model's staging back one version."""
    _git(root, "checkout", "-q", "-b", name, "main")
    for path in models:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text.replace('staging: {version: "1.5.0"}',
                                      'staging: {version: "1.4.0"}'))
    _git(root, "commit", "-qam", f"{name}: roll staging back")


def _interleaved(repeat: int, argv: list[str], root: str, other: str) -> tuple[float, float]:
    """Best wall times of this checkout's plan and other's, run alternately."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    best = {here: float("inf"), other: float("inf")}
    for _ in range(repeat):
        for checkout in (here, other):
            env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=root,
                                  env=env, capture_output=True, check=False)
            best[checkout] = min(best[checkout], time.perf_counter() - start)
            if done.returncode not in (0, 2):
                raise SystemExit(f"{checkout}: plan exited {done.returncode}: "
                                 f"{done.stderr.decode()[-2000:]}")
    return best[here], best[other]


def main() -> None:
    """Generate, branch, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--touched", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", metavar="DIR", help="another reconciler checkout")
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="reconciler-bench-plan-")
    try:
        paths = [os.path.join(root, p) for p in generate(root, args.models, 5, 20)]
        _git(root, "checkout", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "registry")
        _branch(root, "many", paths[:args.touched])
        _branch(root, "one", paths[args.touched:args.touched + 1])
        _git(root, "gc", "-q")  # a clone's objects are packed: ls-tree is 6x faster so
        print(f"{args.models} models; plan of a PR touching {args.touched} models and of one "
              f"touching 1 (best of {args.repeat}, wall, start-up included)")
        floor = best_of(args.repeat, [sys.executable, "-c", IMPORTS], root)
        print(f"  floor (imports only)  {floor:6.2f} s")
        for branch, label in (("many", f"{args.touched} models"), ("one", "1 model")):
            argv = ["plan", "--base", "main", "--head", branch, "--format", "json"]
            if args.compare:
                ours, theirs = _interleaved(args.repeat, argv, root, args.compare)
                print(f"  plan, {label:10s}  {ours:6.2f} s   {args.compare}: {theirs:6.2f} s   "
                      f"({theirs / ours:.2f}x)")
            else:
                seconds = best_of(args.repeat, [sys.executable, "-m", "reconciler", *argv], root)
                print(f"  plan, {label:10s}  {seconds:6.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
