"""The serving SavedModel: raw features in, the training-time transformation
applied by the embedded ``transform_fn``, then the model.

``tft.TFTransformOutput.transform_features_layer()`` is tracked by the exported
module, so its graph and vocabulary assets are copied into the SavedModel: the
model keeps working after the run directory is gone. Signatures:

- ``serving_default``: a batch of serialized raw ``tf.Example`` (no label) ->
  ``{OUTPUT: ...}``, where the task names the output
  (``wide_and_deep.OUTPUT_KEYS``): ``probability`` ``[batch]`` (binary),
  ``probabilities`` ``[batch, classes]`` (multiclass) or ``prediction``
  ``[batch]`` (regression).
- ``predict_raw``: one tensor per raw serving feature, what a JSON client sends
  -> the same output. An optional feature's missing value is NaN
  (numbers: float64 for an integer, which holds one exactly up to 2**53, such as an
  11-digit census tract; float32 for a float) or ``""`` (strings); it becomes the same missing
  value the training examples had, so imputation applies exactly as in training.
- ``transform_features``: serialized raw ``tf.Example`` -> the transformed
  features, including the label when the example carries its inputs. A
  variable-length output (bag of words, tf-idf) comes as two tensors, as a
  ragged tensor is made of: ``NAME__values`` and ``NAME__row_lengths``
  (``ragged_outputs`` puts them back together).
- ``transform_raw``: ``predict_raw``'s inputs -> the transformed features (no
  label), as ``transform_features`` gives them: what ``check-parity`` compares
  on the path ``serve`` and ``predict`` take.

A signature's inputs are keyword arguments, so a feature whose name is not a
Python identifier (``1stFlrSF``, ``home.dest``, ``mean radius``, ``größe``,
``class``) is taken by ``predict_raw`` and ``transform_raw`` under an argument
name chosen here (``signature_input_names``: ``arg_1stFlrSF``, ``home_dest``,
``class_``; a name that is one already is kept) and recorded in the serving
info; ``serving_info.RawSignature`` calls them by the features' own names. A
``tf.Example``'s feature keys are any text, so ``serving_default`` and
``transform_features`` take the CSV's names as they are, and so do the
module's functions ``predict_raw`` and ``transform_raw`` (a dict by feature
name: ``loaded.predict_raw({"1stFlrSF": ...})``), for a user of the SavedModel.

A transform-only export (no model) has ``transform_features`` and
``transform_raw``. ``assets.extra/serving_info.json``
(``pipelines.records.serving_info``) names the dataset, the signatures, the
features a request needs, their signature input names and the output key;
``assets.extra/dataset/`` is the dataset as a dataset directory, with the run's
schema: ``serve`` checks requests against its types and domains and reads
a formatted column's strings in its format (``read_dataset``), ``predict``
reads raw CSV in its dialect and derives its window and joined features.
``serving_info.json`` is written last, whole (``records.atomic_files``), and
removed first when a model is replaced: a model whose export was cut short has
none, and no command takes it for a model.
``export-serving`` holds the lock of its ``--out`` (``records.writer_lock``).
"""

import keyword
import re

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import layout
from pipelines.datasets import Dataset, load_directory
from pipelines.model import wide_and_deep
from pipelines.records import writer_lock
from pipelines.records.serving_info import (
    PREDICT_RAW,
    SERVING_DEFAULT,
    TRANSFORM_FEATURES,
    TRANSFORM_RAW,
    ServingInfo,
)
from pipelines.reports.run_dir import RunDir

__all__ = [
    "export_from_run", "export_serving_model", "ragged_outputs", "read_dataset", "read_schema",
    "serving_feature_spec", "signature_input_names",
]


def serving_feature_spec(tft_output: tft.TFTransformOutput, dataset: Dataset,
                         with_label_inputs: bool = False) -> dict:
    """The raw feature spec of the features a serving request carries (and, with
    ``with_label_inputs``, of those only the label needs). With a feature
    selection (``dataset.json``'s ``features``), a raw column that no kept
    feature is computed from is not one of them: a request need not carry what
    the model never reads."""
    raw_spec = tft_output.raw_feature_spec()
    schema = _raw_schema(tft_output, dataset)
    names = list(dataset.module.serving_inputs(schema))
    if dataset.keep or dataset.drop:
        used = _inputs_of_the_features(dataset, raw_spec)
        names = [name for name in names if name in used]
    if with_label_inputs:
        names += dataset.module.label_inputs(schema)
    return {name: raw_spec[name] for name in names}


def _inputs_of_the_features(dataset: Dataset, raw_spec: dict) -> set[str]:
    """The raw columns the selected features (the label's aside) are computed
    from, as TFT traces the ``preprocessing_fn``'s graph."""
    preprocessing_fn = dataset.load_preprocessing_fn()
    label = dataset.module.label_key

    def features_only(inputs: dict) -> dict:
        return {name: value for name, value in preprocessing_fn(inputs).items()
                if name != label}

    return set(tft.get_transform_input_columns(features_only, raw_spec,
                                               force_tf_compat_v1=True))


