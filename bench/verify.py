"""What `audit verify` costs, and what rendering the recorded commits again adds to it.

    python bench/verify.py [--models 300] [--stops 5] [--repeat 3] [--checkout DIR ...]

A synthetic registry (bench/gen.py, every model served in staging and production) is applied
once, then --stops more times, each after one more release of one model, so the chain records
renders at 1 + stops commits. `reconciler audit verify` then runs as a whole process from each
--checkout (a `git worktree` of an older commit, say; default this tree), interleaved, best of
--repeat. Every checkout verifies the same database, written by the first.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import digest_of, dvc_pointer, generate, history_model, write
from timing import apply_from, best_of

HERE = os.path.dirname(os.path.abspath(__file__))


def _git(root: str, *args: str) -> None:
    subprocess.run(["git", "-C", root, "-c", "user.name=Bench", "-c", "user.email=b@example.com",
                    *args], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--stops", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", action="append", default=[])
    args = parser.parse_args()
    checkouts = args.checkout or [os.path.dirname(HERE)]
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as scratch:
        root = os.path.join(scratch, "registry")
        generate(root, args.models, 3, 20)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "registry")
        database = os.path.join(scratch, "registry.sqlite")
        apply_from(checkouts[0], root, database)
        for release in range(4, 4 + args.stops):  # generate wrote 3 releases
            write(root, "manifests/models/model-00000.yaml", history_model(0, release, 20))
            write(root, "models/model-00000.pkl.dvc",
                  dvc_pointer("models/model-00000.pkl", digest_of("model-00000", release)))
            _git(root, "commit", "-qam", f"release {release} of model-00000")
            apply_from(checkouts[0], root, database)
        times: dict[str, float] = {checkout: float("inf") for checkout in checkouts}
        for _ in range(args.repeat):
            for checkout in checkouts:  # interleaved: A B A B
                env = {**os.environ, "PYTHONPATH": checkout, "DVC_NO_ANALYTICS": "1"}
                seconds = best_of(1, [sys.executable, "-m", "reconciler", "audit", "verify",
                                      "--repo", root, "--db", f"sqlite:///{database}"],
                                  cwd=root, env=env)
                times[checkout] = min(times[checkout], seconds)
        first = times[checkouts[0]]
        for checkout in checkouts:
            print(f"{checkout}: {args.models} models, renders recorded at {1 + args.stops} "
                  f"commits: audit verify {times[checkout]:.2f} s best of {args.repeat} "
                  f"(x{times[checkout] / first:.2f} of the first)")


if __name__ == "__main__":
    main()
