"""``diff``: the same rows on two sides, joined by key and compared feature by
feature, row by row (TFDV's feature skew detector, ``pipelines.stages.row_skew``).

    python -m pipelines diff --base A --test B --output_dir DIR [--key COL,...]
        [--dataset D] [--ignore F,...] [--float_digits N] [--sample N]
        [--allow_duplicates] [--fail_on_skew [SHARE]] [--limit N]
        [--max_rejected_fraction F]

Each side is one of:

- CSV files (a glob, local or ``gs://``): with ``--dataset``, read in its
  dialect by their header as ``validate`` reads serving files, and prepared as
  ``run`` prepares its inputs: the window and lookup features are computed from
  the side's own rows. Without it, each side's dialect is detected as ``init``
  detects it and its columns typed from their first ``TYPING_ROWS`` values;
  a column typed differently on the two sides is compared as the wider type
  (an integer and a float as floats, anything and text as text);
- ``serve``'s request logs, recognised by their header: the features as the
  requests carried them, read by the dataset's schema (``--dataset``, or the
  other side's run);
- ``RUN_DIR:SPLIT``: a finished run's ``train``, ``eval`` or ``serving`` split,
  its raw rows re-read, prepared and split exactly as the run did.

The key columns (``--key``, default the dataset's ``key_columns``) join the
rows and are never compared; the features both sides hold are compared, the
others named as not compared. ``DIR`` gets TFDV's outputs (``row_skew/``),
``row_skew.json`` (what this prints, as data) and each side's rejected rows
(``rejected/base-*.jsonl``, ``rejected/test-*.jsonl``). A side that reads no
row, or rejects more than ``--max_rejected_fraction`` of its rows, ends the
command with a one-line error (exit 2); ``--fail_on_skew [SHARE]`` exits 1
when any feature's mismatch share exceeds SHARE (default 0: any mismatch).

``compare`` is what ``validate --paired`` runs too: its request log against the
pipeline's computation of the paired raw rows.
"""

import dataclasses
import glob
import os
import re

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, layout
from pipelines.commands import infer_schema, preflight
from pipelines.decode import dialect, request_logs
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.files import match_files
from pipelines.decode.prepare import Preparation
from pipelines.decode.row_keys import ROW_KEY
from pipelines.errors import UserError
from pipelines.options import DiffOptions, RunOptions
from pipelines.pipeline import execute
from pipelines.pipeline.diff import DiffConfig, Side, build_diff_pipeline, side_counter
from pipelines.records import writer_lock
from pipelines.records.json_files import write_json
from pipelines.reports.row_skew import RowSkewResult
from pipelines.reports.run_dir import RunDir
from pipelines.stages import row_skew

__all__ = ["TYPING_ROWS", "Compared", "compare", "diff", "kinds_of"]

# Without a dataset, a side's columns are typed from this many of its rows.
TYPING_ROWS = 50_000
_RUN_SPLIT = re.compile(rf"^(?P<run>.+):(?P<split>{'|'.join(layout.SPLITS)})$")


@dataclasses.dataclass(frozen=True)
class Compared:
    """A finished comparison: what was found and how each side was read.

    Attributes:
      result: the row-by-row result.
      rows: side label -> rows compared (decoded and prepared).
      rejected: side label -> rows rejected.
      not_compared: side label -> the features only that side holds.
    """

    result: RowSkewResult
    rows: dict
    rejected: dict
    not_compared: dict

    def to_json(self, inputs: dict) -> dict:
        return {"base": {"input": inputs["base"], "rows": self.rows["base"],
                         "rejected": self.rejected["base"],
                         "not_compared": self.not_compared["base"]},
                "test": {"input": inputs["test"], "rows": self.rows["test"],
                         "rejected": self.rejected["test"],
                         "not_compared": self.not_compared["test"]},
                **self.result.to_json()}


def diff(options: DiffOptions, beam_args: list[str]) -> Compared:
    """The ``diff`` command; returns what it found (``--fail_on_skew`` exits on
    ``result.over``)."""
    preflight.check_beam_flags(beam_args)
    if options.fail_on_skew is not None and not 0 <= options.fail_on_skew <= 1:
        raise UserError(f"--fail_on_skew must be a share between 0 and 1, got "
                        f"{options.fail_on_skew}")
    dataset = datasets.get_dataset(options.dataset) if options.dataset else None
    base, test, keys = _sides(options, dataset)
    with writer_lock.hold(options.output_dir, "diff", "--output_dir"):
        compared = compare(base, test, keys, options.output_dir, beam_args,
                           ignore=options.ignore, float_digits=options.float_digits,
                           sample=options.sample, allow_duplicates=options.allow_duplicates,
                           max_rejected_fraction=options.max_rejected_fraction)
        write_json(layout.row_skew_file(options.output_dir),
                   compared.to_json({"base": options.base, "test": options.test}))
    for line in describe(compared, options.output_dir):
        print(line)
    return compared


