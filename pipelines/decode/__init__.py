"""Raw rows into Arrow, without Beam pipelines: the columns a schema declares
(``columns``), CSV files (``csv_decoder``, ``files``) and how they are written
(``dialect``), BigQuery rows and SQL (``bigquery``), each row's key and split
bucket (``row_keys``) and content fingerprint (``fingerprints``), lookup joins
(``lookups``), window features (``windows``) and the steps that prepare an
input's rows before the split (``prepare``).

Kept free of heavy imports itself: ``python -m pipelines --help`` reads
``DEFAULT_EVAL_FRACTION`` from here.
"""

__all__ = ["DEFAULT_EVAL_FRACTION"]

# The share of training rows held out as eval unless --eval_fraction says otherwise.
DEFAULT_EVAL_FRACTION = 0.2
