"""``train``: a batch and a length that fit the data, and a result stated
against its baseline.

A small file a new user might bring (scikit-learn's breast cancer data, 569
rows, written as a CSV with a header) goes through ``init``, ``run`` and
``train`` with the default flags, as in tests/test_own_data.py, and has to beat
the majority class; a label the features cannot predict (a coin toss) gets the
one warning line. The batch-size rule, the baseline rule and the printed lines
are checked on their own, without training.
"""

import csv
import json
import os
import random

import numpy as np
import pytest

from pipelines import cli
from pipelines.model import train, wide_and_deep
from tests.conftest import run_cli

METRICS_KEYS = {
    "task", "train_rows", "eval_rows", "batch_size", "learning_rate", "max_epochs", "patience",
    "epochs_run", "best_epoch", "stopped_early", "best_epoch_chosen_on", "train_loss", "eval",
    "baseline", "beats_baseline"}


def _ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stdout


def _write(path, header: list[str], rows) -> str:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def _zero_code_run(root, csv_path: str, label: str) -> str:
    """``init`` then ``run``, as a user brings a file; the run's directory."""
    dataset, out = str(root / "dataset"), str(root / "run")
    _ok(run_cli("init", "--train_input", csv_path, "--dir", dataset, "--label", label))
    _ok(run_cli("run", "--dataset", dataset, "--train_input", csv_path, "--output_dir", out))
    return out


def _trained(run_dir: str, model_dir: str, *flags: str) -> tuple[dict, list[str]]:
    """``train``'s metrics.json and printed lines."""
    stdout = _ok(run_cli("train", "--run_dir", run_dir, "--model_dir", model_dir, *flags))
    with open(os.path.join(model_dir, "metrics.json")) as f:
        return json.load(f), stdout.strip().splitlines()


# -- a small file, the default flags -----------------------------------------------------------

@pytest.fixture(scope="module")
def breast_cancer(tmp_path_factory):
    """569 rows: 30 measurements and the diagnosis as text (malignant, benign)."""
    from sklearn import datasets

    data = datasets.load_breast_cancer()
    root = tmp_path_factory.mktemp("breast_cancer")
    path = _write(root / "breast_cancer.csv",
                  [name.replace(" ", "_") for name in data.feature_names] + ["diagnosis"],
                  ([*map(float, x), data.target_names[y]]
                   for x, y in zip(data.data, data.target, strict=True)))
    run_dir = _zero_code_run(root, path, "diagnosis")
    return _trained(run_dir, str(root / "model"))


@pytest.mark.slow
def test_train_with_its_defaults_beats_the_majority_class_on_a_small_file(breast_cancer):
    metrics, _ = breast_cancer
    assert set(metrics) == METRICS_KEYS
    assert set(metrics["eval"]) == {"accuracy", "auc", "loss"}
    assert set(metrics["baseline"]) == {"majority_class", "accuracy", "auc", "auc_to_beat"}
    assert metrics["task"] == "binary" and metrics["train_rows"] + metrics["eval_rows"] == 569
    assert metrics["beats_baseline"] is True
    assert metrics["eval"]["auc"] > metrics["baseline"]["auc_to_beat"]
    assert metrics["eval"]["accuracy"] > metrics["baseline"]["accuracy"] + 0.2
    # A batch of 1024 made one step an epoch of these rows; the rule makes 15.
    assert metrics["batch_size"] == train.batch_size_for(metrics["train_rows"]) == 32
    assert (metrics["max_epochs"], metrics["patience"]) == (100, 5)
    assert metrics["stopped_early"] is True
    assert metrics["epochs_run"] == metrics["best_epoch"] + metrics["patience"]
    assert metrics["best_epoch_chosen_on"] == "eval"


