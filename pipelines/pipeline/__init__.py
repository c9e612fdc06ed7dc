"""The Beam pipelines, one module each, built from the stages
(``pipelines.stages``) and returned constructed, not run:

- ``run``: the whole pipeline (``build_pipeline``, ``RunConfig``);
- ``validate``: new serving rows against a finished run;
- ``predict``: raw rows scored by a serving model;
- ``streaming``: window features over Pub/Sub;

each starting with ``prepare.PrepareInputs`` (read, duplicates, lookups,
windows); ``execute`` runs one and accounts for its rows.
"""

from pipelines.pipeline.execute import Executed, execute
from pipelines.pipeline.predict import PredictConfig, build_predict_pipeline
from pipelines.pipeline.run import STAGES, RunConfig, build_pipeline, stage_of
from pipelines.pipeline.streaming import StreamConfig, build_streaming_pipeline
from pipelines.pipeline.validate import ValidateConfig, build_validate_pipeline

__all__ = [
    "STAGES", "Executed", "PredictConfig", "RunConfig", "StreamConfig", "ValidateConfig",
    "build_pipeline", "build_predict_pipeline", "build_streaming_pipeline",
    "build_validate_pipeline", "execute", "stage_of",
]
