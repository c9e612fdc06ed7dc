"""Output integrity: an interrupted or failed run publishes nothing, a re-run
succeeds, and two runs on the same input write the same records and
byte-identical vocabularies."""

import collections
import filecmp
import glob
import os
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

from tests.conftest import BAD_ROWS, PROJECT_ROOT, TRAIN_ROWS, run_cli

# Every test here reads a full pipeline run (or a trained model) of its own.
pytestmark = pytest.mark.slow

OUTPUTS = ("data", "stats", "anomalies", "transform_fn", "transformed_metadata", "metadata",
           "rejected", "report.html", "validation_summary.json", "run_summary.json")


def _records(output_dir: str, split: str) -> collections.Counter:
    """The split's examples as a multiset of (feature, values) tuples: a
    tf.Example's feature map has no fixed order in its serialized bytes."""
    files = sorted(glob.glob(os.path.join(output_dir, "data", split, "*.tfrecord.gz")))
    records = collections.Counter()
    for serialized in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        features = tf.train.Example.FromString(serialized).features.feature
        records[tuple(sorted((name, feature.SerializeToString(deterministic=True))
                             for name, feature in features.items()))] += 1
    return records


@pytest.fixture(scope="module")
def interrupted_then_rerun(tmp_path_factory, flights_run):
    """The same command as the session's run: killed once it is under way, then
    started again to the end."""
    output_dir = str(tmp_path_factory.mktemp("interrupted") / "out")
    command = [sys.executable, "-m", "pipelines", "run", "--dataset", "flights",
               "--output_dir", output_dir,
               "--train_input", flights_run.train_input,
               "--serving_input", flights_run.serving_input]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # progress lines: kill once rows are being transformed
        if line.startswith(("transform", "write")):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    after_kill = {name: os.path.exists(os.path.join(output_dir, name)) for name in OUTPUTS}
    staged = glob.glob(os.path.join(output_dir, ".staging", "*", "*"))
    rerun = run_cli(*command[3:])  # the same command again, in-process
    return output_dir, after_kill, staged, rerun


def test_a_killed_run_publishes_nothing(interrupted_then_rerun):
    _, after_kill, staged, _ = interrupted_then_rerun
    assert staged, "the run was killed while writing its staging directory"
    assert not any(after_kill.values()), after_kill


def test_the_same_command_then_succeeds_and_cleans_up(interrupted_then_rerun):
    output_dir, _, _, rerun = interrupted_then_rerun
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    for name in OUTPUTS:
        assert os.path.exists(os.path.join(output_dir, name)), name
    assert not os.path.exists(os.path.join(output_dir, ".staging"))


def test_two_runs_write_the_same_records_and_vocabularies(interrupted_then_rerun, flights_run):
    output_dir, _, _, _ = interrupted_then_rerun
    first = os.path.join(flights_run.output_dir, "transform_fn", "assets")
    second = os.path.join(output_dir, "transform_fn", "assets")
    names = sorted(os.listdir(first))
    assert names == sorted(os.listdir(second)) == ["carrier", "dest", "origin"]
    match, mismatch, errors = filecmp.cmpfiles(first, second, names, shallow=False)
    assert (match, mismatch, errors) == (names, [], [])
    for split in ("train", "eval", "serving"):
        assert _records(output_dir, split) == _records(flights_run.output_dir, split), split


def test_too_many_rejected_rows_fail_the_run_without_publishing(tmp_path, flights_run):
    dirty = flights_run.train_input  # 3 broken rows in 5,003
    output_dir = str(tmp_path / "out")
    result = run_cli("run", "--dataset", "flights", "--output_dir", output_dir,
                     "--train_input", dirty,
                     "--serving_input", dirty, "--max_rejected_fraction", "0.0001")
    assert result.returncode == 2
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    total = 2 * (TRAIN_ROWS + len(BAD_ROWS))
    assert len(error) == 1 and error[0].startswith(
        f"error: {len(BAD_ROWS) * 2} of {total:,} rows were rejected (0.06%), more than "
        f"--max_rejected_fraction 0.0001 allows")
    assert not any(os.path.exists(os.path.join(output_dir, name)) for name in OUTPUTS)


def test_overwrite_replaces_a_completed_run(tmp_path, flights_run):
    output_dir = str(tmp_path / "out")
    with open(flights_run.train_input, "rb") as f:
        header, *lines = f.readlines()
    small = tmp_path / "small.csv"
    small.write_bytes(header + b"".join(lines[:1500]))
    args = ["run", "--dataset", "flights", "--output_dir", output_dir, "--train_input", str(small),
            "--serving_input", str(small)]
    assert run_cli(*args).returncode == 0
    stale = os.path.join(output_dir, "validations", "old-span")
    os.makedirs(stale)
    refused = run_cli(*args)
    assert refused.returncode == 2 and "already holds a completed run" in refused.stderr
    replaced = run_cli(*args, "--overwrite")
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert not os.path.exists(stale), "the old run's validations went with it"
