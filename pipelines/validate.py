"""``validate``: check new serving data against a finished run, and the report.

    python -m pipelines validate --run_dir DIR --serving_input GLOB
        [--previous_stats PATH] [--span NAME] [--fail_on_anomalies]

computes statistics of the new data, validates them against the run's schema,
for skew against the run's training statistics and, given a former span's
statistics, for drift. It runs the same stages as ``run`` does for its serving
split (``ReadRaw``, ``SplitExamples``, ``GenerateStats``, ``ValidateStats``) and
writes ``DIR/validations/SPAN/`` (stats, anomalies, rejected rows), appends the
result to ``DIR/validation_summary.json`` and rewrites ``DIR/report.html``.
"""

import argparse
import datetime
import json
import os

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import anomalies_pb2

from pipelines import progress, report, summary, validation
from pipelines.csv_arrow import CsvDecoder, columns_from_schema
from pipelines.errors import UserError
from pipelines.read import ReadRaw
from pipelines.run_dir import RunDir, raw_schema
from pipelines.split import SplitExamples

__all__ = ["VALIDATION_SUMMARY", "record", "validate", "write_report"]

VALIDATION_SUMMARY = "validation_summary.json"
REPORT = "report.html"


def entry(span: str, source: str | None, rows: int, rejected: int,
          anomalies: anomalies_pb2.Anomalies, schema_file: str, files: dict) -> dict:
    """One validation's record in validation_summary.json."""
    return {
        "span": span,
        "input": source,
        "validated_at": datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"),
        "rows": rows,
        "rejected": rejected,
        "ok": not anomalies.anomaly_info and not anomalies.HasField("dataset_anomaly_info"),
        "anomalies": validation.anomaly_descriptions(anomalies, schema_file),
        "skew": validation.comparisons(anomalies, "skew"),
        "drift": validation.comparisons(anomalies, "drift"),
        **files,
    }


def record(run_dir: str, dataset: str, new_entry: dict) -> None:
    """Appends (or, for the same span, replaces) an entry of validation_summary.json."""
    path = os.path.join(run_dir, VALIDATION_SUMMARY)
    document = {"dataset": dataset, "validations": []}
    if FileSystems.exists(path):
        with FileSystems.open(path) as f:
            document = json.loads(f.read())
    document["validations"] = [e for e in document["validations"]
                               if e["span"] != new_entry["span"]] + [new_entry]
    summary.write_json(path, document)


def write_report(run_dir: str, dataset: str, schema_file: str,
                 extra: list[report.Dataset] = ()) -> str:
    """Renders DIR/report.html from the run's splits plus ``extra`` datasets."""
    schema = raw_schema(run_dir)
    datasets = []
    for split in ("train", "eval", "serving"):
        stats_path = os.path.join(run_dir, "stats", f"{split}.pb")
        if FileSystems.exists(stats_path):
            datasets.append(report.Dataset(
                split, validation.load_statistics(stats_path), validation.load_anomalies(
                    os.path.join(run_dir, "anomalies", f"{split}.pbtxt"))))
    datasets += list(extra)
    page = report.render(f"{dataset}: data validation report", run_dir, datasets, schema,
                         schema_file)
    path = os.path.join(run_dir, REPORT)
    with FileSystems.create(path) as f:
        f.write(page.encode("utf-8"))
    return path


def validate(args: argparse.Namespace, beam_args: list[str]) -> int:
    """The ``validate`` command; returns its exit status."""
    from pipelines.launch import check_beam_flags, check_input

    check_beam_flags(beam_args)
    run = RunDir(args.run_dir)
    schema = run.schema()
    schema_file = run.schema_file
    training = validation.load_statistics(os.path.join(args.run_dir, "stats", "train.pb"))
    previous = validation.load_statistics(args.previous_stats) if args.previous_stats else None
    span = args.span or datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    out = os.path.join(args.run_dir, "validations", span)
    if FileSystems.exists(out):
        raise UserError(f"{out} exists: pass another --span")
    decoder = CsvDecoder(columns_from_schema(schema), run.dataset.csv_format)
    check_input(args.serving_input, decoder)

    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    raw = pipeline | "ReadRaw" >> ReadRaw({"serving": args.serving_input}, decoder,
                                          os.path.join(out, "rejected", "rejected"), args.limit)
    splits = {"serving": raw["serving"]} | "SplitExamples" >> SplitExamples(
        run.summary["eval_fraction"])
    statistics = splits | "GenerateStats" >> validation.GenerateStats(
        schema, os.path.join(out, "stats"))
    _ = statistics | "ValidateStats" >> validation.ValidateStats(
        schema, os.path.join(out, "anomalies"),
        training=pipeline | "TrainingStats" >> beam.Create([training]),
        previous=(pipeline | "PreviousStats" >> beam.Create([previous])) if previous else None)
    result = pipeline.run()
    result.wait_until_finish()
    progress.finish()

    rows = summary.row_counts(result)
    if rows["read"] != rows["serving"] + rows["rejected"]:
        raise RuntimeError(f"row accounting failed: read {rows['read']} != serving "
                           f"{rows['serving']} + rejected {rows['rejected']}")
    anomalies = validation.load_anomalies(os.path.join(out, "anomalies", "serving.pbtxt"))
    result_entry = entry(span, args.serving_input, rows["serving"], rows["rejected"],
                         anomalies, schema_file,
                         {"stats": os.path.join(out, "stats", "serving.pb"),
                          "previous_stats": args.previous_stats})
    record(args.run_dir, run.dataset.name, result_entry)
    extra = [report.Dataset(f"span {span}", validation.load_statistics(result_entry["stats"]),
                            anomalies)]
    if previous is not None:
        extra.append(report.Dataset("previous span", previous))
    page = write_report(args.run_dir, run.dataset.name, schema_file, extra)
    print(format_entry(result_entry, page))
    return 1 if args.fail_on_anomalies and not result_entry["ok"] else 0


def format_entry(result: dict, report_path: str) -> str:
    found = (f"anomalies in {len(result['anomalies'])} features" if result["anomalies"]
             else "no anomalies")
    lines = ["", f"span {result['span']}: {result['rows']:,} rows, "
                 f"{result['rejected']:,} rejected, {found}"]
    # The first sentence says what is wrong; the fixes are in the report.
    lines += [f"  {feature}: {text.split('. ')[0].rstrip('.')}."
              for feature, text in result["anomalies"].items()]
    for kind in ("skew", "drift"):
        table = result[kind]
        if table:
            over = [f for f, m in table.items() if not m["ok"]]
            lines.append(f"{kind}: {len(table) - len(over)} of {len(table)} features within "
                         f"threshold" + (f"; over: {', '.join(over)}" if over else ""))
    lines.append(f"report: {report_path}")
    return "\n".join(lines)
