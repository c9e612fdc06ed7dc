"""``SplitExamples``: routes decoded rows to train, eval and serving.

A row's split follows from its ``row_key`` alone (``pipelines.decode.row_keys``):
buckets below ``eval_percent`` are eval, the rest train, exactly as the
generated BigQuery SQL decides it. Serving rows are only counted.
"""

import apache_beam as beam
import pyarrow as pa

from pipelines.decode.row_keys import eval_percent, is_eval
from pipelines.stages import counters, progress

__all__ = ["SplitExamples"]


class _AssignSplit(beam.DoFn):
    """Routes each row of a batch to train (main output) or eval by its bucket."""

    def __init__(self, percent: int, counted: bool):
        self._percent = percent
        self._counted = counted

    def process(self, batch: pa.RecordBatch):
        eval_rows = is_eval(batch, self._percent)
        for name, mask in (("train", ~eval_rows), ("eval", eval_rows)):
            rows = int(mask.sum())
            if rows:
                if self._counted:
                    counters.count(name, rows)
                    progress.advance("split", rows)
                part = batch if rows == batch.num_rows else batch.filter(pa.array(mask))
                yield part if name == "train" else beam.pvalue.TaggedOutput(name, part)


def _count_serving(batch: pa.RecordBatch) -> pa.RecordBatch:
    counters.count("serving", batch.num_rows)
    progress.advance("split", batch.num_rows)
    return batch


class SplitExamples(beam.PTransform):
    """``{"train"?, "serving"?}`` raw batches to ``{"train", "eval", "serving"?}``
    (train and eval when train is given). ``counted=False`` for a second pass
    over rows already counted."""

    def __init__(self, eval_fraction: float, counted: bool = True):
        super().__init__()
        self._percent = eval_percent(eval_fraction)
        self._counted = counted

    def expand(self, raw):
        splits = {}
        if "train" in raw:
            assigned = raw["train"] | "AssignSplit" >> beam.ParDo(
                _AssignSplit(self._percent, self._counted)).with_outputs("eval", main="train")
            splits = {"train": assigned.train, "eval": assigned.eval}
        if "serving" in raw:
            splits["serving"] = (raw["serving"] | "CountServing" >> beam.Map(_count_serving)
                                 if self._counted else raw["serving"])
        return splits
