"""Benchmark `reconciler validate` against check-jsonschema and the PyYAML C-loader parse floor.

    python bench/validate.py [--models 1000] [--repeat 3]

Every figure is the best wall time of `--repeat` runs of a fresh process (interpreter start
included), all on the same generated files in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="reconciler-bench-")
    try:
        paths = generate(root, args.models, 5, 20)
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


if __name__ == "__main__":
    main()
