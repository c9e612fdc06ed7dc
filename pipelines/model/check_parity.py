"""``check-parity``: does serving transform a raw row exactly as the pipeline did?

Takes N raw rows of a split from the run's own inputs, read, prepared and split
exactly as the pipeline did (``Preparation.prepare_table``, and the split of
the run's record, strata included), runs them through a serving model's two
transformation signatures, and compares every feature with the record the Beam
pipeline wrote for the same raw row, joined on ``row_key``:

- ``transform_features``: the rows as serialized ``tf.Example``s, as a
  ``serving_default`` client sends them;
- ``transform_raw``: the rows as the tensors ``predict`` makes of them, by the
  features' own names, through ``serving_info.RawSignature``: the entry
  ``serve`` and ``predict`` take, so a signature input renamed behind the
  serving info's back fails here.

Floats may differ by at most 1e-6; integers and strings must be equal. A value
that differs on either path is one mismatch, naming the path.

    python -m pipelines check-parity --run_dir DIR [--split eval] [--n 1000] [--model M]

Without ``--model`` a transform-only serving model is exported from the run
first, exactly as ``export-serving`` writes it.
"""

import dataclasses
import functools
import tempfile

import numpy as np
import pyarrow as pa
import tensorflow as tf
from tfx_bsl.coders import example_coder

from pipelines import layout
from pipelines.decode.files import decoded_table, match_files
from pipelines.decode.row_keys import ROW_KEY, eval_percent, eval_rows
from pipelines.errors import UserError
from pipelines.model import export_serving, inputs
from pipelines.records.serving_info import (
    TRANSFORM_FEATURES,
    TRANSFORM_RAW,
    RawSignature,
    ServingInfo,
)
from pipelines.reports.run_dir import RunDir
from pipelines.stages.predictions import raw_tensors

__all__ = ["ParityReport", "check_parity", "raw_examples", "read_raw_rows", "written_rows"]

FLOAT_TOLERANCE = 1e-6


@dataclasses.dataclass
class ParityReport:
    """Attributes:
      rows, features: what was compared.
      mismatches: one line per value that differs on either path.
      signatures: the signatures the rows went through.
    """

    rows: int
    features: list[str]
    mismatches: list[str]
    signatures: list[str] = dataclasses.field(default_factory=lambda: [TRANSFORM_FEATURES])

    def __str__(self) -> str:
        lines = [f"compared {self.rows:,} rows x {len(self.features)} features "
                 f"({self.rows * len(self.features):,} values): "
                 f"{len(self.mismatches):,} mismatches",
                 f"  through {' and '.join(self.signatures)}"]
        lines += [f"  {m}" for m in self.mismatches[:20]]
        if len(self.mismatches) > 20:
            lines.append(f"  ... and {len(self.mismatches) - 20:,} more")
        return "\n".join(lines)


def read_raw_rows(run: RunDir, split_name: str, count: int) -> pa.RecordBatch:
    """The first ``count`` raw rows of a split, read, prepared and split exactly
    as the run did: its inputs, limit, duplicates, lookups, window features,
    eval fraction and strata, all from the run's record."""
    record = run.record
    input_name = layout.SERVING if split_name == layout.SERVING else layout.TRAIN
    pattern = record.inputs.csv(input_name)
    if not pattern:
        source = "BigQuery" if record.inputs.bigquery else "no input"
        raise UserError(f"the {split_name!r} split of the run at {run.path} came from "
                        f"{source}; check-parity re-reads CSV inputs only")
    schema = run.schema()
    preparation = run.dataset.preparation(schema, record.instance_selection.drop_duplicates)
    stratify_by = record.instance_selection.stratify_by
    keep = prepare = None
    if split_name != layout.SERVING:
        percent = eval_percent(record.eval_fraction)
        wanted = split_name == layout.EVAL
        keep = lambda batch: eval_rows(batch, percent, stratify_by) == wanted  # noqa: E731
    if preparation.changes(input_name) or (stratify_by and split_name != layout.SERVING):
        # Every row of the input is needed: a stratum, a window or a duplicate
        # depends on the others.
        prepare = functools.partial(preparation.prepare_table, input_name=input_name)
    # Rejected rows have no transformed record: only decoded rows are compared.
    decoder = run.dataset.csv_decoder(schema)
    if split_name == layout.SERVING:  # serving files may lack the label
        decoder = decoder.for_serving()
    table = decoded_table(decoder, match_files(pattern), record.limit, keep=keep,
                          max_rows=count, prepare=prepare).table
    if not table.num_rows:
        raise UserError(f"the {split_name!r} split of {run.path} has no rows")
    return table.combine_chunks().to_batches()[0]


