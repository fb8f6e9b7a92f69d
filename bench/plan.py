"""Benchmark `reconciler plan` on the 1,000-model bench registry: a PR that moves the stages of
50 models, and one that moves a single model's. Prints best-of-N wall times (start-up included).

    python bench/plan.py [--models 1000] [--touched 50] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate
from timing import best_of

RECONCILER = os.path.join(os.path.dirname(sys.executable), "reconciler")


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


def main() -> None:
    """Generate, branch, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--touched", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="reconciler-bench-plan-")
    try:
        paths = [os.path.join(root, p) for p in generate(root, args.models, 5, 20)]
        _git(root, "checkout", "-q", "-b", "main")
        _git(root, "add", "-A")
        _git(root, "commit", "-qm", "registry")
        _branch(root, "many", paths[:args.touched])
        _branch(root, "one", paths[args.touched:args.touched + 1])
        print(f"{args.models} models; plan of a PR touching {args.touched} models and of one "
              "touching 1 "
              f"(best of {args.repeat}, wall, start-up included)")
        for branch, label in (("many", f"{args.touched} models"), ("one", "1 model")):
            seconds = best_of(args.repeat, [RECONCILER, "plan", "--base", "main", "--head",
                                            branch, "--format", "json"], root)
            print(f"  plan, {label:10s} {seconds:6.2f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
