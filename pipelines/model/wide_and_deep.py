"""A small wide & deep model over a run's transformed features, with the head
the label calls for.

Built from the transformed schema alone, so it fits any dataset: an INT feature
with a categorical ``int_domain`` (vocabulary ids, quantile and hash buckets) is
a category, with ``max + 1`` values; every other feature is a number. The wide
part is a linear model over all categories (an embedding each) and the
numbers; the deep part embeds the categories and feeds them, with the numbers,
through two hidden layers. A dataset's ``WIDE_ONLY`` outputs (crosses, buckets:
what the wide part memorises) get no deep embedding. Keras 2 (``tf_keras``), as
TFT requires.

The label's schema entry picks the task (``label_task``) and with it the head:

- ``binary``: a sigmoid, ``probability`` of label 1, shape ``[batch]``;
- ``multiclass``: a softmax over ``max + 1`` classes, ``probabilities``,
  shape ``[batch, classes]``;
- ``regression``: a linear output, ``prediction``, shape ``[batch]``.

The output's name is also the serving signature's output key (``OUTPUT_KEYS``).
"""

import tensorflow as tf
import tf_keras as keras
from tensorflow_metadata.proto.v0 import schema_pb2

__all__ = [
    "BINARY", "LEARNING_RATE", "MULTICLASS", "OUTPUT_KEYS", "REGRESSION", "build_wide_and_deep",
    "label_task", "model_inputs",
]

EMBEDDING_DIM = 8
HIDDEN_UNITS = (64, 32)
# Adam's step size unless ``train --learning_rate`` says otherwise: with the
# batch sizes ``train`` picks (32 to 1024), fast enough for a few hundred steps
# to fit, and stable for this model on every dataset measured (see
# benchmarks/train_baselines.py).
LEARNING_RATE = 3e-3

BINARY, MULTICLASS, REGRESSION = "binary", "multiclass", "regression"
OUTPUT_KEYS = {BINARY: "probability", MULTICLASS: "probabilities", REGRESSION: "prediction"}


def label_task(transformed_schema: schema_pb2.Schema, label_key: str) -> str:
    """``binary``, ``multiclass`` or ``regression``, from the label's schema entry.

    A categorical INT label (vocabulary ids, an annotated range) has ``max + 1``
    classes: two make ``binary``, more ``multiclass``. An INT label with no
    domain at all is ``binary`` too: TFT records none for a 0/1 label cast from
    a condition (flights' ``delayed``), and every model trained so far read such
    labels as 0/1. Anything else (FLOAT, an INT range that is not categorical)
    is ``regression``; cast a count label to float for it to be regressed.
    """
    label = _feature(transformed_schema, label_key)
    if label.type != schema_pb2.INT:
        return REGRESSION
    if not label.HasField("int_domain"):
        return BINARY
    if label.int_domain.is_categorical:
        return BINARY if label.int_domain.max <= 1 else MULTICLASS
    return REGRESSION


def model_inputs(transformed_schema: schema_pb2.Schema, label_key: str
                 ) -> dict[str, int | None]:
    """Feature name -> number of categories, or None for a numeric feature.

    Scalars only: a vector (PCA components) or variable-length output (bag of
    words, tf-idf) needs a model of its own design, so it is left out.
    """
    inputs = {}
    for feature in transformed_schema.feature:
        if feature.name == label_key or not feature.HasField("shape") or feature.shape.dim:
            continue
        domain = feature.int_domain
        categorical = feature.type == schema_pb2.INT and domain.is_categorical
        inputs[feature.name] = domain.max + 1 if categorical else None
    return inputs


def build_wide_and_deep(transformed_schema: schema_pb2.Schema, label_key: str,
                        seed: int = 0, label_mean: float = 0.0,
                        wide_only: tuple[str, ...] = (),
                        learning_rate: float = LEARNING_RATE) -> keras.Model:
    """The compiled model: transformed features in, the task's output out.

    Args:
      transformed_schema: the run's transformed schema, label included.
      label_key: the label's feature name.
      seed: makes the initial weights repeatable.
      label_mean: regression only: the output starts at this value (the training
        labels' mean), so training starts from the mean baseline instead of
        spending its first epochs on the labels' offset.
      wide_only: categorical features for the wide part only (crosses and
        buckets with many values, which memorise; the dataset's ``WIDE_ONLY``):
        no deep embedding, whose size would grow with their range.
      learning_rate: Adam's.
    """
    keras.utils.set_random_seed(seed)
    task = label_task(transformed_schema, label_key)
    # One logit per class for multiclass; one for binary and regression.
    width = _feature(transformed_schema, label_key).int_domain.max + 1 if task == MULTICLASS else 1
    inputs, wide, deep_embeddings, numbers = {}, [], [], []
    for name, categories in model_inputs(transformed_schema, label_key).items():
        dtype = tf.int64 if categories else tf.float32
        inputs[name] = keras.Input(shape=(), name=name, dtype=dtype)
        if categories:
            ids = inputs[name]
            wide.append(keras.layers.Embedding(categories, width, name=f"{name}_wide")(ids))
            if name not in wide_only:
                deep_embeddings.append(keras.layers.Embedding(
                    categories, EMBEDDING_DIM, name=f"{name}_embedding")(ids))
        else:
            numbers.append(keras.layers.Reshape((1,), name=f"{name}_column")(
                tf.cast(inputs[name], tf.float32)))
    numeric = keras.layers.Concatenate(name="numbers")(numbers)
    wide_logit = keras.layers.Add(name="wide_categories")(
        wide + [keras.layers.Dense(width, name="wide_numbers")(numeric)])
    hidden = keras.layers.Concatenate(name="deep_inputs")(deep_embeddings + [numeric])
    for units in HIDDEN_UNITS:
        hidden = keras.layers.Dense(units, activation="relu", name=f"hidden_{units}")(hidden)
    deep_logit = keras.layers.Dense(
        width, name="deep_logit",
        bias_initializer=keras.initializers.Constant(label_mean if task == REGRESSION else 0.0),
    )(hidden)
    logit = keras.layers.Add(name="logit")([wide_logit, deep_logit])
    output, loss, metrics = _head(task, logit)
    model = keras.Model(inputs=inputs, outputs=output, name="wide_and_deep")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=learning_rate), loss=loss,
                  metrics=metrics)
    return model


def _head(task: str, logit):
    """(output tensor named ``OUTPUT_KEYS[task]``, loss, metrics) of a task."""
    name = OUTPUT_KEYS[task]
    if task == BINARY:
        probability = keras.layers.Reshape((), name=name)(
            keras.layers.Activation("sigmoid")(logit))
        return probability, keras.losses.BinaryCrossentropy(), [
            keras.metrics.BinaryAccuracy(name="accuracy"), keras.metrics.AUC(name="auc")]
    if task == MULTICLASS:
        probabilities = keras.layers.Activation("softmax", name=name)(logit)
        return probabilities, keras.losses.SparseCategoricalCrossentropy(), [
            keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    prediction = keras.layers.Reshape((), name=name)(logit)
    return prediction, keras.losses.MeanSquaredError(), [
        keras.metrics.RootMeanSquaredError(name="rmse")]


def _feature(schema: schema_pb2.Schema, name: str) -> schema_pb2.Feature:
    for feature in schema.feature:
        if feature.name == name:
            return feature
    raise ValueError(f"the transformed schema has no label feature {name!r}")
