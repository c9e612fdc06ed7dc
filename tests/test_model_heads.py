"""The model's heads: the label's transformed schema picks binary, multiclass or
regression, and each head has the output, loss and metrics of its task."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines.model import wide_and_deep
from pipelines.model.wide_and_deep import BINARY, MULTICLASS, OUTPUT_KEYS, REGRESSION

LABEL = "label"
ROWS, CARRIERS, HOURS = 2048, 4, 24


def _schema(label_type=schema_pb2.INT, label_max: int | None = None,
            categorical: bool = True) -> schema_pb2.Schema:
    """Two numbers, two categories and the label, as a transformed schema has them
    (scalars: an empty ``shape``), and a variable-length output the model leaves out."""
    schema = schema_pb2.Schema()
    for name in ("distance_z", "dep_delay_z"):
        schema.feature.add(name=name, type=schema_pb2.FLOAT).shape.SetInParent()
    schema.feature.add(name="note_words", type=schema_pb2.INT)  # no shape: variable length
    for name, categories in (("carrier_id", CARRIERS), ("hour_bucket", HOURS)):
        feature = schema.feature.add(name=name, type=schema_pb2.INT)
        feature.shape.SetInParent()
        feature.int_domain.CopyFrom(
            schema_pb2.IntDomain(min=0, max=categories - 1, is_categorical=True))
    label = schema.feature.add(name=LABEL, type=label_type)
    if label_max is not None:
        label.int_domain.CopyFrom(
            schema_pb2.IntDomain(min=0, max=label_max, is_categorical=categorical))
    return schema


def _features(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"distance_z": rng.normal(size=ROWS).astype(np.float32),
            "dep_delay_z": rng.normal(size=ROWS).astype(np.float32),
            "carrier_id": rng.integers(0, CARRIERS, ROWS),
            "hour_bucket": rng.integers(0, HOURS, ROWS)}


def _batches(features: dict, labels: np.ndarray) -> tf.data.Dataset:
    """What ``inputs.make_dataset`` yields: ``[batch]`` tensors, int64 ids. Small
    batches: enough steps in two epochs to learn an easy target."""
    return tf.data.Dataset.from_tensor_slices((features, labels)).batch(32)


@pytest.mark.parametrize(("schema", "task"), [
    (_schema(label_max=1), BINARY),  # a vocabulary of two values
    (_schema(), BINARY),  # no domain: a 0/1 cast, as flights' ``delayed``
    (_schema(label_max=4), MULTICLASS),
    (_schema(label_type=schema_pb2.FLOAT), REGRESSION),
    (_schema(label_max=300, categorical=False), REGRESSION),  # a count with a range
])
def test_label_task_reads_the_labels_schema(schema, task):
    assert wide_and_deep.label_task(schema, LABEL) == task


def test_label_task_names_a_missing_label():
    with pytest.raises(ValueError, match="no label feature 'target'"):
        wide_and_deep.label_task(_schema(), "target")


def test_binary_head_outputs_a_probability_per_row():
    rng = np.random.default_rng(0)
    features = _features(rng)
    labels = (features["distance_z"] > 0).astype(np.int64)
    model = wide_and_deep.build_wide_and_deep(_schema(label_max=1), LABEL)
    history = model.fit(_batches(features, labels), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "auc"}
    assert model.output_names == [OUTPUT_KEYS[BINARY]] == ["probability"]
    probability = model.predict(features, verbose=0)
    assert probability.shape == (ROWS,)
    assert ((probability >= 0) & (probability <= 1)).all()
    assert np.mean((probability > 0.5) == labels) > 0.9  # P(label = 1), not of label 0


def test_multiclass_head_outputs_a_distribution_over_the_classes():
    rng = np.random.default_rng(0)
    features = _features(rng)
    labels = features["carrier_id"] + (features["distance_z"] > 0)  # classes 0..4
    model = wide_and_deep.build_wide_and_deep(_schema(label_max=4), LABEL)
    history = model.fit(_batches(features, labels), epochs=2, verbose=0)
    assert set(history.history) == {"loss", "accuracy"}
    assert model.output_names == ["probabilities"]
    probabilities = model.predict(features, verbose=0)
    assert probabilities.shape == (ROWS, 5)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-5)


def test_regression_head_beats_the_mean_baseline_on_a_linear_target():
    rng = np.random.default_rng(0)
    features = _features(rng)
    labels = (10 + 3 * features["distance_z"] - 2 * features["dep_delay_z"]
              + features["carrier_id"]).astype(np.float32)
    train, held_out = slice(0, 1536), slice(1536, ROWS)
    mean = float(labels[train].mean())
    model = wide_and_deep.build_wide_and_deep(
        _schema(label_type=schema_pb2.FLOAT), LABEL, label_mean=mean)
    history = model.fit(_batches({k: v[train] for k, v in features.items()}, labels[train]),
                        epochs=2, verbose=0)
    assert set(history.history) == {"loss", "rmse"}
    assert model.output_names == ["prediction"]
    evaluated = model.evaluate(
        _batches({k: v[held_out] for k, v in features.items()}, labels[held_out]),
        return_dict=True, verbose=0)
    baseline_rmse = float(np.sqrt(np.mean((labels[held_out] - mean) ** 2)))
    assert evaluated["rmse"] < 0.25 * baseline_rmse
    prediction = model.predict(features, verbose=0)
    assert prediction.shape == (ROWS,)