def raw_examples(run: RunDir, split_name: str, count: int) -> tuple[pa.RecordBatch, list]:
    """The first ``count`` raw rows of a split, and the same rows as serialized raw
    ``tf.Example``s without their ``row_key``, as a serving client sends them."""
    raw = read_raw_rows(run, split_name, count)
    names = [n for n in raw.schema.names if n != ROW_KEY]
    features = pa.RecordBatch.from_arrays([raw.column(n) for n in names], names=names)
    return raw, example_coder.RecordBatchToExamplesEncoder().encode(features)


def check_parity(run_dir: str, split_name: str = layout.EVAL, count: int = 1000,
                 model_dir: str | None = None) -> ParityReport:
    run = RunDir(run_dir)
    raw, serialized = raw_examples(run, split_name, count)
    with tempfile.TemporaryDirectory() as exported:
        if model_dir is None:
            model_dir = export_serving.export_serving_model(
                exported, run.tft_output, run.dataset)
        served = _served(model_dir, raw, serialized)
    keys = raw.column(ROW_KEY).flatten().to_pylist()
    written = written_rows(run, split_name, set(keys))
    features = sorted(served[TRANSFORM_FEATURES])
    mismatches = []
    for i, key in enumerate(keys):
        if key not in written:
            mismatches.append(f"row_key {key}: no record in data/{split_name}/")
            continue
        for name in features:
            pipeline = written[key][name]
            differing = [f"{signature} {outputs[name][i]!r}"
                         for signature, outputs in served.items()
                         if name in outputs and not _equal(outputs[name][i], pipeline)]
            if differing:
                mismatches.append(f"row_key {key}, {name}: serving "
                                  f"{'; '.join(differing)} != pipeline {pipeline!r}")
    return ParityReport(len(keys), features, mismatches, list(served))


def _served(model_dir: str, raw: pa.RecordBatch, serialized: list[bytes]
            ) -> dict[str, dict[str, list | np.ndarray]]:
    """Signature -> the transformed features it gives for the rows: the
    examples through ``transform_features`` and, unless the model was exported
    before it had one, the raw rows through ``transform_raw``."""
    loaded = tf.saved_model.load(model_dir)
    by_examples = loaded.signatures[TRANSFORM_FEATURES](examples=tf.constant(serialized))
    served = {TRANSFORM_FEATURES: _numpy(by_examples)}
    info = ServingInfo.read(model_dir)
    if TRANSFORM_RAW in info.signatures:
        transform_raw = RawSignature(loaded, TRANSFORM_RAW, info, model_dir)
        served[TRANSFORM_RAW] = _numpy(transform_raw(raw_tensors(raw, transform_raw.specs)))
    return served


def _numpy(outputs: dict[str, tf.Tensor]) -> dict[str, list | np.ndarray]:
    return export_serving.ragged_outputs({k: v.numpy() for k, v in outputs.items()})


def written_rows(run: RunDir, split_name: str, keys: set[int] | None = None
                 ) -> dict[int, dict[str, np.ndarray]]:
    """The pipeline's transformed records of a split (those of ``keys``) by row_key."""
    rows = {}
    for batch in inputs.make_dataset(run, split_name, 4096, with_row_key=True):
        batch = {k: _rows(v) for k, v in batch.items()}
        wanted = (range(len(batch[ROW_KEY])) if keys is None
                  else np.flatnonzero(np.isin(batch[ROW_KEY], list(keys))))
        for i in wanted:
            rows[int(batch[ROW_KEY][i])] = {k: v[i] for k, v in batch.items()}
    return rows


def _rows(value) -> np.ndarray | list:
    """A parsed batch's feature as one entry per row (a variable-length one's
    rows as arrays of their own)."""
    if isinstance(value, tf.SparseTensor):
        return [np.asarray(row) for row in
                tf.RaggedTensor.from_sparse(tf.sparse.reorder(value)).to_list()]
    return value.numpy()


def _equal(served, written) -> bool:
    if np.shape(served) != np.shape(written):
        return False
    if np.issubdtype(np.asarray(served).dtype, np.floating):
        return bool(np.all(np.abs(served - written) <= FLOAT_TOLERANCE))
    return bool(np.all(served == written))

