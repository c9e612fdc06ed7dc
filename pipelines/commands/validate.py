"""``validate``: check new serving data against a finished run, and the report.

    python -m pipelines validate --run_dir DIR --serving_input GLOB
        [--previous_stats PATH] [--span NAME] [--fail_on_anomalies]

computes statistics of the new data, validates them against the run's schema,
for skew against the run's training statistics and, given a former span's
statistics, for drift. It runs the same stages as ``run`` does for its serving
split (``pipelines.pipeline.build_validate_pipeline``) and writes
``DIR/validations/SPAN/`` (stats, anomalies, rejected rows), appends the result
to ``DIR/validation_summary.json`` and rewrites ``DIR/report.html``.

The serving input may be ``serve``'s request logs (``--log_dir``), recognised
by their header: they are checked on the features they hold, as logged.
"""

import argparse
import datetime

import tensorflow as tf

from pipelines import layout
from pipelines.commands import preflight
from pipelines.decode import csv_decoder, files, request_logs
from pipelines.errors import UserError
from pipelines.pipeline import ValidateConfig, build_validate_pipeline, execute
from pipelines.reports import anomalies, history, html
from pipelines.reports.run_dir import RunDir

__all__ = ["validate"]


def validate(args: argparse.Namespace, beam_args: list[str]) -> int:
    """The ``validate`` command; returns its exit status."""
    preflight.check_beam_flags(beam_args)
    run = RunDir(args.run_dir)
    schema = run.schema()
    training = anomalies.load_statistics(layout.stats_file(args.run_dir, "train"))
    previous = (anomalies.load_statistics(args.previous_stats) if args.previous_stats
                else None)
    span = args.span or datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = layout.validation_dir(args.run_dir, span)
    if tf.io.gfile.exists(out):
        raise UserError(f"{out} exists: pass another --span")
    header = _request_log_header(args.serving_input)
    checked = schema if header is None else request_logs.logged_schema(schema, header)
    decoder = (run.dataset.csv_decoder(schema) if header is None
               else request_logs.log_decoder(checked))
    preflight.check_input(args.serving_input, decoder.for_serving())
    preflight.announce_input_size([args.serving_input], args.limit)
    if header is not None:
        print(f"{args.serving_input}: a request log of {len(checked.feature)} features "
              f"(checked as logged; its prediction and time left out)")

    executed = execute(build_validate_pipeline(ValidateConfig(
        dataset=run.dataset, schema=checked, serving_input=args.serving_input,
        output_dir=out, eval_fraction=run.summary["eval_fraction"],
        training_statistics=training, previous_statistics=previous, limit=args.limit,
        request_log=header is not None), beam_args))

    validated = anomalies.load_split(out, "serving", run.schema_file, name=f"span {span}")
    result_entry = history.entry(span, args.serving_input, validated,
                                 executed.rows["serving"], executed.rows["rejected"],
                                 {"stats": layout.stats_file(out, "serving"),
                                  "previous_stats": args.previous_stats})
    history.record(args.run_dir, run.dataset.name, result_entry)
    shown = [*anomalies.load_run(args.run_dir, run.schema_file).values(), validated]
    if previous is not None:
        shown.append(anomalies.Validated("previous span", previous))
    page = html.write_report(args.run_dir, run.dataset.name, shown, schema)
    print(history.format_entry(result_entry, page))
    return 1 if args.fail_on_anomalies and not result_entry["ok"] else 0


def _request_log_header(pattern: str) -> list[str] | None:
    """The header of the request logs ``pattern`` matches (``serve --log_dir``),
    or None for other CSV files; every file must be one or the other.

    Remote inputs are not read before the pipeline runs (building a Dataflow
    job needs no cloud access): copy logs to local disk to validate them.

    Raises:
      UserError: some files are request logs and others are not.
    """
    if "://" in pattern:
        return None
    paths = files.match_files(pattern)
    headers = []
    for path in paths:
        with files.open_input(path) as stream:
            headers.append(csv_decoder.header_names(stream, request_logs.LOG_FORMAT))
    logs = [request_logs.is_request_log(h) for h in headers]
    if not any(logs):
        return None
    if not all(logs) or any(h != headers[0] for h in headers):
        raise UserError(f"{pattern} mixes request logs with other files (or logs of "
                        f"different features); validate them apart")
    return headers[0]
