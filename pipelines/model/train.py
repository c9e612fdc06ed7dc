"""``train``: fit the wide & deep model on a run's train split, report it against
a baseline on eval, and export the serving model.

    python -m pipelines train --run_dir DIR --model_dir M [--epochs 100]
        [--batch_size B] [--learning_rate 0.003] [--patience 5]

Training adapts to the data's size: the batch follows the number of training
rows (``batch_size_for``), and early stopping on the eval split's loss ends it,
keeping the weights of the best epoch; ``--epochs`` is only the most it may
run. The eval split therefore chooses the epoch *and* is what the scores are
reported on: a small optimistic bias, stated in ``metrics.json``
(``best_epoch_chosen_on``), accepted because a run has no third split.

The label's transformed schema picks the task (``wide_and_deep.label_task``)
and the baseline the model has to beat, by more than chance on the eval rows
(``beats_baseline``):

- ``binary``: accuracy and AUC, against always predicting the training split's
  majority class (each row counted once, whatever ``--oversample_minority``
  wrote); the AUC decides;
- ``multiclass``: accuracy, against the majority class likewise;
- ``regression``: RMSE, against always predicting the training split's mean.

writes ``M/serving/`` (the SavedModel, see ``pipelines.model.export_serving``) and
``M/metrics.json`` (``task``, ``eval`` and ``baseline`` scores, ``beats_baseline``,
row counts and how training went: batch, epochs run, whether it stopped early).
A model that does not beat its baseline is trained and exported all the same,
and ``format_metrics`` says so in a warning line.
"""

import math
import os

import numpy as np
import tensorflow as tf
import tf_keras as keras

from pipelines import layout
from pipelines.decode.row_keys import ROW_KEY
from pipelines.errors import UserError
from pipelines.model import export_serving, inputs, wide_and_deep
from pipelines.model.wide_and_deep import BINARY, MULTICLASS, REGRESSION
from pipelines.records import writer_lock
from pipelines.records.json_files import write_json
from pipelines.reports.run_dir import RunDir

__all__ = [
    "DEFAULT_MAX_EPOCHS", "DEFAULT_PATIENCE", "batch_size_for", "beats_baseline",
    "format_metrics", "train",
]

# Early stopping ends training long before this on every dataset measured; it
# only bounds a model whose eval loss keeps creeping down.
DEFAULT_MAX_EPOCHS = 100
# Epochs without a better eval loss before training stops: enough to ride out
# the noise of a small eval split (a hundred rows) without training for long
# past the best epoch.
DEFAULT_PATIENCE = 5
# The batch-size rule (batch_size_for): about this many steps an epoch...
STEPS_PER_EPOCH = 50
# ... within these bounds.
MIN_BATCH_SIZE, MAX_BATCH_SIZE = 32, 1024
# Reading labels and evaluating: any size gives the same numbers; a large one is fast.
_READ_BATCH_SIZE = 1024
# How far past its baseline a model must score to beat it, in standard errors
# of what chance does on the eval rows (a model that knows nothing passes about
# one time in 40).
_STANDARD_ERRORS = 2.0


