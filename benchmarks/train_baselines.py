"""Benchmark: does ``python -m pipelines train`` beat its baseline, on files
from 142 to 26,000 training rows?

Each dataset goes through the commands a new user types, no code written:
``init`` drafts the dataset from the CSV (the census file uses the registered
``census`` dataset instead), ``run`` runs it and ``train`` trains with its
default flags. The datasets:

- ``breast_cancer`` (569 rows, binary), ``wine`` (178 rows, 3 classes) and
  ``boston`` (506 rows, regression): scikit-learn's shipped files, written as
  CSVs with a header (no network);
- ``census`` (``adult.data``, binary) and ``taxi`` (Chicago taxi trips, ``tips``,
  regression), read from ``../shared/data/`` beside the repository and skipped,
  saying so, when it is absent; never copied into the repository.

Prints one row a dataset: the training rows, the task, the batch size and the
epochs ``train`` chose, the model's eval metric against the baseline's, and
whether it beats it. ``--old_code DIR`` also takes each dataset through the
same commands of the checkout of an earlier commit (``train``'s old defaults:
batch 1024, 5 epochs), for the before and after::

    .venv/bin/python benchmarks/train_baselines.py
    .venv/bin/python benchmarks/train_baselines.py --old_code /tmp/old --work_dir /tmp/tb
"""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import resources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(ROOT, "..", "shared", "data")
CENSUS = os.path.join(SHARED, "census", "adult.data")
TAXI = os.path.join(SHARED, "chicago_taxi", "data.csv")


def _breast_cancer(path: str) -> str:
    from sklearn import datasets

    data = datasets.load_breast_cancer()
    names = [name.replace(" ", "_") for name in data.feature_names]
    _write(path, [*names, "diagnosis"],
           ([*map(float, x), data.target_names[y]] for x, y in zip(data.data, data.target,
                                                                  strict=True)))
    return "diagnosis"


def _wine(path: str) -> str:
    from sklearn import datasets

    data = datasets.load_wine()
    _write(path, [*data.feature_names, "cultivar"],
           ([*map(float, x), int(y)] for x, y in zip(data.data, data.target, strict=True)))
    return "cultivar"


def _boston(path: str) -> str:
    # The file's first line is "506,13" (its shape); the header follows.
    shipped = resources.files("sklearn.datasets") / "data" / "boston_house_prices.csv"
    with shipped.open() as f:
        f.readline()
        rows = list(csv.reader(f))
    _write(path, rows[0], rows[1:])
    return "MEDV"


def _write(path: str, header: list[str], rows) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# The scikit-learn datasets: name -> what writes its CSV and returns the label column.
SKLEARN = {"breast_cancer": _breast_cancer, "wine": _wine, "boston": _boston}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", help="where the CSVs, runs and models go (default: a "
                                           "new temporary directory, deleted at the end)")
    parser.add_argument("--old_code", help="a checkout of an earlier commit: also train "
                                           "each run with its train command")
    parser.add_argument("--datasets", default="breast_cancer,wine,boston,census,taxi",
                        help="comma-separated (default all five)")
    args = parser.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="tft-preprocessing-train-baselines-")
    os.makedirs(work, exist_ok=True)
    rows = []
    for name in args.datasets.split(","):
        run_dir = _prepared(name, os.path.join(work, name))
        if run_dir is None:
            continue
        row = {"dataset": name, **_trained(run_dir, os.path.join(work, name, "model"))}
        if args.old_code:
            # Its own init and run: an older checkout may not read this one's runs.
            old = os.path.join(work, name, "old")
            row["old"] = _trained(_prepared(name, old, args.old_code),
                                  os.path.join(old, "model"), args.old_code)["metrics"]
        rows.append(row)
        print(_table(rows[-1:]), flush=True)
    print()
    print(_table(rows))
    if not args.work_dir:
        shutil.rmtree(work)


