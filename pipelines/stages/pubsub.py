"""``ReadMessages`` (with ``DecodeMessages``) and ``EncodeRows``: the edges of
the streaming job (``python -m pipelines run --input_topic ... --streaming``).

Each Pub/Sub message carries one CSV line of the dataset, without a header, in
the dataset's column order (the header its files have, or its
``column_names``). A line is decoded as a file's line is, by the dataset's
decoder; one that cannot be becomes a rejected row (JSON, with its reason) on
the dead-letter topic. Rows leave as JSON objects, one message each: the raw
columns as decoded, the window features, and the ``row_key``, what a serving
system subscribes to and hands to the model (see the README).
"""

import dataclasses
import io
import json

import apache_beam as beam
import pyarrow as pa
from apache_beam.transforms.window import TimestampedValue

from pipelines import layout
from pipelines.decode.columns import CsvFormat, RejectedRow
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.windows import NO_TIME, Windows
from pipelines.stages import counters
from pipelines.stages.read import REJECTED

__all__ = ["REJECTED", "DecodeMessages", "EncodeRows", "ReadMessages", "late_message",
           "line_decoder"]



def line_decoder(decoder_columns: list, csv_format: CsvFormat) -> CsvDecoder:
    """The dataset's decoder for header-less lines in its column order."""
    names = csv_format.column_names or tuple(c.name for c in decoder_columns)
    return CsvDecoder(decoder_columns, dataclasses.replace(
        csv_format, has_header=False, column_names=names))


class DecodeMessages(beam.DoFn):
    """A message's CSV line -> a one-row batch timestamped with the row's time,
    or a rejected row (the ``rejected`` output)."""

    def __init__(self, decoder: CsvDecoder, windows: Windows):
        self._decoder = decoder
        self._windows = windows

    def process(self, message: bytes):
        counters.count(counters.READ, 1)
        for item in self._decoder.decode(io.BytesIO(message.rstrip(b"\r\n") + b"\n"),
                                         "pubsub"):
            if isinstance(item, RejectedRow):
                counters.count_rejected(item.kind)
                yield beam.pvalue.TaggedOutput(REJECTED, item.to_json().encode())
                continue
            t = int(self._windows.row_times(item)[0])
            if t == NO_TIME:
                yield TimestampedValue(item, 0)  # no time: the window defaults, at once
            else:
                yield TimestampedValue(item, t)


class ReadMessages(beam.PTransform):
    """PBegin -> the messages of a Pub/Sub topic as ``{"serving": one-row
    batches, "rejected": dead-letter messages}``, the read step of the streaming
    job's ``PrepareInputs``."""

    def __init__(self, topic: str, decoder: CsvDecoder, windows: Windows):
        super().__init__()
        self._topic = topic
        self._decoder = decoder
        self._windows = windows

    def expand(self, pbegin):
        decoded = (pbegin
                   | "ReadPubSub" >> beam.io.ReadFromPubSub(topic=self._topic)
                   | "DecodeMessages" >> beam.ParDo(
                       DecodeMessages(self._decoder, self._windows)).with_outputs(
                           REJECTED, main="rows"))
        return {layout.SERVING: decoded.rows, REJECTED: decoded[REJECTED]}


def _value(values: list | None):
    if not values:
        return None
    value = values[0]
    return value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value


class EncodeRows(beam.DoFn):
    """A one-row batch with its window features -> a JSON message."""

    def process(self, batch: pa.RecordBatch):
        counters.count(counters.SERVING, batch.num_rows)
        for row in batch.to_pylist():
            yield json.dumps({name: _value(values) for name, values in row.items()}).encode()


def late_message(message: bytes) -> bytes:
    """A late row's message on the dead-letter topic."""
    return b'{"kind": "late", "reason": "arrived after the watermark passed its time '\
        b'plus the allowed lateness", "row": ' + message + b"}"
