"""The Python API: the commands a notebook or another program calls without
the CLI, each taking a typed request and returning a typed record. The CLI
(``pipelines.cli``) calls these same functions.

    from pipelines import api
    from pipelines.options import RunOptions

    record = api.run(RunOptions(output_dir="/tmp/flights", limit=5000))
    print(record.rows.train, record.rows.eval, record.skew["origin"])
    report = api.check_parity(record.output_dir)
    assert not report.mismatches

- ``run(RunOptions) -> RunRecord``: the whole pipeline; the record is what
  ``run_summary.json`` holds (``pipelines.records.run_record``).
- ``validate(ValidateOptions) -> Validation``: new serving data against a run;
  the entry appended to ``validation_summary.json``.
- ``check_parity(run_dir, ...) -> ParityReport``: serving's transformation
  against the pipeline's records.
- ``predict(PredictOptions) -> Predictions``: raw rows scored in batch.

Beam's flags (``--runner``, ``--direct_num_workers``, ...) go in ``beam_args``
as on the command line. Problems a user can fix raise ``pipelines.errors.
UserError``, whose message is the one line the CLI prints. The functions print
what the commands print (progress, the run's table). Beam's speed-ups
(``pipelines.beam_speedups``) patch Beam for the whole process, so only the
program installs them; a program of your own may call
``beam_speedups.install()`` first.
"""

from collections.abc import Sequence

from pipelines import layout, process
from pipelines.options import DiffOptions, PredictOptions, RunOptions, ValidateOptions

__all__ = ["DiffOptions", "PredictOptions", "RunOptions", "ValidateOptions", "check_parity",
           "diff", "predict", "run", "validate"]


def run(options: RunOptions, beam_args: Sequence[str] = (), *, started: float | None = None):
    """Runs the pipeline as ``python -m pipelines run`` does.

    Args:
      options: the run's flags.
      beam_args: Beam's flags.
      started: when the work began, for the record's start-up time
        (``time.monotonic()``; default: now).

    Returns:
      The run's ``RunRecord``, or None when nothing ran here: a Dataflow dry
      run (the job description is written) or a submitted streaming job.
    """
    process.import_the_stack()
    from pipelines.commands import run as command

    return command.run(options, list(beam_args), started=started)


def validate(options: ValidateOptions, beam_args: Sequence[str] = ()):
    """Validates new serving data against a completed run, as ``python -m
    pipelines validate`` does; returns the span's ``Validation``
    (``pipelines.reports.history``)."""
    process.import_the_stack()
    from pipelines.commands import validate as command

    return command.validate(options, list(beam_args))


def diff(options: DiffOptions, beam_args: Sequence[str] = ()):
    """Compares two sides' rows joined by key, feature by feature, as ``python
    -m pipelines diff`` does; returns the ``Compared`` (``pipelines.commands.diff``)."""
    process.import_the_stack()
    from pipelines.commands import diff as command

    return command.diff(options, list(beam_args))


def check_parity(run_dir: str, split: str = layout.EVAL, n: int = 1000,
                 model: str | None = None):
    """Compares serving's ``transform_features`` with the pipeline's records of
    the first ``n`` rows of ``split``; returns the ``ParityReport``
    (``pipelines.model.check_parity``). Without ``model``, a transform-only
    serving model is exported from the run first."""
    process.import_the_stack()
    from pipelines.model import check_parity as command

    return command.check_parity(run_dir, split, n, model)


def predict(options: PredictOptions, beam_args: Sequence[str] = ()):
    """Scores raw CSV rows with a serving model, as ``python -m pipelines
    predict`` does; returns the ``Predictions`` (``pipelines.commands.predict``),
    or None for a Dataflow dry run."""
    process.import_the_stack()
    from pipelines.commands import predict as command

    return command.predict(options, list(beam_args))
