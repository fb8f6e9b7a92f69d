"""Compare `reconciler get` with `dvc get` fetching one large artifact from a local DVC remote.

    python bench/get.py [--megabytes 200] [--rounds 3]

Makes a git + DVC repository with a random artifact of --megabytes pushed to a local remote and
a Model pinning it, clones it (no DVC cache: what a batch job has), then times, in rounds
A B A B ..., `reconciler get big@1.0.0` (the digest check included) and `dvc get` of the same
path into new files: whole processes, start-up included. Prints best and median wall seconds,
reconciler's ratio to DVC's, and each one's peak RSS (memory flat in the size means far below
the artifact's size).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

MEASURE = ("import resource, subprocess, sys\n"
           "done = subprocess.run(sys.argv[1:], capture_output=True)\n"
           "sys.stderr.buffer.write(done.stderr)\n"
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
           "sys.exit(done.returncode)\n")
MODEL = """\
apiVersion: reconciler/v1
kind: Model
metadata: {{name: big}}
spec:
  framework: sklearn
  versions:
    - version: "1.0.0"
      artifact: models/big.bin
      digest: {digest}
"""


def _run(*args: str, cwd: str) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])}: {done.stdout}{done.stderr}")
    return done.stdout


def _timed(command: list[str], cwd: str) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of one process."""
    start = time.perf_counter()
    output = _run(sys.executable, "-c", MEASURE, *command, cwd=cwd)
    return time.perf_counter() - start, int(output.split()[-1])


def _repository(scratch: str, megabytes: int) -> str:
    root = os.path.join(scratch, "repo")
    os.makedirs(os.path.join(root, "models"))
    _run("git", "init", "-q", "-b", "main", cwd=root)
    _run("git", "config", "user.email", "bench@example.com", cwd=root)
    _run("git", "config", "user.name", "Bench", cwd=root)
    dvc = [sys.executable, "-m", "dvc"]
    _run(*dvc, "init", "-q", cwd=root)
    _run(*dvc, "remote", "add", "-d", "local", os.path.join(scratch, "remote"), cwd=root)
    with open(os.path.join(root, "models", "big.bin"), "wb") as handle:
        for _ in range(megabytes):
            handle.write(os.urandom(1 << 20))
    _run(*dvc, "add", "-q", "models/big.bin", cwd=root)
    _run(*dvc, "push", "-q", cwd=root)
    with open(os.path.join(root, "models", "big.bin.dvc"), encoding="utf-8") as handle:
        digest = "md5:" + handle.read().split("md5: ")[1].split()[0]
    os.makedirs(os.path.join(root, "manifests", "models"))
    with open(os.path.join(root, "manifests", "models", "big.yaml"), "w",
              encoding="utf-8") as handle:
        handle.write(MODEL.format(digest=digest))
    _run("git", "add", "-A", cwd=root)
    _run("git", "commit", "-q", "-m", "big 1.0.0", cwd=root)
    clone = os.path.join(scratch, "clone")
    _run("git", "clone", "-q", root, clone, cwd=scratch)
    return clone


def main() -> None:
    """Make the repository, time both tools interleaved, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    scratch = tempfile.mkdtemp(prefix="reconciler-bench-get-")
    try:
        clone = _repository(scratch, args.megabytes)
        tools = {
            "reconciler get": lambda n: [sys.executable, "-m", "reconciler", "get",
                                         "big@1.0.0", "-o", f"r{n}.bin"],
            "dvc get": lambda n: [sys.executable, "-m", "dvc", "get", clone,
                                  "models/big.bin", "-o", f"d{n}.bin"],
        }
        figures: dict[str, list[tuple[float, int]]] = {name: [] for name in tools}
        for number in range(args.rounds):
            for name, command in tools.items():
                figures[name].append(_timed(command(number), clone))
                for leftover in ("r", "d"):
                    path = os.path.join(clone, f"{leftover}{number}.bin")
                    if os.path.exists(path):
                        os.remove(path)
        print(f"{args.megabytes} MB artifact from a local DVC remote into a clone with no cache; "
              f"{args.rounds} rounds interleaved; wall seconds best / median, peak RSS")
        for name, runs in figures.items():
            times = [seconds for seconds, _ in runs]
            print(f"  {name:15s} {min(times):6.2f} / {statistics.median(times):6.2f}   "
                  f"{max(rss for _, rss in runs) / 1024:6.0f} MiB")
        ratio = min(s for s, _ in figures["reconciler get"]) / min(
            s for s, _ in figures["dvc get"])
        print(f"  reconciler get / dvc get: x{ratio:.2f} (target <= 1.2)")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