@pytest.mark.slow
def test_the_last_line_states_the_baseline_and_how_training_went(breast_cancer):
    metrics, lines = breast_cancer
    assert not [line for line in lines if line.startswith(("warning:", "note:"))]
    assert lines[-1] == train.format_metrics(metrics, "M").splitlines()[-1]
    assert lines[-1].startswith(f"eval ({metrics['eval_rows']} rows): accuracy ")
    assert "; majority-class baseline: accuracy " in lines[-1]
    assert lines[-1].endswith(
        f"; {metrics['epochs_run']} epochs (stopped early; best: epoch "
        f"{metrics['best_epoch']}, chosen on eval), batch 32")


# -- a label the features cannot predict -------------------------------------------------------

@pytest.fixture(scope="module")
def coin_toss(tmp_path_factory):
    """400 rows whose label is a coin toss, drawn apart from the features."""
    features, coins = random.Random(1), random.Random(2)
    root = tmp_path_factory.mktemp("coin_toss")
    path = _write(root / "coin.csv", ["size", "colour", "coin"],
                  ([round(features.uniform(0, 10), 3), features.choice("rgb"),
                    coins.randint(0, 1)] for _ in range(400)))
    run_dir = str(root / "run")  # drafted and run in one command: the quicker way
    _ok(run_cli("run", "--train_input", path, "--label", "coin", "--output_dir", run_dir))
    return _trained(run_dir, str(root / "model"))


@pytest.mark.slow
def test_a_model_that_does_not_beat_the_baseline_says_so_in_one_line(coin_toss):
    metrics, lines = coin_toss
    assert metrics["task"] == "binary" and metrics["beats_baseline"] is False
    warnings = [line for line in lines if line.startswith("warning:")]
    assert len(warnings) == 1, lines
    assert warnings[0].startswith(
        f"warning: the model does not beat the majority-class baseline on eval (AUC "
        f"{metrics['eval']['auc']:.4f}, not above the {metrics['baseline']['auc_to_beat']:.4f} "
        f"that chance reaches on {metrics['eval_rows']} rows): eval loss stopped improving "
        f"after epoch {metrics['best_epoch']}; the features may not predict the label")
    assert "majority-class baseline" in lines[-1] and lines[-2] == warnings[0]


# -- the rules, without training ---------------------------------------------------------------

@pytest.mark.parametrize("rows, batch", [
    (1, 32), (178, 32), (1_599, 32), (1_600, 32), (3_199, 32), (3_200, 64), (4_000, 64),
    (12_000, 128), (26_099, 512), (51_199, 512), (51_200, 1024), (270_000, 1024),
    (10**9, 1024),
])
def test_the_batch_makes_about_fifty_steps_an_epoch_in_32_to_1024(rows, batch):
    assert train.batch_size_for(rows) == batch


def _metrics(task: str, model: dict, baseline: dict, **training) -> dict:
    metrics = {"task": task, "eval_rows": 120, "eval": model, "baseline": baseline,
               "max_epochs": 100, "epochs_run": 12, "best_epoch": 7, "stopped_early": True,
               "batch_size": 32, **training}
    return {**metrics, "beats_baseline": train.beats_baseline(metrics)}


def test_a_binary_model_beats_the_baseline_by_its_auc_not_its_accuracy():
    baseline = {"majority_class": 0, "accuracy": 0.9, "auc": 0.5, "auc_to_beat": 0.6}
    ranks_well = _metrics("binary", {"accuracy": 0.9, "auc": 0.8}, baseline)
    assert ranks_well["beats_baseline"] is True
    assert train.format_metrics(ranks_well, "M").splitlines()[1] == (
        "note: at a 0.5 threshold the model's accuracy (0.9000) does not beat the majority "
        "class's (0.9000), though its AUC ranks eval rows better than chance: choose a "
        "threshold from its probabilities")
    assert _metrics("binary", {"accuracy": 0.95, "auc": 0.6}, baseline)["beats_baseline"] is False
    # One class in eval: no AUC, accuracy decides.
    one_class = {**baseline, "accuracy": 1.0, "auc_to_beat": None}
    assert _metrics("binary", {"accuracy": 1.0, "auc": 0.0}, one_class)["beats_baseline"] is False