def _prepared(name: str, root: str, code: str = ROOT) -> str | None:
    """The run directory of a dataset under ``root``, made with the commands
    of the checkout ``code`` when missing; None (and a message) when its
    shared data is absent."""
    run_dir = os.path.join(root, "run")
    if os.path.exists(os.path.join(run_dir, "run_summary.json")):
        return run_dir
    os.makedirs(root, exist_ok=True)
    dataset = os.path.join(root, "dataset")
    if name in SKLEARN:
        path = os.path.join(root, f"{name}.csv")
        label = SKLEARN[name](path)
    elif name in ("census", "taxi"):
        path, label = (CENSUS, "income_bracket") if name == "census" else (TAXI, "tips")
        if not os.path.exists(path):
            print(f"skipping {name}: {os.path.normpath(path)} is absent (the shared data "
                  f"beside the repository, ../shared/data/)", flush=True)
            return None
    else:
        sys.exit(f"unknown dataset {name!r}: one of breast_cancer, wine, boston, census, taxi")
    if name == "census":  # the registered dataset reads adult.data as it is written
        dataset = "census"
    else:
        _pipelines("init", "--train_input", path, "--dir", dataset, "--label", label, cwd=code)
    _pipelines("run", "--dataset", dataset, "--train_input", path, "--output_dir", run_dir,
               cwd=code)
    return run_dir


def _trained(run_dir: str, model_dir: str, code: str = ROOT) -> dict:
    """``train`` with its default flags: its metrics and how long it took."""
    shutil.rmtree(model_dir, ignore_errors=True)
    started = time.monotonic()
    _pipelines("train", "--run_dir", run_dir, "--model_dir", model_dir, cwd=code)
    return {"seconds": time.monotonic() - started, "metrics": _metrics(model_dir)}


def _pipelines(*args: str, cwd: str = ROOT) -> None:
    """``python -m pipelines ARGS`` as a user runs it; from ``cwd``, whose
    ``pipelines`` package is the one imported."""
    result = subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode:
        sys.exit(f"python -m pipelines {' '.join(args)} failed:\n{result.stderr[-3000:]}")


def _metrics(model_dir: str) -> dict:
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f)


def _score(metrics: dict) -> tuple[str, str]:
    """(the model's eval metric, the baseline's), as printed."""
    model, baseline = metrics["eval"], metrics["baseline"]
    if metrics["task"] == "regression":
        return f"RMSE {model['rmse']:.4g}", f"RMSE {baseline['rmse']:.4g}"
    if metrics["task"] == "multiclass":
        return f"acc {model['accuracy']:.3f}", f"acc {baseline['accuracy']:.3f}"
    return (f"AUC {model['auc']:.3f} acc {model['accuracy']:.3f}",
            f"AUC >{baseline['auc_to_beat']:.3f} acc {baseline['accuracy']:.3f}")


def _table(rows: list[dict]) -> str:
    header = ["dataset", "train rows", "task", "batch", "epochs run", "model (eval)",
              "baseline", "beats", "train s"]
    if any("old" in row for row in rows):
        header += ["old defaults (batch 1024, 5 epochs)"]
    lines = [header]
    for row in rows:
        new = row["metrics"]
        model, baseline = _score(new)
        epochs = f"{new['epochs_run']}{' (early)' if new['stopped_early'] else ''}"
        line = [row["dataset"], f"{new['train_rows']:,}", new["task"], str(new["batch_size"]),
                epochs, model, baseline, "yes" if new["beats_baseline"] else "NO",
                f"{row['seconds']:.0f}"]
        if "old" in row:
            line.append(_old_score(row["old"]))
        lines.append(line)
    widths = [max(len(line[i]) for line in lines if i < len(line))
              for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths,
                                                                        strict=False)).rstrip()
                     for line in lines)


def _old_score(old: dict) -> str:
    model = old["eval"]
    if old["task"] == "regression":
        return f"RMSE {model['rmse']:.4g}"
    if old["task"] == "multiclass":
        return f"acc {model['accuracy']:.3f}"
    return f"AUC {model['auc']:.3f} acc {model['accuracy']:.3f}"


if __name__ == "__main__":
    main()