def batch_size_for(train_rows: int) -> int:
    """The batch size ``train`` uses unless told: ``train_rows / 50`` rounded
    down to a power of two, within 32 and 1024.

    Early stopping checks the model once an epoch, so an epoch must move it: a
    fixed batch of 1024 gave a 1,000-row file one step an epoch and a model
    worse than the majority class. About 50 steps an epoch (rounding down keeps
    at least 50 from 1,600 to 51,200 rows) learn something between two checks
    and spend little on the check itself. Under 32 rows a batch, gradients get
    noisy and each step's fixed cost dominates, so smaller files have fewer
    steps an epoch and more epochs; over 1024, Adam's default step would need
    retuning, and big files have hundreds of steps an epoch anyway. A power of
    two keeps the batch the same when the row count moves a little.
    """
    target = min(MAX_BATCH_SIZE, max(MIN_BATCH_SIZE, train_rows // STEPS_PER_EPOCH))
    return 1 << (target.bit_length() - 1)


def train(run_dir: str, model_dir: str, max_epochs: int = DEFAULT_MAX_EPOCHS, *,
          batch_size: int | None = None,
          learning_rate: float = wide_and_deep.LEARNING_RATE,
          patience: int = DEFAULT_PATIENCE, seed: int = 0) -> dict:
    """Trains, evaluates and exports; returns the metrics written to metrics.json.

    Args:
      run_dir: a finished run.
      model_dir: where ``serving/`` and ``metrics.json`` go.
      max_epochs: the most epochs; early stopping usually ends training sooner.
      batch_size: default: ``batch_size_for`` the training rows.
      learning_rate: Adam's.
      patience: epochs without a better eval loss before training stops.
      seed: makes the initial weights and the shuffling, so the model, repeatable.
    """
    run = RunDir(run_dir)
    # One writer of the model directory, and of the serving model in it (which
    # export-serving --out M/serving would write too).
    with (writer_lock.hold(model_dir, "train", "--model_dir"),
          writer_lock.hold(os.path.join(model_dir, "serving"), "train", "--model_dir")):
        return _train(run, model_dir, max_epochs, batch_size=batch_size,
                      learning_rate=learning_rate, patience=patience, seed=seed)


def _train(run: RunDir, model_dir: str, max_epochs: int, *, batch_size: int | None,
           learning_rate: float, patience: int, seed: int) -> dict:
    """``train`` once the model directory's locks are held."""
    label = run.dataset.module.require_label("train")
    schema = run.tft_output.transformed_metadata.schema
    task = wide_and_deep.label_task(schema, label)
    label_dtype = tf.float32 if task == REGRESSION else None

    def split(name: str, size: int = _READ_BATCH_SIZE, shuffle: bool = False
              ) -> tf.data.Dataset:
        return inputs.make_dataset(run, name, size, shuffle=shuffle, label_key=label,
                                   label_dtype=label_dtype, seed=seed)

    train_labels = _labels(split(layout.TRAIN))
    eval_labels = _labels(split(layout.EVAL))
    # Oversampled records misstate the classes' shares: the baseline learns
    # from each training row once (its copies share its row_key).
    baseline_labels = (_labels_once(run, label, label_dtype)
                       if run.record.rows.oversampled else train_labels)
    if task == BINARY and not np.isin(train_labels, (0, 1)).all():
        # An INT label without a domain is read as 0/1 (see label_task): say so
        # rather than fit a classifier to counts.
        raise UserError(f"the label {label!r} is an INT without a categorical domain, read "
                        f"as 0/1, but takes other values; cast it to float in the "
                        f"preprocessing_fn for a regression")
    batch_size = batch_size or batch_size_for(len(train_labels))
    model = wide_and_deep.build_wide_and_deep(
        schema, label, seed=seed, label_mean=float(train_labels.mean()),
        wide_only=run.dataset.module.wide_only, learning_rate=learning_rate)
    stopping = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                             restore_best_weights=True)
    history = model.fit(split(layout.TRAIN, batch_size, shuffle=True),
                        validation_data=split(layout.EVAL), epochs=max_epochs,
                        callbacks=[stopping], verbose=2)
    # The best epoch's weights are back (restore_best_weights): these are its scores.
    evaluated = model.evaluate(split(layout.EVAL), return_dict=True, verbose=0)
    predictions = model.predict(split(layout.EVAL), verbose=0)  # in eval_labels' order
    metrics = {
        "task": task,
        "train_rows": len(train_labels),
        "eval_rows": len(eval_labels),
        "batch_size": batch_size,
        "learning_rate": learning_rate,
        "max_epochs": max_epochs,
        "patience": patience,
        "epochs_run": len(history.history["loss"]),
        "best_epoch": stopping.best_epoch + 1,
        "stopped_early": stopping.stopped_epoch > 0,
        "best_epoch_chosen_on": layout.EVAL,
        "train_loss": float(history.history["loss"][stopping.best_epoch]),
        **_scores(task, evaluated, predictions, baseline_labels, eval_labels),
    }
    metrics["beats_baseline"] = beats_baseline(metrics)
    if baseline_labels is not train_labels:
        metrics["baseline_rows"] = len(baseline_labels)
    # A model being replaced: its metrics stop describing the directory now.
    metrics_file = os.path.join(model_dir, "metrics.json")
    if tf.io.gfile.exists(metrics_file):
        tf.io.gfile.remove(metrics_file)
    export_serving.export_serving_model(os.path.join(model_dir, "serving"), run.tft_output,
                                        run.dataset, model)
    # Last, whole: a model directory with metrics.json holds the model it describes.
    write_json(metrics_file, metrics)
    return metrics


def _labels(dataset: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([labels.numpy() for _, labels in dataset])


def _labels_once(run: RunDir, label: str, label_dtype: tf.DType | None) -> np.ndarray:
    """The training split's labels, each row once: without the copies
    ``--oversample_minority`` wrote."""
    keys, labels = [], []
    for features, batch_labels in inputs.make_dataset(
            run, layout.TRAIN, _READ_BATCH_SIZE, label_key=label, label_dtype=label_dtype,
            with_row_key=True):
        keys.append(features[ROW_KEY].numpy())
        labels.append(batch_labels.numpy())
    _, first = np.unique(np.concatenate(keys), return_index=True)
    return np.concatenate(labels)[np.sort(first)]


def _scores(task: str, evaluated: dict, predictions: np.ndarray, train_labels: np.ndarray,
            eval_labels: np.ndarray) -> dict:
    """``eval``: the model's scores; ``baseline``: those of a constant prediction
    learned from the training split, and the score that beats it by more than
    chance on this eval split (``*_to_beat``, see ``beats_baseline``)."""
    loss = float(evaluated["loss"])
    if task == REGRESSION:
        mean = float(train_labels.mean())
        labels = eval_labels.astype(np.float64)
        baseline_errors = (labels - mean) ** 2
        gains = baseline_errors - (labels - predictions.astype(np.float64)) ** 2
        to_beat = math.sqrt(max(0.0, baseline_errors.mean() - _chance(gains)))
        return {"eval": {"rmse": float(evaluated["rmse"]), "loss": loss},
                "baseline": {"mean": mean, "rmse": float(np.sqrt(baseline_errors.mean())),
                             "rmse_to_beat": to_beat}}
    if task == MULTICLASS:
        majority = int(np.bincount(train_labels).argmax())
        baseline_right = (eval_labels == majority).astype(np.float64)
        gains = (predictions.argmax(axis=1) == eval_labels) - baseline_right
        accuracy = float(baseline_right.mean())
        return {"eval": {"accuracy": float(evaluated["accuracy"]), "loss": loss},
                "baseline": {"majority_class": majority, "accuracy": accuracy,
                             "accuracy_to_beat": accuracy + _chance(gains)}}
    majority = int(train_labels.mean() >= 0.5)
    return {"eval": {"accuracy": float(evaluated["accuracy"]), "auc": float(evaluated["auc"]),
                     "loss": loss},
            "baseline": {"majority_class": majority,
                         "accuracy": float(np.mean(eval_labels == majority)), "auc": 0.5,
                         "auc_to_beat": _auc_to_beat(eval_labels)}}


def _chance(gains: np.ndarray) -> float:
    """How much of a mean per-row gain over the baseline (squared error saved,
    a row classified right that the baseline got wrong) chance explains: two
    standard errors of that mean. The model and the baseline score the same
    rows, so the paired differences are what varies."""
    if len(gains) < 2:
        return 0.0
    return _STANDARD_ERRORS * float(np.std(gains, ddof=1)) / math.sqrt(len(gains))


def _auc_to_beat(eval_labels: np.ndarray) -> float | None:
    """The AUC above which a binary model is better than chance on these eval
    labels: 0.5 plus two standard errors of the AUC (Mann-Whitney U) of scores
    that know nothing, ``sqrt((n1 + n0 + 1) / (12 n1 n0))``. On a hundred eval
    rows chance alone reaches an AUC of 0.6 now and then; on 6,000, 0.52 is
    already a signal. None when eval holds one class only (no AUC)."""
    positives = int(np.sum(eval_labels == 1))
    negatives = len(eval_labels) - positives
    if not positives or not negatives:
        return None
    standard_error = math.sqrt((positives + negatives + 1) / (12 * positives * negatives))
    return 0.5 + _STANDARD_ERRORS * standard_error


def beats_baseline(metrics: dict) -> bool:
    """Whether the model scores better on eval than its constant baseline, by
    more than chance would on as many rows (the baseline's ``*_to_beat``).

    A plain "lower RMSE" would call an RMSE of 82,018 against the mean's 82,022
    a win; the margin, two standard errors, is a few percent on a hundred eval
    rows and shrinks as eval grows. Regression: the RMSE is below
    ``rmse_to_beat``. Multiclass: the accuracy is above ``accuracy_to_beat``.
    Binary: the AUC is above ``auc_to_beat``, accuracy aside: the AUC judges
    every threshold at once, accuracy only 0.5, where a model of rare positives
    that ranks them well may still predict the majority class for every row
    (``format_metrics`` then adds a note). An eval split with one class has no
    AUC: a higher accuracy decides.
    """
    model, baseline = metrics["eval"], metrics["baseline"]
    if metrics["task"] == REGRESSION:
        return model["rmse"] < baseline["rmse_to_beat"]
    if metrics["task"] == MULTICLASS:
        return model["accuracy"] > baseline["accuracy_to_beat"]
    if baseline["auc_to_beat"] is None:
        return model["accuracy"] > baseline["accuracy"]
    return model["auc"] > baseline["auc_to_beat"]


def format_metrics(metrics: dict, model_dir: str) -> str:
    """What ``train`` prints: where the model went, a warning (or, for a
    binary model that only ranks well, a note) when it does not beat its
    baseline, and last the model against the baseline with how training went."""
    lines = [f"serving model: {model_dir}/serving (metrics: {model_dir}/metrics.json)"]
    if not metrics["beats_baseline"]:
        lines.append(f"warning: the model does not beat the {_baseline_name(metrics)} on "
                     f"eval ({_comparison(metrics)}): {_hint(metrics)}")
    elif metrics["task"] == BINARY and (metrics["eval"]["accuracy"]
                                        <= metrics["baseline"]["accuracy"]):
        lines.append(f"note: at a 0.5 threshold the model's accuracy "
                     f"({metrics['eval']['accuracy']:.4f}) does not beat the majority "
                     f"class's ({metrics['baseline']['accuracy']:.4f}), though its AUC "
                     f"ranks eval rows better than chance: choose a threshold from its "
                     f"probabilities")
    lines.append(f"{_scores_line(metrics)}; {_training_line(metrics)}")
    return "\n".join(lines)


def _baseline_name(metrics: dict) -> str:
    return "mean baseline" if metrics["task"] == REGRESSION else "majority-class baseline"


def _comparison(metrics: dict) -> str:
    model, baseline = metrics["eval"], metrics["baseline"]
    rows = f"by more than chance on {metrics['eval_rows']:,} rows"
    if metrics["task"] == REGRESSION:
        return (f"RMSE {_number(model['rmse'])}, not below the "
                f"{_number(baseline['rmse_to_beat'])} that beats the mean's "
                f"{_number(baseline['rmse'])} {rows}")
    if metrics["task"] == MULTICLASS:
        return (f"accuracy {model['accuracy']:.4f}, not above the "
                f"{baseline['accuracy_to_beat']:.4f} that beats the majority class's "
                f"{baseline['accuracy']:.4f} {rows}")
    if baseline["auc_to_beat"] is None:
        return f"accuracy {model['accuracy']:.4f} vs {baseline['accuracy']:.4f}"
    return (f"AUC {model['auc']:.4f}, not above the {baseline['auc_to_beat']:.4f} that "
            f"chance reaches on {metrics['eval_rows']:,} rows")


def _number(value: float) -> str:
    """Four significant digits, a large number written out: 82,018, 1.434."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _hint(metrics: dict) -> str:
    """What to try: more epochs if eval loss was still falling, else features."""
    if metrics["best_epoch"] == metrics["epochs_run"] == metrics["max_epochs"]:
        return (f"eval loss was still falling at the last of --epochs "
                f"{metrics['max_epochs']}; raise --epochs or --learning_rate")
    return (f"eval loss stopped improving after epoch {metrics['best_epoch']}; the features "
            f"may not predict the label (rank-features ranks them by mutual information "
            f"with it)")


def _scores_line(metrics: dict) -> str:
    model, baseline = metrics["eval"], metrics["baseline"]
    rows = f"eval ({metrics['eval_rows']:,} rows)"
    if metrics["task"] == REGRESSION:
        return (f"{rows}: RMSE {model['rmse']:.4f}; mean baseline (predicting "
                f"{baseline['mean']:.4g}): RMSE {baseline['rmse']:.4f}")
    if metrics["task"] == MULTICLASS:
        return (f"{rows}: accuracy {model['accuracy']:.4f}; majority-class baseline "
                f"(class {baseline['majority_class']}): accuracy {baseline['accuracy']:.4f}")
    return (f"{rows}: accuracy {model['accuracy']:.4f}, AUC {model['auc']:.4f}; "
            f"majority-class baseline: accuracy {baseline['accuracy']:.4f}, "
            f"AUC {baseline['auc']:.1f}")


def _training_line(metrics: dict) -> str:
    stopped = ("stopped early" if metrics["stopped_early"]
               else f"all of --epochs {metrics['max_epochs']}")
    return (f"{metrics['epochs_run']} epochs ({stopped}; best: epoch {metrics['best_epoch']}, "
            f"chosen on eval), batch {metrics['batch_size']}")
