"""Beam pipelines that turn raw CSV into validated, TFT-transformed examples.

Entry point: ``python -m pipelines`` (``pipelines.cli``), one module per command
in ``pipelines.commands`` and ``pipelines.model``. The pipelines are built by
``pipelines.pipeline`` from one composite transform per stage
(``pipelines.stages``), which decode rows with ``pipelines.decode``;
``pipelines.reports`` reads finished runs. Every output's name is in
``pipelines.layout``.
"""

import os

# TFT 1.16 is built on Keras 2: make `tf.keras` resolve to tf_keras, not Keras 3.
# Set before anything imports TensorFlow, on the launcher and on every worker.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__all__ = ["build_pipeline", "RunConfig"]


def __getattr__(name):
    # Lazy, so that `python -m pipelines --help` does not import TensorFlow.
    if name in __all__:
        from pipelines import pipeline

        return getattr(pipeline, name)
    raise AttributeError(name)
