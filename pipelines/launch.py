"""``run``: check the inputs, build and run the pipeline, write the summary last.

Everything a user can get wrong is checked before the (slow) pipeline is built:
the dataset, the flag values, Beam flags, that local inputs exist and have the
schema's header, that Dataflow gets inputs and outputs it can reach, and that
the output directory does not hold a completed run.
"""

import argparse
import logging
import os
import tempfile
import time

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

import schemas
from pipelines import dataflow, datasets, progress, split, summary, validate, validation
from pipelines.bigquery import BigQueryInput
from pipelines.csv_arrow import CsvDecoder, columns_from_schema
from pipelines.errors import UserError
from pipelines.pipeline import STAGE_LABELS, RunConfig, build_pipeline
from pipelines.read import match_files, open_input
from pipelines.run_dir import SUMMARY_FILE

__all__ = ["OUTPUTS", "check_beam_flags", "check_input", "run"]

# Everything a run writes under --output_dir, and the only paths it ever deletes.
STAGING = ".staging"
OUTPUTS = ("stats", "anomalies", "data", "transform_fn", "transformed_metadata",
           "transform_tmp", "rejected", "tmp", "metadata", "validations",
           validate.VALIDATION_SUMMARY, validate.REPORT, STAGING, SUMMARY_FILE)


