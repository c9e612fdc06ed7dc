"""Builds and executes the two pipelines: ``run`` (read, split, statistics,
validation, TFT) and ``validate`` (the same stages for new serving data).

The builders return the constructed, not yet run, ``beam.Pipeline``;
``execute`` runs one and accounts for its rows. The commands
(``pipelines.commands.run`` and ``pipelines.commands.validate``) check their
flags and inputs first and write the summaries after. Locally::

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
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from pipelines import beam_speedups, layout
from pipelines.datasets import Dataset
from pipelines.decode.bigquery import BigQueryInput, RowDecoder, build_query
from pipelines.decode.columns import columns_from_schema
from pipelines.decode.request_logs import log_decoder
from pipelines.decode.row_keys import DEFAULT_EVAL_FRACTION, ROW_KEY, eval_percent
from pipelines.decode.windows import Windows
from pipelines.stages import counters, progress
from pipelines.stages.bigquery import ReadBigQuery
from pipelines.stages.duplicates import Deduplicate, RepeatedRows
from pipelines.stages.lookups import JoinLookups
from pipelines.stages.oversample import OversampleMinority
from pipelines.stages.predictions import Predict
from pipelines.stages.pubsub import REJECTED as PUBSUB_REJECTED
from pipelines.stages.pubsub import DecodeMessages, EncodeRows, late_message, line_decoder
from pipelines.stages.read import REJECTED, ReadRaw
from pipelines.stages.split import SplitExamples, StratumLimits
from pipelines.stages.statistics import GenerateStats, ValidateStats
from pipelines.stages.transform import Analyze, Transform, WriteOutputs, tensor_adapter_config
from pipelines.stages.windows import AddWindowFeatures, StreamingWindowFeatures, WindowEvents

__all__ = [
    "STAGE_LABELS", "Executed", "PredictConfig", "RunConfig", "StreamConfig", "ValidateConfig",
    "build_pipeline", "build_predict_pipeline",
    "build_streaming_pipeline", "build_validate_pipeline", "execute",
]

# Top-level labels of the stages, and the names the run summary uses for them.
STAGE_LABELS = {
    "ReadRaw": "read",
    "ReadAgain": "read",
    "ReadForWindows": "read",
    "DeduplicateForWindows": "duplicates",
    "RepeatedRowsTrain": "duplicates",
    "RepeatedRowsServing": "duplicates",
    "Deduplicate": "duplicates",
    "DeduplicateAgain": "duplicates",
    "JoinLookupsTrain": "lookups",
    "JoinLookupsServing": "lookups",
    "JoinLookupsAgainTrain": "lookups",
    "JoinLookupsAgainServing": "lookups",
    "WindowEventsTrain": "windows",
    "WindowEventsServing": "windows",
    "WindowFeaturesTrain": "windows",
    "WindowFeaturesServing": "windows",
    "WindowFeaturesAgainTrain": "windows",
    "WindowFeaturesAgainServing": "windows",
    "SplitExamples": "split",
    "SplitAgain": "split",
    "StratumLimits": "split",
    "GenerateStats": "statistics",
    "ValidateStats": "validate",
    "Analyze": "analyze",
    "Transform": "transform",
    "OversampleMinority": "oversample",
    "WriteOutputs": "write",
}


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

    @property
    def serving_without(self) -> list[str]:
        """The outputs the serving split is transformed without."""
        label = self.dataset.transforms.LABEL_KEY
        return [label] if label and self.serving_lacks else []

    @property
    def csv_inputs(self) -> dict[str, str]:
        """The CSV globs the run reads, by the split they feed (train and eval
        rows come from ``train``)."""
        return {name: pattern for name, pattern in (("train", self.train_input),
                                                    ("serving", self.serving_input))
                if pattern}

    @property
    def has_serving(self) -> bool:
        return bool(self.serving_input or (self.bigquery and self.bigquery.serving_where))

    def bigquery_sql(self) -> str | None:
        if self.bigquery is None:
            return None
        return build_query(self.bigquery, columns_from_schema(self.schema),
                           self.dataset.csv_format.key_columns,
                           eval_percent(self.eval_fraction), self.stratify_by)


def build_pipeline(config: RunConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the whole ``run`` pipeline; Beam's options pass through, with
    ``beam_speedups.new_pipeline``'s default pickler when they name none."""
    schema = config.schema
    decoder = config.dataset.csv_decoder(schema)
    windows, lookups = config.dataset.windows(schema), config.dataset.lookups(schema)
    decoded = config.dataset.decoded_schema(decoder, schema)
    adapter_config = tensor_adapter_config(decoded, schema)
    csv_inputs = config.csv_inputs
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

    pipeline = beam_speedups.new_pipeline(beam_args)
    # No deep-copy optimization: it re-runs the read for each TFT phase, which
    # would also count every training row twice.
    with tft_beam.Context(temp_dir=config.temp_dir, passthrough_keys={ROW_KEY}):
        raw = pipeline | "ReadRaw" >> ReadRaw(
            csv_inputs, decoder, layout.rejected_prefix(out), config.limit, bigquery)
        # Identical rows are counted in every input, and dropped from the
        # training input only when asked.
        repeated = {name: raw[name] | f"RepeatedRows{name.capitalize()}" >> RepeatedRows(name)
                    for name in ("train", "serving") if name in raw}
        # What a second read of the training input drops: the first read's repeats.
        dropped = repeated["train"] if config.drop_duplicates else None
        if dropped is not None:
            raw["train"] = raw["train"] | "Deduplicate" >> Deduplicate(dropped)
        raw = _with_lookups(raw, lookups, "JoinLookups")
        events = {}
        if windows:
            # Over every row of each input, before the split. The events come
            # from a read of their own: taken from this one, they would be a
            # side input of their own rows, which the DirectRunner then holds
            # in memory (BigQuery rows are held anyway).
            source = raw
            if bigquery is None:
                source = _read_again(pipeline, "ForWindows", config, decoder, dropped)
            events = _window_events(source, windows)
            raw = _with_windows(raw, windows, events, "WindowFeatures")
        limits = None
        if config.stratify_by:
            limits = raw["train"] | "StratumLimits" >> StratumLimits(
                config.stratify_by, config.eval_fraction)
        splits = {name: raw[name] for name in ("train", "serving") if name in raw
                  } | "SplitExamples" >> SplitExamples(
                      config.eval_fraction, stratify_by=config.stratify_by, limits=limits)
        statistics = splits | "GenerateStats" >> GenerateStats(schema, out)
        _ = statistics | "ValidateStats" >> ValidateStats(schema, out)
        transform_fn = splits["train"] | "Analyze" >> Analyze(
            config.dataset.load_preprocessing_fn(), adapter_config)
        if bigquery is None:
            # Transforming needs the finished transform_fn, so the DirectRunner
            # would hold every row in memory until the analysis is done. Reading
            # the CSV again streams them instead: memory stays flat as inputs grow.
            again = _read_again(pipeline, "Again", config, decoder, dropped)
            again = _with_lookups(again, lookups, "JoinLookupsAgain")
            if windows:
                again = _with_windows(again, windows, events, "WindowFeaturesAgain")
            splits = again | "SplitAgain" >> SplitExamples(
                config.eval_fraction, counted=False, stratify_by=config.stratify_by,
                limits=limits)
        serving = None
        if config.serving_without:
            serving = (tensor_adapter_config(decoded, schema, serving=True),
                       config.serving_without)
        transformed = splits | "Transform" >> Transform(adapter_config, transform_fn, serving)
        if config.oversample_minority:
            # After the analysis and the statistics: they see each row once.
            transformed["train"] = transformed["train"] | "OversampleMinority" >> (
                OversampleMinority(config.dataset.transforms.LABEL_KEY,
                                   config.oversample_minority))
        _ = transformed | "WriteOutputs" >> WriteOutputs(out, transform_fn, schema)
    return pipeline


