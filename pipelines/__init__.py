"""Beam pipelines that turn raw CSV into validated, TFT-transformed examples.

Entry points: ``python -m pipelines`` or ``tft-preprocessing`` (``pipelines.cli``),
and the Python API (``pipelines.api``); one module per command in
``pipelines.commands`` and ``pipelines.model``. The Beam pipelines are built by
``pipelines.pipeline`` from one composite transform per stage
(``pipelines.stages``), which decode rows with ``pipelines.decode``;
``pipelines.reports`` reads finished runs, and ``pipelines.records`` holds the
files that pass between commands. Every output's name is in
``pipelines.layout``; ``docs/architecture.md`` shows the layers.
"""

import os

# TFT 1.16 is built on Keras 2: make `tf.keras` resolve to tf_keras, not Keras 3.
# Set before anything imports TensorFlow, on the launcher and on every worker.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

__all__ = ["api", "cli", "options"]
