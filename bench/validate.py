"""Benchmark `reconciler validate` against check-jsonschema and the PyYAML C-loader parse floor.

    python bench/validate.py [--models 1000] [--repeat 3]
    python bench/validate.py --checkout DIR --checkout DIR [--rounds 5]

Every figure is the best wall time of `--repeat` runs of a fresh process (interpreter start
included), all on the same generated files in the same run. With --checkout (source trees of
reconciler: this one, a `git worktree` of main, ...), times each one's validate of the whole
registry and of 3 files instead, in rounds A B A B ..., and prints best and median with each
one's ratio to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate
from timing import best_of

BIN = os.path.dirname(sys.executable)
FLOOR = ("import sys, yaml\n"
         "for p in sys.argv[1:]:\n"
         "    with open(p, 'rb') as f: yaml.load(f.read(), Loader=yaml.CSafeLoader)\n")


def main() -> None:
    """Generate the registry, time the three tools, print a table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", action="append", default=[])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="reconciler-bench-")
    try:
        paths = generate(root, args.models, 5, 20)
        if args.checkout:
            _compare([os.path.abspath(c) for c in args.checkout], root, paths[:3], args.rounds)
            return
        schema = os.path.join(root, "schema.json")
        with open(schema, "w", encoding="utf-8") as handle:
            subprocess.run([os.path.join(BIN, "reconciler"), "schema"], stdout=handle, check=True)
        three = paths[:3]
        reconciler = [os.path.join(BIN, "reconciler"), "validate"]
        jsonschema = [os.path.join(BIN, "check-jsonschema"), "--schemafile", schema]
        floor = [sys.executable, "-c", FLOOR]
        rows = [
            ("reconciler validate (all)", best_of(args.repeat, reconciler, root)),
            ("check-jsonschema (all)", best_of(args.repeat, jsonschema + paths, root)),
            ("parse floor, C loader (all)", best_of(args.repeat, floor + paths, root)),
            ("reconciler validate (3 files)", best_of(args.repeat, reconciler + three, root)),
            ("check-jsonschema (3 files)", best_of(args.repeat, jsonschema + three, root)),
            ("parse floor, C loader (3 files)", best_of(args.repeat, floor + three, root)),
        ]
        figures = dict(rows)
        print(f"{args.models} model manifests x 5 versions (+20 datasets, 2 environments)")
        for label, seconds in rows:
            print(f"  {label:34s} {seconds:7.3f} s")
        all_ratio = figures["check-jsonschema (all)"] / figures["reconciler validate (all)"]
        floor_ratio = figures["reconciler validate (all)"] / figures["parse floor, C loader (all)"]
        three_ratio = figures["check-jsonschema (3 files)"] / figures[
            "reconciler validate (3 files)"]
        print(f"  whole repo: {all_ratio:.1f}x faster than check-jsonschema (target >= 5x), "
              f"{floor_ratio:.2f}x the parse floor (target <= 3x)")
        print(f"  3 files: {three_ratio:.2f}x check-jsonschema's speed (target >= 1x)")
        print(json.dumps({"seconds": figures}, indent=None))
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _compare(checkouts: list[str], root: str, three: list[str], rounds: int) -> None:
    """validate of the whole registry and of 3 files by each checkout, interleaved."""
    runs: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for checkout in checkouts:
            env = {**os.environ, "PYTHONPATH": checkout}
            for label, extra in (("all", []), ("3 files", three)):
                command = [sys.executable, "-m", "reconciler", "validate", *extra]
                runs.setdefault((checkout, label), []).append(best_of(1, command, root, env))
    print(f"validate, {rounds} rounds interleaved; wall seconds, best / median (ratio of bests "
          "to the first checkout)")
    for checkout in checkouts:
        print(f"  {checkout}")
        for label in ("all", "3 files"):
            times, first = runs[(checkout, label)], runs[(checkouts[0], label)]
            print(f"    {label:8s} {min(times):6.3f} / {statistics.median(times):6.3f}"
                  f"  (x{min(times) / min(first):.2f})")


if __name__ == "__main__":
    main()