def run(args: argparse.Namespace, beam_args: list[str], started: float) -> int:
    """Runs the pipeline as ``python -m pipelines run`` describes; returns 0.

    Everything is written under ``OUTPUT_DIR/.staging/RUN`` and moved into
    ``OUTPUT_DIR`` only when the run has succeeded, ``run_summary.json`` last:
    an interrupted or failed run leaves no output that looks complete, and an
    earlier completed run stays intact until the new one replaces it.
    """
    check_beam_flags(beam_args)
    remote = dataflow.settings(beam_args, args.dry_run)
    final = args.output_dir.rstrip("/")
    staging = os.path.join(final, STAGING, f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    config = _config(args, remote, staging)
    if config.bigquery:
        print(f"BigQuery query:\n{config.bigquery_sql()}", flush=True)
    if remote and remote.dry_run:
        return _dry_run(config, beam_args + ["--dry_run=True"], args.job_description or
                        os.path.join("output", "dataflow", f"{config.dataset.name}_job.json"))
    decoder = CsvDecoder(columns_from_schema(config.schema), config.dataset.csv_format)
    for pattern in filter(None, (config.train_input, config.serving_input)):
        check_input(pattern, decoder)
    _check_output_dir(final, args.overwrite)

    build_started = time.monotonic()
    pipeline = build_pipeline(config, beam_args)
    run_started = time.monotonic()
    train = config.train_input or "BigQuery"
    print(f"Running {config.dataset.name}: train={train} "
          f"serving={config.serving_input or ('BigQuery' if config.has_serving else '-')}"
          f" -> {final}", flush=True)
    result = pipeline.run()
    result.wait_until_finish()
    progress.finish()
    run_finished = time.monotonic()

    rows = summary.row_counts(result)
    accounted = rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"]
    if rows["read"] != accounted:
        raise RuntimeError(f"row accounting failed: read {rows['read']} != "
                           f"train + eval + serving + rejected = {accounted}")
    disagreements = summary.counter_totals(result).get("rows_split_disagreements", 0)
    if disagreements:
        raise RuntimeError(f"{disagreements} rows were split differently by BigQuery's "
                           f"FARM_FINGERPRINT and locally; the outputs are not to be used")
    rejected = summary.rejected_by_kind(result)
    _check_rejected_share(rows, rejected, args.max_rejected_fraction, staging)
    stage_times = summary.stage_seconds(result, STAGE_LABELS)
    _promote(staging, final)

    splits = ["train", "eval"] + (["serving"] if config.has_serving else [])
    document = summary.build_summary(
        dataset=config.dataset.name, schema_file=config.schema_file,
        inputs={"train": config.train_input, "serving": config.serving_input,
                "bigquery": config.bigquery_sql()},
        eval_fraction=config.eval_fraction, limit=config.limit, output_dir=final,
        rows=rows, rejected_by_reason=rejected, stage_times=stage_times, splits=splits)
    summary.add_timing(
        document, startup=build_started - started, build=run_started - build_started,
        run=run_finished - run_started, summary=time.monotonic() - run_finished)
    _record_serving_validation(config, final, rows)
    validate.write_report(final, config.dataset.name, config.schema_file)
    # Written last: its presence marks a completed run.
    summary.write_json(os.path.join(final, SUMMARY_FILE), document)
    print(summary.format_report(document), flush=True)
    return 0


def _record_serving_validation(config: RunConfig, final: str, rows: dict) -> None:
    """The run's own serving split is the first entry of validation_summary.json."""
    if not config.has_serving:
        return
    anomalies = validation.load_anomalies(os.path.join(final, "anomalies", "serving.pbtxt"))
    validate.record(final, config.dataset.name, validate.entry(
        "run", config.serving_input or "BigQuery (--serving_where)", rows["serving"],
        rows["rejected"], anomalies, config.schema_file,
        {"stats": os.path.join(final, "stats", "serving.pb"), "previous_stats": None}))


def _config(args: argparse.Namespace, remote: dataflow.DataflowSettings | None,
            output_dir: str) -> RunConfig:
    """The run's configuration from its flags, with every flag value checked."""
    dataset = datasets.get_dataset(args.dataset)
    split.eval_percent(args.eval_fraction)
    if not 0 <= args.max_rejected_fraction <= 1:
        raise UserError(f"--max_rejected_fraction must be between 0 and 1, got "
                        f"{args.max_rejected_fraction}")
    schema, schema_file = _schema(dataset, args.schema)
    bigquery = None
    if args.bigquery_table or args.bigquery_query:
        if args.train_input:
            raise UserError("--train_input and --bigquery_table/--bigquery_query exclude "
                            "each other: training rows come from one source")
        if args.limit:
            raise UserError("--limit applies to CSV inputs; with BigQuery use --sample_percent")
        if args.serving_where and args.serving_input:
            raise UserError("pass --serving_where or --serving_input, not both")
        bigquery = BigQueryInput(table=args.bigquery_table, query=args.bigquery_query,
                                 where=args.where, serving_where=args.serving_where,
                                 sample_percent=args.sample_percent)
    elif args.where or args.serving_where or args.sample_percent is not None:
        raise UserError("--where, --serving_where and --sample_percent shape the BigQuery "
                        "query: they need --bigquery_table or --bigquery_query")
    train_input, serving_input = args.train_input, args.serving_input
    # The dataset's own files are local: Dataflow runs take only what is named.
    if (bigquery is None and remote is None and dataset.default_inputs
            and not (train_input and serving_input)):
        default_train, default_serving = dataset.default_inputs()
        train_input = train_input or default_train
        serving_input = serving_input or default_serving
    if not train_input and bigquery is None:
        raise UserError("pass --train_input (a CSV glob on GCS for Dataflow) or "
                        "--bigquery_table" if remote else
                        f"dataset {dataset.name!r} has no default input: pass --train_input")
    temp_dir = args.temp_dir or os.path.join(output_dir, "tmp")
    if remote:
        _check_reachable_by_workers(args.output_dir, train_input, serving_input)
        if remote.dry_run:
            # TFT creates its temp dir while the pipeline is built, which a dry
            # run cannot do on GCS; nothing is ever written to it.
            temp_dir = tempfile.mkdtemp(prefix="tft-dry-run-")
            print(f"dry run: TFT's temp dir is local ({temp_dir}); a real run uses "
                  f"{args.temp_dir or os.path.join(output_dir, 'tmp')}", flush=True)
    return RunConfig(dataset=dataset, output_dir=output_dir, train_input=train_input,
                     serving_input=serving_input, temp_dir=temp_dir,
                     eval_fraction=args.eval_fraction, limit=args.limit, bigquery=bigquery,
                     schema=schema, schema_file=schema_file)


def _schema(dataset: datasets.Dataset, path: str | None) -> tuple[schema_pb2.Schema, str]:
    """The curated schema, or the one at ``path``; one readable line if it does not parse."""
    schema_file = path or f"schemas/{dataset.name}.pbtxt"
    try:
        if path is None:
            return dataset.schema(), schema_file
        if not FileSystems.exists(path):
            raise UserError(f"--schema {path}: no such file")
        with FileSystems.open(path) as f:
            return schemas.parse_schema(f.read().decode("utf-8")), schema_file
    except text_format.ParseError as error:
        raise UserError(f"{schema_file} does not parse as a TFMD schema: {error}") from None


def _check_rejected_share(rows: dict, rejected: dict[str, int], fraction: float,
                          staging: str) -> None:
    if rows["rejected"] > fraction * rows["read"]:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in rejected.items())
        raise UserError(
            f"{rows['rejected']:,} of {rows['read']:,} rows were rejected "
            f"({rows['rejected'] / rows['read']:.2%}), more than --max_rejected_fraction "
            f"{fraction} allows ({kinds}); nothing was published: the rejected rows are "
            f"in {os.path.join(staging, 'rejected')}/")


