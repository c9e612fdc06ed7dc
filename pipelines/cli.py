"""The launcher: ``python -m pipelines <command>`` (or ``tft-preprocessing``).

Commands:
  run             the whole pipeline for a dataset (``pipelines.commands.run``)
  init            draft a dataset directory (dialect, schema, transforms) from CSVs
  infer-schema    print a schema inferred from CSV files, to start a curated one
  train           train a model on a run's output and export the serving model
  export-serving  export a transform-only serving model from a run
  check-parity    compare serving's transformation with the pipeline's records
  serve           answer TensorFlow Serving's REST API for a serving model
  recover-log     complete the request-log shards a killed server left
  rank-features   rank a run's features by mutual information with the label
  validate        check new serving data for schema anomalies, skew and drift
  diff            compare two sides' rows joined by key (row-by-row skew)
  suggest-thresholds  measure the skew metrics between random halves of the data
  bigquery-sql    print the BigQuery SQL that run would send

Each command has a function that declares its flags (``_run_flags``, ...) and
a handler that makes the typed request of them (``pipelines.options``) and
calls the Python API (``pipelines.api``) or the command's module. Flags this
launcher does not know are handed to Beam's ``PipelineOptions``; a flag Beam
does not know either is an error. Problems a user can fix (a missing file, an
unknown dataset, a bad flag value, a full disk) are reported in one line on
stderr with exit status 2, not as a traceback. ``docs/cli.md`` is generated from
``build_parser`` (``scripts/cli_reference.py``).
"""

import argparse
import errno
import logging
import math
import os
import re
import shutil
import sys

from pipelines import layout, process
from pipelines.errors import UserError
from pipelines.options import (
    DiffOptions,
    PredictOptions,
    RunOptions,
    ValidateOptions,
    from_flags,
)
from pipelines.records import writer_lock

__all__ = ["CONSOLE_SCRIPT", "PROG", "build_parser", "main"]

PROG = "python -m pipelines"
CONSOLE_SCRIPT = "tft-preprocessing"  # setup.py's entry point: the same CLI


def main(argv: list[str] | None = None) -> int:
    """Runs the command ``argv`` names (default: the process's arguments);
    returns its exit status."""
    started = process.STARTED if process.is_the_program() else None
    if argv is None:
        # Beam's own --dry_run takes a value, and Beam code that builds
        # PipelineOptions() without flags parses sys.argv itself: a bare
        # --dry_run there would be an argparse error deep inside a GCS client.
        sys.argv[1:] = ["--dry_run=True" if a == "--dry_run" else a for a in sys.argv[1:]]
        argv = sys.argv[1:]
    process.quiet_libraries()
    _quiet_beam_about_a_full_disk()
    invoked_as = os.path.basename(sys.argv[0]) if sys.argv else ""
    parser = build_parser(CONSOLE_SCRIPT if invoked_as == CONSOLE_SCRIPT else PROG)
    args, extra = parser.parse_known_args(argv)
    try:
        return args.command(args, extra, started)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # a full disk is the user's to fix; anything else a bug
        disk_full = _disk_full(error)
        if disk_full is None:
            raise
        print(f"error: {disk_full}", file=sys.stderr)
        return 2


# What a full disk or quota says: as an OSError's errno, or in the text of the
# errors TensorFlow raises and Beam wraps the worker's OSError in.
_DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
_DISK_FULL_TEXT = re.compile(r"(?:(\S+); )?(No space left on device|Disk quota exceeded)")


