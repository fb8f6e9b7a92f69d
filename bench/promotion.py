"""Benchmark the history-based promotion rule (`promotion.from` judged on the registry branch's
first-parent history) in pre-commit's validate and in plan, on generated histories.

    python bench/promotion.py [--models 1000] [--commits 1000 10000] [--repeat 3] [--compare DIR]

For each history length, two pull requests off main, each changing one model's file:
- "promote": production takes the version staging serves at the base (the base settles it:
  no history is read);
- "rollback": production goes back to a version it served before (only with 3 releases or more
  a model has one: the history is searched for this environment's past);
- "skip": production takes a version added in the pull request, which never served in staging
  (POL001: the whole history is searched, `git log -G`, before the rule refuses it; its digest
  is made up, so ART009 comes with it).
`validate` runs as the pre-commit hook does (`--staged`, the changed file, base HEAD) with the
change staged on main; `plan` runs on the committed branch. With --compare DIR (another checkout,
the previous main say), its runs are interleaved with this one's (A B A B) and the ratio of
their best wall times is printed (this checkout's time over DIR's): absolute times drift 2x
between days here, ratios do not.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen import generate_history

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _git(root: str, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=bench@example.com",
                    *args], cwd=root, check=True, capture_output=True)


NEW_VERSION = ('    - version: "1.99.0"\n      artifact: models/{name}.pkl\n'
               '      digest: md5:{digest}\n      metrics: {{auc: 0.99}}\n')


def _production_to(root: str, path: str, version: str) -> None:
    """Set the production stage of the model at path (the generated layout: its own file);
    version 1.99.0 is added first."""
    full = os.path.join(root, path)
    with open(full, encoding="utf-8") as handle:
        text = handle.read()
    if version == "1.99.0":
        name = os.path.basename(path).removesuffix(".yaml")
        text = text.replace("  stages:\n", NEW_VERSION.format(name=name, digest="ab" * 16)
                            + "  stages:\n")
    if "    production:" in text:
        text = re.sub(r'(    production:\n      version: )"[^"]+"', rf'\1"{version}"', text)
    else:
        text += f'    production: {{version: "{version}"}}\n'
    with open(full, "w", encoding="utf-8") as handle:
        handle.write(text)


def _staging_of(root: str, path: str) -> str:
    with open(os.path.join(root, path), encoding="utf-8") as handle:
        found = re.search(r'staging: \{version: "([^"]+)"\}', handle.read())
    assert found is not None, path
    return found.group(1)


def _timed(checkout: str, argv: list[str], root: str) -> float:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(checkout)}
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "reconciler", *argv], cwd=root, env=env,
                          capture_output=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"{checkout}: {argv[0]} exited {done.returncode}: "
                         f"{done.stderr.decode()[-2000:]}")
    return seconds


def _best(repeat: int, checkouts: list[str], argv: list[str], root: str) -> list[float]:
    """Best wall time of each checkout, the checkouts run alternately."""
    best = [float("inf")] * len(checkouts)
    for _ in range(repeat):
        for index, checkout in enumerate(checkouts):
            best[index] = min(best[index], _timed(checkout, argv, root))
    return best


def main() -> None:
    """Generate each history, make the two pull requests, time, print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--commits", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--compare", metavar="DIR", help="another reconciler checkout")
    args = parser.parse_args()
    checkouts = [HERE] + ([args.compare] if args.compare else [])
    print(f"{args.models} models; best of {args.repeat}, wall, start-up included"
          + (f"; then {args.compare}'s, and this checkout's as a multiple of it"
             if args.compare else ""))
    for commits in args.commits:
        root = tempfile.mkdtemp(prefix="reconciler-bench-promotion-")
        try:
            generate_history(root, commits, args.models)
            _git(root, "gc", "-q")
            path = "manifests/models/model-00001.yaml"
            staged = _staging_of(root, path)
            cases = [("promote", staged), ("skip", "1.99.0")]
            releases = int(staged.split(".")[1])
            if releases >= 3:
                cases.insert(1, ("rollback", f"1.{releases - 2}.0"))
            for case, version in cases:
                _production_to(root, path, version)
                _git(root, "add", path)
                validate = ["validate", "--staged", path, "--format", "json"]
                timed = _best(args.repeat, checkouts, validate, root)
                _git(root, "checkout", "-q", "-b", case)
                _git(root, "commit", "-qm", case)
                plan = ["plan", "--base", "main", "--head", case, "--format", "json"]
                timed_plan = _best(args.repeat, checkouts, plan, root)
                _git(root, "checkout", "-q", "main")
                _git(root, "reset", "-q", "--hard")
                for command, figures in (("pre-commit validate", timed), ("plan", timed_plan)):
                    ratio = f"   {figures[1]:6.2f} s  ({figures[0] / figures[1]:.2f}x)" \
                        if len(figures) > 1 else ""
                    print(f"  {commits:6d} commits  {case:8s} {command:20s} "
                          f"{figures[0]:6.2f} s{ratio}")
        finally:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
