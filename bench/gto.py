"""`reconciler show` / `audit history` against `gto show` / `gto history`, on one workload
written both ways: a GTO registry (a commit per version, annotated tags `name@vX.Y.Z` and
`name#stage#N` as GTO writes them) and a reconciler database of the same versions and stage
assignments (bench/auditdb.py). Whole processes, start-up included, interleaved (A B A B),
best of --repeat.

GTO comes with DVC's own dependencies (`pip install -e '.[dev]'`); it is never imported here.

    python bench/gto.py [--sizes 100x10,300x10] [--repeat 3]

Then the daily actions both ways on that registry, adopted (`import gto --write`, committed,
production then given `promotion.from: staging`):
register a retrained version (`gto register` / `reconciler register`), assign or promote it
(`gto assign` / `reconciler promote`), and show one model (`gto show M` / `reconciler show M`),
each undone between rounds, next to the floor of a process that only imports what a
reconciler action imports.
"""

from __future__ import annotations

import argparse
import calendar
import compileall
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime

import sqlalchemy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from auditdb import Workload, assignments, fill, model_name

from reconciler.registry import db

BIN = os.path.dirname(sys.executable)


def _epoch(when: datetime) -> int:
    """A naive UTC datetime as git's seconds since the epoch."""
    return calendar.timegm(when.timetuple())


def gto_registry(root: str, workload: Workload) -> int:
    """A git repository holding the workload as GTO tags (written by git fast-import)."""
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    stream = bytearray()
    commits: dict[tuple[str, str], int] = {}
    opened = sorted(assignments(workload), key=lambda a: a.start)
    first_seen: dict[tuple[str, str], datetime] = {}
    for a in opened:
        first_seen.setdefault((a.model, a.version), a.start)
    versions_in_order = sorted(first_seen.items(), key=lambda item: item[1])
    # dvc.yaml declares every model as an artifact, as GTO's docs (and `import gto`) read them.
    declared = ("artifacts:\n" + "".join(
        f"  {name}:\n    path: models/{name}.txt\n    type: model\n"
        for name in sorted({m for m, _ in first_seen}))).encode()
    for mark, ((model, version), when) in enumerate(versions_in_order, start=1):
        commits[(model, version)] = mark
        data = f"{model} {version}\n".encode()
        # What `dvc add` writes for the retrained file: the bytes stay out of git.
        pointer = (f"outs:\n- md5: {hashlib.md5(data).hexdigest()}\n  size: {len(data)}\n"
                   f"  hash: md5\n  path: {model}.txt\n").encode()
        message = f"Retrain {model} {version}\n".encode()
        stream += (b"commit refs/heads/main\nmark :%d\ncommitter Bench <bench@example.com> %d "
                   b"+0000\ndata %d\n%s" % (mark, _epoch(when), len(message), message))
        if mark > 1:
            stream += b"from :%d\n" % (mark - 1)
        else:
            stream += b"M 100644 inline dvc.yaml\ndata %d\n%s\n" % (len(declared), declared)
        stream += b"M 100644 inline models/%s.txt.dvc\ndata %d\n%s\n" % (
            model.encode(), len(pointer), pointer)
    tags = 0
    counters: dict[str, int] = {}
    for (model, version), when in versions_in_order:
        tags += 1
        stream += _tag(f"{model}@v{version}", commits[(model, version)], _epoch(when),
                       f"Registering artifact {model} version v{version}")
    for a in opened:
        if a.role != "primary":
            continue
        counters[a.model] = counters.get(a.model, 0) + 1
        tags += 1
        stream += _tag(f"{a.model}#{a.environment}#{counters[a.model]}",
                       commits[(a.model, a.version)], _epoch(a.start) + 1,
                       f"Assigning stage {a.environment} to artifact {a.model} version "
                       f"v{a.version}")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=bytes(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "main"], cwd=root, check=True)
    subprocess.run(["git", "gc", "-q"], cwd=root, check=True)
    return tags


def _tag(name: str, mark: int, when: int, message: str) -> bytes:
    body = message.encode() + b"\n"
    return (b"tag %s\nfrom :%d\ntagger Bench <bench@example.com> %d +0000\ndata %d\n%s"
            % (name.encode(), mark, when, len(body), body))


def _timed(argv: list[str], cwd: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, check=False,
                          env={**os.environ, "GTO_NO_VERSION_CHECK": "1"})
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:3])} exited {done.returncode}: "
                         f"{done.stderr.decode()[-1500:]}")
    return seconds


def _import(root: str, folder: str, repeat: int) -> float:
    """Best of repeat: `reconciler import gto --write --db` into a new database each time."""
    best = float("inf")
    for number in range(repeat):
        shutil.rmtree(os.path.join(root, "manifests"), ignore_errors=True)
        url = f"sqlite:///{folder}/imported-{number}.sqlite"
        best = min(best, _timed([os.path.join(BIN, "reconciler"), "import", "gto", "--write",
                                 "--db", url], root))
    return best


ACTION_FLOOR = "import reconciler.api, reconciler.catalog, reconciler.rules, pydantic, yaml"


def _git(root: str, *args: str) -> str:
    return subprocess.run(["git", "-C", root, *args], capture_output=True, text=True,
                          check=True).stdout


