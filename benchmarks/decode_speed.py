"""Benchmark: the CSV decoder alone (no Beam), rows per second, on the
flights training file (281,373 rows) and on the same rows with a free-text
column whose every tenth value holds a quoted line break (the multi-line
record path of ``pipelines.decode.csv_decoder``). Best of ``REPEATS`` runs::

    PYTHONPATH=. .venv/bin/python benchmarks/decode_speed.py [--multiline]
"""

import argparse
import io
import os
import sys
import time

from tensorflow_metadata.proto.v0 import schema_pb2

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from pipelines import datasets, nycflights  # noqa: E402
from pipelines.decode.columns import Column, RejectedRow  # noqa: E402
from pipelines.decode.csv_decoder import CsvDecoder  # noqa: E402

REPEATS = 3


def _rows(decoder: CsvDecoder, data: bytes) -> tuple[float, int, int]:
    """Seconds to decode ``data``, rows decoded and rows rejected."""
    started = time.perf_counter()
    rows = rejected = 0
    for item in decoder.decode(io.BytesIO(data), "bench.csv"):
        if isinstance(item, RejectedRow):
            rejected += 1
        else:
            rows += item.num_rows
    return time.perf_counter() - started, rows, rejected


def _with_notes(data: bytes) -> bytes:
    """The file with a ``note`` column; every tenth note spans two lines."""
    lines = data.split(b"\n")
    out = [lines[0] + b",note"]
    for i, line in enumerate(lines[1:]):
        if line:
            note = b'"late, ""very"" late\nsee log"' if i % 10 == 0 else b"on time"
            out.append(line + b"," + note)
    return b"\n".join(out) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--multiline", action="store_true")
    args = parser.parse_args()
    with open(nycflights.default_inputs()[0], "rb") as f:
        data = f.read()
    decoder = datasets.get_dataset("flights").csv_decoder()
    label = "flights training file"
    if args.multiline:
        data = _with_notes(data)
        columns = [*decoder._columns, Column("note", schema_pb2.BYTES, False)]
        decoder = CsvDecoder(columns, decoder._format)
        label = "flights + a note column, 1 in 10 with a quoted line break"
    best = min(_rows(decoder, data) for _ in range(REPEATS))
    seconds, rows, rejected = best
    print(f"{label}: {len(data) / 1e6:.1f} MB, {rows:,} rows, {rejected:,} rejected, "
          f"{seconds:.2f} s, {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