def _read_again(pipeline: beam.Pipeline, label: str, config: RunConfig, decoder,
                repeated) -> dict:
    """An uncounted read of the CSV inputs already read once, less the training
    input's duplicates when ``repeated`` (the first read's) is given."""
    again = pipeline | f"Read{label}" >> ReadRaw(
        config.csv_inputs, decoder, rejected_prefix=None, limit=config.limit)
    if repeated is not None:
        again["train"] = again["train"] | f"Deduplicate{label}" >> Deduplicate(
            repeated, counted=False)
    return again


def _with_lookups(raw: dict, lookups: tuple, label: str) -> dict:
    """The inputs' batches with the columns of the dataset's reference tables."""
    if not lookups:
        return raw
    return {name: (batches | f"{label}{name.capitalize()}" >> JoinLookups(lookups)
                   if name != REJECTED else batches)
            for name, batches in raw.items()}


def _with_derived(pipeline: beam.Pipeline, raw: dict, inputs: dict[str, str], decoder,
                  dataset: Dataset, schema: schema_pb2.Schema, limit: int | None) -> dict:
    """One read's batches with the joined columns and the window features, the
    events from an uncounted read of the same ``inputs`` (as ``run`` derives them)."""
    raw = _with_lookups(raw, dataset.lookups(schema), "JoinLookups")
    windows = dataset.windows(schema)
    if windows:
        source = pipeline | "ReadForWindows" >> ReadRaw(
            inputs, decoder, rejected_prefix=None, limit=limit)
        raw = _with_windows(raw, windows, _window_events(source, windows), "WindowFeatures")
    return raw


