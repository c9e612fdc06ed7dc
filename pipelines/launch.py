"""``run``: check the inputs, build and run the pipeline, write the summary last.

Everything a user can get wrong is checked before the (slow) pipeline is built:
the dataset, the flag values, Beam flags, that local inputs exist and have the
schema's header, and that the output directory does not hold a completed run.
"""

import argparse
import logging
import os
import time

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from google.protobuf import text_format

from pipelines import datasets, split, summary
from pipelines.csv_arrow import CsvDecoder, columns_from_schema
from pipelines.errors import UserError
from pipelines.pipeline import STAGE_LABELS, RunConfig, build_pipeline
from pipelines.read import match_files
from pipelines.run_dir import SUMMARY_FILE

__all__ = ["run", "OUTPUTS"]
# Everything a run writes under --output_dir, and the only paths it ever deletes.
OUTPUTS = ("stats", "anomalies", "data", "transform_fn", "transformed_metadata",
           "transform_tmp", "rejected", "tmp", "metadata", SUMMARY_FILE)


def run(args: argparse.Namespace, beam_args: list[str], started: float) -> int:
    """Runs the pipeline as ``python -m pipelines run`` describes; returns 0."""
    dataset = datasets.get_dataset(args.dataset)
    split.eval_percent(args.eval_fraction)
    _check_beam_flags(beam_args)
    train_input, serving_input = args.train_input, args.serving_input
    if dataset.default_inputs and not (train_input and serving_input):
        default_train, default_serving = dataset.default_inputs()
        train_input = train_input or default_train
        serving_input = serving_input or default_serving
    config = RunConfig(
        dataset=dataset,
        output_dir=args.output_dir,
        train_input=train_input,
        serving_input=serving_input,
        temp_dir=args.temp_dir or os.path.join(args.output_dir, "tmp"),
        eval_fraction=args.eval_fraction,
        limit=args.limit)
    if not config.train_input:
        raise UserError(f"dataset {dataset.name!r} has no default input: pass --train_input")
    schema = dataset.schema()
    decoder = CsvDecoder(columns_from_schema(schema), dataset.csv_format)
    for pattern in filter(None, (config.train_input, config.serving_input)):
        _check_input(pattern, decoder)
    _prepare_output_dir(config.output_dir, args.overwrite)
    # The raw schema where tft.TFTransformOutput looks for it (raw_feature_spec()).
    with FileSystems.create(os.path.join(config.output_dir, "metadata", "schema.pbtxt")) as f:
        f.write(text_format.MessageToString(schema).encode("utf-8"))

    build_started = time.monotonic()
    pipeline = build_pipeline(config, beam_args)
    run_started = time.monotonic()
    print(f"Running {dataset.name}: train={config.train_input} "
          f"serving={config.serving_input or '-'} -> {config.output_dir}", flush=True)
    result = pipeline.run()
    result.wait_until_finish()
    run_finished = time.monotonic()

    rows = summary.row_counts(result)
    accounted = rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"]
    if rows["read"] != accounted:
        raise RuntimeError(f"row accounting failed: read {rows['read']} != "
                           f"train + eval + serving + rejected = {accounted}")
    stage_times = summary.stage_seconds(result, STAGE_LABELS)
    splits = ["train", "eval"] + (["serving"] if config.serving_input else [])
    document = summary.build_summary(
        dataset=dataset.name,
        inputs={"train": config.train_input, "serving": config.serving_input},
        eval_fraction=config.eval_fraction, limit=config.limit, output_dir=config.output_dir,
        rows=rows, stage_times=stage_times, splits=splits)
    if not args.temp_dir:
        _remove(config.temp_dir)
    summary.add_timing(
        document, startup=build_started - started, build=run_started - build_started,
        run=run_finished - run_started, summary=time.monotonic() - run_finished)
    summary.write_json(os.path.join(config.output_dir, SUMMARY_FILE), document)
    print(summary.format_report(document), flush=True)
    return 0


def _check_beam_flags(beam_args: list[str]) -> None:
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


def _check_input(pattern: str, decoder: CsvDecoder) -> None:
    """Local inputs must exist and carry the schema's header; remote ones are
    checked when the pipeline runs (building a job needs no cloud access)."""
    if "://" in pattern:
        return
    first = match_files(pattern)[0]
    with FileSystems.open(first) as stream:
        decoder.check_header(stream, first)


def _prepare_output_dir(output_dir: str, overwrite: bool) -> None:
    if FileSystems.exists(os.path.join(output_dir, SUMMARY_FILE)) and not overwrite:
        raise UserError(
            f"{output_dir} already holds a completed run ({SUMMARY_FILE}); pass "
            f"--overwrite to replace it, or choose another --output_dir")
    # Stale shards of an earlier run would be read as part of this one.
    for name in OUTPUTS:
        _remove(os.path.join(output_dir, name))


def _remove(path: str | None) -> None:
    if path and FileSystems.exists(path):
        FileSystems.delete([path])
