"""The ``run`` pipeline: prepare, split, statistics and validation, TFT, write.

``build_pipeline`` returns the constructed, not yet run, ``beam.Pipeline``;
``pipelines.pipeline.execute`` runs it and accounts for its rows. The command
(``pipelines.commands.run``) checks the flags and inputs first and writes the
run's record after. Locally::

    python -m pipelines run --dataset flights --output_dir /tmp/flights

and on Dataflow the same entry point with Beam's flags, as ``run_dataflow.sh``
passes them::

    python -m pipelines run --dataset flights --output_dir gs://BUCKET/output/flights \\
        --train_input 'gs://BUCKET/raw/*.csv' --temp_dir gs://BUCKET/tft-tmp \\
        --runner DataflowRunner --project PROJECT --region REGION \\
        --temp_location gs://BUCKET/tmp --staging_location gs://BUCKET/staging \\
        --setup_file ./setup.py

Every output's name under ``output_dir`` is in ``pipelines.layout``. With
``--bigquery_table`` or ``--bigquery_query`` the training rows come from
BigQuery instead (``pipelines.stages.bigquery``).
"""

import dataclasses

import apache_beam as beam
import tensorflow_transform.beam as tft_beam
from tensorflow_metadata.proto.v0 import schema_pb2

from pipelines import beam_speedups, layout
from pipelines.datasets import Dataset
from pipelines.decode.bigquery import BigQueryInput, RowDecoder
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.prepare import STEPS, Preparation
from pipelines.decode.row_keys import DEFAULT_EVAL_FRACTION, ROW_KEY, eval_percent
from pipelines.pipeline import prepare
from pipelines.pipeline.prepare import PrepareInputs
from pipelines.stages.bigquery import ReadBigQuery
from pipelines.stages.oversample import OversampleMinority
from pipelines.stages.read import ReadRaw
from pipelines.stages.split import SplitExamples, StratumLimits
from pipelines.stages.statistics import GenerateStats, ValidateStats
from pipelines.stages.transform import Analyze, Transform, WriteOutputs, tensor_adapter_config

__all__ = ["STAGES", "RunConfig", "build_pipeline", "stage_of"]

# The run's top-level stages after PrepareInputs, by label, and the stage of
# the run summary each one's time counts in.
_STAGE_LABELS = {
    "StratumLimits": "split",
    "SplitExamples": "split",
    "SplitAgain": "split",
    "GenerateStats": "statistics",
    "ValidateStats": "validate",
    "Analyze": "analyze",
    "Transform": "transform",
    "OversampleMinority": "oversample",
    "WriteOutputs": "write",
}
# PrepareInputs' applications: the counted pass and the second one.
_PREPARE, _PREPARE_AGAIN = "Prepare", "PrepareAgain"
# Every stage of the run summary, in pipeline order.
STAGES = (*STEPS, *dict.fromkeys(_STAGE_LABELS.values()))


def stage_of(step: str) -> str | None:
    """The summary's stage of a step of the run pipeline (its full label,
    ``Prepare/LookupsTrain/Join``), or None for a step of no stage."""
    top, _, inner = step.partition("/")
    if top in (_PREPARE, _PREPARE_AGAIN):
        return prepare.stage_of(inner.split("/", 1)[0])
    return _STAGE_LABELS.get(top)


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """What one run reads and writes.

    Training rows come from ``train_input`` (a CSV glob) or from ``bigquery``;
    serving rows from ``serving_input`` or, with BigQuery, from the rows
    matching its ``serving_where``.
    """

    dataset: Dataset
    output_dir: str
    train_input: str | None
    serving_input: str | None
    temp_dir: str
    schema: schema_pb2.Schema
    schema_file: str  # where the schema came from, as messages name it
    eval_fraction: float = DEFAULT_EVAL_FRACTION
    limit: int | None = None
    bigquery: BigQueryInput | None = None
    # The columns the serving CSV lacks (serving data may lack those not in the
    # schema's SERVING environment); its records then carry no label.
    serving_lacks: tuple[str, ...] = ()
    # Eval takes eval_fraction of every class of this column (SplitExamples).
    stratify_by: str | None = None
    # Keep one row of every set of identical training rows (Deduplicate).
    drop_duplicates: bool = False
    # Repeat the smaller classes' training records up to this share of the
    # largest class's (OversampleMinority).
    oversample_minority: float | None = None
    # String features' top values and unique counts from TFDV's sketches.
    sketch_statistics: bool = False

    @property
    def serving_without(self) -> list[str]:
        """The outputs the serving split is transformed without."""
        label = self.dataset.module.label_key
        return [label] if label and self.serving_lacks else []

    @property
    def csv_inputs(self) -> dict[str, str]:
        """The CSV globs the run reads, by the input they feed (train and eval
        rows come from ``layout.TRAIN``)."""
        return {name: pattern for name, pattern in ((layout.TRAIN, self.train_input),
                                                    (layout.SERVING, self.serving_input))
                if pattern}

    @property
    def has_serving(self) -> bool:
        return bool(self.serving_input or (self.bigquery and self.bigquery.serving_where))

    @property
    def preparation(self) -> Preparation:
        """What happens to the rows before the split."""
        return self.dataset.preparation(self.schema, self.drop_duplicates)

    def bigquery_sql(self) -> str | None:
        """The query sent to BigQuery, or None for CSV inputs."""
        if self.bigquery is None:
            return None
        return self.bigquery.sql(self.schema, self.dataset.csv_format.key_columns,
                                 self.eval_fraction, self.stratify_by)