class _ServingModule(tf.Module):
    """Tracks what the signatures use, so that the SavedModel holds all of it."""

    def __init__(self, tft_output: tft.TFTransformOutput, model=None):
        super().__init__()
        self.tft_layer = tft_output.transform_features_layer()
        self.model = model


def export_serving_model(out_dir: str, tft_output: tft.TFTransformOutput, dataset: Dataset,
                         model=None) -> str:
    """Writes the serving SavedModel to ``out_dir``; returns ``out_dir``."""
    module = _ServingModule(tft_output, model)
    serving_spec = serving_feature_spec(tft_output, dataset)
    debug_spec = serving_feature_spec(tft_output, dataset, with_label_inputs=True)
    input_names = signature_input_names(list(serving_spec))
    raw_specs = _raw_tensor_specs(serving_spec, input_names)
    examples = tf.TensorSpec([None], tf.string, name="examples")

    @tf.function(input_signature=[examples])
    def transform_features(serialized):
        return _as_tensors(module.tft_layer(tf.io.parse_example(serialized, debug_spec)))

    @tf.function(input_signature=[raw_specs])
    def transform_raw(features):
        return _as_tensors(module.tft_layer(_as_parsed(features, serving_spec)))

    # Tracked, the functions are the module's own in the SavedModel too: their
    # dict input keeps the features' names, which signature inputs cannot.
    module.transform_raw = transform_raw
    signatures = {TRANSFORM_FEATURES: transform_features.get_concrete_function(),
                  TRANSFORM_RAW: transform_raw.get_concrete_function()}
    output = None
    if model is not None:
        model_inputs = list(model.input_names)
        output = wide_and_deep.OUTPUT_KEYS[wide_and_deep.label_task(
            tft_output.transformed_metadata.schema,
            dataset.module.require_label("a serving model with a model"))]

        def predict(raw_features):
            transformed = module.tft_layer(raw_features)
            return {output: module.model({k: transformed[k] for k in model_inputs})}

        @tf.function(input_signature=[examples])
        def serve_examples(serialized):
            return predict(tf.io.parse_example(serialized, serving_spec))

        @tf.function(input_signature=[raw_specs])
        def predict_raw(features):
            return predict(_as_parsed(features, serving_spec))

        module.predict_raw = predict_raw
        signatures[SERVING_DEFAULT] = serve_examples.get_concrete_function()
        signatures[PREDICT_RAW] = predict_raw.get_concrete_function()
    # A model being replaced stops looking complete before any of it is: its
    # info goes first and comes back last, once the graph and dataset are whole.
    if tf.io.gfile.exists(layout.serving_info_file(out_dir)):
        tf.io.gfile.remove(layout.serving_info_file(out_dir))
    tf.saved_model.save(module, out_dir, signatures=signatures)
    _write_dataset(out_dir, tft_output, dataset)
    _write_info(out_dir, dataset, serving_spec, input_names, output)
    return out_dir


# A signature input name TensorFlow keeps as it is and can save: an identifier
# that starts with a letter (it prefixes ``arg_`` to one that does not), is not
# a keyword (which it refuses) and is ASCII (a graph node's name must be).
_KEPT_INPUT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def signature_input_names(features: list[str]) -> dict[str, str]:
    """Feature -> the name of its input in the raw-feature signatures.

    A name TensorFlow keeps as it is stays; any other becomes one it keeps,
    unlike every other input's: each run of other characters one ``_``,
    ``arg_`` before a first character that is not a letter, ``_`` after a
    keyword, then ``_2``, ``_3``... until it is unique (``1stFlrSF`` ->
    ``arg_1stFlrSF``, ``home.dest`` -> ``home_dest``, ``größe`` -> ``gr_e``,
    ``class`` -> ``class_``).
    """
    taken = {f for f in features if _kept(f)}
    names = {}
    for feature in features:
        if _kept(feature):
            names[feature] = feature
            continue
        base = re.sub(r"[^A-Za-z0-9_]+", "_", feature)
        if not base[:1].isalpha():
            base = "arg_" + base
        if keyword.iskeyword(base):
            base += "_"
        name, suffix = base, 2
        while name in taken:
            name, suffix = f"{base}_{suffix}", suffix + 1
        taken.add(name)
        names[feature] = name
    return names


def _kept(name: str) -> bool:
    return bool(_KEPT_INPUT_NAME.fullmatch(name)) and not keyword.iskeyword(name)


def _write_dataset(out_dir: str, tft_output: tft.TFTransformOutput, dataset: Dataset) -> None:
    """The dataset as a dataset directory in the model, with the run's raw
    schema: the model then reads and checks raw rows without the package's
    copy of the dataset."""
    dataset.save(layout.serving_dataset_dir(out_dir), _raw_schema(tft_output, dataset))


