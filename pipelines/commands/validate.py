"""``validate``: check new serving data against a finished run, and the report.

    python -m pipelines validate --run_dir DIR --serving_input GLOB
        [--previous_stats PATH] [--span NAME] [--fail_on_anomalies]
        [--paired RAW_GLOB [--fail_on_skew [SHARE]] [--float_digits N]]

computes statistics of the new data, validates them against the run's schema,
for skew against the run's training statistics and, given a former span's
statistics, for drift. It prepares and splits the rows as ``run`` does its
serving input (``pipelines.pipeline.validate``) and writes
``DIR/validations/SPAN/`` (stats, anomalies, rejected rows), appends the result
to ``DIR/validation_summary.json`` and rewrites ``DIR/report.html``.

The serving input may be ``serve``'s request logs (``--log_dir``), recognised
by their header: they are checked on the features they hold, as logged. A CSV
file whose first line names most of the serving columns is read by that header,
whatever the dataset's dialect says (``CsvDecoder.reading_by_header``): a column
it lacks is reported missing, its other columns are named and left out.

With ``--paired RAW_GLOB`` (the raw rows the span's requests were made of), the
span's rows are also compared row by row with the pipeline's computation of
those rows, joined by the dataset's key columns (``diff.compare``, into
``SPAN/paired/``): a feature whose mismatch share exceeds ``--fail_on_skew``
(default 0) makes the span not ok, and ``--fail_on_skew`` exits 1 on it.

Validation never passes what it could not read: a span with more rejected rows
than ``--max_rejected_fraction`` allows is recorded as failed and ends the
command with a one-line error (exit 2); a rejected row or a missing column in
any span makes it not ok (``--fail_on_anomalies`` exits 1).

It holds the run directory's lock while it runs (``writer_lock``): a ``run``
into the directory or a second ``validate`` of it is refused in one line
meanwhile, and so is this one while another command writes the run.
"""

import datetime

import tensorflow as tf

from pipelines import layout
from pipelines.commands import diff, preflight
from pipelines.decode import csv_decoder, files, request_logs
from pipelines.decode.prepare import Preparation
from pipelines.errors import UserError
from pipelines.options import ValidateOptions
from pipelines.pipeline import ValidateConfig, build_validate_pipeline, execute
from pipelines.pipeline.diff import Side
from pipelines.records import writer_lock
from pipelines.records.json_files import write_json
from pipelines.reports import anomalies, history, html, rejections
from pipelines.reports.history import Validation
from pipelines.reports.run_dir import RunDir
from pipelines.stages import noise

__all__ = ["validate"]


def validate(options: ValidateOptions, beam_args: list[str]) -> Validation:
    """The ``validate`` command; returns the span's validation (its ``ok`` is
    what ``--fail_on_anomalies`` exits 1 on)."""
    preflight.check_beam_flags(beam_args)
    if not 0 <= options.max_rejected_fraction <= 1:
        raise UserError(f"--max_rejected_fraction must be between 0 and 1, got "
                        f"{options.max_rejected_fraction}")
    if not options.paired and (options.fail_on_skew is not None
                               or options.float_digits is not None):
        raise UserError("--fail_on_skew and --float_digits judge the row-by-row comparison: "
                        "pass --paired RAW_GLOB too")
    # validate writes into the run: it is one more writer of the directory.
    with writer_lock.hold(options.run_dir, "validate", "--run_dir", create=False):
        return _validate_span(options, beam_args)