def build_pipeline(config: RunConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the whole ``run`` pipeline; Beam's options pass through, with
    ``beam_speedups.new_pipeline``'s default pickler when they name none."""
    schema = config.schema
    decoder = config.dataset.csv_decoder(schema)
    preparation = config.preparation
    decoded = preparation.output_schema(decoder.output_schema)
    adapter_config = tensor_adapter_config(decoded, schema)
    bigquery = None
    if config.bigquery:
        bigquery = ReadBigQuery(
            config.bigquery_sql(),
            RowDecoder(columns_from_schema(schema), config.dataset.csv_format.key_columns),
            # Stratified, a row's split depends on its class's other rows: the
            # local re-split (SplitExamples) is the check, not a per-row one.
            None if config.stratify_by else eval_percent(config.eval_fraction),
            with_serving=bool(config.bigquery.serving_where))
    out = config.output_dir
    read = ReadRaw(config.csv_inputs, decoder, layout.rejected_prefix(out), config.limit,
                   bigquery)

    pipeline = beam_speedups.new_pipeline(beam_args)
    # No deep-copy optimization: it re-runs the read for each TFT phase, which
    # would also count every training row twice.
    with tft_beam.Context(temp_dir=config.temp_dir, passthrough_keys={ROW_KEY}):
        # Identical rows are counted in every input, and dropped from the
        # training input only when asked.
        prepared = pipeline | _PREPARE >> PrepareInputs(
            read, preparation, count_duplicates=True,
            reread_for_windows=None if bigquery else read.again())
        limits = None
        if config.stratify_by:
            limits = prepared.rows[layout.TRAIN] | "StratumLimits" >> StratumLimits(
                config.stratify_by, config.eval_fraction)
        splits = prepared.rows | "SplitExamples" >> SplitExamples(
            config.eval_fraction, stratify_by=config.stratify_by, limits=limits)
        statistics = splits | "GenerateStats" >> GenerateStats(
            schema, out, sketch=config.sketch_statistics)
        _ = statistics | "ValidateStats" >> ValidateStats(schema, out)
        transform_fn = splits[layout.TRAIN] | "Analyze" >> Analyze(
            config.dataset.load_preprocessing_fn(), adapter_config)
        if bigquery is None:
            # Transforming needs the finished transform_fn, so the DirectRunner
            # would hold every row in memory until the analysis is done. Reading
            # the CSV again streams them instead: memory stays flat as inputs grow.
            again = pipeline | _PREPARE_AGAIN >> PrepareInputs(
                read.again(), preparation, counted=False, reuse=prepared)
            splits = again.rows | "SplitAgain" >> SplitExamples(
                config.eval_fraction, counted=False, stratify_by=config.stratify_by,
                limits=limits)
        serving = None
        if config.serving_without:
            serving = (tensor_adapter_config(decoded, schema, serving=True),
                       config.serving_without)
        transformed = splits | "Transform" >> Transform(adapter_config, transform_fn, serving)
        if config.oversample_minority:
            # After the analysis and the statistics: they see each row once.
            transformed[layout.TRAIN] = transformed[layout.TRAIN] | "OversampleMinority" >> (
                OversampleMinority(config.dataset.module.label_key,
                                   config.oversample_minority))
        _ = transformed | "WriteOutputs" >> WriteOutputs(out, transform_fn, schema)
    return pipeline
