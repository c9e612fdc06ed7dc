"""The Beam stages, one labelled composite transform per stage, and what runs
inside them on the workers: ``ReadRaw`` (``read``), ``ReadBigQuery``
(``bigquery``), ``ReadMessages`` (``pubsub``), ``RepeatedRows`` and
``Deduplicate`` (``duplicates``), ``JoinLookups`` (``lookups``),
``WindowEvents``, ``AddWindowFeatures`` and ``StreamingWindowFeatures``
(``windows``), ``SplitExamples`` (``split``), ``GenerateStats`` and
``ValidateStats`` (``statistics``), ``Analyze``, ``Transform`` and
``WriteOutputs`` (``transform``), ``OversampleMinority`` (``oversample``) and
``Predict`` (``predictions``); the row counters they increment (``counters``)
and their progress lines (``progress``). The pipelines
(``pipelines.pipeline``) apply the first five through ``PrepareInputs``.
"""

__all__ = [
    "bigquery", "counters", "duplicates", "lookups", "oversample", "predictions", "progress",
    "pubsub", "read", "split", "statistics", "transform", "windows",
]
