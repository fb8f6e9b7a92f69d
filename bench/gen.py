"""Make a synthetic registry of any size: model, dataset and environment manifests plus the DVC
pointer files (`.dvc`) their artifacts resolve to. The artifact bytes themselves are not written:
validation only reads what DVC records.

    python bench/gen.py OUT --models 1000 --versions 5 --datasets 20
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess


def digest_of(*parts: object) -> str:
    """A deterministic md5-shaped hex digest for synthetic bytes."""
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def model_manifest(index: int, versions: int, datasets: int) -> str:
    """A Model with `versions` versions retrained into one path; staging and production serve."""
    name = f"model-{index:05d}"
    lines = [
        "apiVersion: reconciler/v1",
        "kind: Model",
        "metadata:",
        f"  name: {name}",
        "  owner: ml-team@example.com",
        f"  description: Synthetic model number {index}",
        "  labels: {team: bench}",
        "spec:",
        "  framework: sklearn",
        "  versions:",
    ]
    for v in range(1, versions + 1):
        lines += [
            f"    - version: \"1.{v}.0\"",
            f"      artifact: models/{name}.pkl",
            f"      digest: md5:{digest_of(name, v)}",
            f"      trainedOn: [{{dataset: dataset-{index % datasets:03d}, version: \"v1\"}}]",
            f"      metrics: {{auc: 0.9{v}, logloss: 0.{30 - v}}}",
            f"      params: {{n_estimators: {100 * v}, max_depth: {v + 2}}}",
        ]
        if v > 1:
            lines.append(f"      parent: \"1.{v - 1}.0\"")
    lines += [
        "  stages:",
        f"    staging: {{version: \"1.{versions}.0\"}}",
        "    production:",
        f"      version: \"1.{max(versions - 1, 1)}.0\"",
        f"      canary: {{version: \"1.{versions}.0\", traffic: 10}}",
        "      replicas: {min: 2, max: 10}",
        "      resources: {cpu: \"1\", memory: 2Gi}",
    ]
    return "\n".join(lines) + "\n"


def dataset_manifest(index: int) -> str:
    """A Dataset with one version."""
    name = f"dataset-{index:03d}"
    return (f"apiVersion: reconciler/v1\nkind: Dataset\nmetadata: {{name: {name}, owner: "
            f"data@example.com}}\nspec:\n  versions:\n    - version: \"v1\"\n"
            f"      artifact: data/{name}.parquet\n      digest: md5:{digest_of(name, 1)}\n")


def environment_manifest(name: str, namespace: str, promote_from: str | None) -> str:
    """An Environment rendered by the kserve target."""
    text = (f"apiVersion: reconciler/v1\nkind: Environment\nmetadata: {{name: {name}}}\n"
            f"spec:\n  namespace: {namespace}\n  target: kserve\n")
    if promote_from:
        text += f"  promotion:\n    from: {promote_from}\n    requireMetrics: {{auc: \">= 0.9\"}}\n"
    return text


def dvc_pointer(path: str, md5: str) -> str:
    """A DVC 3 .dvc file for one output."""
    return f"outs:\n- md5: {md5}\n  size: 1024\n  hash: md5\n  path: {os.path.basename(path)}\n"


DVC_CONFIG = "[core]\n    remote = store\n['remote \"store\"']\n    url = s3://models-bucket/dvc\n"


def write(root: str, relative: str, text: str) -> None:
    """Write text at root/relative, making folders."""
    path = os.path.join(root, relative)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def generate(root: str, models: int, versions: int, datasets: int) -> list[str]:
    """Write a registry under root (a git repository is created); return the model manifests."""
    os.makedirs(root, exist_ok=True)
    if not os.path.isdir(os.path.join(root, ".git")):
        subprocess.run(["git", "init", "-q", root], check=True)
    write(root, ".dvc/config", DVC_CONFIG)
    for d in range(datasets):
        name = f"dataset-{d:03d}"
        write(root, f"manifests/datasets/{name}.yaml", dataset_manifest(d))
        write(root, f"data/{name}.parquet.dvc", dvc_pointer(f"data/{name}.parquet",
                                                              digest_of(name, 1)))
    write(root, "manifests/environments/staging.yaml",
          environment_manifest("staging", "ml-staging", None))
    write(root, "manifests/environments/production.yaml",
          environment_manifest("production", "ml-prod", "staging"))
    paths = []
    for m in range(models):
        name = f"model-{m:05d}"
        relative = f"manifests/models/{name}.yaml"
        write(root, relative, model_manifest(m, versions, datasets))
        write(root, f"models/{name}.pkl.dvc", dvc_pointer(f"models/{name}.pkl",
                                                            digest_of(name, versions)))
        paths.append(relative)
    return paths


def history_model(index: int, releases: int, datasets: int) -> str:
    """A model after `releases` retrains: newest in staging, the one before in production."""
    text = model_manifest(index, releases, datasets)
    if releases == 1:  # nothing to promote yet: production waits for the second release
        text = text[:text.index("    production:")]
    return text


def generate_history(root: str, commits: int, models: int, datasets: int = 20) -> list[str]:
    """A git history of `commits` commits (one retrain + promotion each, spread over `models`
    models), written with `git fast-import`; returns the commit shas, oldest first."""
    os.makedirs(root, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", root], check=True)
    stream = bytearray()
    start = 1_700_000_000

    def blob(path: str, text: str) -> None:
        data = text.encode()
        stream.extend(b"M 100644 inline " + path.encode() + b"\ndata %d\n" % len(data) + data
                      + b"\n")

    def header(mark: int, message: str, when: int, author: str) -> None:
        data = message.encode()
        stream.extend(b"commit refs/heads/main\nmark :%d\n" % mark)
        for role in (b"author", b"committer"):
            stream.extend(role + b" " + author.encode() + b" %d +0000\n" % when)
        stream.extend(b"data %d\n" % len(data) + data + b"\n")
        if mark > 1:
            stream.extend(b"from :%d\n" % (mark - 1))

    header(1, "Environments and datasets", start, "Data Eng <data@example.com>")
    blob(".dvc/config", DVC_CONFIG)
    for d in range(datasets):
        name = f"dataset-{d:03d}"
        blob(f"manifests/datasets/{name}.yaml", dataset_manifest(d))
        blob(f"data/{name}.parquet.dvc", dvc_pointer(f"data/{name}.parquet", digest_of(name, 1)))
    blob("manifests/environments/staging.yaml",
         environment_manifest("staging", "ml-staging", None))
    blob("manifests/environments/production.yaml",
         environment_manifest("production", "ml-prod", "staging"))
    authors = ["Ada <ada@example.com>", "Bob <bob@example.com>", "Carol <carol@example.com>"]
    for number in range(1, commits):
        model, release = (number - 1) % models, (number - 1) // models + 1
        name = f"model-{model:05d}"
        header(number + 1, f"Release {name} 1.{release}.0", start + 60 * number,
               authors[number % len(authors)])
        blob(f"manifests/models/{name}.yaml", history_model(model, release, datasets))
        blob(f"models/{name}.pkl.dvc", dvc_pointer(f"models/{name}.pkl",
                                                   digest_of(name, release)))
    subprocess.run(["git", "fast-import", "--quiet"], cwd=root, input=bytes(stream), check=True)
    subprocess.run(["git", "checkout", "-q", "-f", "main"], cwd=root, check=True)
    log = subprocess.run(["git", "rev-list", "--reverse", "main"], cwd=root, check=True,
                         capture_output=True, text=True)
    return log.stdout.split()


def commit_one_more_release(root: str, commits: int, models: int) -> None:
    """Commit one more release of model-00000 on a generate_history repository: what an
    apply of one new commit replays."""
    release = commits // models + 1
    write(root, "manifests/models/model-00000.yaml", history_model(0, release, 20))
    write(root, "models/model-00000.pkl.dvc",
          dvc_pointer("models/model-00000.pkl", digest_of("model-00000", release)))
    subprocess.run(["git", "-c", "user.name=Bench", "-c", "user.email=b@example.com", "commit",
                    "-qam", "one more release"], cwd=root, check=True)


def main() -> None:
    """Command line: python bench/gen.py OUT [--models N] [--versions N] [--datasets N]
    [--commits N] (with --commits: a history instead of a snapshot)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--commits", type=int, default=0)
    args = parser.parse_args()
    if args.commits:
        shas = generate_history(args.out, args.commits, args.models, args.datasets)
        print(f"wrote a history of {len(shas)} commits over {args.models} models to {args.out}")
        return
    paths = generate(args.out, args.models, args.versions, args.datasets)
    print(f"wrote {len(paths)} models, {args.datasets} datasets, 2 environments to {args.out}")


if __name__ == "__main__":
    main()
