"""``ReadRaw``: CSV inputs (local or ``gs://``) to typed Arrow RecordBatches.

Each named input is a glob. It is matched when the pipeline runs, not when it is
built, so a job can be constructed without reaching the files; the matched files
are spread over workers and each is decoded block by block with pyarrow
(``pipelines.decode``). Rejected rows go to a JSON-lines dead-letter output with
their source, line and reason, and every row is counted.
"""

from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa

from pipelines import layout
from pipelines.decode.columns import RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.files import decode_files, match_files
from pipelines.stages import counters, progress

__all__ = ["REJECTED", "ReadRaw"]

# The key of the dead-letter output.
REJECTED = "rejected"


def _file_groups(pattern: str, limit: int | None) -> Iterator[tuple[str, ...]]:
    files = match_files(pattern)
    if limit is None:
        yield from ((path,) for path in files)
    else:
        yield tuple(files)  # "the first N rows" spans files in order: one reader


def _progress_bytes(read_bytes: int) -> None:
    progress.advance("read", 0, read_bytes)


class _DecodeFiles(beam.DoFn):
    """Decodes a group of files in order, stopping after ``limit`` rows in all.

    An uncounted decoder (a second pass over the same files) neither counts
    rows nor outputs the rejected ones again.
    """

    def __init__(self, decoder: CsvDecoder, limit: int | None, counted: bool = True):
        self._decoder = decoder
        self._limit = limit
        self._counted = counted

    def process(self, paths: tuple[str, ...]) -> Iterator[pa.RecordBatch]:
        on_read = _progress_bytes if self._counted else None
        for item in decode_files(self._decoder, paths, self._limit, on_read):
            if isinstance(item, RejectedRow):
                if self._counted:
                    counters.count(counters.READ, 1)
                    counters.count_rejected(item.kind)
                    yield beam.pvalue.TaggedOutput(REJECTED, item.to_json())
            else:
                if self._counted:
                    counters.count(counters.READ, item.num_rows)
                    progress.advance("read", item.num_rows)
                yield item


class ReadRaw(beam.PTransform):
    """Reads named CSV globs (and BigQuery); outputs a dict of RecordBatch
    PCollections by name.

    ``bigquery``, when given, is a transform that yields its own named outputs
    (``pipelines.stages.bigquery.ReadBigQuery``). The dead-letter rows of all inputs are
    written as JSON lines under ``rejected_prefix`` and also returned under the
    key ``"rejected"``. Without ``rejected_prefix`` the read is a second,
    uncounted pass over CSV inputs already read and counted once.
    """

    def __init__(self, inputs: dict[str, str], decoder: CsvDecoder,
                 rejected_prefix: str | None, limit: int | None = None,
                 bigquery: beam.PTransform | None = None):
        super().__init__()
        self._inputs = inputs
        self._decoder = decoder
        self._rejected_prefix = rejected_prefix
        self._limit = limit
        self._bigquery = bigquery

    def again(self) -> "ReadRaw":
        """The second, uncounted pass over the same CSV inputs (BigQuery rows are
        read once: a pipeline that reads them holds them instead)."""
        return ReadRaw(self._inputs, self._decoder, rejected_prefix=None, limit=self._limit)

    def expand(self, pbegin):
        counted = self._rejected_prefix is not None
        outputs, rejected = {}, []
        if self._bigquery is not None:
            outputs = dict(pbegin | "BigQuery" >> self._bigquery)
            rejected.append(outputs.pop(REJECTED))
        for name, pattern in self._inputs.items():
            label = name.capitalize()
            decoded = (
                pbegin
                | f"Glob{label}" >> beam.Create([pattern])
                | f"Match{label}" >> beam.FlatMap(_file_groups, self._limit)
                | f"Distribute{label}" >> beam.Reshuffle()
                | f"Decode{label}" >> beam.ParDo(_DecodeFiles(
                    self._decoder.for_serving() if name == layout.SERVING else self._decoder,
                    self._limit, counted)
                ).with_outputs(REJECTED, main="batches"))
            outputs[name] = decoded.batches
            rejected.append(decoded[REJECTED])
        if counted:
            outputs[REJECTED] = rejected | "FlattenRejected" >> beam.Flatten()
            _ = outputs[REJECTED] | "WriteRejected" >> beam.io.WriteToText(
                self._rejected_prefix, file_name_suffix=".jsonl")
        return outputs
