"""``ReadBigQuery``: the rows of the generated query as decoded batches.

The query (``pipelines.decode.bigquery.build_query``) labels every row with its
split in the warehouse; this stage decodes the rows into the same Arrow batches
as CSV input and counts any row whose BigQuery label disagrees with the local
fingerprint (``rows_split_disagreements``), which fails the run.
"""

import apache_beam as beam
import numpy as np

from pipelines import layout
from pipelines.decode import row_keys
from pipelines.decode.bigquery import SPLIT_COLUMN, RowDecoder
from pipelines.decode.columns import RejectedRow
from pipelines.stages import counters, progress
from pipelines.stages.read import REJECTED

__all__ = ["ReadBigQuery"]


class _DecodeRows(beam.DoFn):
    """A batch of rows -> RecordBatches (main output) and rejected rows, counting
    rows whose BigQuery split label disagrees with the local fingerprint."""

    def __init__(self, decoder: RowDecoder, eval_percent: int | None):
        """``eval_percent`` None: no per-row check (a stratified split)."""
        self._decoder = decoder
        self._eval_percent = eval_percent

    def process(self, rows: list[dict]):
        counters.count(counters.READ, len(rows))
        progress.advance("read", len(rows))
        labelled = [r for r in rows if r.get(SPLIT_COLUMN) in (layout.TRAIN, layout.EVAL)
                    and all(r.get(k) is not None for k in self._decoder.key_columns)]
        if self._eval_percent is None:
            labelled = []
        if labelled:
            local_eval = row_keys.eval_mask(row_keys.row_keys(self._decoder.keys(labelled)),
                                            self._eval_percent)
            bigquery_eval = np.array([r[SPLIT_COLUMN] == layout.EVAL for r in labelled])
            counters.count(counters.SPLIT_DISAGREEMENTS, int((local_eval != bigquery_eval).sum()))
        for item in self._decoder.decode(rows, "bigquery"):
            if isinstance(item, RejectedRow):
                counters.count_rejected(item.kind)
                yield beam.pvalue.TaggedOutput(REJECTED, item.to_json())
            else:
                yield item


def _by_split(row: dict, partitions: int) -> int:
    return 1 if row[SPLIT_COLUMN] == layout.SERVING else 0


class ReadBigQuery(beam.PTransform):
    """Rows of the generated query -> ``{"train", "serving"?, "rejected"}``.

    Train holds the rows BigQuery labelled train or eval: ``SplitExamples``
    splits them again with the same function, locally.
    """

    def __init__(self, query: str, decoder: RowDecoder, eval_percent: int | None,
                 with_serving: bool):
        super().__init__()
        self._query = query
        self._decoder = decoder
        self._eval_percent = eval_percent
        self._with_serving = with_serving

    def expand(self, pbegin):
        rows = pbegin | "Query" >> beam.io.ReadFromBigQuery(
            query=self._query, use_standard_sql=True)
        train, serving = rows | "BySplit" >> beam.Partition(_by_split, 2)
        parts = ({layout.TRAIN: train, layout.SERVING: serving} if self._with_serving
                 else {layout.TRAIN: train})
        outputs, rejected = {}, []
        for name, part in parts.items():
            label = name.capitalize()
            decoded = (part
                       | f"Batch{label}" >> beam.BatchElements(
                           min_batch_size=1024, max_batch_size=65536)
                       | f"Decode{label}" >> beam.ParDo(
                           _DecodeRows(self._decoder, self._eval_percent)
                       ).with_outputs(REJECTED, main="batches"))
            outputs[name] = decoded.batches
            rejected.append(decoded[REJECTED])
        outputs[REJECTED] = rejected | "FlattenRejected" >> beam.Flatten()
        return outputs
