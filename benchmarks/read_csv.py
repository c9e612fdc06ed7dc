"""Benchmark: this package's ReadRaw against tfx_bsl's CSV TFXIO, same rows.

Both read the training months of the flights data (281,373 rows) into Arrow
RecordBatches in a Beam pipeline on the DirectRunner. TFXIO's CSV decoder only
treats an empty field as missing, so it reads a copy with the ``NA`` markers
blanked out. Updates ``benchmarks/RESULTS.md``::

    .venv/bin/python benchmarks/read_csv.py
"""

import os
import sys
import tempfile
import time

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions
from tfx_bsl.public import tfxio

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.run_flights import write_section  # noqa: E402
from pipelines import datasets, nycflights  # noqa: E402
from pipelines.stages import counters  # noqa: E402
from pipelines.stages.read import ReadRaw  # noqa: E402

SECTION = "## Reading CSV into Arrow: ReadRaw vs. tfx_bsl CSV TFXIO"


def _count(batch) -> None:
    counters.count("benchmarked", batch.num_rows)


def _seconds(read) -> tuple[float, int]:
    """Seconds to run a pipeline that only reads, and the rows it read."""
    pipeline = beam.Pipeline(options=PipelineOptions([]))
    _ = read(pipeline) | beam.Map(_count)
    started = time.monotonic()
    result = pipeline.run()
    result.wait_until_finish()
    seconds = time.monotonic() - started
    read = result.metrics().query(MetricsFilter().with_name("rows_benchmarked"))
    return seconds, sum(c.committed for c in read["counters"])


def main() -> None:
    dataset = datasets.get_dataset("flights")
    schema = dataset.schema()
    train, _ = nycflights.default_inputs()
    decoder = dataset.csv_decoder(schema)
    with tempfile.TemporaryDirectory() as tmp:
        arrow_seconds, arrow_rows = _seconds(
            lambda p: (p | ReadRaw({"train": train}, decoder, os.path.join(tmp, "rej")))["train"])
        blanked = os.path.join(tmp, "train.csv")
        with open(train, "rb") as src, open(blanked, "wb") as dst:
            header = src.readline()
            dst.write(header)
            for line in src:
                fields = line.rstrip(b"\n").split(b",")
                dst.write(b",".join(b"" if f == b"NA" else f for f in fields) + b"\n")
        source = tfxio.CsvTFXIO(
            blanked, column_names=header.decode().strip().split(","), schema=schema,
            skip_header_lines=1, telemetry_descriptors=["benchmark"])
        tfxio_seconds, tfxio_rows = _seconds(lambda p: p | source.BeamSource())
    assert tfxio_rows == arrow_rows, (arrow_rows, tfxio_rows)
    write_section(SECTION, "\n".join([
        SECTION, "",
        f"Measured {time.strftime('%Y-%m-%d')} with `.venv/bin/python benchmarks/read_csv.py`: "
        f"{arrow_rows:,} rows of the training months, DirectRunner, each pipeline timed from "
        "`run()` to finish.", "",
        "| reader | seconds | rows/s |", "|---|---:|---:|",
        f"| `ReadRaw` (pyarrow blocks, this package) | {arrow_seconds:.1f} | "
        f"{arrow_rows / arrow_seconds:,.0f} |",
        f"| `tfx_bsl` `CsvTFXIO.BeamSource()` | {tfxio_seconds:.1f} | "
        f"{tfxio_rows / tfxio_seconds:,.0f} |", "",
    ]))
    print(f"ReadRaw {arrow_seconds:.1f} s, CsvTFXIO {tfxio_seconds:.1f} s")


if __name__ == "__main__":
    main()
