"""Benchmark following dvc.lock lineage through a folder output with thousands of files.

    python bench/lineage.py [--files 6300] [--inputs 1000] [--versions 31]
    python bench/lineage.py --plan [--checkout DIR ...]

A `split` stage reads --inputs raw files and writes a folder output of --files files; a
`train` stage reads every one of them. Following the model's lineage (what diff does for each
version pinned to it, --versions times) must walk `split` once, not once per file read from its
output. Prints the wall time of the walks and how many inputs each finds.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
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
    parser.add_argument("--plan", action="store_true")
    parser.add_argument("--checkout", action="append", default=[])
    args = parser.parse_args()
    if args.plan:
        _plan(args.files, args.inputs, args.versions,
              args.checkout or [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
        return
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


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _model(versions: int) -> str:
    listed = "".join(f"    - version: 1.0.{i}\n      artifact: models/churn.pkl\n"
                     for i in range(versions))
    return ("apiVersion: reconciler/v1\nkind: Model\nmetadata:\n  name: churn\n"
            f"  owner: ml@example.com\nspec:\n  framework: sklearn\n  versions:\n{listed}")


def _dvc_lock(files: int, inputs: int) -> str:
    lines = ["schema: '2.0'", "stages:", "  split:", "    cmd: python split.py", "    deps:"]
    for i in range(inputs):
        lines += [f"    - path: raw/{i}.csv", f"      md5: {_md5(str(i))}", "      size: 1"]
    lines += ["    outs:", "    - path: data/split", f"      md5: {_md5('split')}.dir",
              f"      size: {files}", f"      nfiles: {files}", "  train:",
              "    cmd: python train.py", "    deps:"]
    for i in range(files):
        lines += [f"    - path: data/split/f{i}.csv", f"      md5: {_md5(f'f{i}')}",
                  "      size: 1"]
    lines += ["    outs:", "    - path: models/churn.pkl", f"      md5: {_md5('model')}",
              "      size: 10"]
    return "\n".join(lines) + "\n"


def _plan(files: int, inputs: int, versions: int, checkouts: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as root:
        def git(*args: str) -> None:
            subprocess.run(["git", "-C", root, "-c", "user.name=Bench", "-c",
                            "user.email=b@example.com", *args], check=True, capture_output=True)

        git("init", "-q", "-b", "main")
        texts = {".dvc/config": "", "dvc.lock": _dvc_lock(files, inputs),
                 "manifests/models/churn.yaml": _model(1)}
        for relative, text in texts.items():
            os.makedirs(os.path.dirname(os.path.join(root, relative)) or root, exist_ok=True)
            with open(os.path.join(root, relative), "w", encoding="utf-8") as handle:
                handle.write(text)
        git("add", "-A")
        git("commit", "-qm", "the pipeline")
        git("checkout", "-qb", "pull-request")
        with open(os.path.join(root, "manifests/models/churn.yaml"), "w",
                  encoding="utf-8") as handle:
            handle.write(_model(versions))
        git("commit", "-qam", f"{versions} versions")
        best = {checkout: float("inf") for checkout in checkouts}
        for _ in range(3):
            for checkout in checkouts:  # interleaved: A B A B
                env = {**os.environ, "PYTHONPATH": checkout}
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "reconciler", "plan", "--base", "main"],
                               cwd=root, env=env, capture_output=True, check=False)
                best[checkout] = min(best[checkout], time.perf_counter() - start)
        for checkout in checkouts:
            print(f"{checkout}: plan of {versions} versions pinned to one output of a "
                  f"{files}-file pipeline: {best[checkout]:.2f} s best of 3 "
                  f"(x{best[checkout] / best[checkouts[0]]:.2f} of the first)")


if __name__ == "__main__":
    main()
