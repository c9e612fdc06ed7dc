"""``train``: fit the wide & deep model on a run's train split, report it against
the majority-class baseline on eval, and export the serving model.

    python -m pipelines train --run_dir DIR --model_dir M

writes ``M/serving/`` (the SavedModel, see ``pipelines.model.export_serving``) and
``M/metrics.json``.
"""

import json
import os

import numpy as np
import tensorflow as tf

from pipelines.model import export_serving, inputs, wide_and_deep
from pipelines.reports.run_dir import RunDir

__all__ = ["format_metrics", "train"]

BATCH_SIZE = 1024


def train(run_dir: str, model_dir: str, epochs: int = 5, seed: int = 0) -> dict:
    """Trains, evaluates and exports; returns the metrics written to metrics.json."""
    run = RunDir(run_dir)
    label = run.dataset.transforms.LABEL_KEY
    schema = run.tft_output.transformed_metadata.schema
    classifier = wide_and_deep.build_wide_and_deep(schema, label, seed=seed)

    def split(name: str, shuffle: bool = False) -> tf.data.Dataset:
        return inputs.make_dataset(run, name, BATCH_SIZE, shuffle=shuffle,
                                   label_key=label, seed=seed)

    history = classifier.fit(split("train", shuffle=True), epochs=epochs, verbose=2)
    evaluated = classifier.evaluate(split("eval"), return_dict=True, verbose=0)
    train_labels = _labels(split("train"))
    eval_labels = _labels(split("eval"))
    majority = int(train_labels.mean() >= 0.5)
    metrics = {
        "epochs": epochs,
        "train_rows": len(train_labels),
        "eval_rows": len(eval_labels),
        "train_loss": float(history.history["loss"][-1]),
        "eval": {"accuracy": float(evaluated["accuracy"]), "auc": float(evaluated["auc"]),
                 "loss": float(evaluated["loss"])},
        # Always predicting the training split's majority class.
        "baseline": {"majority_class": majority,
                     "accuracy": float(np.mean(eval_labels == majority)), "auc": 0.5},
    }
    export_serving.export_serving_model(os.path.join(model_dir, "serving"), run.tft_output,
                                 run.dataset, classifier)
    with tf.io.gfile.GFile(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    return metrics


def _labels(dataset: tf.data.Dataset) -> np.ndarray:
    return np.concatenate([labels.numpy() for _, labels in dataset])


def format_metrics(metrics: dict, model_dir: str) -> str:
    """What ``train`` prints: the model against the baseline, and where it went."""
    model, baseline = metrics["eval"], metrics["baseline"]
    return (f"eval ({metrics['eval_rows']:,} rows): accuracy {model['accuracy']:.4f}, "
            f"AUC {model['auc']:.4f}; majority-class baseline: accuracy "
            f"{baseline['accuracy']:.4f}, AUC {baseline['auc']:.1f}\n"
            f"serving model: {model_dir}/serving (metrics: {model_dir}/metrics.json)")
