"""``SplitExamples``: routes decoded rows to train, eval and serving.

A row's split follows from its ``row_key`` alone (``pipelines.decode.row_keys``):
buckets below ``eval_percent`` are eval, the rest train, exactly as the
generated BigQuery SQL decides it. Serving rows are only counted.

Stratified (``--stratify_by COL``), eval takes ``eval_fraction`` of every class
of ``COL``, to the row: each class's rows with the smallest keys
(``StratumLimits``, one pass over the training rows, a side input of both
reads), as the SQL ranks ``FARM_FINGERPRINT`` within each class.
"""

from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa

from pipelines import layout
from pipelines.decode.row_keys import (
    ROW_KEY,
    eval_percent,
    is_eval,
    stratified_eval_mask,
    stratum_limit,
)
from pipelines.stages import counters, progress

__all__ = ["SplitExamples", "StratumLimits"]


class _AssignSplit(beam.DoFn):
    """Routes each row of a batch to train (main output) or eval by its bucket."""

    def __init__(self, percent: int, counted: bool, stratify_by: str | None = None):
        self._percent = percent
        self._counted = counted
        self._stratify_by = stratify_by

    def process(self, batch: pa.RecordBatch, limits=None) -> Iterator[pa.RecordBatch]:
        if self._stratify_by is None:
            eval_rows = is_eval(batch, self._percent)
        else:
            eval_rows = stratified_eval_mask(
                batch.column(self._stratify_by).flatten().to_pylist(),
                batch.column(ROW_KEY).flatten().to_numpy(), limits)
        for name, mask in ((layout.TRAIN, ~eval_rows), (layout.EVAL, eval_rows)):
            rows = int(mask.sum())
            if rows:
                if self._counted:
                    counters.count(name, rows)
                    progress.advance("split", rows)
                part = batch if rows == batch.num_rows else batch.filter(pa.array(mask))
                yield part if name == layout.TRAIN else beam.pvalue.TaggedOutput(name, part)


def _count_serving(batch: pa.RecordBatch) -> pa.RecordBatch:
    counters.count(counters.SERVING, batch.num_rows)
    progress.advance("split", batch.num_rows)
    return batch


def _keys_by_class(batch: pa.RecordBatch, column: str):
    classes = np.array(batch.column(column).flatten().to_pylist(), dtype=object)
    keys = batch.column(ROW_KEY).flatten().to_numpy()
    for value in set(classes.tolist()):
        yield value, keys[classes == value]


class StratumLimits(beam.PTransform):
    """Training batches -> a one-element PCollection: ``{class: stratum_limit}``,
    the largest row key of each class of ``column`` that goes to eval."""

    def __init__(self, column: str, eval_fraction: float):
        super().__init__()
        self._column = column
        self._percent = eval_percent(eval_fraction)

    def expand(self, batches):
        percent = self._percent
        return (batches
                | "KeysByClass" >> beam.FlatMap(_keys_by_class, self._column)
                | "AllKeys" >> beam.CombinePerKey(lambda parts: np.concatenate(list(parts)))
                | "Limit" >> beam.Map(lambda kv: (kv[0], stratum_limit(np.sort(kv[1]), percent)))
                | "ToDict" >> beam.combiners.ToDict())


class SplitExamples(beam.PTransform):
    """``{"train"?, "serving"?}`` raw batches to ``{"train", "eval", "serving"?}``
    (train and eval when train is given). ``counted=False`` for a second pass
    over rows already counted. With ``limits`` (``StratumLimits`` of the
    ``stratify_by`` column) eval takes the same share of every class."""

    def __init__(self, eval_fraction: float, counted: bool = True,
                 stratify_by: str | None = None, limits=None):
        super().__init__()
        self._percent = eval_percent(eval_fraction)
        self._counted = counted
        self._stratify_by = stratify_by
        self._limits = limits

    def expand(self, raw):
        splits = {}
        if layout.TRAIN in raw:
            side = ({"limits": beam.pvalue.AsSingleton(self._limits)}
                    if self._stratify_by else {})
            assigned = raw[layout.TRAIN] | "AssignSplit" >> beam.ParDo(
                _AssignSplit(self._percent, self._counted, self._stratify_by), **side
            ).with_outputs(layout.EVAL, main=layout.TRAIN)
            # Beam 2.59 types a tagged output Any, whose coder pickles a batch
            # to estimate its size: typed, it gets RecordBatchCoder's estimate.
            assigned[layout.EVAL].element_type = pa.RecordBatch
            splits = {layout.TRAIN: assigned[layout.TRAIN], layout.EVAL: assigned[layout.EVAL]}
        if layout.SERVING in raw:
            splits[layout.SERVING] = (
                raw[layout.SERVING] | "CountServing" >> beam.Map(_count_serving)
                if self._counted else raw[layout.SERVING])
        return splits
