"""A small wide & deep binary classifier over a run's transformed features.

Built from the transformed schema alone, so it fits any dataset: an INT feature
with a categorical ``int_domain`` (vocabulary ids, quantile and hash buckets) is
a category, with ``max + 1`` values; every other feature is a number. The wide
part is a linear model over all categories (a one-weight embedding each) and the
numbers; the deep part embeds the categories and feeds them, with the numbers,
through two hidden layers. Keras 2 (``tf_keras``), as TFT requires.
"""

import tensorflow as tf
import tf_keras as keras
from tensorflow_metadata.proto.v0 import schema_pb2

__all__ = ["build_wide_and_deep", "model_inputs"]

EMBEDDING_DIM = 8
HIDDEN_UNITS = (64, 32)


def model_inputs(transformed_schema: schema_pb2.Schema, label_key: str
                 ) -> dict[str, int | None]:
    """Feature name -> number of categories, or None for a numeric feature."""
    inputs = {}
    for feature in transformed_schema.feature:
        if feature.name == label_key:
            continue
        domain = feature.int_domain
        categorical = feature.type == schema_pb2.INT and domain.is_categorical
        inputs[feature.name] = domain.max + 1 if categorical else None
    return inputs


def build_wide_and_deep(transformed_schema: schema_pb2.Schema, label_key: str,
                        seed: int = 0) -> keras.Model:
    """The compiled model: transformed features in, P(label = 1) out, shape [batch]."""
    keras.utils.set_random_seed(seed)
    inputs, wide, deep_embeddings, numbers = {}, [], [], []
    for name, categories in model_inputs(transformed_schema, label_key).items():
        dtype = tf.int64 if categories else tf.float32
        inputs[name] = keras.Input(shape=(), name=name, dtype=dtype)
        if categories:
            ids = inputs[name]
            wide.append(keras.layers.Embedding(categories, 1, name=f"{name}_wide")(ids))
            deep_embeddings.append(
                keras.layers.Embedding(categories, EMBEDDING_DIM, name=f"{name}_embedding")(ids))
        else:
            numbers.append(keras.layers.Reshape((1,), name=f"{name}_column")(
                tf.cast(inputs[name], tf.float32)))
    numeric = keras.layers.Concatenate(name="numbers")(numbers)
    wide_logit = keras.layers.Add(name="wide_categories")(
        wide + [keras.layers.Dense(1, name="wide_numbers")(numeric)])
    hidden = keras.layers.Concatenate(name="deep_inputs")(deep_embeddings + [numeric])
    for units in HIDDEN_UNITS:
        hidden = keras.layers.Dense(units, activation="relu", name=f"hidden_{units}")(hidden)
    deep_logit = keras.layers.Dense(1, name="deep_logit")(hidden)
    logit = keras.layers.Add(name="logit")([wide_logit, deep_logit])
    probability = keras.layers.Reshape((), name="probability")(
        keras.layers.Activation("sigmoid")(logit))
    model = keras.Model(inputs=inputs, outputs=probability, name="wide_and_deep")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=3e-3),
                  loss=keras.losses.BinaryCrossentropy(),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy"),
                           keras.metrics.AUC(name="auc")])
    return model