class _NoDiskFull(logging.Filter):
    """Drops the log records that say the disk is full: main says it in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _DISK_FULL_TEXT.search(record.getMessage())


def _quiet_beam_about_a_full_disk() -> None:
    """Beam logs the error a worker's write raised, with its traceback, before
    it re-raises it; for a full disk that is the one line ``main`` prints."""
    beam = logging.getLogger("apache_beam.runners.common")
    if not any(isinstance(f, _NoDiskFull) for f in beam.filters):
        beam.addFilter(_NoDiskFull())


def _disk_full(error: BaseException) -> str | None:
    """The one line for an error a full disk caused anywhere in its chain
    (naming the file or directory and the free space there); None for others."""
    chain = [error]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) and cause not in chain:
        chain.append(cause)
    path = reason = None
    for found in chain:
        if isinstance(found, OSError) and found.errno in _DISK_FULL_ERRNOS:
            path, reason = found.filename, os.strerror(found.errno)
            break
    else:
        for found in chain:
            if match := _DISK_FULL_TEXT.search(str(found)):
                path, reason = match.group(1), match.group(2)
                break
        else:
            return None
    path = path or next(filter(None, map(writer_lock.written_by, chain)), None)
    where = f" writing {os.fsdecode(path)}" if path else ""
    free = f" ({_free_space(os.fsdecode(path))} free there)" if path and "://" not in str(
        path) else ""
    return (f"{reason[0].lower()}{reason[1:]}{where}{free}; nothing it left looks complete: "
            f"free some space and run the same command again")


def _free_space(path: str) -> str:
    """The free space of the file system ``path`` is (or would be) on."""
    directory = os.path.abspath(path)
    while not os.path.exists(directory) and os.path.dirname(directory) != directory:
        directory = os.path.dirname(directory)
    free = shutil.disk_usage(directory).free
    if free < 1024:
        return f"{free} bytes"
    exponent = min(int(math.log(free, 1024)), 4)
    return f"{free / 1024 ** exponent:.1f} {('KB', 'MB', 'GB', 'TB')[exponent - 1]}"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The launcher's parser: one sub-command per command."""
    # No abbreviated flags: an abbreviation could capture a flag meant for Beam.
    parser = argparse.ArgumentParser(
        prog=prog, allow_abbrev=False,
        description="CSV -> TFDV statistics and validation -> TFT transform.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for name, flags, handler, description in _COMMANDS:
        command = commands.add_parser(name, help=description, description=description,
                                      allow_abbrev=False)
        command.set_defaults(command=handler)
        flags(command)
    return parser


# The flags of each command.

def _run_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument("--dataset",
                     help="a registered dataset, package.module:attribute or a dataset "
                          "directory; default: with --train_input, one drafted from it "
                          "as init does (kept in OUTPUT_DIR/dataset/), else flights")
    run.add_argument("--label", help="without --dataset: the label column of --train_input")
    run.add_argument("--output_dir", required=True, help="local path or gs:// URI")
    run.add_argument("--train_input", help="CSV glob; default: the dataset's own")
    run.add_argument("--serving_input", help="CSV glob; default: the dataset's own")
    run.add_argument("--eval_fraction", type=float, default=RunOptions.eval_fraction,
                     help=f"share of training rows held out for eval "
                          f"(default {RunOptions.eval_fraction})")
    run.add_argument("--limit", type=_positive_int,
                     help="read only the first N rows of each input")
    run.add_argument("--temp_dir", help="TFT's temp dir; default: inside the run's staging "
                                        "directory, removed with it (on Dataflow, a gs:// path)")
    run.add_argument("--overwrite", action="store_true",
                     help="replace a completed run in --output_dir")
    run.add_argument("--max_rejected_fraction", type=float,
                     default=RunOptions.max_rejected_fraction,
                     help=f"fail when more rows than this share are rejected (default "
                          f"{RunOptions.max_rejected_fraction})")
    run.add_argument("--schema", help="a TFMD schema (.pbtxt) instead of the dataset's own")
    _stratify_flag(run)
    run.add_argument("--drop_duplicates", action="store_true",
                     help="keep one of each set of identical training rows (they are "
                          "counted either way; serving rows are never dropped)")
    run.add_argument("--oversample_minority", nargs="?", const=1.0, type=float,
                     metavar="RATIO",
                     help="repeat the training records of every class smaller than RATIO "
                          "(default 1.0) x the largest class up to that size; eval and "
                          "serving are untouched")
    run.add_argument("--sketch_statistics", action="store_true",
                     help="string features' top values and unique counts from TFDV's "
                          "sketches: memory bounded per feature instead of per distinct "
                          "value, counts past the sketches' sizes approximate "
                          "(benchmarks/RESULTS.md); vocabularies stay exact")
    _bigquery_flags(run)
    run.add_argument("--input_topic", metavar="projects/P/topics/T",
                     help="with --streaming (on Dataflow): read CSV lines from this Pub/Sub "
                          "topic and publish each row with its window features to "
                          "--output_topic")
    run.add_argument("--output_topic", help="where the streaming job publishes rows (JSON)")
    run.add_argument("--rejected_topic", help="where it publishes rejected and late rows "
                                              "(default: OUTPUT_TOPIC-rejected)")
    run.add_argument("--allowed_lateness", type=int, default=RunOptions.allowed_lateness,
                     metavar="SECONDS",
                     help=f"a row arriving later than its time plus this is late (default "
                          f"{RunOptions.allowed_lateness})")
    _dry_run_flags(run, "DATASET_job.json")


def _init_flags(init: argparse.ArgumentParser) -> None:
    init.add_argument("--train_input", required=True, help="CSV glob of training data")
    init.add_argument("--dir", help="the dataset directory to write")
    init.add_argument("--overwrite", action="store_true",
                      help="draft --dir anew though it holds a dataset (its files replaced)")
    init.add_argument("--from", dest="from_dir", metavar="DIR",
                      help="instead of --dir: re-derive DIR/schema.pbtxt after dataset.json "
                           "was edited, keeping the schema's curation where it still applies "
                           "and listing what changed")
    init.add_argument("--name", help="the dataset's name (default: the directory's)")
    init.add_argument("--label", help="the label column")
    init.add_argument("--key", type=_name_list, default=(),
                      help="columns that identify a row, comma-separated (default: a "
                           "detected row-id column, else the whole row)")
    init.add_argument("--delimiter", type=_delimiter,
                      help="the field delimiter (default: detected; 'tab' for a tab)")
    init.add_argument("--null_values", type=lambda text: text.split(","),
                      help="texts that mark a missing value, comma-separated "
                           "(default: detected)")
    init.add_argument("--column_names", type=_name_list,
                      help="the columns in file order, comma-separated (for a file "
                           "without a header; default: column_1 .. column_N)")
    init.add_argument("--encoding", help="the files' encoding (default: detected)")
    init.add_argument("--limit", type=_positive_int, help="read only the first N rows")


def _infer_schema_flags(infer: argparse.ArgumentParser) -> None:
    infer.add_argument("--input", required=True, help="CSV glob")
    infer.add_argument("--dataset",
                       help="a registered dataset, for its CSV format; default: detect it")
    infer.add_argument("--column_names", type=_name_list,
                       help="the columns in file order, comma-separated (for a file "
                            "without a header)")
    infer.add_argument("--limit", type=_positive_int,
                       help="infer from the first N rows only")


def _validate_flags(check: argparse.ArgumentParser) -> None:
    check.add_argument("--run_dir", required=True, help="output_dir of a completed run")
    check.add_argument("--serving_input", required=True, help="CSV glob of the new data")
    check.add_argument("--previous_stats", help="statistics of a former span, for drift")
    check.add_argument("--span", help="name of this span (default: the UTC time)")
    check.add_argument("--limit", type=_positive_int, help="read only the first N rows")
    check.add_argument("--fail_on_anomalies", action="store_true",
                       help="exit 1 when anything is out of bounds, a rejected row or a "
                            "missing column included")
    check.add_argument("--max_rejected_fraction", type=float,
                       default=ValidateOptions.max_rejected_fraction,
                       help=f"fail (exit 2, the span recorded as failed) when a larger "
                            f"share of the rows read is rejected (default "
                            f"{ValidateOptions.max_rejected_fraction})")
    check.add_argument("--paired", metavar="RAW_GLOB",
                       help="with request logs: the raw CSV rows their requests were made "
                            "of; the pipeline computes their features and compares them "
                            "with the logged ones row by row, joined by the dataset's key "
                            "columns")
    _row_skew_flags(check)


def _row_skew_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fail_on_skew", metavar="SHARE", nargs="?", const=0.0,
                        type=_share, help="exit 1 when a feature's row-by-row mismatch "
                                          "share exceeds SHARE (default 0: any mismatch)")
    parser.add_argument("--float_digits", metavar="N", type=int,
                        help="compare floats rounded to N decimals (default: as float32)")


