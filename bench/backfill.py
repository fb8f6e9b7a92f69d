"""Compare `reconciler apply` backfills of two or more source trees of reconciler, interleaved.

    python bench/backfill.py --checkout DIR --checkout DIR [--commits 2000] [--models 200]

Each --checkout is a source tree (this one, a `git worktree` of main, ...), run with this
interpreter on the same generated history (bench/gen.py), in rounds A B A B ... so drift of the
machine hits each alike. Prints, per checkout, the best and median wall time of a backfill into
a new SQLite database and of an apply of one new commit, and each one's ratio to the first.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import commit_one_more_release, generate_history
from timing import apply_from


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkout", action="append", required=True)
    parser.add_argument("--commits", type=int, default=2000)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    checkouts = [os.path.abspath(c) for c in args.checkout]
    scratch = tempfile.mkdtemp(prefix="reconciler-bench-backfill-")
    try:
        root = os.path.join(scratch, "repo")
        generate_history(root, args.commits, args.models)
        subprocess.run(["git", "-C", root, "branch", "-f", "before", "HEAD"], check=True)
        commit_one_more_release(root, args.commits, args.models)
        backfills: dict[str, list[float]] = {c: [] for c in checkouts}
        increments: dict[str, list[float]] = {c: [] for c in checkouts}
        for number in range(args.rounds):
            for index, checkout in enumerate(checkouts):
                database = os.path.join(scratch, f"r{number}-{index}.sqlite")
                subprocess.run(["git", "-C", root, "checkout", "-q", "before"], check=True)
                backfills[checkout].append(apply_from(checkout, root, database)[0])
                subprocess.run(["git", "-C", root, "checkout", "-q", "-"], check=True)
                increments[checkout].append(apply_from(checkout, root, database)[0])
        print(f"history: {args.commits} commits, {args.models} models; {args.rounds} rounds, "
              "interleaved; wall seconds, best / median")
        first = checkouts[0]
        for checkout in checkouts:
            full, one = backfills[checkout], increments[checkout]
            print(f"  {checkout}\n    backfill {min(full):6.2f} / {statistics.median(full):6.2f}"
                  f"  (x{min(full) / min(backfills[first]):.2f})   one new commit "
                  f"{min(one):5.2f} / {statistics.median(one):5.2f}"
                  f"  (x{min(one) / min(increments[first]):.2f})")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
