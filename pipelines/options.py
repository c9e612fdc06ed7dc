"""What each command is asked to do: one typed record per command, one field
per flag of ``python -m pipelines <command>``, with the flag's default.

The CLI (``pipelines.cli``) parses flags into these records and the Python
API (``pipelines.api``) takes them as they are, so a notebook and the command
line ask for the same thing the same way. Kept free of heavy imports: the
CLI reads the defaults from here before any command runs.
"""

import dataclasses

from pipelines.decode import DEFAULT_EVAL_FRACTION

__all__ = ["DiffOptions", "PredictOptions", "RunOptions", "ValidateOptions", "from_flags"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """``run``: read, split, validate and transform a dataset's rows.

    Attributes:
      output_dir: where the run's outputs go (local or ``gs://``).
      dataset: a registered dataset, ``package.module:attribute`` or a dataset
        directory; None: drafted from ``train_input`` as ``init`` drafts it,
        or ``flights`` without one.
      label: without ``dataset``: the label column of ``train_input``.
      train_input, serving_input: CSV globs (default: the dataset's own).
      eval_fraction: the share of training rows held out for eval.
      limit: read only the first N rows of each input.
      temp_dir: TFT's temporary directory (default: in the run's staging one).
      overwrite: replace a completed run in ``output_dir``.
      max_rejected_fraction: fail when a larger share of rows is rejected.
      schema: a TFMD schema file instead of the dataset's own.
      stratify_by: eval takes ``eval_fraction`` of every class of this column.
      drop_duplicates: keep one of each set of identical training rows.
      oversample_minority: repeat the smaller classes' training records up to
        this share of the largest class.
      sketch_statistics: TFDV's sketches for string features' top values and
        unique counts (bounded memory, approximate past their sizes).
      bigquery_table, bigquery_query, where, serving_where, sample_percent:
        the training rows from BigQuery instead (``docs/cloud.md``).
      input_topic, output_topic, rejected_topic, allowed_lateness: the
        streaming job (``--streaming`` on Dataflow, ``docs/windows.md``).
      dry_run, job_description: build the Dataflow job without submitting it,
        and where to write it.
    """

    output_dir: str
    dataset: str | None = None
    label: str | None = None
    train_input: str | None = None
    serving_input: str | None = None
    eval_fraction: float = DEFAULT_EVAL_FRACTION
    limit: int | None = None
    temp_dir: str | None = None
    overwrite: bool = False
    max_rejected_fraction: float = 0.001
    schema: str | None = None
    stratify_by: str | None = None
    drop_duplicates: bool = False
    oversample_minority: float | None = None
    sketch_statistics: bool = False
    bigquery_table: str | None = None
    bigquery_query: str | None = None
    where: str | None = None
    serving_where: str | None = None
    sample_percent: float | None = None
    input_topic: str | None = None
    output_topic: str | None = None
    rejected_topic: str | None = None
    allowed_lateness: int = 300
    dry_run: bool = False
    job_description: str | None = None


@dataclasses.dataclass(frozen=True)
class ValidateOptions:
    """``validate``: new serving data against a completed run.

    Attributes:
      run_dir: the completed run's ``output_dir``.
      serving_input: CSV glob of the new data (or ``serve``'s request logs).
      previous_stats: a former span's statistics, for drift.
      span: the span's name (default: the UTC time).
      limit: read only the first N rows.
      fail_on_anomalies: the CLI exits 1 when anything is out of bounds (a
        rejected row or a missing column included).
      max_rejected_fraction: fail (the span recorded as failed) when a larger
        share of the rows read is rejected.
      paired: CSV glob of the raw rows the serving input's requests were made
        of: the pipeline computes their features and compares them with the
        logged ones row by row, joined by the dataset's key columns.
      fail_on_skew: with ``paired``, the CLI exits 1 when a feature's
        row-by-row mismatch share exceeds this (None: it does not exit on it).
      float_digits: with ``paired``, floats compared to this many decimals.
    """

    run_dir: str
    serving_input: str
    previous_stats: str | None = None
    span: str | None = None
    limit: int | None = None
    fail_on_anomalies: bool = False
    max_rejected_fraction: float = RunOptions.max_rejected_fraction
    paired: str | None = None
    fail_on_skew: float | None = None
    float_digits: int | None = None


@dataclasses.dataclass(frozen=True)
class DiffOptions:
    """``diff``: two sides' rows joined by key and compared feature by feature.

    Attributes:
      base, test: each a CSV glob (files, or ``serve``'s request logs,
        recognised by their header) or ``RUN_DIR:SPLIT``, a finished run's
        split (``train``, ``eval``, ``serving``) re-read as the run read it.
      output_dir: where the results go (``row_skew.json``, TFDV's outputs
        under ``row_skew/``, each side's rejected rows).
      key: the key columns (default: the dataset's).
      dataset: the dataset whose dialect and schema both sides are read with
        (a run side brings its own); None: each side's dialect detected as
        ``init`` detects it, and the columns typed from their values.
      ignore: features not compared.
      float_digits: floats rounded to this many decimals before comparing.
      sample: mismatching pairs kept as examples.
      allow_duplicates: compare every pair of rows sharing a key.
      fail_on_skew: the CLI exits 1 when a feature's mismatch share exceeds
        this (None: never).
      limit: read only the first N rows of each side.
      max_rejected_fraction: fail when a larger share of a side's rows is
        rejected.
    """

    base: str
    test: str
    output_dir: str
    key: tuple[str, ...] = ()
    dataset: str | None = None
    ignore: tuple[str, ...] = ()
    float_digits: int | None = None
    sample: int = 20
    allow_duplicates: bool = False
    fail_on_skew: float | None = None
    limit: int | None = None
    max_rejected_fraction: float = RunOptions.max_rejected_fraction


@dataclasses.dataclass(frozen=True)
class PredictOptions:
    """``predict``: score raw CSV rows with a serving model (``RunInference``).

    Attributes:
      model: a serving SavedModel (``M/serving``, written by ``train``).
      input: CSV glob in the model's dataset's dialect; the label may be absent.
      output_dir: where ``predictions-*.csv`` and ``rejected/`` go.
      limit: score only the first N rows.
      overwrite: replace what ``output_dir`` holds.
      passthrough: columns of the input written beside each prediction, as
        the key columns are.
      dry_run, job_description: build the Dataflow job without submitting it.
    """

    model: str
    input: str
    output_dir: str
    limit: int | None = None
    overwrite: bool = False
    passthrough: tuple[str, ...] = ()
    dry_run: bool = False
    job_description: str | None = None


def from_flags(record: type, flags) -> object:
    """The ``record`` (one of this module's classes) of parsed flags: an
    ``argparse.Namespace`` with an attribute per field."""
    return record(**{f.name: getattr(flags, f.name) for f in dataclasses.fields(record)})