def _diff_flags(diff: argparse.ArgumentParser) -> None:
    sides = ("a CSV glob (files or request logs), or RUN_DIR:SPLIT (train, eval, serving: "
             "the run's raw rows of that split, re-read as the run read them)")
    diff.add_argument("--base", required=True, help=f"the reference side: {sides}")
    diff.add_argument("--test", required=True, help=f"the side checked against it: {sides}")
    diff.add_argument("--output_dir", required=True,
                      help="row_skew.json, TFDV's outputs (row_skew/) and rejected rows")
    diff.add_argument("--key", type=_name_list, default=(),
                      help="comma-separated key columns (default: the dataset's)")
    diff.add_argument("--dataset",
                      help="the dataset whose dialect and schema read both sides (a run "
                           "side brings its own); default: each side's dialect detected "
                           "as init detects it")
    diff.add_argument("--ignore", type=_name_list, default=(),
                      help="comma-separated features not to compare")
    diff.add_argument("--sample", type=int, default=DiffOptions.sample,
                      help=f"mismatching pairs kept as examples (default {DiffOptions.sample})")
    diff.add_argument("--allow_duplicates", action="store_true",
                      help="compare every pair of rows sharing a key (default: a duplicated "
                           "key is counted and skipped)")
    diff.add_argument("--limit", type=_positive_int, help="read only the first N rows a side")
    diff.add_argument("--max_rejected_fraction", type=_share,
                      default=DiffOptions.max_rejected_fraction,
                      help=f"fail (exit 2) when a larger share of a side's rows is rejected "
                           f"(default {DiffOptions.max_rejected_fraction})")
    _row_skew_flags(diff)


