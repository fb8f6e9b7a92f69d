"""A stand-in training step for the example churn model: deterministic bytes from data and params.

`dvc repro` runs it (see dvc.yaml), so the example registry has a real dvc.lock stage whose
dependencies give the model version its lineage.
"""

import hashlib
import sys

import yaml


def main() -> None:
    data_path, out_path = sys.argv[1], sys.argv[2]
    with open("params.yaml", encoding="utf-8") as handle:
        params = yaml.safe_load(handle)["train"]
    with open(data_path, "rb") as handle:
        data = handle.read()
    weights = hashlib.sha256(data + repr(sorted(params.items())).encode()).hexdigest()
    with open(out_path, "w", encoding="utf-8") as handle:
        handle.write(f"churn-predictor xgboost weights {weights} params {sorted(params.items())}\n")


if __name__ == "__main__":
    main()
