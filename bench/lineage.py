"""Benchmark following dvc.lock lineage through a folder output with thousands of files.

    python bench/lineage.py [--files 6300] [--inputs 1000] [--versions 31]

A `split` stage reads --inputs raw files and writes a folder output of --files files; a
`train` stage reads every one of them. Following the model's lineage (what diff does for each
version pinned to it, --versions times) must walk `split` once, not once per file read from its
output. Prints the wall time of the walks and how many inputs each finds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from reconciler.dvc import lineage
from reconciler.dvc.records import Dependency, Output, StageLineage


def main() -> None:
    """Build the two stages' outputs, walk, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=6300)
    parser.add_argument("--inputs", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=31)
    args = parser.parse_args()
    raw = tuple(Dependency(f"raw/{i}.csv", f"{i:032x}") for i in range(args.inputs))
    parts = Output("data/parts", "md5:" + "a" * 32 + ".dir", None, args.files, "dvc.lock",
                   StageLineage("dvc.lock", "split", raw, {}))
    read = tuple(Dependency(f"data/parts/f{i}.csv", f"{i:032x}") for i in range(args.files))
    model = Output("model.pkl", "md5:" + "b" * 32, None, None, "dvc.lock",
                   StageLineage("dvc.lock", "train", read, {}))
    outputs = {"data/parts": parts, "model.pkl": model}
    start = time.perf_counter()
    for _ in range(args.versions):
        found = sum(1 for _ in lineage.upstream(model, outputs))
    seconds = time.perf_counter() - start
    print(f"{args.versions} walks of {args.files} files read from a folder output whose stage "
          f"read {args.inputs} inputs: {seconds:.2f} s, {found} inputs found per walk")


if __name__ == "__main__":
    main()