def describe(compared: Compared, output_dir: str) -> list[str]:
    """The lines ``diff`` prints."""
    lines = [f"{label}: {compared.rows[label]:,} rows, {compared.rejected[label]:,} rejected"
             + (f"; not compared (only {label} has them): "
                f"{', '.join(compared.not_compared[label])}"
                if compared.not_compared[label] else "")
             for label in ("base", "test")]
    lines += compared.result.describe()
    lines.append(f"written to {layout.row_skew_file(output_dir)} (TFDV's outputs in "
                 f"{os.path.dirname(layout.row_skew_prefix(output_dir))}/)")
    return lines


def kinds_of(base: Side, test: Side, keys: list[str], ignore=()) -> tuple[dict, dict]:
    """The kind each key and compared feature is compared as, and per side the
    features only it holds (not compared).

    Raises:
      UserError: a key column one side lacks.
    """
    own = {}
    for side in (base, test):
        fields = side.output_schema
        own[side.label] = {f.name: row_skew.kind_of(f.type) for f in fields
                           if f.name != ROW_KEY}
        lacking = [k for k in keys if k not in own[side.label]]
        if lacking:
            raise UserError(f"the {side.label} side ({side.pattern}) has no column "
                            f"{', '.join(lacking)} to join by; pass --key with columns "
                            f"both sides hold")
    shared = [n for n in own[base.label] if n in own[test.label] and n not in ignore]
    kinds = {n: row_skew.widest([own[base.label][n], own[test.label][n]])
             for n in [*keys, *[n for n in shared if n not in keys]]}
    not_compared = {label: sorted(n for n in names if n not in kinds and n not in ignore)
                    for label, names in own.items()}
    return kinds, not_compared


def compare(base: Side, test: Side, keys: list[str], output_dir: str, beam_args: list[str],
            *, ignore=(), float_digits: int | None = None, sample: int = 20,
            allow_duplicates: bool = False,
            max_rejected_fraction: float = RunOptions.max_rejected_fraction) -> Compared:
    """Runs the comparison into ``output_dir`` (its former results removed).

    Raises:
      UserError: a side read no row, or rejected more than allowed.
    """
    kinds, not_compared = kinds_of(base, test, keys, ignore)
    for side in (base, test):
        preflight.check_input(side.pattern, side.decoder.for_serving())
    for stale in (os.path.dirname(layout.row_skew_prefix(output_dir)),
                  layout.rejected_dir(output_dir)):
        if tf.io.gfile.exists(stale):
            tf.io.gfile.rmtree(stale)
    executed = execute(build_diff_pipeline(DiffConfig(
        base, test, list(keys), kinds, output_dir, float_digits=float_digits, sample=sample,
        allow_duplicates=allow_duplicates), beam_args))
    rows = {side.label: executed.counter(side_counter(side.label)) for side in (base, test)}
    rejected = {side.label: _lines(layout.side_rejected_prefix(output_dir, side.label))
                for side in (base, test)}
    for side in (base, test):
        read = executed.counter(side_counter(side.label, prepared=True)) + rejected[side.label]
        if not rows[side.label]:
            raise UserError(f"the {side.label} side ({side.pattern}) gave no row to compare "
                            f"({rejected[side.label]:,} rejected; they are in "
                            f"{layout.rejected_dir(output_dir)})")
        if rejected[side.label] > max_rejected_fraction * read:
            raise UserError(f"the {side.label} side ({side.pattern}): "
                            f"{rejected[side.label]:,} of {read:,} rows rejected, more than "
                            f"{max_rejected_fraction} allows; they are in "
                            f"{layout.rejected_dir(output_dir)}")
    result = row_skew.load(layout.row_skew_prefix(output_dir), list(keys))
    return Compared(result, rows, rejected, not_compared)


def _lines(prefix: str) -> int:
    paths = (tf.io.gfile.glob(f"{prefix}-*") if "://" in prefix else glob.glob(f"{prefix}-*"))
    count = 0
    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as stream:
            count += sum(1 for line in stream if line.strip())
    return count


