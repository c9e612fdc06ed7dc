"""``predict``: score raw CSV rows in batch with a serving model.

    python -m pipelines predict --model M/serving --input GLOB --output_dir DIR
        [--passthrough COL,...] [--limit N] [--overwrite]
        [Beam flags, Dataflow and --dry_run included]

The rows are read in the dialect of the dataset the model was trained on,
which the model carries (``assets.extra/dataset/``): a headerless census file
without its label is scored with no other flag. Window and joined features are
derived from the input's own rows, as ``run`` derives them; every row is then
scored by Beam's ``RunInference`` with the model's ``predict_raw`` signature,
the one the REST API answers with, each column passed by its own name
(``serving_info.RawSignature``). Writes ``DIR/predictions-*.csv`` (header
``row_key,<key columns>,<--passthrough columns>,<output>``; a dataset without
key columns has ``input_file,input_line`` before the output instead, which
join each prediction back to its input row) and the rows that could not be
read to ``DIR/rejected/``, as ``run`` does, holding ``DIR``'s lock
(``writer_lock``) meanwhile: a second writer of ``DIR`` is refused in one line.

Like a run, a prediction is written under ``DIR/.staging/`` and moved into
``DIR`` only once it has succeeded (``staging``): a failed or killed predict
leaves nothing beside the lock but ``.staging/``, which the next predict into
``DIR`` removes (it holds the lock, so no live predict is writing there), and
never a ``beam-temp-*`` directory that would make ``DIR`` look taken.
"""

import collections
import dataclasses
import functools
import gc

import tensorflow as tf
from apache_beam.utils import shared

from pipelines import datasets, layout
from pipelines.commands import dataflow, preflight, staging
from pipelines.errors import UserError
from pipelines.options import PredictOptions
from pipelines.pipeline import PredictConfig, build_predict_pipeline, execute
from pipelines.records import writer_lock
from pipelines.records.serving_info import ServingInfo
from pipelines.stages.predictions import prediction_fields

__all__ = ["Predictions", "predict"]


@dataclasses.dataclass(frozen=True)
class Predictions:
    """What one ``predict`` wrote: every row read was scored or rejected.

    Attributes:
      predicted: the rows scored.
      rejected: the rows that could not be read (in ``output_dir/rejected/``).
      files: the predictions' shards, ``PREFIX-NNNNN-of-NNNNN.csv``.
    """

    predicted: int
    rejected: int
    files: str


def predict(options: PredictOptions, beam_args: list[str]) -> Predictions | None:
    """The ``predict`` command; None for a Dataflow dry run."""
    preflight.check_beam_flags(beam_args)
    remote = dataflow.settings(beam_args, options.dry_run)
    info = ServingInfo.read(options.model)
    info.require_model(options.model, "predict")
    dataset = _dataset(options.model)
    schema = dataset.schema()
    config = PredictConfig(dataset=dataset, schema=schema, input=options.input,
                           output_dir=options.output_dir.rstrip("/"), model_dir=options.model,
                           output=info.output, limit=options.limit,
                           passthrough=tuple(options.passthrough))
    _check_passthrough(config)
    if remote is not None:
        preflight.check_reachable_by_workers(config.output_dir, options.input, options.model)
    if remote and remote.dry_run:
        dataflow.dry_run(
            functools.partial(build_predict_pipeline, config, beam_args + ["--dry_run=True"]),
            options.job_description
            or dataflow.default_job_description(f"{dataset.name}_predict"))
        return None
    preflight.check_input(options.input, dataset.csv_decoder(schema).for_serving())
    with writer_lock.hold(config.output_dir, "predict", "--output_dir"):
        return _predict(options, beam_args, config)


def _predict(options: PredictOptions, beam_args: list[str], config: PredictConfig
             ) -> Predictions:
    """Scores the rows into ``config.output_dir``, whose lock is held, by way of
    a staging directory of its own."""
    final = config.output_dir
    held = [name for name in (tf.io.gfile.listdir(final) if tf.io.gfile.exists(final) else [])
            if name.rstrip("/") not in (layout.LOCK_FILE, layout.STAGING)]
    if held:
        if not options.overwrite:
            raise UserError(f"{final} is not empty: pass --overwrite or another --output_dir")
        # Everything but the lock, which this command holds.
        for name in held:
            _remove(f"{final}/{name.rstrip('/')}")
    # What interrupted predicts left: none is live, this one holds the lock.
    _remove(f"{final}/{layout.STAGING}")
    staged = staging.staging_dir(final)
    preflight.announce_input_size([options.input], options.limit)
    print(f"Predicting with {options.model} ({config.dataset.name}, output "
          f"{config.output!r}): {options.input} -> {final}", flush=True)
    try:
        # execute checks that every row read was scored or rejected.
        executed = execute(build_predict_pipeline(
            dataclasses.replace(config, output_dir=staged), beam_args))
    except BaseException:
        _remove(f"{final}/{layout.STAGING}")
        raise
    finally:
        _release_shared_model()
    staging.promote(staged, final)
    predictions = Predictions(executed.rows.serving, executed.rows.rejected,
                              f"{layout.predictions_prefix(final)}-*.csv")
    print(f"{predictions.predicted:,} rows predicted, {predictions.rejected:,} rejected (rows "
          f"in {predictions.predicted + predictions.rejected:,}): {predictions.files}",
          flush=True)
    return predictions


def _remove(path: str) -> None:
    if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
    elif tf.io.gfile.exists(path):
        tf.io.gfile.remove(path)


def _check_passthrough(config: PredictConfig) -> None:
    """Refuses a ``--passthrough`` column the rows do not have, and a header
    that would name a column twice, each in one line."""
    columns = [f.name for f in config.schema.feature]
    unknown = [name for name in config.passthrough if name not in columns]
    if unknown:
        raise UserError(f"--passthrough names {', '.join(map(repr, unknown))}, not a column "
                        f"of {config.dataset.name}'s rows; its columns: {', '.join(columns)}")
    header = prediction_fields(config.written_columns, config.output, config.writes_origin)
    twice = sorted(n for n, count in collections.Counter(header).items() if count > 1)
    if twice:
        raise UserError(f"the predictions' header would name {', '.join(map(repr, twice))} "
                        f"twice: leave it out of --passthrough")


class _Placeholder:
    """Something small for Beam's ``Shared`` to keep alive instead of the model."""


def _release_shared_model() -> None:
    """Frees the model RunInference loaded, while TensorFlow is still whole.

    Beam's ``Shared`` keeps the last object acquired alive, process-wide; left
    to the interpreter's exit, the model's functions are finalized after
    TensorFlow's modules and print a traceback each. Acquiring another object
    takes the model's place.
    """
    shared.Shared().acquire(_Placeholder)
    gc.collect()


def _dataset(model_dir: str) -> datasets.Dataset:
    """The dataset the serving model carries.

    Raises:
      UserError: a model exported before models carried their dataset.
    """
    directory = layout.serving_dataset_dir(model_dir)
    if not tf.io.gfile.exists(directory):
        raise UserError(f"{model_dir} was exported before models carried their dataset; "
                        f"export it again with `python -m pipelines train`")
    return datasets.load_directory(directory)
