"""``GenerateStats`` and ``ValidateStats``: TFDV statistics and anomalies per split.

Every split is validated against the curated schema (types, domains, presence).
Eval and serving are also compared with the training statistics using the
schema's skew comparators (L-infinity distance for categorical features,
Jensen-Shannon divergence for numeric ones). TFDV validates one set of
statistics against the schema per call and checks skew only for the "training"
side of a call, so a split's anomalies merge two calls: schema anomalies of the
split itself, and the comparator anomalies of training vs. the split.

A schema with TFDV environments (``default_environment: "TRAINING"`` and
``"SERVING"``) lets serving data lack the features marked
``not_in_environment: "SERVING"`` (the label, the label-only inputs): the
serving split is validated in the ``SERVING`` environment and its skew and drift
are measured for the features serving data carries.
"""

import apache_beam as beam
import pyarrow as pa
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from pipelines import layout
from pipelines.decode.columns import (
    SERVING,
    TRAINING,
    columns_from_schema,
    present_with_no_values,
)
from pipelines.reports.explanations import COMPARATOR_REASONS
from pipelines.stages import progress

__all__ = ["QUANTILE_BUCKETS", "GenerateStats", "ValidateStats", "skew_between",
           "split_environment", "stats_options", "validate_split"]


# Quantile histograms of 100 buckets, not TFDV's 10: the Jensen-Shannon divergence
# of 10 quantile buckets cannot tell a heavy-tailed column (a fare, a balance)
# scaled by 1.3 from random parts of itself at 1,000 rows (its noise comes from the
# two outer buckets, which span the extremes), while 100 buckets see the scale
# 3 to 12 times above the noise (tests/test_noise.py, benchmarks/random_splits.py).
QUANTILE_BUCKETS = 100


def stats_options(schema: schema_pb2.Schema, sketch: bool = False) -> tfdv.StatsOptions:
    """Statistics of the schema's features only (not the ``row_key`` passthrough).

    ``sketch``: string features' top values, rank histogram and unique count
    from TFDV's sketches (Misra-Gries, K minimum values) instead of an exact
    count per distinct value. Their state is bounded per feature rather than
    growing with the distinct values, which the DirectRunner holds in memory;
    the top values stay exact while a feature has fewer distinct values than
    the Misra-Gries sketch's 1,024 buckets, the unique count while it has fewer
    than the 16,384 of the KMV sketch. Exact is the default: TFT's own way
    computes exact statistics (``tests/test_equivalence.py``), and skew is
    measured on them. Errors measured in ``benchmarks/RESULTS.md``.
    """
    return tfdv.StatsOptions(
        schema=schema, feature_allowlist=[f.name for f in schema.feature],
        num_quantiles_histogram_buckets=QUANTILE_BUCKETS,
        use_sketch_based_topk_uniques=sketch)


def validate_split(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    training_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    environment: str | None = None,
) -> anomalies_pb2.Anomalies:
    """Schema anomalies of ``statistics``, plus skew against the training split
    and drift against a previous span's statistics, when given.

    ``environment`` (``TRAINING`` or ``SERVING``) applies when the schema
    declares environments; in ``SERVING`` the features absent from it are
    neither required nor compared.
    """
    if environment not in schema.default_environment:
        environment = None
    # Serving data may carry what it may lack (a labelled serving split): such
    # columns are not validated there, rather than reported as unexpected.
    statistics = _without(statistics, {f.name for f in schema.feature
                                       if environment in f.not_in_environment})
    anomalies = tfdv.validate_statistics(statistics, schema, environment=environment)
    compared = _comparable(schema, environment)
    comparisons = []
    if training_statistics is not None:
        # The training side of a skew check is validated too: in its own environment.
        comparisons.append(tfdv.validate_statistics(
            training_statistics, compared, environment=environment and TRAINING,
            serving_statistics=statistics))
    if previous_statistics is not None:
        comparisons.append(tfdv.validate_statistics(
            statistics, compared, environment=environment,
            previous_statistics=previous_statistics))
    for compared in comparisons:
        _merge_comparator_anomalies(anomalies, compared)
    return anomalies


def skew_between(statistics: statistics_pb2.DatasetFeatureStatisticsList,
                 schema: schema_pb2.Schema,
                 training_statistics: statistics_pb2.DatasetFeatureStatisticsList
                 ) -> anomalies_pb2.Anomalies:
    """The skew comparisons of ``validate_split`` alone (its ``drift_skew_info``),
    the same values, for measurements that compare many random parts
    (``stages.noise``, ``commands.suggest_thresholds``): TFDV validates a schema
    of the features' names, types and comparators only, once, where
    ``validate_split`` also checks every domain and presence, twice (a quarter
    of the time at 100 features)."""
    comparators = schema_pb2.Schema()
    for feature in schema.feature:
        if not feature.HasField("skew_comparator"):
            continue
        kept = comparators.feature.add(name=feature.name, type=feature.type)
        if feature.HasField("int_domain"):  # is_categorical: compared as text
            kept.int_domain.CopyFrom(feature.int_domain)
        kept.skew_comparator.CopyFrom(feature.skew_comparator)
    return tfdv.validate_statistics(training_statistics, comparators,
                                    serving_statistics=statistics)


