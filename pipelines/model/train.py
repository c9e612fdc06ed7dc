"""``train``: fit the wide & deep model on a run's train split, report it against
a baseline on eval, and export the serving model.

    python -m pipelines train --run_dir DIR --model_dir M

The label's transformed schema picks the task (``wide_and_deep.label_task``):

- ``binary``: accuracy and AUC, against always predicting the training split's
  majority class (each row counted once, whatever ``--oversample_minority`` wrote);
- ``multiclass``: accuracy, against the majority class likewise;
- ``regression``: RMSE, against always predicting the training split's mean.

writes ``M/serving/`` (the SavedModel, see ``pipelines.model.export_serving``) and
``M/metrics.json`` (``task``, ``eval`` and ``baseline`` scores, row counts).
"""

import json
import os

import numpy as np
import tensorflow as tf

from pipelines import layout
from pipelines.decode.row_keys import ROW_KEY
from pipelines.errors import UserError
from pipelines.model import export_serving, inputs, wide_and_deep
from pipelines.model.wide_and_deep import BINARY, MULTICLASS, REGRESSION
from pipelines.reports.run_dir import RunDir

__all__ = ["format_metrics", "train"]

BATCH_SIZE = 1024


def train(run_dir: str, model_dir: str, epochs: int = 5, seed: int = 0) -> dict:
    """Trains, evaluates and exports; returns the metrics written to metrics.json."""
    run = RunDir(run_dir)
    label = run.dataset.module.require_label("train")
    schema = run.tft_output.transformed_metadata.schema
    task = wide_and_deep.label_task(schema, label)
    label_dtype = tf.float32 if task == REGRESSION else None

    def split(name: str, shuffle: bool = False) -> tf.data.Dataset:
        return inputs.make_dataset(run, name, BATCH_SIZE, shuffle=shuffle, label_key=label,
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
    model = wide_and_deep.build_wide_and_deep(
        schema, label, seed=seed, label_mean=float(train_labels.mean()),
        wide_only=run.dataset.module.wide_only)
    history = model.fit(split(layout.TRAIN, shuffle=True), epochs=epochs, verbose=2)
    evaluated = model.evaluate(split(layout.EVAL), return_dict=True, verbose=0)
    metrics = {
        "task": task,
        "epochs": epochs,
        "train_rows": len(train_labels),
        "eval_rows": len(eval_labels),
        "train_loss": float(history.history["loss"][-1]),
        **_scores(task, evaluated, baseline_labels, eval_labels),
    }
    if baseline_labels is not train_labels:
        metrics["baseline_rows"] = len(baseline_labels)
    export_serving.export_serving_model(os.path.join(model_dir, "serving"), run.tft_output,
                                        run.dataset, model)
    with tf.io.gfile.GFile(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def _labels(dataset: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([labels.numpy() for _, labels in dataset])


def _labels_once(run: RunDir, label: str, label_dtype: tf.DType | None) -> np.ndarray:
    """The training split's labels, each row once: without the copies
    ``--oversample_minority`` wrote."""
    keys, labels = [], []
    for features, batch_labels in inputs.make_dataset(
            run, layout.TRAIN, BATCH_SIZE, label_key=label, label_dtype=label_dtype,
            with_row_key=True):
        keys.append(features[ROW_KEY].numpy())
        labels.append(batch_labels.numpy())
    _, first = np.unique(np.concatenate(keys), return_index=True)
    return np.concatenate(labels)[np.sort(first)]


def _scores(task: str, evaluated: dict, train_labels: np.ndarray, eval_labels: np.ndarray
            ) -> dict:
    """``eval``: the model's scores; ``baseline``: those of a constant prediction
    learned from the training split, which the model has to beat to be worth it."""
    loss = float(evaluated["loss"])
    if task == REGRESSION:
        mean = float(train_labels.mean())
        rmse = float(np.sqrt(np.mean((eval_labels.astype(np.float64) - mean) ** 2)))
        return {"eval": {"rmse": float(evaluated["rmse"]), "loss": loss},
                "baseline": {"mean": mean, "rmse": rmse}}
    if task == MULTICLASS:
        majority = int(np.bincount(train_labels).argmax())
        return {"eval": {"accuracy": float(evaluated["accuracy"]), "loss": loss},
                "baseline": {"majority_class": majority,
                             "accuracy": float(np.mean(eval_labels == majority))}}
    majority = int(train_labels.mean() >= 0.5)
    return {"eval": {"accuracy": float(evaluated["accuracy"]), "auc": float(evaluated["auc"]),
                     "loss": loss},
            "baseline": {"majority_class": majority,
                         "accuracy": float(np.mean(eval_labels == majority)), "auc": 0.5}}


def format_metrics(metrics: dict, model_dir: str) -> str:
    """What ``train`` prints: the model against the baseline, and where it went."""
    model, baseline = metrics["eval"], metrics["baseline"]
    rows = f"eval ({metrics['eval_rows']:,} rows)"
    if metrics["task"] == REGRESSION:
        scores = (f"{rows}: RMSE {model['rmse']:.4f}; mean baseline (predicting "
                  f"{baseline['mean']:.4g}): RMSE {baseline['rmse']:.4f}")
    elif metrics["task"] == MULTICLASS:
        scores = (f"{rows}: accuracy {model['accuracy']:.4f}; majority-class baseline "
                  f"(class {baseline['majority_class']}): accuracy {baseline['accuracy']:.4f}")
    else:
        scores = (f"{rows}: accuracy {model['accuracy']:.4f}, AUC {model['auc']:.4f}; "
                  f"majority-class baseline: accuracy {baseline['accuracy']:.4f}, "
                  f"AUC {baseline['auc']:.1f}")
    return f"{scores}\nserving model: {model_dir}/serving (metrics: {model_dir}/metrics.json)"
