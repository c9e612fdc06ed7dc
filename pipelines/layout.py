"""Every name a run writes under ``OUTPUT_DIR``, in one place.

``run`` writes all of them into a staging directory and publishes them together
(``pipelines.commands.staging``); ``validate`` adds to a finished run; the
model side and the reports read them. Paths may be local or ``gs://``::

    OUTPUT_DIR/
      metadata/schema.pbtxt          the raw (curated) schema
      stats/{train,eval,serving}.pb  DatasetFeatureStatisticsList, binary
      stats/{eval,serving}.noise.json  the comparators' noise at the split's rows
      anomalies/{train,eval,serving}.pbtxt
      data/{train,eval,serving}/part-*.tfrecord.gz
      transform_fn/  transformed_metadata/   (TFT's own names)
      rejected/rejected-*.jsonl      the dead-letter rows
      report.html                    the data validation report
      validation_summary.json        the serving split's validation, then each span's
      validations/SPAN/              what ``validate`` wrote for each span
      dataset/                       the dataset the run used, as a dataset directory
      run_summary.json               written last: a completed run's, when it parses
      .lock                          held by the one command writing the directory

A serving model (``M/serving``) carries what ``serve`` and ``predict`` need
besides its graph, under TF Serving's ``assets.extra/``::

    assets.extra/serving_info.json   the dataset's name, signatures, features, output key
    assets.extra/dataset/            the dataset it was trained on, as a dataset directory
                                     (its CSV dialect, schema and transforms)

``predict`` writes ``predictions-*.csv`` and ``rejected/`` under its output directory.
"""

import os

__all__ = [
    "EVAL", "INPUTS", "LOCK_FILE", "OUTPUTS", "REPORT", "SERVING", "SPLITS", "STAGING",
    "SUMMARY_FILE", "TEMP", "TRAIN", "VALIDATION_SUMMARY",
    "anomalies_file", "data_dir", "data_files_pattern", "dataset_dir", "raw_schema_file",
    "predictions_prefix", "rejected_dir", "rejected_prefix", "serving_dataset_dir",
    "noise_file", "paired_dir", "row_skew_file", "row_skew_prefix", "serving_info_file",
    "side_rejected_prefix", "stats_file", "validation_dir",
]

# The splits a run writes, and the inputs it reads: training rows (split into
# train and eval) and serving rows.
TRAIN, EVAL, SERVING = "train", "eval", "serving"
SPLITS = (TRAIN, EVAL, SERVING)
INPUTS = (TRAIN, SERVING)

SUMMARY_FILE = "run_summary.json"
VALIDATION_SUMMARY = "validation_summary.json"
REPORT = "report.html"
# The writer's lock (pipelines.records.writer_lock), in every directory a command
# writes (a run's, a model's, predict's); never deleted, empty between writers.
LOCK_FILE = ".lock"
STAGING = ".staging"  # runs in progress, each in a directory of its own
TEMP = "tmp"  # TFT's temporary files when --temp_dir is not given
_STATS, _ANOMALIES, _DATA, _REJECTED = "stats", "anomalies", "data", "rejected"
_METADATA, _VALIDATIONS, _DATASET = "metadata", "validations", "dataset"
_ROW_SKEW = "row_skew"  # a row-by-row comparison's outputs (diff, validate --paired)
_ASSETS_EXTRA = "assets.extra"  # TF Serving's place for a model's extra files
# Written by tft_beam.WriteTransformFn, read by tft.TFTransformOutput.
_TRANSFORM_FN, _TRANSFORMED_METADATA = "transform_fn", "transformed_metadata"

# Everything a run writes under OUTPUT_DIR, and the only names it ever deletes.
OUTPUTS = (_STATS, _ANOMALIES, _DATA, _TRANSFORM_FN, _TRANSFORMED_METADATA, _REJECTED, TEMP,
           _METADATA, _VALIDATIONS, _DATASET, VALIDATION_SUMMARY, REPORT, STAGING, SUMMARY_FILE)


def stats_file(root: str, split: str) -> str:
    return os.path.join(root, _STATS, f"{split}.pb")


def noise_file(root: str, split: str) -> str:
    """What the comparators read with nothing changed at the split's row count
    (``pipelines.stages.noise``), beside its statistics."""
    return os.path.join(root, _STATS, f"{split}.noise.json")


def anomalies_file(root: str, split: str) -> str:
    return os.path.join(root, _ANOMALIES, f"{split}.pbtxt")


def data_dir(root: str, split: str) -> str:
    return os.path.join(root, _DATA, split)


def data_files_pattern(root: str, split: str) -> str:
    return os.path.join(data_dir(root, split), "*.tfrecord.gz")


def rejected_dir(root: str) -> str:
    return os.path.join(root, _REJECTED)


def rejected_prefix(root: str) -> str:
    """The dead-letter files' prefix: ``rejected/rejected-*.jsonl``."""
    return os.path.join(rejected_dir(root), "rejected")


def raw_schema_file(root: str) -> str:
    """Where ``tft.TFTransformOutput`` finds the raw schema."""
    return os.path.join(root, _METADATA, "schema.pbtxt")


def dataset_dir(root: str) -> str:
    """The copy of the run's dataset, which every later command on the run uses."""
    return os.path.join(root, _DATASET)


def side_rejected_prefix(root: str, side: str) -> str:
    """A compared side's dead-letter files (``diff``): ``rejected/SIDE-*.jsonl``."""
    return os.path.join(rejected_dir(root), side)


def row_skew_prefix(root: str) -> str:
    """The prefix of TFDV's row-by-row skew outputs: ``row_skew/row_skew-*``."""
    return os.path.join(root, _ROW_SKEW, _ROW_SKEW)


def row_skew_file(root: str) -> str:
    """What a row-by-row comparison found, as JSON: ``row_skew.json``."""
    return os.path.join(root, f"{_ROW_SKEW}.json")


def paired_dir(span_dir: str) -> str:
    """A span's row-by-row comparison with its paired raw rows (``validate --paired``)."""
    return os.path.join(span_dir, "paired")


def validation_dir(root: str, span: str) -> str:
    """What ``validate`` writes for one span: the same names as a run, below it."""
    return os.path.join(root, _VALIDATIONS, span)


def serving_info_file(model_dir: str) -> str:
    return os.path.join(model_dir, _ASSETS_EXTRA, "serving_info.json")


def serving_dataset_dir(model_dir: str) -> str:
    return os.path.join(model_dir, _ASSETS_EXTRA, _DATASET)


def predictions_prefix(root: str) -> str:
    """``predict``'s shards: ``PREFIX-NNNNN-of-NNNNN.csv``."""
    return os.path.join(root, "predictions")
