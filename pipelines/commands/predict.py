"""``predict``: score raw CSV rows in batch with a serving model.

    python -m pipelines predict --model M/serving --input GLOB --output_dir DIR
        [--limit N] [--overwrite] [Beam flags, Dataflow and --dry_run included]

The rows are read in the dialect of the dataset the model was trained on,
which the model carries (``assets.extra/dataset/``): a headerless census file
without its label is scored with no other flag. Window and joined features are
derived from the input's own rows, as ``run`` derives them; every row is then
scored by Beam's ``RunInference`` with the model's ``predict_raw`` signature,
the one the REST API answers with. Writes ``DIR/predictions-*.csv`` (header
``row_key,<key columns>,<output>``) and the rows that could not be read to
``DIR/rejected/``, as ``run`` does.
"""

import argparse
import functools
import gc
import json

import tensorflow as tf
from apache_beam.utils import shared

from pipelines import datasets, layout
from pipelines.commands import dataflow, preflight
from pipelines.errors import UserError
from pipelines.pipeline import PredictConfig, build_predict_pipeline, execute

__all__ = ["predict"]


def predict(args: argparse.Namespace, beam_args: list[str]) -> int:
    """The ``predict`` command; returns its exit status."""
    preflight.check_beam_flags(beam_args)
    remote = dataflow.settings(beam_args, args.dry_run)
    info, dataset = _model(args.model)
    schema = dataset.schema()
    config = PredictConfig(dataset=dataset, schema=schema, input=args.input,
                           output_dir=args.output_dir.rstrip("/"), model_dir=args.model,
                           output=info["output"], limit=args.limit)
    if remote is not None:
        preflight.check_reachable_by_workers(config.output_dir, args.input, args.model)
    if remote and remote.dry_run:
        return dataflow.dry_run(
            functools.partial(build_predict_pipeline, config, beam_args + ["--dry_run=True"]),
            args.job_description or dataflow.default_job_description(f"{dataset.name}_predict"))
    preflight.check_input(args.input, dataset.csv_decoder(schema).for_serving())
    if tf.io.gfile.exists(config.output_dir) and tf.io.gfile.listdir(config.output_dir):
        if not args.overwrite:
            raise UserError(f"{config.output_dir} is not empty: pass --overwrite or another "
                            f"--output_dir")
        tf.io.gfile.rmtree(config.output_dir)
    preflight.announce_input_size([args.input], args.limit)
    print(f"Predicting with {args.model} ({dataset.name}, output {config.output!r}): "
          f"{args.input} -> {config.output_dir}", flush=True)
    # execute checks that every row read was scored or rejected.
    executed = execute(build_predict_pipeline(config, beam_args))
    predicted, rejected = executed.rows["serving"], executed.rows["rejected"]
    _release_shared_model()
    print(f"{predicted:,} rows predicted, {rejected:,} rejected (rows in "
          f"{predicted + rejected:,}): {layout.predictions_prefix(config.output_dir)}-*.csv",
          flush=True)
    return 0


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


def _model(model_dir: str) -> tuple[dict, datasets.Dataset]:
    """The serving model's info and the dataset it carries.

    Raises:
      UserError: not a serving model with a model, or one exported before
        models carried their dataset.
    """
    info_file = layout.serving_info_file(model_dir)
    if not tf.io.gfile.exists(info_file):
        raise UserError(f"{model_dir} is not a serving model (no {info_file}); pass the "
                        f"serving directory `train` wrote (M/serving)")
    with tf.io.gfile.GFile(info_file) as f:
        info = json.load(f)
    if not info.get("output"):
        raise UserError(f"{model_dir} is a transform-only export; predict needs a model "
                        f"exported by `python -m pipelines train` (M/serving)")
    directory = layout.serving_dataset_dir(model_dir)
    if not tf.io.gfile.exists(directory):
        raise UserError(f"{model_dir} was exported before models carried their dataset; "
                        f"export it again with `python -m pipelines train`")
    return info, datasets.load_directory(directory)
