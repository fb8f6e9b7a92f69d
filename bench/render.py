"""Benchmark `reconciler render`: 500 models x 2 environments (KServe), start-up included.

    python bench/render.py [--models 500] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate
from timing import best_of

RECONCILER = os.path.join(os.path.dirname(sys.executable), "reconciler")


def main() -> None:
    """Generate a registry, render it, check it, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = tempfile.mkdtemp(prefix="reconciler-bench-render-")
    try:
        generate(root, args.models, 5, 20)
        render = best_of(args.repeat, lambda n: [RECONCILER, "render", "--out", f"deploy-{n}"],
                         root)
        files = sum(len(names) for _, _, names in os.walk(os.path.join(root, "deploy-0"))) - 1
        check = best_of(args.repeat, [RECONCILER, "render", "--check", "--out", "deploy-0"],
                        root)
        print(f"{args.models} models x 2 environments: {files} files")
        print(f"  reconciler render          {render:6.2f} s wall (target < 2 s)")
        print(f"  reconciler render --check  {check:6.2f} s wall, up to date (target < 2 s)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