def _predict_flags(score: argparse.ArgumentParser) -> None:
    score.add_argument("--model", required=True, help="a serving SavedModel (M/serving)")
    score.add_argument("--input", required=True, help="CSV glob, in the model's dataset's "
                                                      "dialect; the label may be absent")
    score.add_argument("--output_dir", required=True,
                       help="where predictions-*.csv and rejected/ go")
    score.add_argument("--limit", type=_positive_int, help="score only the first N rows")
    score.add_argument("--overwrite", action="store_true",
                       help="replace what --output_dir holds")
    score.add_argument("--passthrough", type=_name_list, default=(), metavar="COL,...",
                       help="input columns to write beside each prediction, comma-separated "
                            "(the key columns always are; without keys, the input file and "
                            "line too)")
    _dry_run_flags(score, "DATASET_predict_job.json")


def _suggest_thresholds_flags(noise: argparse.ArgumentParser) -> None:
    noise.add_argument("--dataset", default="flights",
                       help="a registered dataset, package.module:attribute or a dataset "
                            "directory (default flights)")
    noise.add_argument("--input", help="CSV glob; default: the dataset's training input")
    noise.add_argument("--sizes", default="5000,50000,0", type=_int_list,
                       help="sample sizes, comma-separated; 0 is all rows")
    noise.add_argument("--repeats", type=_positive_int, default=20,
                       help="random 80/20 splits per size")
    noise.add_argument("--margin", type=float, default=1.5)


