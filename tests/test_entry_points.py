"""The ways in: the ``tft-preprocessing`` console script and ``python -m
pipelines`` as processes of their own, and the Python API (``pipelines.api``)
called as a notebook calls it, without the CLI."""

import os
import shutil
import subprocess
import sys

import pytest

from pipelines import api
from pipelines.options import RunOptions
from pipelines.records.run_record import RunRecord
from tests.conftest import PROJECT_ROOT, run_program

CONSOLE_SCRIPT = os.path.join(os.path.dirname(sys.executable), "tft-preprocessing")


def test_the_console_script_is_the_cli():
    assert shutil.which(CONSOLE_SCRIPT), (
        f"{CONSOLE_SCRIPT} is missing: pip install . installs it (setup.py entry_points)")
    result = subprocess.run([CONSOLE_SCRIPT, "--help"], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: tft-preprocessing [-h] COMMAND ...")
    for command in ("run", "validate", "check-parity", "predict", "train", "serve"):
        assert f"    {command} " in result.stdout, command
    result = subprocess.run([CONSOLE_SCRIPT, "run", "--help"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "--output_dir OUTPUT_DIR" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["run", "--dataset", "nope", "--output_dir", "out"],
     "error: unknown dataset 'nope'; registered datasets: census, flights"),
    (["check-parity", "--run_dir", "/nonexistent/run"],
     "error: /nonexistent/run holds no completed run (run_summary.json is missing)"),
])
def test_the_program_reports_a_mistake_in_one_line_and_exits_2(args, message):
    result = run_program(*args, timeout=300)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and lines[0].startswith(message), result.stderr[-2000:]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_the_api_runs_the_job_as_the_cli_does(flights_run, tmp_path):
    """What a notebook does: typed options in, the run's record out, the same
    record the CLI's run of the same inputs wrote."""
    record = api.run(RunOptions(output_dir=str(tmp_path / "out"), dataset="flights",
                                train_input=flights_run.train_input,
                                serving_input=flights_run.serving_input))
    assert isinstance(record, RunRecord)
    assert record == RunRecord.read(str(tmp_path / "out"))
    cli = RunRecord.from_json(flights_run.summary)
    assert record.rows == cli.rows
    assert (record.anomalies, record.skew, record.duplicates, record.rejected_by_reason) == (
        cli.anomalies, cli.skew, cli.duplicates, cli.rejected_by_reason)
    report = api.check_parity(record.output_dir, n=200)
    assert (report.rows, report.mismatches) == (200, [])
