"""How many events an unrelated push adds: apply a synthetic registry (bench/gen.py), push a
commit that changes no manifest, apply again, and count what the second apply wrote.

    python bench/renders.py [--models 1000] [--checkout DIR ...]

Each --checkout is another source tree of reconciler (a `git worktree` of an older commit, say)
run with the same interpreter and the same repository, so the figures compare side by side; the
default is this one. Every model serves in staging and production, so each apply renders
2 configs per model.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate
from timing import apply_from

HERE = os.path.dirname(os.path.abspath(__file__))


def _git(root: str, *args: str) -> None:
    subprocess.run(["git", "-C", root, "-c", "user.name=Bench", "-c", "user.email=b@example.com",
                    *args], check=True, capture_output=True)


def _events(database: str) -> int:
    with sqlite3.connect(database) as connection:
        return int(connection.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--checkout", action="append", default=[])
    args = parser.parse_args()
    checkouts = args.checkout or [os.path.dirname(HERE)]
    with tempfile.TemporaryDirectory(prefix="reconciler-bench-") as scratch:
        root = os.path.join(scratch, "registry")
        generate(root, args.models, 3, 20)
        _git(root, "add", "-A")
        _git(root, "commit", "-q", "-m", "registry")
        for number, checkout in enumerate(checkouts):
            database = os.path.join(scratch, f"registry-{number}.sqlite")
            apply_from(checkout, root, database)
            before = _events(database)
            with open(os.path.join(root, "README.md"), "a", encoding="utf-8") as handle:
                handle.write(f"an unrelated push {number}\n")
            _git(root, "add", "README.md")
            _git(root, "commit", "-q", "-m", "docs")
            _, second = apply_from(checkout, root, database)
            rendered = len(second.get("rendered", []))  # type: ignore[arg-type]
            print(f"{checkout}: {args.models} models, {rendered} configs rendered; the unrelated "
                  f"push added {_events(database) - before} events")


if __name__ == "__main__":
    main()
