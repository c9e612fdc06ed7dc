"""The ``diff`` pipeline: two sides' rows joined by key and compared feature by
feature (``RowSkew``, TFDV's feature skew detector). ``diff`` and ``validate
--paired`` (a request log against the pipeline's own computation of the same
rows) build it.

A ``Side`` is CSV files or request logs read and prepared as ``run`` reads its
inputs, or the rows of one split of a finished run, split again exactly as it
split them. ``ReadSide`` is ``PrepareInputs`` (read, duplicates, lookups, windows) then
``SplitExamples`` over a ``Side``, so a side's rows, derived features and row
accounting are the pipeline's own: each side writes its rejected rows under its
own prefix, and every row read is counted as a split (serving for files and
logs), so ``execute``'s accounting holds over both sides together.
"""

import dataclasses

import apache_beam as beam
import pyarrow as pa

from pipelines import beam_speedups, layout
from pipelines.decode.csv_decoder import CsvDecoder
from pipelines.decode.prepare import Preparation
from pipelines.decode.row_keys import DEFAULT_EVAL_FRACTION
from pipelines.pipeline.prepare import PrepareInputs
from pipelines.stages import counters
from pipelines.stages.read import ReadRaw
from pipelines.stages.row_skew import RowSkew
from pipelines.stages.split import SplitExamples, StratumLimits

__all__ = ["DiffConfig", "ReadSide", "Side", "build_diff_pipeline", "side_counter"]


def side_counter(label: str, prepared: bool = False) -> str:
    """The counter of a side's compared rows (``counters.count``'s name), or
    with ``prepared`` of all its rows read and prepared (a run's split is a
    part of them)."""
    return f"side_{label}{'_prepared' if prepared else ''}"


@dataclasses.dataclass(frozen=True)
class Side:
    """Where one side's rows come from and how they are read.

    Attributes:
      label: ``base`` or ``test``.
      pattern: CSV glob (local or ``gs://``).
      decoder: how its files are decoded (a dataset's, a request log's, or
        one of a detected dialect).
      preparation: the lookups and window features its rows get.
      split: for a run's split, ``train`` or ``eval`` (its training input,
        split as the run split it) or ``serving``; None for files.
      eval_fraction, stratify_by: the run's split, for ``split``.
      limit: read at most this many rows, as ``run --limit``.
    """

    label: str
    pattern: str
    decoder: CsvDecoder
    preparation: Preparation = Preparation()
    split: str | None = None
    eval_fraction: float = DEFAULT_EVAL_FRACTION
    stratify_by: str | None = None
    limit: int | None = None

    @property
    def input_name(self) -> str:
        return layout.TRAIN if self.split in (layout.TRAIN, layout.EVAL) else layout.SERVING

    @property
    def output_schema(self) -> pa.Schema:
        """The Arrow schema of the side's prepared rows."""
        return self.preparation.output_schema(self.decoder.output_schema)


def _count(batch: pa.RecordBatch, name: str) -> pa.RecordBatch:
    counters.count(name, batch.num_rows)
    return batch


class ReadSide(beam.PTransform):
    """PBegin -> the side's prepared batches (its rejected rows written under
    ``rejected_prefix``)."""

    def __init__(self, side: Side, rejected_prefix: str):
        super().__init__()
        self._side = side
        self._rejected_prefix = rejected_prefix

    def expand(self, pbegin):
        side = self._side
        read = ReadRaw({side.input_name: side.pattern}, side.decoder, self._rejected_prefix,
                       side.limit)
        prepared = pbegin | "Prepare" >> PrepareInputs(read, side.preparation,
                                                       reread_for_windows=read.again())
        rows = {name: batches | f"CountPrepared{name.title()}" >> beam.Map(
            _count, side_counter(side.label, prepared=True))
            for name, batches in prepared.rows.items()}
        limits = None
        if side.stratify_by and side.input_name == layout.TRAIN:
            limits = rows[layout.TRAIN] | "StratumLimits" >> StratumLimits(
                side.stratify_by, side.eval_fraction)
        splits = rows | "Split" >> SplitExamples(
            side.eval_fraction, stratify_by=side.stratify_by if limits is not None else None,
            limits=limits)
        wanted = side.split if side.input_name == layout.TRAIN else layout.SERVING
        return splits[wanted] | "Count" >> beam.Map(_count, side_counter(side.label))


@dataclasses.dataclass(frozen=True)
class DiffConfig:
    """Two sides compared row by row, the outputs under ``output_dir``
    (``layout.row_skew_prefix``, and each side's rejected rows).

    Attributes:
      keys: the columns that join the sides' rows.
      kinds: every key and compared feature -> its kind (``row_skew.FEATURE_KINDS``).
      float_digits, sample, allow_duplicates: as ``RowSkew`` takes them.
    """

    base: Side
    test: Side
    keys: list[str]
    kinds: dict[str, str]
    output_dir: str
    float_digits: int | None = None
    sample: int = 20
    allow_duplicates: bool = False


def build_diff_pipeline(config: DiffConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the ``diff`` pipeline: both sides read, then ``RowSkew``."""
    pipeline = beam_speedups.new_pipeline(beam_args)
    sides = tuple(pipeline | side.label.title() >> ReadSide(
        side, layout.side_rejected_prefix(config.output_dir, side.label))
        for side in (config.base, config.test))
    _ = sides | "RowSkew" >> RowSkew(
        config.keys, config.kinds, layout.row_skew_prefix(config.output_dir),
        float_digits=config.float_digits, sample=config.sample,
        allow_duplicates=config.allow_duplicates)
    return pipeline