def _window_events(raw: dict, windows: Windows) -> dict:
    """Each input's window events (``WindowEvents``), by input name."""
    return {name: raw[name] | f"WindowEvents{name.capitalize()}" >> WindowEvents(windows)
            for name in ("train", "serving") if name in raw}


def _with_windows(raw: dict, windows: Windows, events: dict, label: str) -> dict:
    """The inputs' batches with their window features, each input's from its
    own rows' ``events``."""
    return {name: (batches | f"{label}{name.capitalize()}" >> AddWindowFeatures(
                windows, events[name]) if name in events else batches)
            for name, batches in raw.items()}


@dataclasses.dataclass(frozen=True)
class ValidateConfig:
    """What one ``validate`` reads and writes: new serving rows of a finished
    run, validated against its schema, its training statistics and, for drift,
    a former span's statistics; the outputs go to ``output_dir``, a span's
    directory laid out as a run's (``stats/``, ``anomalies/``, ``rejected/``)."""

    dataset: Dataset
    schema: schema_pb2.Schema
    serving_input: str
    output_dir: str
    eval_fraction: float
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None
    limit: int | None = None
    # The input is a request log (``pipelines.decode.request_logs``) and
    # ``schema`` its ``logged_schema``: read as written, nothing derived again.
    request_log: bool = False