def _actions(root: str, model: str, url: str, repeat: int) -> None:
    """register, assign/promote and show one model, GTO's way and ours, on the adopted
    registry (what each writes is undone between rounds, outside the timing)."""
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "adopt reconciler")
    # Production governed, as a registry is once adopted: every action is checked against
    # its policy (a promotion to staging took 30 s here while that check read every model).
    production = os.path.join(root, "manifests", "environments", "production.yaml")
    with open(production, encoding="utf-8") as handle:
        governed = handle.read().replace("spec:\n  serves:", "spec:\n  promotion:\n    from: "
                                         "staging\n  serves:", 1)
    with open(production, "w", encoding="utf-8") as handle:
        handle.write(governed)
    _git(root, "commit", "-q", "-am", "production takes what served in staging")
    pointer = os.path.join(root, "models", f"{model}.txt.dvc")
    retrained = f"outs:\n- md5: {hashlib.md5(b'retrained').hexdigest()}\n  size: 9\n" \
                f"  hash: md5\n  path: {model}.txt\n"
    with open(pointer, "w", encoding="utf-8") as handle:
        handle.write(retrained)
    _git(root, "commit", "-q", "-am", f"retrain {model}")
    head = _git(root, "rev-parse", "HEAD").strip()
    ours = [os.path.join(BIN, "reconciler")]
    theirs = [os.path.join(BIN, "gto")]
    tasks = {
        "register a version": ([*theirs, "register", model],
                               [*ours, "register", model]),
        # A real move: staging serves the newest version already (a no-op is "unchanged").
        "assign / promote": ([*theirs, "assign", model, "--version", "@previous", "--stage",
                              "staging", "--force"],
                             [*ours, "promote", model, "@previous", "--to", "staging"]),
        "show one model": ([*theirs, "show", model], [*ours, "show", model, "--db", url]),
    }
    print(f"  actions on {model} (best of {repeat}, wall, start-up included; floor: a process "
          "importing what an action imports)")
    for label, (gto_argv, our_argv) in tasks.items():
        best = {"gto": float("inf"), "reconciler": float("inf"), "floor": float("inf")}
        for _ in range(repeat):
            tags = set(_git(root, "tag").split())
            previous = _previous(root, model)
            best["gto"] = min(best["gto"], _timed([a if a != "@previous" else previous
                                                   for a in gto_argv], root))
            for tag in set(_git(root, "tag").split()) - tags:
                _git(root, "tag", "-d", tag)
            best["reconciler"] = min(best["reconciler"], _timed(
                [a if a != "@previous" else previous for a in our_argv], root))
            _git(root, "checkout", "-q", "--", "manifests")
            _git(root, "clean", "-q", "-fd", "--", "manifests")
            best["floor"] = min(best["floor"], _timed([sys.executable, "-c", ACTION_FLOOR], root))
        print(f"  {label:22s} gto {best['gto']:7.2f} s   reconciler {best['reconciler']:6.2f} s"
              f"   ({best['gto'] / best['reconciler']:.1f}x)   floor {best['floor']:.2f} s")
    _git(root, "reset", "-q", "--hard", head)


def _previous(root: str, model: str) -> str:
    """The version before the newest the model's manifest lists (what promote is timed on:
    staging serves the newest already)."""
    import yaml

    from reconciler.limits import version_order

    path = os.path.join(root, "manifests", "models", f"{model}.yaml")
    with open(path, encoding="utf-8") as handle:
        listed = [v["version"] for v in yaml.safe_load(handle)["spec"]["versions"]]
    return sorted(listed, key=version_order)[-2]


def _compile_reconciler() -> None:
    """Write reconciler's bytecode, as `pip install` does for GTO and every other package it
    installs. An editable checkout never gets any where PYTHONDONTWRITEBYTECODE is set (as on
    the machines this was first measured on), and compiling its modules on every start added
    about 0.07 s to each reconciler process, a cost no installed copy pays."""
    package = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "reconciler")
    if not compileall.compile_dir(package, quiet=1):
        raise SystemExit(f"could not compile {package}")


def main() -> None:
    """Build each size both ways; time the pairs interleaved."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100x10,300x10")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _compile_reconciler()
    for size in args.sizes.split(","):
        models, versions = (int(n) for n in size.split("x"))
        workload = Workload(models, versions, 0, canary_every=0)
        folder = tempfile.mkdtemp(prefix="reconciler-bench-gto-")
        try:
            root = os.path.join(folder, "registry")
            tags = gto_registry(root, workload)
            url = f"sqlite:///{folder}/audit.sqlite"
            engine = db.make_engine(sqlalchemy.make_url(url))
            fill(engine, "registry", workload)
            engine.dispose()
            model = model_name(models // 2)
            pairs = {
                "show": (["gto", "show"], ["show", "--db", url]),
                f"history {model}": (["gto", "history", model],
                                     ["audit", "history", model, "--db", url]),
            }
            print(f"{models} models x {versions} versions: {tags:,} GTO tags "
                  f"(best of {args.repeat}, wall, start-up included)")
            floor_argv = [sys.executable, "-c", "import sqlalchemy"]
            print("  floor: a process that only imports SQLAlchemy, timed in the same rounds "
                  "(this VM's start-up drifts 2x within an hour)")
            for label, (theirs, ours) in pairs.items():
                best = {"gto": float("inf"), "reconciler": float("inf"), "floor": float("inf")}
                for _ in range(args.repeat):
                    best["gto"] = min(best["gto"], _timed([os.path.join(BIN, theirs[0]),
                                                           *theirs[1:]], root))
                    best["reconciler"] = min(best["reconciler"], _timed(
                        [os.path.join(BIN, "reconciler"), *ours], root))
                    best["floor"] = min(best["floor"], _timed(floor_argv, root))
                print(f"  {label:22s} gto {best['gto']:7.2f} s   reconciler "
                      f"{best['reconciler']:6.2f} s   ({best['gto'] / best['reconciler']:.0f}x)"
                      f"   floor {best['floor']:.2f} s")
            print(f"  import gto --write --db   {_import(root, folder, args.repeat):6.2f} s "
                  "(manifests and the whole history into a new SQLite database)")
            _actions(root, model, url, args.repeat)
        finally:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