def _bigquery_sql_flags(sql: argparse.ArgumentParser) -> None:
    sql.add_argument("--dataset", default="flights",
                     help="a registered dataset, package.module:attribute or a dataset "
                          "directory (default flights)")
    sql.add_argument("--eval_fraction", type=float, default=RunOptions.eval_fraction)
    _stratify_flag(sql)
    _bigquery_flags(sql)


def _train_flags(train: argparse.ArgumentParser) -> None:
    train.add_argument("--run_dir", required=True, help="output_dir of a completed run")
    train.add_argument("--model_dir", required=True, help="where M/serving and metrics go")
    # The defaults are pipelines.model.train's (tests/test_train.py checks), written
    # out so that --help does not import TensorFlow.
    train.add_argument("--epochs", type=_positive_int, default=100,
                       help="the most epochs (default 100); early stopping on the eval "
                            "loss usually ends training sooner")
    train.add_argument("--batch_size", type=_positive_int,
                       help="default: from the training rows, about 50 steps an epoch "
                            "(a power of two in 32..1024)")
    train.add_argument("--learning_rate", type=float, default=3e-3,
                       help="Adam's (default 0.003)")
    train.add_argument("--patience", type=_positive_int, default=5,
                       help="epochs without a better eval loss before training stops "
                            "(default 5)")


def _export_serving_flags(export: argparse.ArgumentParser) -> None:
    export.add_argument("--run_dir", required=True, help="output_dir of a completed run")
    export.add_argument("--out", required=True, help="directory of the SavedModel")


def _check_parity_flags(parity: argparse.ArgumentParser) -> None:
    parity.add_argument("--run_dir", required=True, help="output_dir of a completed run")
    parity.add_argument("--split", default=layout.EVAL, choices=layout.SPLITS)
    parity.add_argument("--n", type=_positive_int, default=1000, help="rows to compare")
    parity.add_argument("--model", help="a serving SavedModel; default: export one now")


def _rank_features_flags(rank: argparse.ArgumentParser) -> None:
    rank.add_argument("--run_dir", required=True, help="output_dir of a completed run")
    rank.add_argument("--rows", type=_positive_int, default=20_000,
                      help="training rows to estimate from (default 20000)")


def _serve_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument("--model", required=True, help="a serving SavedModel (M/serving)")
    serve.add_argument("--port", type=int, default=8501, help="0 picks a free port")
    serve.add_argument("--model_name", help="the <name> in /v1/models/<name>; "
                                            "default: the model's dataset")
    serve.add_argument("--log_dir", help="log a sample of the answered instances as CSV "
                                         "here, for `validate --serving_input 'DIR/*.csv'`")
    serve.add_argument("--log_sample", type=float, default=1.0, metavar="FRACTION",
                       help="the fraction of instances logged (default 1.0: all)")


def _recover_log_flags(recover: argparse.ArgumentParser) -> None:
    recover.add_argument("--log_dir", required=True,
                         help="a `serve --log_dir` directory: its shards left *.csv.partial "
                              "by a server that died are completed; a live server's are left")


def _dry_run_flags(parser: argparse.ArgumentParser, job_file: str) -> None:
    """--dry_run and --job_description, for a command that submits to Dataflow."""
    parser.add_argument("--dry_run", nargs="?", const=True, default=False,
                        type=_true_or_false,
                        help="with --runner DataflowRunner: build the job, do not submit it")
    parser.add_argument("--job_description",
                        help=f"where --dry_run writes the job (default "
                             f"output/dataflow/{job_file})")


def _stratify_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stratify_by", metavar="COLUMN",
                        help="eval takes --eval_fraction of every class of COLUMN (to the "
                             "row), not of all rows")


def _bigquery_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bigquery_table", help="PROJECT.DATASET.TABLE instead of "
                                                 "--train_input")
    parser.add_argument("--bigquery_query", help="a standard-SQL query instead of "
                                                 "--train_input")
    parser.add_argument("--where", help="SQL condition the BigQuery rows must meet")
    parser.add_argument("--serving_where", help="SQL condition of the BigQuery rows that "
                                                "are the serving split")
    parser.add_argument("--sample_percent", type=float,
                        help="keep this percentage of the BigQuery rows (deterministic)")


