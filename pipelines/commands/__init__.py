"""What runs on the launching machine, one module per command of
``python -m pipelines``, named after it: ``run``, ``init``, ``validate``,
``predict``, ``infer_schema``, ``suggest_thresholds``, ``bigquery_sql``; each
takes its typed request (``pipelines.options``); with the checks made
before a pipeline is built (``preflight``), staging and publishing a run's
outputs (``staging``) and Dataflow submission and dry runs (``dataflow``).
The model-side commands (``train``, ``export-serving``, ``check-parity``,
``serve``) live in ``pipelines.model``.
"""

__all__ = [
    "bigquery_sql", "dataflow", "infer_schema", "init", "predict", "preflight", "run", "staging",
    "suggest_thresholds", "validate",
]
