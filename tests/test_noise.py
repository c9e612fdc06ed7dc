"""Evidence before verdicts: a skew or drift comparison on too few rows to tell
is "not enough rows" (neither ok nor over, and no anomaly by itself), a
comparator that can flag nothing is "unchecked", and the noise that decides it
is measured with TFDV from the training statistics (``pipelines.stages.noise``)."""

import csv
import json
import os
import shutil

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from pipelines.decode.request_logs import LOG_COLUMNS
from pipelines.reports import anomalies
from pipelines.reports.anomalies import Validated, describe_comparisons
from pipelines.stages import noise
from tests.conftest import run_cli
from transforms import flights


def _anomalies(*measured: tuple[str, float, float]) -> anomalies_pb2.Anomalies:
    """Anomalies as TFDV writes them for these (feature, value, threshold)
    Jensen-Shannon comparisons: each measured, and an anomaly where over."""
    found = anomalies_pb2.Anomalies()
    for feature, value, threshold in measured:
        info = found.drift_skew_info.add()
        info.path.step.append(feature)
        info.skew_measurements.add(
            type=anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE,
            value=value, threshold=threshold)
        if value > threshold:
            anomaly = found.anomaly_info[feature]
            anomaly.severity = anomalies_pb2.AnomalyInfo.ERROR
            anomaly.reason.add(
                type=anomalies_pb2.AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
                short_description="High approximate Jensen-Shannon divergence",
                description=f"The approximate Jensen-Shannon divergence between training "
                            f"and serving is {value}, above the threshold {threshold}.")
    return found


def test_each_comparison_gets_a_verdict_from_its_value_threshold_and_noise():
    measured = _anomalies(("quiet", 0.01, 0.05), ("shifted", 0.3, 0.05),
                          ("few_rows", 0.25, 0.05), ("stands_out", 0.31, 0.05),
                          ("never", 0.4, 1.0))
    # few_rows: its noise at 40 rows (0.2) exceeds both its threshold and the
    # tolerance measured at 1,000 rows, and its value is within 1.5 x that noise;
    # stands_out: as noisy, but beyond it; shifted: its noise is within bounds.
    record = {"rows": 40, "margin": 1.5, "skew": {
        "few_rows": [0.2, 0.06], "stands_out": [0.2, 0.06], "shifted": [0.04, 0.03],
        "quiet": [0.01, 0.02]}}
    table = anomalies.comparisons(measured, "skew", record)
    assert {f: (m["verdict"], m["ok"]) for f, m in table.items()} == {
        "few_rows": ("not enough rows", None), "never": ("unchecked", None),
        "quiet": ("ok", True), "shifted": ("over", False), "stands_out": ("over", False)}
    assert table["few_rows"]["noise"] == 0.2 and table["few_rows"]["rows"] == 40
    assert describe_comparisons("skew", table) == (
        "skew: 1 of 5 features within threshold; over: shifted, stands_out; not enough rows "
        "to tell "
        "(40 compared; nothing changed reads more than the threshold at that count): "
        "few_rows; unchecked (threshold 1, the metric's maximum: random parts of the "
        "training data differ as much): never")
    # Only the comparison that is over is an anomaly.
    validated = Validated("span", None, measured, "schema.pbtxt", record)
    assert set(validated.descriptions()) == {"shifted", "stands_out"} and not validated.ok
    quiet = Validated("span", None, _anomalies(("few_rows", 0.3, 0.05)), "schema.pbtxt",
                      record)
    assert quiet.ok and quiet.descriptions() == {}


def test_noise_falls_with_the_rows_compared_and_is_repeatable(flights_run):
    schema = _schema(flights_run.output_dir)
    training = anomalies.load_statistics(os.path.join(flights_run.output_dir, "stats",
                                                      "train.pb"))
    few, many = (noise.noise_at(n, training, schema) for n in (5, 1000))
    compared = {f.name for f in schema.feature if f.HasField("skew_comparator")}
    assert set(few) == set(many) == compared
    assert all(few[f] > many[f] for f in compared), (few, many)
    assert noise.noise_at(5, training, schema) == few, "seeded: the same draw every time"
    # From 1,000 rows on, the thresholds' own measurement holds: nothing is measured.
    assert noise.measure(training, schema, 1000) == {"rows": 1000, "margin": 1.5, "skew": {}}
    # A run's splits share the noise at 1,000 rows, measured once: the same records.
    assert noise.measure_each(training, schema, {"eval": 200, "serving": 5}) == {
        "eval": noise.measure(training, schema, 200),
        "serving": noise.measure(training, schema, 5)}


def _schema(run_dir: str) -> schema_pb2.Schema:
    with open(os.path.join(run_dir, "dataset", "schema.pbtxt")) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def test_a_five_row_request_log_has_not_enough_rows_and_passes(flights_run, tmp_path):
    with open(flights_run.serving_input, newline="") as f:
        reader = csv.DictReader(f)
        logged = [name for name in flights.SERVING_INPUTS if name in reader.fieldnames]
        rows = [next(reader) for _ in range(5)]
    log_dir = tmp_path / "log"
    log_dir.mkdir()
    with open(log_dir / "requests-0.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*logged, *LOG_COLUMNS])
        for row in rows:
            writer.writerow([row[n] if row[n] != "NA" else "" for n in logged]
                            + ["0.5", "2026-12-02T08:00:00Z"])
    run_dir = str(tmp_path / "run")
    shutil.copytree(flights_run.output_dir, run_dir)
    result = run_cli("validate", "--run_dir", run_dir, "--serving_input",
                     str(log_dir / "*.csv"), "--span", "five", "--fail_on_anomalies")
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    with open(os.path.join(run_dir, "validation_summary.json")) as f:
        entry = json.load(f)["validations"][-1]
    assert entry["rows"] == 5 and entry["ok"] is True
    verdicts = {m["verdict"] for m in entry["skew"].values()}
    assert verdicts == {"not enough rows"}, entry["skew"]
    assert all(m["ok"] is None and m["rows"] == 5 for m in entry["skew"].values())
    compared = len(entry["skew"])
    assert (f"skew: 0 of {compared} features within threshold; not enough rows to tell "
            f"(5 compared; ") in result.stdout
    assert f"verdict: ok; skew not judged for {compared} of {compared} features" in (
        result.stdout)
    with open(os.path.join(run_dir, "report.html")) as f:
        assert "<span class='unsure'>not enough rows</span>" in f.read()


def test_a_run_measures_noise_only_where_a_split_is_smaller_than_the_thresholds_parts(
        flights_run):
    for split in ("eval", "serving"):
        with open(os.path.join(flights_run.output_dir, "stats", f"{split}.noise.json")) as f:
            record = json.load(f)
        assert record["rows"] == flights_run.summary["rows"][split]
        assert (record["skew"] == {}) == (record["rows"] >= noise.CALIBRATED_ROWS), record