# Flag values.

def _true_or_false(text: str) -> bool:
    if text.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {text}")
    return text.lower() == "true"


def _name_list(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",")]
    if not all(names) or len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"takes distinct comma-separated names, got {text}")
    return names


def _delimiter(text: str) -> str:
    text = {"tab": "\t", "\\t": "\t"}.get(text, text)
    if len(text) != 1:
        raise argparse.ArgumentTypeError(f"takes one character (or 'tab'), got {text!r}")
    return text


def _int_list(text: str) -> list[int]:
    try:
        return [int(size) for size in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"takes comma-separated integers, got {text}") from None


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a share between 0 and 1, got {text}")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


# The handlers. The heavy imports (TensorFlow, TFT, TFDV) happen only once a
# command runs, so that --help and flag errors are instant. Each handler calls
# the one function that does the command's work: the Python API's for the
# commands it offers, else the function of the module named after the command.

def _run(args: argparse.Namespace, beam_args: list[str], started: float | None) -> int:
    from pipelines import api

    api.run(from_flags(RunOptions, args), beam_args, started=started)
    return 0


def _init(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    process.import_the_stack()
    from pipelines import datasets
    from pipelines.commands import init

    if args.from_dir is not None:
        given = [flag for flag, value in (
            ("--dir", args.dir), ("--overwrite", args.overwrite), ("--name", args.name),
            ("--label", args.label), ("--key", args.key), ("--delimiter", args.delimiter),
            ("--null_values", args.null_values), ("--column_names", args.column_names),
            ("--encoding", args.encoding)) if value]
        if given:
            raise UserError(f"--from re-derives the schema as {args.from_dir}/dataset.json "
                            f"says: edit that instead of passing {', '.join(given)}")
        print(init.rederive_schema(args.from_dir, args.train_input, args.limit).describe())
        return 0
    if args.dir is None:
        raise UserError("init needs --dir (the directory to draft) or --from (a dataset "
                        "directory whose schema to re-derive)")
    drafted = init.init_dataset(
        args.train_input, args.dir, name=args.name, label=args.label, key=args.key,
        delimiter=args.delimiter, null_values=args.null_values,
        column_names=args.column_names, encoding=args.encoding, limit=args.limit,
        overwrite=args.overwrite)
    print(drafted.describe())
    print(f"Curate {args.dir}/schema.pbtxt and {args.dir}/transforms.py, then:\n"
          f"  {PROG} run --dataset {datasets.dataset_flag(args.dir)} --train_input "
          f"'{args.train_input}' --output_dir OUT")
    return 0


def _infer_schema(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    process.import_the_stack()
    from pipelines.commands import infer_schema

    print(infer_schema.infer_schema_text(args.input, args.dataset, args.limit,
                                         args.column_names), end="")
    return 0


def _validate(args: argparse.Namespace, beam_args: list[str], _) -> int:
    from pipelines import api

    options = from_flags(ValidateOptions, args)
    validation = api.validate(options, beam_args)
    if options.fail_on_anomalies and not validation.ok:
        return 1
    return 1 if validation.row_skew_over(options.fail_on_skew) else 0


def _diff(args: argparse.Namespace, beam_args: list[str], _) -> int:
    from pipelines import api

    options = from_flags(DiffOptions, args)
    compared = api.diff(options, beam_args)
    return 1 if options.fail_on_skew is not None and compared.result.over(
        options.fail_on_skew) else 0


def _predict(args: argparse.Namespace, beam_args: list[str], _) -> int:
    from pipelines import api

    api.predict(from_flags(PredictOptions, args), beam_args)
    return 0


def _suggest_thresholds(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    process.import_the_stack()
    from pipelines.commands import suggest_thresholds

    print(suggest_thresholds.suggest_thresholds(args.dataset, args.input, args.sizes,
                                                args.repeats, args.margin))
    return 0


def _bigquery_sql(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    from pipelines.commands import bigquery_sql

    print(bigquery_sql.bigquery_sql(args.dataset, args.eval_fraction, args.stratify_by,
                                    table=args.bigquery_table, query=args.bigquery_query,
                                    where=args.where, serving_where=args.serving_where,
                                    sample_percent=args.sample_percent), end="")
    return 0


def _train(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    if not 0 < args.learning_rate < float("inf"):
        raise UserError(f"--learning_rate must be a positive number, got {args.learning_rate}")
    from pipelines.model import train

    metrics = train.train(args.run_dir, args.model_dir, args.epochs,
                          batch_size=args.batch_size, learning_rate=args.learning_rate,
                          patience=args.patience)
    print(train.format_metrics(metrics, args.model_dir))
    return 0


def _export_serving(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    from pipelines.model import export_serving

    print(export_serving.export_from_run(args.run_dir, args.out))
    return 0


def _check_parity(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    from pipelines import api

    report = api.check_parity(args.run_dir, args.split, args.n, args.model)
    print(report)
    return 1 if report.mismatches else 0


def _rank_features(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    from pipelines.model import rank_features

    print(rank_features.format_ranking(rank_features.rank_features(args.run_dir, args.rows)))
    return 0


def _serve(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    from pipelines.model import serve

    if not 0 < args.log_sample <= 1:
        raise UserError(f"--log_sample must be in (0, 1], got {args.log_sample}")
    if args.log_sample != 1.0 and not args.log_dir:
        raise UserError("--log_sample needs --log_dir")
    serve.serve(args.model, args.port, model_name=args.model_name, log_dir=args.log_dir,
                log_sample=args.log_sample)
    return 0


def _recover_log(args: argparse.Namespace, extra: list[str], _) -> int:
    _no_extra(extra)
    if not os.path.isdir(args.log_dir):
        raise UserError(f"--log_dir {args.log_dir} is not a directory")
    from pipelines.model import request_log

    print(request_log.recover(args.log_dir).describe())
    return 0


def _no_extra(extra: list[str]) -> None:
    if extra:
        raise UserError(f"unrecognized arguments: {' '.join(extra)}")


# (name, flags, handler, description), in the order --help lists them.
_COMMANDS = (
    ("run", _run_flags, _run, "run the pipeline; unknown flags go to Beam"),
    ("init", _init_flags, _init,
     "draft a dataset directory from CSV files: dialect, schema, transforms"),
    ("infer-schema", _infer_schema_flags, _infer_schema,
     "print a TFMD schema inferred from CSV files"),
    ("validate", _validate_flags, _validate,
     "validate new serving data against a run: schema, skew, drift"),
    ("diff", _diff_flags, _diff,
     "compare two sides' rows joined by key, feature by feature (row-by-row skew)"),
    ("predict", _predict_flags, _predict,
     "score raw CSV rows in batch with a serving model (RunInference)"),
    ("suggest-thresholds", _suggest_thresholds_flags, _suggest_thresholds,
     "measure skew metrics between random halves; suggest thresholds"),
    ("bigquery-sql", _bigquery_sql_flags, _bigquery_sql,
     "print the BigQuery SQL that `run` would send"),
    ("train", _train_flags, _train, "train the wide & deep model and export M/serving"),
    ("export-serving", _export_serving_flags, _export_serving,
     "export a transform-only serving model (transform_features, transform_raw)"),
    ("check-parity", _check_parity_flags, _check_parity,
     "compare serving's transform_features and transform_raw with the pipeline's records"),
    ("rank-features", _rank_features_flags, _rank_features,
     "rank a run's features by mutual information with the label"),
    ("serve", _serve_flags, _serve, "answer TensorFlow Serving's REST API on loopback"),
    ("recover-log", _recover_log_flags, _recover_log,
     "complete the request-log shards a killed server left, for `validate`"),
)
