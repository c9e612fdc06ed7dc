"""``run``: check the inputs, build and run the pipeline, write the record last.

    python -m pipelines run --dataset flights --output_dir DIR [flags] [Beam flags]

Everything a user can get wrong is checked before the (slow) pipeline is built
(``preflight``): the dataset, the flag values, Beam flags, that local inputs
exist and have the schema's header, that Dataflow gets inputs and outputs it
can reach, and that the output directory does not hold a completed run. The
outputs are staged and published only when the run succeeded (``staging``).
"""

import dataclasses
import functools
import os
import tempfile
import time

import tensorflow as tf
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import datasets, layout
from pipelines.commands import dataflow, init, preflight, staging
from pipelines.decode.bigquery import BigQueryInput
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.files import match_files
from pipelines.decode.row_keys import check_stratify_by, eval_percent
from pipelines.errors import UserError
from pipelines.options import RunOptions
from pipelines.pipeline import (
    STAGES,
    RunConfig,
    StreamConfig,
    build_pipeline,
    build_streaming_pipeline,
    execute,
    stage_of,
)
from pipelines.records import writer_lock
from pipelines.records.run_record import Inputs, InstanceSelection, Rows, RunRecord
from pipelines.reports import anomalies, history, html, summary
from pipelines.stages import counters, noise
from pipelines.stages.oversample import check_ratio

__all__ = ["run"]


def run(options: RunOptions, beam_args: list[str], started: float | None = None
        ) -> RunRecord | None:
    """Runs the pipeline as ``python -m pipelines run`` describes.

    Everything is written under ``OUTPUT_DIR/.staging/RUN`` and moved into
    ``OUTPUT_DIR`` only when the run has succeeded, ``run_summary.json`` last:
    an interrupted or failed run leaves no output that looks complete, and an
    earlier completed run stays intact until the new one replaces it.

    Returns:
      The run's record; None for a Dataflow dry run or a streaming job, which
      run nothing here.
    """
    started = time.monotonic() if started is None else started
    preflight.check_beam_flags(beam_args)
    remote = dataflow.settings(beam_args, options.dry_run)
    # A dataset drafted from --train_input lives here until the run has kept
    # its copy (OUTPUT_DIR/dataset/), and goes however the run ends.
    with tempfile.TemporaryDirectory(prefix="tft-dataset-") as drafts:
        if options.input_topic:
            _stream(options, beam_args, remote, drafts)
            return None
        return _run(options, beam_args, remote, drafts, started)


def _run(options: RunOptions, beam_args: list[str], remote: dataflow.DataflowSettings | None,
         drafts: str, started: float) -> RunRecord | None:
    final = options.output_dir.rstrip("/")
    staged = staging.staging_dir(final)
    config = _config(options, remote, staged, drafts)
    if config.bigquery:
        print(f"BigQuery query:\n{config.bigquery_sql()}", flush=True)
    if remote and remote.dry_run:
        dataflow.dry_run(
            functools.partial(build_pipeline, config, beam_args + ["--dry_run=True"]),
            options.job_description or dataflow.default_job_description(config.dataset.name))
        return None
    decoder = config.dataset.csv_decoder(config.schema)
    if config.train_input:
        preflight.check_input(config.train_input, decoder)
    if config.serving_input:
        lacking = preflight.check_input(config.serving_input, decoder.for_serving())
        if lacking is not None:  # a local file, whose header was read
            config = dataclasses.replace(config, serving_lacks=tuple(lacking))
    # Held until the run is published or has failed: a second writer is refused
    # before it removes anything (staging.prepare removes interrupted runs' files).
    with writer_lock.hold(final, "run", "--output_dir"):
        staging.prepare(final, options.overwrite)
        return _run_and_publish(options, beam_args, config, final, staged, started)