def _check_reachable_by_workers(output_dir: str, *inputs: str | None) -> None:
    for path in (output_dir, *inputs):
        if path and not path.startswith("gs://"):
            raise UserError(f"{path} is not on GCS, and Dataflow workers cannot reach this "
                            f"machine's files: copy it to gs://BUCKET/... (gsutil cp) and "
                            f"pass that path")


def _dry_run(config: RunConfig, beam_args: list[str], job_description: str) -> int:
    with dataflow.offline():
        result = build_pipeline(config, beam_args).run()
    transforms, stages = dataflow.write_job_description(result, job_description)
    print(f"Dataflow job built, not submitted (dry run): {transforms:,} transforms in "
          f"stages {', '.join(stages)}.\njob description: {os.path.abspath(job_description)}",
          flush=True)
    return 0


def check_beam_flags(beam_args: list[str]) -> None:
    """Fails on flags that neither this launcher nor any Beam option knows."""
    parsers = []
    beam_logger = logging.getLogger("apache_beam.options.pipeline_options")
    level = beam_logger.level
    beam_logger.setLevel(logging.ERROR)  # Beam would only warn and drop them
    try:
        PipelineOptions(beam_args).get_all_options(add_extra_args_fn=parsers.append)
    finally:
        beam_logger.setLevel(level)
    _, unknown = parsers[0].parse_known_args(beam_args)
    flags = [arg for arg in unknown if arg.startswith("-")]
    if flags:
        raise UserError(f"unrecognized flags (neither this pipeline's nor Beam's): "
                        f"{' '.join(flags)}; see python -m pipelines run --help")


def check_input(pattern: str, decoder: CsvDecoder) -> None:
    """Local inputs must exist, carry the schema's header and hold a row; remote
    ones are checked when the pipeline runs (building a job needs no cloud access)."""
    if "://" in pattern:
        return
    files = match_files(pattern)
    for path in files:
        with open_input(path) as stream:
            decoder.check_header(stream, path)
    for path in files:
        with open_input(path) as stream:
            if next(decoder.decode(stream, path, limit=1), None) is not None:
                return
    raise UserError(f"{pattern} holds no data rows: {len(files)} file(s) with a header only")


def _check_output_dir(final: str, overwrite: bool) -> None:
    if FileSystems.exists(os.path.join(final, SUMMARY_FILE)) and not overwrite:
        raise UserError(
            f"{final} already holds a completed run ({SUMMARY_FILE}); pass "
            f"--overwrite to replace it, or choose another --output_dir")
    _remove(os.path.join(final, STAGING))  # what interrupted runs left behind


def _promote(staging: str, final: str) -> None:
    """Moves a successful run's outputs from ``staging`` into ``final``."""
    # The earlier run stops counting as complete before any of it is replaced.
    _remove(os.path.join(final, SUMMARY_FILE))
    for name in OUTPUTS:
        if name != STAGING:
            _remove(os.path.join(final, name))
    _remove(os.path.join(staging, "tmp"))
    if "://" not in staging:
        for name in os.listdir(staging):
            os.replace(os.path.join(staging, name), os.path.join(final, name))
    else:
        files = [m.path for m in FileSystems.match([staging + "/**"])[0].metadata_list]
        FileSystems.rename(files, [final + path[len(staging):] for path in files])
    _remove(os.path.join(final, STAGING))


def _remove(path: str | None) -> None:
    if path and FileSystems.exists(path):
        FileSystems.delete([path])
