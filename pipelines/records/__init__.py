"""The files that carry a contract between commands, each read and written by
one module, as typed records: a run's record (``run_record``, what
``run_summary.json`` holds: how the run was made and what it found) and a
serving model's info (``serving_info``, ``assets.extra/serving_info.json``).

A reader never indexes these files by key: it reads the record, whose fields
say what there is. Records written by older versions of the package read with
defaults for the fields they lack.
"""

__all__ = ["json_files", "run_record", "serving_info"]