def _run_and_publish(options: RunOptions, beam_args: list[str], config: RunConfig,
                     final: str, staged: str, started: float) -> RunRecord:
    """Runs the pipeline into ``staged`` and publishes it in ``final``: the
    outputs, then the validation history, the report and the record, last."""
    # With BigQuery rows read too, the CSV's share of bytes is not the read's share.
    preflight.announce_input_size(
        [] if config.bigquery else list(config.csv_inputs.values()), config.limit)
    build_started = time.monotonic()
    pipeline = build_pipeline(config, beam_args)
    run_started = time.monotonic()
    train = config.train_input or "BigQuery"
    print(f"Running {config.dataset.name}: train={train} "
          f"serving={config.serving_input or ('BigQuery' if config.has_serving else '-')}"
          f" -> {final}", flush=True)
    executed = execute(pipeline)
    run_finished = time.monotonic()

    rows = executed.rows
    disagreements = executed.counter(counters.SPLIT_DISAGREEMENTS)
    if disagreements:
        raise RuntimeError(f"{disagreements} rows were split differently by BigQuery's "
                           f"FARM_FINGERPRINT and locally; the outputs are not to be used")
    rejected = executed.rejected_by_kind()
    _check_rejected_share(rows, rejected, options.max_rejected_fraction, staged)
    _check_training_rows(rows, config.eval_fraction)
    stage_times = executed.stage_seconds(stage_of, STAGES)
    _measure_noise(staged, config.schema, rows)
    # Later commands on the run use this copy, never a lookup by name.
    config.dataset.save(layout.dataset_dir(staged), config.schema)
    staging.promote(staged, final)

    # Read back once; the record, the validation history and the report share it.
    validated = anomalies.load_run(final, config.schema_file)
    record = summary.build_record(
        dataset=config.dataset.name, schema_file=config.schema_file,
        inputs=Inputs(train=config.train_input, serving=config.serving_input,
                      bigquery=config.bigquery_sql()),
        eval_fraction=config.eval_fraction, limit=config.limit, output_dir=final,
        rows=rows, rejected_by_reason=rejected, stage_times=stage_times, validated=validated,
        serving_without=config.serving_without,
        duplicates={name: found for name, found in executed.duplicates_found().items()
                    if name == counters.duplicates_input(layout.TRAIN) or config.has_serving},
        instance_selection=InstanceSelection(
            stratify_by=config.stratify_by, drop_duplicates=config.drop_duplicates,
            oversample_minority=config.oversample_minority))
    record = summary.with_timing(
        record, startup=build_started - started, build=run_started - build_started,
        run=run_finished - run_started, summary=time.monotonic() - run_finished)
    if layout.SERVING in validated:
        # The run's own serving split is the first entry of validation_summary.json.
        history.record(final, config.dataset.name, history.Validation.of(
            "run", config.serving_input or "BigQuery (--serving_where)",
            validated[layout.SERVING], rows.serving, rows.rejected,
            stats=layout.stats_file(final, layout.SERVING), previous_stats=None))
    html.write_report(final, config.dataset.name, list(validated.values()), config.schema,
                      history.load(final))
    record.write(final)  # last: a run is complete once its record parses
    print(summary.format_report(record), flush=True)
    return record


def _stream(options: RunOptions, beam_args: list[str],
            remote: dataflow.DataflowSettings | None, drafts: str) -> None:
    """The streaming job: Pub/Sub in, rows with their window features out."""
    dataset = _dataset(options, drafts)
    schema, _ = preflight.load_schema(dataset, options.schema)
    if dataset.windows(schema) is None:
        raise UserError(f"--input_topic streams window features, and dataset "
                        f"{dataset.name!r} declares none (WINDOW_FEATURES in its transforms.py)")
    if not options.output_topic:
        raise UserError("--input_topic needs --output_topic, where the rows go")
    if "--streaming" not in beam_args:
        raise UserError("--input_topic is a streaming job: add --streaming")
    if remote is None:
        raise UserError("--input_topic runs on Dataflow (add --runner DataflowRunner); locally, "
                        "tests drive the same StreamingWindowFeatures with Beam's TestStream")
    if options.allowed_lateness < 0:
        raise UserError(f"--allowed_lateness must be >= 0 seconds, got "
                        f"{options.allowed_lateness}")
    config = StreamConfig(
        dataset=dataset, schema=schema, input_topic=options.input_topic,
        output_topic=options.output_topic,
        rejected_topic=options.rejected_topic or f"{options.output_topic}-rejected",
        allowed_lateness=options.allowed_lateness)
    if remote.dry_run:
        dataflow.dry_run(
            functools.partial(build_streaming_pipeline, config, beam_args + ["--dry_run=True"]),
            options.job_description
            or dataflow.default_job_description(f"{dataset.name}_streaming"))
        return
    build_streaming_pipeline(config, beam_args).run()
    print(f"submitted the streaming job: {options.input_topic} -> {options.output_topic}",
          flush=True)