def test_the_margins_are_two_standard_errors_of_chance():
    # The AUC of scores that know nothing, on 50 + 50 and on 3,000 + 3,000 rows.
    assert train._auc_to_beat(np.array([0, 1] * 50)) == pytest.approx(
        0.5 + 2 * (101 / 30_000) ** 0.5)
    assert train._auc_to_beat(np.array([0, 1] * 3000)) == pytest.approx(0.5149, abs=1e-4)
    assert train._auc_to_beat(np.ones(10)) is None
    # The paired per-row gains over the baseline: their mean's two standard errors.
    assert train._chance(np.array([1.0, 0.0, 1.0, 0.0])) == pytest.approx(
        2 * np.std([1, 0, 1, 0], ddof=1) / 2)
    assert train._chance(np.zeros(100)) == 0.0


def test_a_regression_must_beat_the_mean_by_more_than_chance():
    # The house prices file of the issue: 82,018 against the mean's 82,022 is no model.
    baseline = {"mean": 1.8e5, "rmse": 82_022.0, "rmse_to_beat": 79_500.0}
    tie = _metrics("regression", {"rmse": 82_018.0}, baseline, epochs_run=5, best_epoch=5,
                   max_epochs=5, stopped_early=False)
    assert tie["beats_baseline"] is False
    lines = train.format_metrics(tie, "M").splitlines()
    assert lines[1] == ("warning: the model does not beat the mean baseline on eval (RMSE "
                        "82,018, not below the 79,500 that beats the mean's 82,022 by more "
                        "than chance on 120 rows): eval loss was still falling at the last of "
                        "--epochs 5; raise --epochs or --learning_rate")
    assert lines[2] == ("eval (120 rows): RMSE 82018.0000; mean baseline (predicting "
                        "1.8e+05): RMSE 82022.0000; 5 epochs (all of --epochs 5; best: epoch "
                        "5, chosen on eval), batch 32")
    better = _metrics("regression", {"rmse": 60_000.0}, baseline)
    assert better["beats_baseline"] is True
    assert len(train.format_metrics(better, "M").splitlines()) == 2


def test_a_multiclass_model_must_beat_the_majority_class_by_more_than_chance():
    baseline = {"majority_class": 2, "accuracy": 0.4, "accuracy_to_beat": 0.45}
    assert _metrics("multiclass", {"accuracy": 0.46}, baseline)["beats_baseline"] is True
    close = _metrics("multiclass", {"accuracy": 0.44}, baseline)
    assert close["beats_baseline"] is False
    assert train.format_metrics(close, "M").splitlines()[1] == (
        "warning: the model does not beat the majority-class baseline on eval (accuracy "
        "0.4400, not above the 0.4500 that beats the majority class's 0.4000 by more than "
        "chance on 120 rows): eval loss stopped improving after epoch 7; the features may "
        "not predict the label (rank-features ranks them by mutual information with it)")


# -- flags -------------------------------------------------------------------------------------

def test_the_flags_defaults_are_train_s():
    args = cli.build_parser().parse_args(["train", "--run_dir", "R", "--model_dir", "M"])
    assert args.epochs == train.DEFAULT_MAX_EPOCHS
    assert args.patience == train.DEFAULT_PATIENCE
    assert args.learning_rate == wide_and_deep.LEARNING_RATE
    assert args.batch_size is None


@pytest.mark.parametrize("flag, value, message", [
    ("--batch_size", "0", "python -m pipelines train: error: argument --batch_size: must be "
                          "a positive integer, got 0"),
    ("--patience", "-3", "python -m pipelines train: error: argument --patience: must be "
                         "a positive integer, got -3"),
    ("--learning_rate", "-1", "error: --learning_rate must be a positive number, got -1.0"),
])
def test_a_wrong_flag_value_is_one_line(tmp_path, flag, value, message):
    result = run_cli("train", "--run_dir", str(tmp_path), "--model_dir", str(tmp_path / "m"),
                     flag, value)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == message and sum("error" in line for line in lines) == 1
