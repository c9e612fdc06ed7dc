"""``Predict``: batch scoring of decoded rows with a serving SavedModel, through
Beam's ``RunInference``.

``RunInference`` batches the elements, loads the model once per worker process
and shares it between threads. Beam 2.59's own TensorFlow handler imports
``tensorflow_hub`` and loads with Keras; ``SavedModelHandler`` is a small
``ModelHandler`` around ``tf.saved_model.load`` instead. Elements are slices
of decoded RecordBatches, which the handler concatenates and feeds to the
model's ``predict_raw`` signature in one call: the signature, and so the
transformation, that the REST API answers with. Its columns are named as the
CSV names them; ``serving_info.RawSignature`` passes each under the
signature's input name (``raw_tensors`` makes the tensors, for
``check-parity`` too).

Each scored row becomes one CSV line: ``row_key``, the dataset's key columns,
the columns asked to pass through (``predict --passthrough``), for a dataset
without key columns the row's input file and line number (``input_file``,
``input_line``: what joins it back to its input), and the model's output (a
number, or a JSON list of class probabilities).
"""

import csv
import io
import json
from collections.abc import Iterable, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from pipelines.decode.csv_decoder import ORIGIN_FILE, ORIGIN_LINE
from pipelines.decode.row_keys import ROW_KEY
from pipelines.records.serving_info import PREDICT_RAW, RawSignature, ServingInfo
from pipelines.stages import counters

__all__ = ["INPUT_FILE", "INPUT_LINE", "Predict", "SavedModelHandler", "prediction_fields",
           "prediction_header", "raw_tensors"]

# The header's names of a row's file and line number (the decoder's ORIGIN_*).
INPUT_FILE, INPUT_LINE = "input_file", "input_line"

# Rows per RunInference element: decoded batches are cut to this size, and
# RunInference batches up to MAX_ELEMENTS of them into one model call.
ROWS_PER_ELEMENT = 2048
MAX_ELEMENTS = 16


class SavedModelHandler(ModelHandler[pa.RecordBatch, PredictionResult, object]):
    """RecordBatches of decoded rows -> the serving model's output per row.

    Args:
      model_dir: the serving SavedModel (``M/serving``).
      output: the output key of its ``predict_raw`` signature.
    """

    def __init__(self, model_dir: str, output: str):
        super().__init__()
        self._model_dir = model_dir
        self._output = output

    def load_model(self) -> RawSignature:
        return RawSignature(tf.saved_model.load(self._model_dir), PREDICT_RAW,
                            ServingInfo.read(self._model_dir), self._model_dir)

    def run_inference(self, batch: Sequence[pa.RecordBatch], model: RawSignature,
                      inference_args=None) -> Iterable[PredictionResult]:
        table = pa.Table.from_batches(batch).combine_chunks()
        outputs = model(raw_tensors(table, model.specs))[self._output].numpy()
        start = 0
        for record_batch in batch:
            end = start + record_batch.num_rows
            yield PredictionResult(record_batch, outputs[start:end])
            start = end

    def get_num_bytes(self, batch: Sequence[pa.RecordBatch]) -> int:
        return sum(b.nbytes for b in batch)

    def batch_elements_kwargs(self) -> dict:
        return {"min_batch_size": 1, "max_batch_size": MAX_ELEMENTS}

    def get_metrics_namespace(self) -> str:
        return "tft_preprocessing_predict"


def raw_tensors(rows: pa.Table | pa.RecordBatch, specs: dict[str, tf.TensorSpec]
                ) -> dict[str, tf.Tensor]:
    """Decoded rows -> a raw-feature signature's inputs, by feature name
    (``RawSignature.specs``): one tensor per feature."""
    return {name: _tensor(rows.column(name), spec) for name, spec in specs.items()}


def _tensor(column: pa.ChunkedArray | pa.Array, spec: tf.TensorSpec) -> tf.Tensor:
    """A decoded column (lists of one value, null when missing) as the
    ``predict_raw`` signature takes it: a missing number NaN, a missing text ``""``."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = pc.list_element(column, 0)
    if spec.dtype == tf.string:
        return tf.constant(pc.fill_null(values, b"").to_numpy(zero_copy_only=False)
                           .astype(object))
    numbers = pc.cast(values, pa.float64() if spec.dtype.is_floating else pa.int64())
    if spec.dtype.is_floating:
        numbers = pc.fill_null(numbers, np.nan)
    return tf.constant(numbers.to_numpy(zero_copy_only=False).astype(spec.dtype.as_numpy_dtype))


def prediction_fields(columns: Sequence[str], output: str, origin: bool = False) -> list[str]:
    """The predictions' fields: ``row_key``, the columns written beside each
    prediction, the row's file and line when asked, the model's output."""
    return [ROW_KEY, *columns, *((INPUT_FILE, INPUT_LINE) if origin else ()), output]


def prediction_header(columns: Sequence[str], output: str, origin: bool = False) -> str:
    return _line(prediction_fields(columns, output, origin))


def _line(fields: list) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(fields)
    return text.getvalue()


def _slices(batch: pa.RecordBatch) -> Iterable[pa.RecordBatch]:
    for start in range(0, batch.num_rows, ROWS_PER_ELEMENT):
        yield batch.slice(start, ROWS_PER_ELEMENT)


def _lines(result: PredictionResult, columns: tuple[str, ...], origin: bool
           ) -> Iterable[str]:
    batch, predictions = result.example, result.inference
    # A scored row is a serving row of the accounting: read = scored + rejected.
    counters.count(counters.SERVING, batch.num_rows)
    keys = batch.column(ROW_KEY).flatten().to_numpy()
    # As text the way Arrow writes it: a float32 as its shortest text (0.1, not
    # 0.10000000149011612), a missing value as an empty field.
    texts = [pc.fill_null(pc.cast(pc.list_element(batch.column(name), 0), pa.string()), "")
             .to_pylist() for name in columns]
    if origin:
        texts += [batch.column(ORIGIN_FILE).to_pylist(), batch.column(ORIGIN_LINE).to_pylist()]
    for i, prediction in enumerate(predictions):
        yield _line([int(keys[i]), *(column[i] for column in texts), _output(prediction)])


def _output(prediction: np.ndarray) -> str:
    if np.ndim(prediction):
        return json.dumps([float(p) for p in prediction])
    return repr(float(prediction))


class Predict(beam.PTransform):
    """Decoded batches (with their window and joined features) -> CSV lines of
    predictions, written as ``prefix-NNNNN-of-NNNNN.csv`` with a header each.

    Args:
      model_dir, output: the serving model and its ``predict_raw`` output key.
      columns: the decoded columns written beside each prediction, by name.
      prefix: the shards' path prefix.
      origin: write each row's file and line number too (the batches come from
        a decoder ``with_origin``).
    """

    def __init__(self, model_dir: str, output: str, columns: Sequence[str], prefix: str,
                 origin: bool = False):
        super().__init__()
        self._handler = SavedModelHandler(model_dir, output)
        self._output = output
        self._columns = tuple(columns)
        self._prefix = prefix
        self._origin = origin

    def expand(self, batches):
        return (batches
                | "Slice" >> beam.FlatMap(_slices)
                | "RunInference" >> RunInference(self._handler)
                | "Lines" >> beam.FlatMap(_lines, self._columns, self._origin)
                | "Write" >> beam.io.WriteToText(
                    self._prefix, file_name_suffix=".csv",
                    header=prediction_header(self._columns, self._output, self._origin)))