def _sides(options: DiffOptions, dataset: datasets.Dataset | None
           ) -> tuple[Side, Side, list[str]]:
    """Both sides, and the key columns."""
    runs = {label: _run_split(spec) for label, spec in (("base", options.base),
                                                         ("test", options.test))}
    # A request log is read by a schema: the dataset's, or a run side's.
    known = dataset or next((RunDir(r[0]).dataset for r in runs.values() if r), None)
    known_schema = None
    if dataset is None and known is not None:
        run_path = next(r[0] for r in runs.values() if r)
        known_schema = RunDir(run_path).schema()
    elif dataset is not None:
        known_schema = dataset.schema()
    sides = {}
    detected = {}
    for label, spec in (("base", options.base), ("test", options.test)):
        if runs[label]:
            sides[label] = _run_side(label, *runs[label], options.limit)
            continue
        header = request_logs.request_log_header(spec)
        if header is not None:
            if known_schema is None:
                raise UserError(f"{spec} is a request log: pass --dataset (its model's "
                                f"dataset) so that its features are read as the schema "
                                f"types them")
            logged = request_logs.logged_schema(known_schema, header)
            sides[label] = Side(label, spec, request_logs.log_decoder(logged),
                                limit=options.limit)
        elif known is not None:
            schema = known_schema
            sides[label] = Side(label, spec, known.csv_decoder(schema).reading_by_header(),
                                known.preparation(schema), limit=options.limit)
        else:
            detected[label] = spec
    if detected:
        sides.update(_detected_sides(detected, options.limit))
    keys = list(options.key) or list(known.csv_format.key_columns if known else ())
    if not keys:
        raise UserError("--key is needed: the columns that identify a row on both sides "
                        "(e.g. --key id, or --key year,month,day,flight)"
                        + ("" if known is None else f"; dataset {known.name} declares no "
                                                    f"key_columns"))
    return sides["base"], sides["test"], keys


def _run_split(spec: str) -> tuple[str, str] | None:
    """``(run dir, split)`` when ``spec`` is ``RUN_DIR:SPLIT`` of a finished run."""
    found = _RUN_SPLIT.match(spec)
    if not found or not tf.io.gfile.exists(os.path.join(found["run"], layout.SUMMARY_FILE)):
        return None
    return found["run"], found["split"]


def _run_side(label: str, run_path: str, split: str, limit: int | None) -> Side:
    run = RunDir(run_path)
    record = run.record
    input_name = layout.SERVING if split == layout.SERVING else layout.TRAIN
    pattern = record.inputs.csv(input_name)
    if not pattern:
        raise UserError(f"the {split!r} split of the run at {run_path} came from "
                        f"{'BigQuery' if record.inputs.bigquery else 'no input'}; diff "
                        f"re-reads a run's CSV inputs only")
    schema = run.schema()
    selection = record.instance_selection
    return Side(label, pattern, run.dataset.csv_decoder(schema),
                run.dataset.preparation(schema, selection.drop_duplicates), split=split,
                eval_fraction=record.eval_fraction, stratify_by=selection.stratify_by,
                limit=limit if limit is not None else record.limit)


def _detected_sides(specs: dict[str, str], limit: int | None) -> dict[str, Side]:
    """Sides of no dataset: each side's dialect detected as ``init`` detects it,
    its columns typed from their first ``TYPING_ROWS`` values; a column of both
    sides typed as the wider of its two types."""
    read = {}
    for label, spec in specs.items():
        files = match_files(spec)
        found = dialect.detect_file(files[0])
        inferred = infer_schema.infer(files, found.csv_format, found.names,
                                      min(limit or TYPING_ROWS, TYPING_ROWS),
                                      column_markers=True)
        csv_format = dataclasses.replace(found.csv_format, key_columns=(),
                                         column_null_values=inferred.column_null_values)
        types = {f.name: f.type for f in inferred.schema.feature}
        read[label] = (spec, csv_format, found.names, types)
    order = {schema_pb2.INT: 0, schema_pb2.FLOAT: 1, schema_pb2.BYTES: 2}
    sides = {}
    for label, (spec, csv_format, names, _) in read.items():
        schema = schema_pb2.Schema()
        for name in names:
            kinds = [t[3].get(name, schema_pb2.BYTES) for t in read.values() if name in t[2]]
            schema.feature.add(name=name, type=max(kinds, key=order.get))
        sides[label] = Side(label, spec, CsvDecoder(columns_from_schema(schema), csv_format),
                            Preparation(), limit=limit)
    return sides