def _raw_schema(tft_output: tft.TFTransformOutput, dataset: Dataset) -> schema_pb2.Schema:
    """The run's raw schema (``metadata/schema.pbtxt``, as the run wrote it); the
    dataset's own when a run directory lacks it."""
    try:
        return tft_output.raw_metadata.schema
    except (OSError, tf.errors.NotFoundError):
        return dataset.schema()


VALUES, ROW_LENGTHS = "__values", "__row_lengths"


def _as_tensors(outputs: dict) -> dict[str, tf.Tensor]:
    """A signature returns tensors only: a sparse output becomes the flat values
    and row lengths of the same ragged rows."""
    flat = {}
    for name, value in outputs.items():
        if isinstance(value, tf.SparseTensor):
            ragged = tf.RaggedTensor.from_sparse(tf.sparse.reorder(value))
            flat[name + VALUES], flat[name + ROW_LENGTHS] = ragged.flat_values, ragged.row_lengths()
        else:
            flat[name] = value
    return flat


def ragged_outputs(flat: dict[str, np.ndarray]) -> dict[str, list | np.ndarray]:
    """``transform_features``' outputs with each variable-length output one list
    of per-row arrays again."""
    outputs = {}
    for name, value in flat.items():
        if name.endswith(ROW_LENGTHS):
            continue
        if name.endswith(VALUES):
            base = name[:-len(VALUES)]
            lengths = flat[base + ROW_LENGTHS]
            outputs[base] = np.split(value, np.cumsum(lengths)[:-1]) if len(lengths) else []
        else:
            outputs[name] = value
    return outputs


def export_from_run(run_dir: str, out_dir: str) -> str:
    """``export-serving``: a transform-only serving model of a finished run;
    returns the line the command prints."""
    run = RunDir(run_dir)
    with writer_lock.hold(out_dir, "export-serving", "--out"):
        export_serving_model(out_dir, run.tft_output, run.dataset)
    return (f"transform-only serving model: {out_dir} (signatures transform_features and "
            f"transform_raw)")


def read_dataset(model_dir: str) -> Dataset | None:
    """The dataset the model was exported with, its schema the run's (its types
    and domains check requests, its column formats read their strings); None
    for a model exported before models carried their dataset."""
    directory = layout.serving_dataset_dir(model_dir)
    if not tf.io.gfile.exists(directory):
        return None
    return load_directory(directory)


def read_schema(model_dir: str) -> schema_pb2.Schema | None:
    """The raw schema the model was exported with (``read_dataset``'s)."""
    dataset = read_dataset(model_dir)
    return None if dataset is None else dataset.schema()


def _raw_tensor_specs(serving_spec: dict, input_names: dict[str, str]
                      ) -> dict[str, tf.TensorSpec]:
    """One ``[batch]`` tensor per feature, by feature; optional numbers as
    floats (NaN: missing): float64 for an integer (float32 would round an
    11-digit one), float32 for a float. A spec's name is the signature's input
    name."""
    specs = {}
    for name, feature in serving_spec.items():
        dtype = feature.dtype
        if isinstance(feature, tf.io.VarLenFeature) and dtype != tf.string:
            dtype = tf.float64 if dtype.is_integer else tf.float32
        specs[name] = tf.TensorSpec([None], dtype, name=input_names[name])
    return specs


def _as_parsed(features: dict, serving_spec: dict) -> dict:
    """Named tensors -> what ``tf.io.parse_example`` gives for the same values:
    ``[batch, 1]`` dense tensors for required features and ``[batch, 1]``
    sparse ones, without the missing values, for optional features."""
    parsed = {}
    for name, feature in serving_spec.items():
        values = features[name]
        if isinstance(feature, tf.io.FixedLenFeature):
            parsed[name] = tf.reshape(values, [-1, 1])
            continue
        present = values != "" if values.dtype == tf.string else ~tf.math.is_nan(values)
        rows = tf.where(present)
        kept = tf.cast(tf.boolean_mask(values, present), feature.dtype)
        parsed[name] = tf.sparse.SparseTensor(
            indices=tf.concat([rows, tf.zeros_like(rows)], axis=1), values=kept,
            dense_shape=tf.stack([tf.shape(values, out_type=tf.int64)[0], 1]))
    return parsed


def _write_info(out_dir: str, dataset: Dataset, serving_spec: dict,
                input_names: dict[str, str], output: str | None) -> None:
    """``output``: the signatures' output key; None for a transform-only export."""
    required = [n for n, f in serving_spec.items() if isinstance(f, tf.io.FixedLenFeature)]
    ServingInfo(
        dataset=dataset.name,
        signatures=([SERVING_DEFAULT, PREDICT_RAW] if output is not None else [])
        + [TRANSFORM_FEATURES, TRANSFORM_RAW],
        required_features=required,
        optional_features=[n for n in serving_spec if n not in required],
        output=output,
        signature_inputs=input_names,
    ).write(out_dir)