def _validate_span(options: ValidateOptions, beam_args: list[str]) -> Validation:
    """Validates the span and records it in the run (whose lock is held)."""
    run = RunDir(options.run_dir)
    schema = run.schema()
    training = anomalies.load_statistics(layout.stats_file(options.run_dir, layout.TRAIN))
    previous = (anomalies.load_statistics(options.previous_stats) if options.previous_stats
                else None)
    span = options.span or datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = layout.validation_dir(options.run_dir, span)
    if tf.io.gfile.exists(out):
        if span in {entry.span for entry in history.load(options.run_dir)}:
            raise UserError(f"{out} exists: pass another --span")
        # Not in the history: what a validation that failed (a full disk) left.
        print(f"notice: {out} holds no recorded validation (one that did not finish); "
              f"validating the span again", flush=True)
        tf.io.gfile.rmtree(out)
    header = request_logs.request_log_header(options.serving_input)
    checked = schema if header is None else request_logs.logged_schema(schema, header)
    decoder = (run.dataset.csv_decoder(schema).reading_by_header() if header is None
               else request_logs.log_decoder(checked))
    preflight.check_input(options.serving_input, decoder.for_serving())
    preflight.announce_input_size([options.serving_input], options.limit)
    if header is not None:
        print(f"{options.serving_input}: a request log of {len(checked.feature)} features "
              f"(checked as logged; its prediction and time left out)")
    missing = {} if header is not None else _missing_columns(options.serving_input,
                                                             decoder.for_serving())

    executed = execute(build_validate_pipeline(ValidateConfig(
        dataset=run.dataset, schema=checked, serving_input=options.serving_input,
        output_dir=out, eval_fraction=run.record.eval_fraction,
        training_statistics=training, previous_statistics=previous, limit=options.limit,
        request_log=header is not None), beam_args))

    rows = executed.rows
    rejected = rejections.load(out, executed.rejected_by_kind())
    failed = None
    if rows.rejected > options.max_rejected_fraction * rows.read:
        failed = (f"{rejected.describe(rows.read)}; more than --max_rejected_fraction "
                  f"{options.max_rejected_fraction} allows")
    # Each comparison is judged against the noise at the span's row count.
    noise.write(layout.noise_file(out, layout.SERVING), noise.measure(
        training, checked, rows.serving,
        previous_rows=previous.datasets[0].num_examples if previous else None))
    validated = anomalies.load_split(out, layout.SERVING, run.schema_file, name=f"span {span}")
    paired = None
    if options.paired and not failed:
        paired = _paired(options, run, schema, decoder, header is not None, out, beam_args)
    validation = Validation.of(span, options.serving_input, validated, rows.serving,
                               rows.rejected, stats=layout.stats_file(out, layout.SERVING),
                               previous_stats=options.previous_stats, read=rows.read,
                               rejections=rejected, missing_columns=missing, failed=failed,
                               row_skew=paired)
    shown = [*anomalies.load_run(options.run_dir, run.schema_file).values(), validated]
    if previous is not None:
        shown.append(anomalies.Validated("previous span", previous))
    spans = [entry for entry in history.load(options.run_dir) if entry.span != span]
    page = html.write_report(options.run_dir, run.dataset.name, shown, schema,
                             [*spans, validation])
    # Last: the span counts as validated once the history records it.
    history.record(options.run_dir, run.dataset.name, validation)
    if failed:
        raise UserError(f"span {span} failed: {failed}; recorded as failed in {page}")
    print(history.format_entry(validation, page))
    return validation


def _paired(options: ValidateOptions, run: RunDir, schema, decoder: csv_decoder.CsvDecoder,
            request_log: bool, out: str, beam_args: list[str]) -> dict:
    """The row-by-row comparison of the span's rows (as logged) with the
    pipeline's computation of the paired raw rows: read, prepared (window and
    lookup features) as ``run`` prepares them, joined by the dataset's key
    columns (``diff.compare``, into ``SPAN/paired/``)."""
    keys = list(run.dataset.csv_format.key_columns)
    if not keys:
        raise UserError(f"--paired joins rows by the dataset's key_columns, and dataset "
                        f"{run.dataset.name} declares none: set csv_format.key_columns in "
                        f"its dataset.json, or compare with `diff --key`")
    pipeline = Side("base", options.paired, run.dataset.csv_decoder(schema).reading_by_header(),
                    run.dataset.preparation(schema))
    served = Side("test", options.serving_input, decoder,
                  Preparation() if request_log else run.dataset.preparation(schema),
                  limit=options.limit)
    paired_dir = layout.paired_dir(out)
    print(f"comparing row by row with the pipeline's computation of {options.paired}, "
          f"joined by {', '.join(keys)}", flush=True)
    compared = diff.compare(pipeline, served, keys, paired_dir, beam_args,
                            float_digits=options.float_digits,
                            max_rejected_fraction=options.max_rejected_fraction)
    document = compared.to_json({"base": options.paired, "test": options.serving_input})
    write_json(layout.row_skew_file(paired_dir), document)
    threshold = options.fail_on_skew if options.fail_on_skew is not None else 0.0
    return {**document, "threshold": threshold}


def _missing_columns(pattern: str, decoder: csv_decoder.CsvDecoder) -> dict[str, str]:
    """Column -> the first local file whose header lacks it; says how each file
    read by its own header (not the dialect's) was read. Remote files are read
    by their header in the pipeline, without this account."""
    if "://" in pattern:
        return {}
    missing = {}
    for path in files.match_files(pattern):
        with files.open_input(path) as stream:
            columns = decoder.file_columns(stream, path)
        if not columns.by_header:
            continue
        found = [f"delimiter {columns.delimiter!r}"]
        if columns.missing:
            found.append(f"missing {', '.join(columns.missing)}")
        if columns.extra:
            found.append(f"extra columns left out: {', '.join(columns.extra)}")
        print(f"{path}: read by its header ({'; '.join(found)})")
        for column in columns.missing:
            missing.setdefault(column, path)
    return missing