def _without(statistics: statistics_pb2.DatasetFeatureStatisticsList, names: set[str]
             ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """``statistics`` without the features called ``names``."""
    if not names:
        return statistics
    kept = statistics_pb2.DatasetFeatureStatisticsList()
    kept.CopyFrom(statistics)
    for dataset in kept.datasets:
        features = [f for f in dataset.features
                    if (f.path.step[-1] if f.path.step else f.name) not in names]
        del dataset.features[:]
        dataset.features.extend(features)
    return kept


def _comparable(schema: schema_pb2.Schema, environment: str | None) -> schema_pb2.Schema:
    """``schema`` without the comparators of features absent from ``environment``."""
    absent = [f for f in schema.feature if environment in f.not_in_environment]
    if not absent:
        return schema
    compared = schema_pb2.Schema()
    compared.CopyFrom(schema)
    for feature in compared.feature:
        if environment in feature.not_in_environment:
            feature.ClearField("skew_comparator")
            feature.ClearField("drift_comparator")
    return compared


def split_environment(split: str) -> str:
    """The TFDV environment of a split's data."""
    return SERVING if split == layout.SERVING else TRAINING


def _merge_comparator_anomalies(anomalies: anomalies_pb2.Anomalies,
                                compared: anomalies_pb2.Anomalies) -> None:
    for feature, info in compared.anomaly_info.items():
        reasons = [r for r in info.reason if r.type in COMPARATOR_REASONS]
        if not reasons:
            continue  # the schema anomalies of a split are reported with that split
        merged = anomalies.anomaly_info[feature]
        if not merged.reason:
            merged.path.CopyFrom(info.path)
            merged.severity = info.severity
        merged.reason.extend(reasons)
        merged.short_description = "; ".join(r.short_description for r in merged.reason)
        merged.description = " ".join(r.description for r in merged.reason)
    anomalies.drift_skew_info.extend(compared.drift_skew_info)


def _advance(batch: pa.RecordBatch, stage: str) -> pa.RecordBatch:
    progress.advance(stage, batch.num_rows)
    return batch


class GenerateStats(beam.PTransform):
    """Dict of RecordBatch PCollections -> dict of statistics, written as
    ``<output_dir>/stats/<split>.pb`` (a binary ``DatasetFeatureStatisticsList``);
    ``sketch`` as in ``stats_options``."""

    def __init__(self, schema: schema_pb2.Schema, output_dir: str, sketch: bool = False):
        super().__init__()
        self._options = stats_options(schema, sketch)
        self._output_dir = output_dir
        # The columns whose missing values TFX's examples hold as present with
        # no values (a SchemaGen schema's): so TFDV counts them, as TFX's does.
        self._present = [c.name for c in columns_from_schema(schema) if c.empty_is_present]

    def expand(self, splits):
        statistics = {}
        for name, batches in splits.items():
            label = name.capitalize()
            if self._present:
                batches = batches | f"AsTfxExamples{label}" >> beam.Map(
                    present_with_no_values, self._present)
            statistics[name] = (
                batches
                | f"Progress{label}" >> beam.Map(_advance, "statistics")
                | f"Compute{label}" >> tfdv.GenerateStatistics(self._options))
            _ = statistics[name] | f"Write{label}" >> tfdv.WriteStatisticsToBinaryFile(
                layout.stats_file(self._output_dir, name))
        return statistics


class _Validate(beam.DoFn):
    """``validate_split`` as a DoFn; its process() is left unannotated because
    Beam cannot type-check an optional side input against a Union hint."""

    def __init__(self, schema: schema_pb2.Schema, environment: str):
        self._schema = schema
        self._environment = environment

    def process(self, statistics, training_statistics=None, previous_statistics=None):
        yield validate_split(statistics, self._schema, training_statistics, previous_statistics,
                             self._environment)


class ValidateStats(beam.PTransform):
    """Dict of statistics -> dict of anomalies, written as
    ``<output_dir>/anomalies/<split>.pbtxt``.

    Every split is checked against the schema; the others than ``train`` also
    for skew against the training statistics (``training``, a one-element
    PCollection, or the ``train`` entry) and, given ``previous``, for drift
    against a former span's statistics.
    """

    def __init__(self, schema: schema_pb2.Schema, output_dir: str,
                 training=None, previous=None):
        super().__init__()
        self._schema = schema
        self._output_dir = output_dir
        self._training = training
        self._previous = previous

    def expand(self, statistics):
        training = beam.pvalue.AsSingleton(
            self._training if self._training is not None else statistics[layout.TRAIN])
        anomalies = {}
        for name, stats in statistics.items():
            label = name.capitalize()
            side = {}
            if name != layout.TRAIN:
                side["training_statistics"] = training
                if self._previous is not None:
                    side["previous_statistics"] = beam.pvalue.AsSingleton(self._previous)
            anomalies[name] = stats | f"Validate{label}" >> beam.ParDo(
                _Validate(self._schema, split_environment(name)), **side)
            _ = (anomalies[name]
                 | f"Format{label}" >> beam.Map(text_format.MessageToString)
                 | f"Write{label}" >> beam.io.WriteToText(
                     layout.anomalies_file(self._output_dir, name),
                     shard_name_template="", num_shards=1))
        return anomalies