def build_validate_pipeline(config: ValidateConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the ``validate`` pipeline: the stages ``run`` applies to its
    serving split, up to validation."""
    out = config.output_dir
    pipeline = beam_speedups.new_pipeline(beam_args)
    decoder = (log_decoder(config.schema) if config.request_log
               else config.dataset.csv_decoder(config.schema))
    raw = pipeline | "ReadRaw" >> ReadRaw(
        {"serving": config.serving_input}, decoder, layout.rejected_prefix(out), config.limit)
    if not config.request_log:
        raw = _with_derived(pipeline, raw, {"serving": config.serving_input}, decoder,
                            config.dataset, config.schema, config.limit)
    splits = {"serving": raw["serving"]} | "SplitExamples" >> SplitExamples(
        config.eval_fraction)
    statistics = splits | "GenerateStats" >> GenerateStats(config.schema, out)
    previous = config.previous_statistics
    _ = statistics | "ValidateStats" >> ValidateStats(
        config.schema, out,
        training=pipeline | "TrainingStats" >> beam.Create([config.training_statistics]),
        previous=(pipeline | "PreviousStats" >> beam.Create([previous])) if previous else None)
    return pipeline


@dataclasses.dataclass(frozen=True)
class PredictConfig:
    """What one ``predict`` reads and writes: raw CSV rows of ``dataset`` (as
    the serving model carries it) scored by the model at ``model_dir``, whose
    ``predict_raw`` signature names its output ``output``."""

    dataset: Dataset
    schema: schema_pb2.Schema
    input: str
    output_dir: str
    model_dir: str
    output: str
    limit: int | None = None


def build_predict_pipeline(config: PredictConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the ``predict`` pipeline: the rows read as ``run`` reads a
    serving input (rejected rows to ``rejected/``), their joined and window
    features derived from the input's own rows, then ``RunInference``."""
    out = config.output_dir
    decoder = config.dataset.csv_decoder(config.schema)
    inputs = {"serving": config.input}
    pipeline = beam_speedups.new_pipeline(beam_args)
    raw = pipeline | "ReadRaw" >> ReadRaw(inputs, decoder, layout.rejected_prefix(out),
                                          config.limit)
    raw = _with_derived(pipeline, raw, inputs, decoder, config.dataset, config.schema,
                        config.limit)
    _ = raw["serving"] | "Predict" >> Predict(
        config.model_dir, config.output, config.dataset.csv_format.key_columns,
        layout.predictions_prefix(out))
    return pipeline


@dataclasses.dataclass(frozen=True)
class StreamConfig:
    """The streaming job: CSV lines from ``input_topic`` -> rows with their
    window features, as JSON, to ``output_topic``; rejected and late rows to
    ``rejected_topic``."""

    dataset: Dataset
    schema: schema_pb2.Schema
    input_topic: str
    output_topic: str
    rejected_topic: str
    allowed_lateness: int


def build_streaming_pipeline(config: StreamConfig, beam_args: list[str]) -> beam.Pipeline:
    """Constructs the streaming job (``--streaming`` among ``beam_args``)."""
    windows = config.dataset.windows(config.schema)
    decoder = line_decoder(columns_from_schema(config.schema), config.dataset.csv_format)
    pipeline = beam_speedups.new_pipeline(beam_args)
    decoded = (pipeline
               | "ReadPubSub" >> beam.io.ReadFromPubSub(topic=config.input_topic)
               | "DecodeMessages" >> beam.ParDo(DecodeMessages(decoder, windows)).with_outputs(
                   PUBSUB_REJECTED, main="rows"))
    rows = decoded.rows
    lookups = config.dataset.lookups(config.schema)
    if lookups:
        rows = rows | "JoinLookups" >> JoinLookups(lookups)
    enriched = rows | "WindowFeatures" >> StreamingWindowFeatures(
        windows, config.allowed_lateness)
    _ = (enriched["rows"]
         | "EncodeRows" >> beam.ParDo(EncodeRows())
         | "WriteRows" >> beam.io.WriteToPubSub(config.output_topic))
    late = (enriched["late"]
            | "EncodeLate" >> beam.ParDo(EncodeRows())
            | "AsLate" >> beam.Map(late_message))
    _ = ((decoded[PUBSUB_REJECTED], late)
         | "AllRejected" >> beam.Flatten()
         | "WriteRejected" >> beam.io.WriteToPubSub(config.rejected_topic))
    return pipeline


@dataclasses.dataclass(frozen=True)
class Executed:
    """A finished pipeline: its result and its rows, accounted for."""

    result: beam.runners.runner.PipelineResult
    rows: dict[str, int]  # counters.ROW_COUNTS

    def counter(self, name: str) -> int:
        return counters.counter_totals(self.result).get(name, 0)

    def rejected_by_kind(self) -> dict[str, int]:
        return counters.rejected_by_kind(self.result)

    def duplicates_found(self) -> dict[str, int]:
        return counters.duplicates_found(self.result)

    def stage_seconds(self) -> dict[str, float] | None:
        return counters.stage_seconds(self.result, STAGE_LABELS)


def execute(pipeline: beam.Pipeline) -> Executed:
    """Runs ``pipeline`` to the end and checks that every row read is accounted
    for: read == train + eval + serving + rejected + duplicates dropped (the
    oversampled copies are extra records, counted apart).

    Raises:
      RuntimeError: the row accounting does not add up.
    """
    result = pipeline.run()
    result.wait_until_finish()
    progress.finish()
    rows = counters.row_counts(result)
    accounted = (rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"]
                 + rows["duplicates_dropped"])
    if rows["read"] != accounted:
        raise RuntimeError(f"row accounting failed: read {rows['read']} != train + eval + "
                           f"serving + rejected + duplicates dropped = {accounted}")
    return Executed(result, rows)