def _config(options: RunOptions, remote: dataflow.DataflowSettings | None,
            output_dir: str, drafts: str) -> RunConfig:
    """The run's configuration from its flags, with every flag value checked."""
    dataset = _dataset(options, drafts)
    eval_percent(options.eval_fraction)
    if not 0 <= options.max_rejected_fraction <= 1:
        raise UserError(f"--max_rejected_fraction must be between 0 and 1, got "
                        f"{options.max_rejected_fraction}")
    schema, schema_file = preflight.load_schema(dataset, options.schema)
    if dataset.directory == drafts and not options.schema:
        # The draft goes with the run: the copy it keeps is the schema to curate.
        schema_file = os.path.join(layout.dataset_dir(options.output_dir.rstrip("/")),
                                   datasets.SCHEMA_FILE)
    check_stratify_by(options.stratify_by, columns_from_schema(schema))
    check_ratio(options.oversample_minority, dataset, schema)
    bigquery = BigQueryInput.from_flags(
        table=options.bigquery_table, query=options.bigquery_query, where=options.where,
        serving_where=options.serving_where, sample_percent=options.sample_percent)
    if bigquery is not None:
        if options.train_input:
            raise UserError("--train_input and --bigquery_table/--bigquery_query exclude "
                            "each other: training rows come from one source")
        if options.limit:
            raise UserError("--limit applies to CSV inputs; with BigQuery use --sample_percent")
        if options.serving_where and options.serving_input:
            raise UserError("pass --serving_where or --serving_input, not both")
    train_input, serving_input = options.train_input, options.serving_input
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
    temp_dir = options.temp_dir or os.path.join(output_dir, layout.TEMP)
    if remote:
        preflight.check_reachable_by_workers(options.output_dir, train_input, serving_input)
        if remote.dry_run:
            # TFT creates its temp dir while the pipeline is built, which a dry
            # run cannot do on GCS; nothing is ever written to it.
            temp_dir = tempfile.mkdtemp(prefix="tft-dry-run-")
            print(f"dry run: TFT's temp dir is local ({temp_dir}); a real run uses "
                  f"{options.temp_dir or os.path.join(output_dir, layout.TEMP)}", flush=True)
    # Serving files on GCS are not read here: they may lack what serving data may.
    lacking = [c.name for c in columns_from_schema(schema) if not c.in_serving]
    return RunConfig(dataset=dataset, output_dir=output_dir, train_input=train_input,
                     serving_input=serving_input, temp_dir=temp_dir, schema=schema,
                     schema_file=schema_file, eval_fraction=options.eval_fraction,
                     limit=options.limit, bigquery=bigquery, stratify_by=options.stratify_by,
                     drop_duplicates=options.drop_duplicates,
                     oversample_minority=options.oversample_minority,
                     sketch_statistics=options.sketch_statistics,
                     serving_lacks=tuple(lacking) if serving_input and remote else ())


def _dataset(options: RunOptions, drafts: str) -> datasets.Dataset:
    """The ``--dataset`` named or, given only ``--train_input``, one drafted from
    it as ``init`` drafts it into ``drafts`` (a temporary directory: the run
    keeps a copy in ``OUTPUT_DIR/dataset/``)."""
    if (options.dataset or not options.train_input or options.bigquery_table
            or options.bigquery_query):
        if options.label:
            raise UserError("--label drafts a dataset from --train_input: it goes without "
                            "--dataset (a dataset's label is in its transforms.py)")
        return datasets.get_dataset(options.dataset or "flights")
    drafted = init.init_dataset(options.train_input, drafts, label=options.label,
                                name=init.name_of(match_files(options.train_input)[0]))
    print(drafted.describe(), flush=True)
    print(f"The run keeps this dataset in {layout.dataset_dir(options.output_dir)}/: copy it, "
          f"curate it and pass it as --dataset next time.", flush=True)
    return datasets.load_directory(drafts)


def _measure_noise(staged: str, schema: schema_pb2.Schema, rows: Rows) -> None:
    """The comparators' noise at the eval and serving splits' row counts, for
    their comparisons to be judged by (``pipelines.stages.noise``)."""
    training = anomalies.load_statistics(layout.stats_file(staged, layout.TRAIN))
    counts = {split: count for split, count in ((layout.EVAL, rows.eval),
                                                (layout.SERVING, rows.serving))
              if tf.io.gfile.exists(layout.stats_file(staged, split))}
    for split, measured in noise.measure_each(training, schema, counts).items():
        noise.write(layout.noise_file(staged, split), measured)


def _check_training_rows(rows: Rows, eval_fraction: float) -> None:
    """TFT cannot analyse nothing: an empty training split fails the run."""
    if not rows.train:
        raise UserError(
            f"the training split is empty: {rows.eval:,} training rows went to eval "
            f"(--eval_fraction {eval_fraction}) and {rows.rejected:,} rows were rejected; "
            f"nothing was published. Pass more training rows or a smaller --eval_fraction")


def _check_rejected_share(rows: Rows, rejected: dict[str, int], fraction: float,
                          staged: str) -> None:
    if rows.rejected > fraction * rows.read:
        kinds = ", ".join(f"{kind} {count:,}" for kind, count in rejected.items())
        raise UserError(
            f"{rows.rejected:,} of {rows.read:,} rows were rejected "
            f"({rows.rejected / rows.read:.2%}), more than --max_rejected_fraction "
            f"{fraction} allows ({kinds}); nothing was published: the rejected rows are "
            f"in {layout.rejected_dir(staged)}/")
