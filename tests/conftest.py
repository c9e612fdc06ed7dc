"""Shared fixtures: slices of the real flights data, one end-to-end run and one
trained model, and the CLI called in this interpreter.

Every TFT pipeline costs seconds of fixed start-up, and every ``python -m
pipelines`` process seven more, so the end-to-end run happens once per session
(``flights_run``) and the tests that inspect its outputs share it; commands run
in-process (``run_cli``) unless the process itself is the point
(``run_program``: killing it, its exit, its console script).
"""

import contextlib
import dataclasses
import io
import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines import beam_speedups, cli, nycflights, tfdv_speedups, tft_precision, tft_speedups

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_ROWS = 5000
SKEWED_ORIGIN = "JFK"
SKEWED_ROWS = 1000
# Rows that must be rejected, each with the reason the dead-letter output gives.
BAD_ROWS = [
    (b"2013,1,1,517,515,2,830,819,11,UA,1545,N14228,EWR\n", "expected 19 fields, found 13"),
    (b"2013,1,x,517,515,2,830,819,11,UA,1545,N14228,EWR,IAH,227,1400,5,15,"
     b"2013-01-01T10:00:00Z\n", "day: cannot parse b'x' as INT"),
    (b"2013,1,1,517,515,2,830,819,11,NA,1545,N14228,EWR,IAH,227,1400,5,15,"
     b"2013-01-01T10:00:00Z\n", "carrier: missing required value"),
]


@dataclasses.dataclass(frozen=True)
class FlightsRun:
    """A finished ``python -m pipelines run`` and the inputs it was given."""

    output_dir: str
    train_input: str
    serving_input: str
    summary: dict
    stdout: str
    stderr: str


@dataclasses.dataclass(frozen=True)
class CliResult:
    """What a command did: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def run_cli(*args: str) -> CliResult:
    """``python -m pipelines ARGS`` in this interpreter, as the program runs it
    (``cli.main`` reading ``sys.argv``), its output captured."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv
    sys.argv = ["pipelines", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = cli.main()
            except SystemExit as exit:  # argparse's usage errors
                code = exit.code
    finally:
        sys.argv = saved
    return CliResult(code, out.getvalue(), err.getvalue())


def run_program(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """``python -m pipelines ARGS`` in a fresh interpreter, as a user runs it:
    for the tests of the process itself (it costs seven seconds of start-up)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines", *args], cwd=PROJECT_ROOT,
        capture_output=True, text=True, timeout=timeout)


def pytest_configure(config):
    # This process is the program of the in-process commands: it installs Beam's,
    # TFDV's and TFT's speed-ups, and TFT's precision, once, as ``python -m pipelines``
    # does (pipelines.process).
    beam_speedups.install()
    tfdv_speedups.install()
    tft_speedups.install()
    tft_precision.install()


# The modules that share the session's trained model: one scope, so that one
# worker trains it once.
_USE_THE_TRAINED_MODEL = {"test_dataflow", "test_request_log", "test_rest", "test_rest_abuse",
                          "test_serving"}


# The modules that take longest (measured: --durations=0), so that they start
# first and no worker is left with a long one at the end; the rest follow in
# their order.
_LONGEST_FIRST = ("test_own_data", "test_dataflow", "test_serving", "test_rest",
                  "test_request_log", "test_column_names", "test_census", "test_integrity",
                  "test_windows", "test_recipes")


def _module(item: pytest.Item) -> str:
    return item.module.__name__.rsplit(".", 1)[-1]


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(_module(item), len(rank)))


def pytest_xdist_make_scheduler(config, log):
    """With pytest-xdist (``-n 2``, pytest.ini), a module's tests run on one
    worker, so its module-scoped runs happen once, and the modules that use the
    trained model run on the same worker."""
    from xdist.scheduler import LoadScopeScheduling

    class ByModule(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            stem = os.path.splitext(os.path.basename(module))[0]
            return "trained_model" if stem in _USE_THE_TRAINED_MODEL else module

    return ByModule(config, log)


def _data_lines(path: str) -> tuple[bytes, list[bytes]]:
    with open(path, "rb") as f:
        header = f.readline()
        return header, f.readlines()


@pytest.fixture(scope="session")
def flights_slices(tmp_path_factory) -> tuple[str, str]:
    """(train, serving) CSV files cut from the real 2013 data.

    Train: the first 5,000 rows of the training months plus three broken rows.
    Serving: 1,000 later rows of the same days, all departing from one airport,
    a deliberate skew of ``origin`` against train.
    """
    directory = tmp_path_factory.mktemp("flights_slices")
    header, lines = _data_lines(nycflights.default_inputs()[0])
    train = directory / "train.csv"
    train.write_bytes(header + b"".join(lines[:TRAIN_ROWS]) + b"".join(r for r, _ in BAD_ROWS))
    origin_field = header.decode().strip().split(",").index("origin")
    one_origin = [line for line in lines[TRAIN_ROWS:]
                  if line.split(b",")[origin_field] == SKEWED_ORIGIN.encode()]
    serving = directory / "serving_skewed.csv"
    serving.write_bytes(header + b"".join(one_origin[:SKEWED_ROWS]))
    return str(train), str(serving)


@pytest.fixture(scope="session")
def flights_run(tmp_path_factory, flights_slices) -> FlightsRun:
    train, serving = flights_slices
    output_dir = str(tmp_path_factory.mktemp("flights_run") / "out")
    result = run_cli("run", "--dataset", "flights", "--output_dir", output_dir,
                     "--train_input", train, "--serving_input", serving)
    assert result.returncode == 0, result.stderr[-5000:]
    with open(os.path.join(output_dir, "run_summary.json")) as f:
        summary = json.load(f)
    return FlightsRun(output_dir, train, serving, summary, result.stdout, result.stderr)


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """``python -m pipelines train`` on a copy of the run, deleted afterwards."""

    model_dir: str
    deleted_run_dir: str
    metrics: dict
    stdout: str

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.model_dir, "serving")


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory, flights_run) -> TrainedModel:
    base = tmp_path_factory.mktemp("trained")
    run_copy = str(base / "run_copy")
    shutil.copytree(flights_run.output_dir, run_copy)
    model_dir = str(base / "model")
    # At most 15 epochs keeps the fixture short; early stopping usually ends it sooner.
    result = run_cli("train", "--run_dir", run_copy, "--model_dir", model_dir, "--epochs", "15")
    assert result.returncode == 0, result.stderr[-5000:]
    # The serving model must not need the run's outputs any more.
    shutil.rmtree(run_copy)
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    return TrainedModel(model_dir, run_copy, metrics, result.stdout)


def raw_rows(output_dir: str, split_name: str, count: int):
    """(raw RecordBatch, serialized raw tf.Examples without row_key) of a split."""
    from pipelines.model.check_parity import raw_examples
    from pipelines.reports.run_dir import RunDir

    return raw_examples(RunDir(output_dir), split_name, count)
