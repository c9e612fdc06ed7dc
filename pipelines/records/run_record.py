"""A run's record: ``OUTPUT_DIR/run_summary.json``, how the run was made and
what it found, written last (its presence marks a completed run).

The record is the run's configuration for every command that reads the run
later (``validate`` splits as the run did, ``check-parity`` re-reads and
re-splits its inputs, ``train`` knows whether records were oversampled), and
its results: rows per split, duplicates, rejected rows by reason, time per
stage, anomalies and skew. This module is the only one that reads or writes
the file; everything else uses the ``RunRecord`` fields.

A record written before a field existed reads with that field's default.
"""

import dataclasses
import os
from typing import Any

import tensorflow as tf

from pipelines import layout
from pipelines.errors import UserError
from pipelines.records.json_files import read_json, write_json

__all__ = [
    "Inputs", "InstanceSelection", "RunRecord", "Rows", "Seconds", "StageTime",
]


@dataclasses.dataclass(frozen=True)
class Inputs:
    """Where the rows came from: CSV globs by input, or the BigQuery query sent."""

    train: str | None = None
    serving: str | None = None
    bigquery: str | None = None

    def csv(self, input_name: str) -> str | None:
        """The CSV glob of ``layout.TRAIN`` or ``layout.SERVING`` rows, if CSV."""
        return {layout.TRAIN: self.train, layout.SERVING: self.serving}[input_name]


@dataclasses.dataclass(frozen=True)
class InstanceSelection:
    """The flags that chose which rows become which records."""

    stratify_by: str | None = None  # eval took eval_fraction of every class of it
    drop_duplicates: bool = False  # one of each set of identical training rows kept
    oversample_minority: float | None = None  # smaller classes repeated to this share


@dataclasses.dataclass(frozen=True)
class Rows:
    """Every row read, accounted for: read = train + eval + serving + rejected +
    duplicates_dropped. ``oversampled`` counts the extra training records
    written (the train split holds train + oversampled records)."""

    read: int = 0
    train: int = 0
    eval: int = 0
    serving: int = 0
    rejected: int = 0
    duplicates_dropped: int = 0
    oversampled: int = 0

    @property
    def accounted(self) -> int:
        """The rows the splits, the dead letters and the dropped duplicates hold."""
        return self.train + self.eval + self.serving + self.rejected + self.duplicates_dropped

    def of(self, split: str) -> int:
        """The rows of a split (``layout.SPLITS``)."""
        return {layout.TRAIN: self.train, layout.EVAL: self.eval,
                layout.SERVING: self.serving}[split]


@dataclasses.dataclass(frozen=True)
class StageTime:
    """Execution seconds of one stage and the rows it handled per second."""

    seconds: float
    rows_per_s: int | None


@dataclasses.dataclass(frozen=True)
class Seconds:
    """Wall-clock seconds of a run: start-up (imports), building the pipeline
    (TFT traces the preprocessing_fn), the run, what the stages' own seconds do
    not cover (shuffles, encoding; None when the runner reports no stages), the
    summary, and the total."""

    startup: float
    build: float
    run: float
    unattributed: float | None
    summary: float
    total: float


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """What ``run_summary.json`` holds, field for field.

    Attributes:
      dataset: the dataset's name.
      schema_file: where the run's schema came from, as fixes name it.
      inputs: where the rows came from.
      eval_fraction: the share of training rows held out as eval.
      limit: only the first ``limit`` rows of each input were read.
      output_dir: where the run's outputs are.
      rows: every row read, accounted for.
      duplicates: rows repeating an earlier row of the same input, by input
        (``train_input``, ``serving_input``), dropped or not.
      instance_selection: the flags that chose the records.
      rejected_by_reason: rejected rows by kind (``wrong_field_count``, ...).
      stages: execution time per stage, in pipeline order.
      peak_rss_mb: the run's peak resident memory.
      anomalies: per split, feature -> what is wrong.
      skew: per feature, the serving split's skew metric, value, threshold, ok.
      warnings: what a person should know before using the outputs.
      serving_without: the outputs the serving records lack (the label, when
        serving data lacks its inputs).
      seconds: wall-clock time of the run's phases.
    """

    dataset: str
    schema_file: str
    inputs: Inputs
    eval_fraction: float
    limit: int | None
    output_dir: str
    rows: Rows
    duplicates: dict[str, int] = dataclasses.field(default_factory=dict)
    instance_selection: InstanceSelection = InstanceSelection()
    rejected_by_reason: dict[str, int] = dataclasses.field(default_factory=dict)
    stages: dict[str, StageTime] = dataclasses.field(default_factory=dict)
    peak_rss_mb: float = 0.0
    anomalies: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    skew: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    serving_without: list[str] = dataclasses.field(default_factory=list)
    seconds: Seconds | None = None

    def to_json(self) -> dict:
        """The JSON document, with the fields in the order they are declared."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: dict) -> "RunRecord":
        """The record of a ``run_summary.json`` document.

        Raises:
          UserError: the document is not a run's record.
        """
        try:
            fields = dict(document)
            fields["inputs"] = Inputs(**fields.get("inputs", {}))
            fields["rows"] = Rows(**fields["rows"])
            fields["instance_selection"] = InstanceSelection(
                **fields.get("instance_selection", {}))
            fields["stages"] = {stage: StageTime(**time)
                                for stage, time in fields.get("stages", {}).items()}
            if fields.get("seconds") is not None:
                fields["seconds"] = Seconds(**fields["seconds"])
            known = {f.name for f in dataclasses.fields(cls)}
            # A newer package's fields are left to it.
            return cls(**{k: v for k, v in fields.items() if k in known})
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise UserError(f"not a run record ({layout.SUMMARY_FILE}): {error}") from None

    @classmethod
    def read(cls, run_dir: str) -> "RunRecord":
        """The record of the completed run in ``run_dir``.

        Raises:
          UserError: ``run_dir`` holds no completed run: its ``run_summary.json``
            is missing or does not parse as a run's record.
        """
        path = os.path.join(run_dir, layout.SUMMARY_FILE)
        if not tf.io.gfile.exists(path):
            raise UserError(f"{run_dir} holds no completed run ({layout.SUMMARY_FILE} is "
                            f"missing); run `python -m pipelines run --output_dir {run_dir}` "
                            f"first")
        try:
            return cls.from_json(read_json(path))
        except UserError as error:  # cut short, or not a record: no completed run
            raise UserError(f"{run_dir} holds no completed run: {error}") from None

    def write(self, run_dir: str) -> str:
        """Writes ``run_dir/run_summary.json``; returns its path."""
        path = os.path.join(run_dir, layout.SUMMARY_FILE)
        write_json(path, self.to_json())
        return path

