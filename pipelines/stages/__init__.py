"""The Beam stages, one labelled composite transform per stage, and what runs
inside them on the workers: ``ReadRaw`` (``read``), ``ReadBigQuery``
(``bigquery``), ``SplitExamples`` (``split``), ``GenerateStats`` and
``ValidateStats`` (``statistics``), ``Analyze``, ``Transform`` and
``WriteOutputs`` (``transform``); the row counters they increment
(``counters``) and their progress lines (``progress``).
"""

__all__ = ["bigquery", "counters", "progress", "read", "split", "statistics", "transform"]
