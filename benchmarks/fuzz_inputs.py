"""Fuzz run: random bytes and mutations of real CSVs (a flights slice, and a
census sample when ``../shared/data`` holds it) fed to the CSV decoder and to
``init``, longer than the suite's ``tests/test_hostile_files.py`` can afford.

The decoder must account for every line (a row or a rejection) or refuse the
header in one line; ``init`` must draft the file or say why in one line (a
``UserError``). Any other exception fails the run with the example that raised
it, as hypothesis shrinks it::

    .venv/bin/python benchmarks/fuzz_inputs.py [--decoder 2000] [--init 30]

``--init`` examples each draft a whole dataset (TFDV, thresholds): seconds each.
"""

import argparse
import io
import os
import sys
import tempfile
import time

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import pyarrow as pa  # noqa: E402

from pipelines import datasets  # noqa: E402
from pipelines.commands import init  # noqa: E402
from pipelines.decode import csv_decoder  # noqa: E402
from pipelines.decode.columns import RejectedRow  # noqa: E402
from pipelines.errors import UserError  # noqa: E402
from references.hostile_inputs import data_lines, mutated  # noqa: E402


def fuzz_decoder(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=mutated())
    def decode(case):
        name, data = case
        dataset = datasets.get_dataset(name)
        decoder = csv_decoder.CsvDecoder(dataset.csv_decoder()._columns, dataset.csv_format,
                                         block_bytes=256, max_line_bytes=512)
        try:
            items = list(decoder.decode(io.BytesIO(data), "f.csv"))
        except csv_decoder.HeaderMismatchError as error:
            assert "\n" not in str(error)
            return
        rows = sum(i.num_rows for i in items if isinstance(i, pa.RecordBatch))
        rejected = sum(isinstance(i, RejectedRow) for i in items)
        assert rows + rejected == data_lines(data, dataset.csv_format.has_header)

    decode()


def fuzz_init(examples: int) -> None:
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=mutated())
    def draft(case):
        _, data = case
        with tempfile.TemporaryDirectory() as directory:
            path = os.path.join(directory, "input.csv")
            with open(path, "wb") as f:
                f.write(data)
            try:
                init.init_dataset(path, os.path.join(directory, "ds"))
            except UserError as error:
                assert "\n" not in str(error)

    draft()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decoder", type=int, default=2000, help="decoder examples")
    parser.add_argument("--init", type=int, default=30, help="init examples")
    args = parser.parse_args()
    for name, fuzz, examples in (("decoder", fuzz_decoder, args.decoder),
                                 ("init", fuzz_init, args.init)):
        started = time.monotonic()
        fuzz(examples)
        print(f"{name}: {examples} examples, no exception escaped "
              f"({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
